"""Chemical descriptors computed from structure: the public names of :mod:`nc_synthmodel.chem`.

Kept so that ``from nc_synthmodel.computed import ComputedDescriptors`` (the CLI, the model
loader, scripts) keeps working; the code and its documentation live in
:mod:`nc_synthmodel.chem`.
"""

from __future__ import annotations

from .chem import *  # noqa: F403  (exactly chem.__all__)
from .chem import __all__  # noqa: F401
