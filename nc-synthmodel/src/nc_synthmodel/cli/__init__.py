"""``nc-synthmodel`` command line.

Every error is one line on stderr naming the input and the problem (exit status 2); rows of a
recipe file that cannot be used are skipped and named, the rest are used.  ``predict`` skips
(and names) recipes it cannot read or encode — bad values, unknown chemicals, too many chemicals — and
predicts the others (exit status 1 when some were skipped).  Commands that write refuse to replace an
existing file without ``--overwrite``, and never write over one of their inputs.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
