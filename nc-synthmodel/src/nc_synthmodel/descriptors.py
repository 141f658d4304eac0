"""Chemical descriptors: a fixed-length vector per chemical name.

:class:`DescriptorTable` holds precomputed descriptors read from an ``.npz`` file with
two arrays, ``names`` (n,) str and ``descriptors`` (n, dim) float, e.g. the authors'
Uni-Mol table ``gu2025/unimol_descriptors.npz`` (1800 × 512, float32).  Names not in the
table can come from a *fallback*: any callable ``name -> (dim,) array`` (later: RDKit,
pymatgen or Uni-Mol descriptors computed from structure), see :data:`DescriptorFn`.

Reaction intermediates are table entries named ``"A@B"`` (A reacted with B; see
:func:`intermediate_name`).  In the Gu et al. table each pair is stored in one orientation
only (never both ``A@B`` and ``B@A``), and that orientation follows neither the
alphabet, nor the slot order of the recipes, nor the roles, so a pair has to be
looked up both ways (:meth:`DescriptorTable.intermediates_for`).
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "DescriptorFn",
    "DescriptorTable",
    "UnknownChemicalError",
    "intermediate_name",
    "find_intermediates",
]

logger = logging.getLogger(__name__)

#: A computed descriptor: chemical name → 1-D vector of the table's ``dim``.
DescriptorFn = Callable[[str], np.ndarray]

#: Separator of the two reactants in an intermediate's name.
INTERMEDIATE_SEP = "@"


class UnknownChemicalError(KeyError):
    """Chemical names that have no descriptor; ``names`` lists them."""

    def __init__(self, names: Sequence[str], source: str | None = None, suggestions: dict[str, str] | None = None):
        self.names = list(names)
        self.source = source
        self.suggestions = dict(suggestions or {})
        super().__init__(str(self))

    def __str__(self) -> str:  # KeyError would show the repr of the message
        shown = ", ".join(f"{n!r} (did you mean {self.suggestions[n]!r}?)" if n in self.suggestions else repr(n) for n in self.names[:20])
        more = f" … and {len(self.names) - 20} more" if len(self.names) > 20 else ""
        where = f" {self.source}" if self.source else ""
        return (
            f"{len(self.names)} chemical(s) not in the descriptor table{where}: {shown}{more}. "
            "Add them to the table (an .npz with 'names' and 'descriptors'), or give the table a "
            "computed fallback: DescriptorTable.from_npz(path, fallback=fn) with fn(name) -> vector of length dim."
        )


def intermediate_name(a: str, b: str) -> str:
    """Name of the intermediate of ``a`` reacted with ``b``: ``"a@b"``."""
    if not a or not b:
        raise ValueError(f"an intermediate needs two non-empty reactant names, got {a!r} and {b!r}")
    return f"{a}{INTERMEDIATE_SEP}{b}"


def find_intermediates(names: Iterable[str], known: Collection[str]) -> list[tuple[str, str, str]]:
    """Pairs of ``names`` whose intermediate is in ``known``, as ``(a, b, "a@b")``.

    Each unordered pair is tried as ``a@b`` and ``b@a``; the tuple follows the
    orientation found in ``known`` (``a@b`` first if both are there).  Pairs come in the
    order of ``names`` (first by the earlier name, then by the later one).
    """
    names = _as_name_list(names)
    found = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if first == second:
                continue
            name = f"{first}{INTERMEDIATE_SEP}{second}"  # inlined intermediate_name: a hot loop
            if name in known:
                found.append((first, second, name))
                continue
            name = f"{second}{INTERMEDIATE_SEP}{first}"
            if name in known:
                found.append((second, first, name))
    return found


def _as_name_list(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):
        raise TypeError("expected a sequence of chemical names, got a single string; wrap it in a list")
    names = list(names)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"chemical names must be str, got {type(bad[0]).__name__} {bad[0]!r}")
    return names


class DescriptorTable:
    """Descriptor vectors looked up by chemical name.

    Parameters
    ----------
    names : sequence of str, length n
        Chemical names, unique, without surrounding whitespace.
    descriptors : array (n, dim)
        One finite row per name; the dtype is kept (float32 for the Uni-Mol table).
    fallback : DescriptorFn, optional
        Called for names not in the table; must return a finite vector of length
        ``dim``.  Results are cached.  ``name in table`` stays False for them.
    source : str, optional
        Where the table came from, used in error messages.
    """

    def __init__(
        self,
        names: Sequence[str],
        descriptors: np.ndarray,
        *,
        fallback: DescriptorFn | None = None,
        source: str | None = None,
    ):
        where = f"{source}: " if source else ""
        names = np.asarray(names)
        descriptors = np.asarray(descriptors)
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise ValueError(f"{where}'names' must be a 1-D array of strings, got dtype {names.dtype} and shape {names.shape}")
        if descriptors.ndim != 2 or descriptors.dtype.kind not in "fiu":
            raise ValueError(
                f"{where}'descriptors' must be a 2-D numeric array (n, dim), got dtype {descriptors.dtype} and shape {descriptors.shape}"
            )
        if len(names) != descriptors.shape[0]:
            raise ValueError(f"{where}{len(names)} names but {descriptors.shape[0]} descriptor rows; they must agree")
        if descriptors.shape[1] == 0:
            raise ValueError(f"{where}descriptors have dimension 0")
        if descriptors.dtype.kind != "f":
            descriptors = descriptors.astype(np.float64)
        names_list = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
        bad_rows = np.flatnonzero(~np.isfinite(descriptors).all(axis=1))
        if bad_rows.size:
            shown = ", ".join(repr(names_list[i]) for i in bad_rows[:10])
            raise ValueError(f"{where}{bad_rows.size} descriptor row(s) hold NaN or inf: {shown}")
        repeated = sorted(n for n, k in Counter(names_list).items() if k > 1)
        if repeated:
            raise ValueError(f"{where}name(s) listed more than once: {', '.join(map(repr, repeated[:20]))}")
        unclean = [n for n in names_list if not n or n != n.strip()]
        if unclean:
            raise ValueError(f"{where}empty name or name with surrounding whitespace: {unclean[:10]!r}")
        self._names = tuple(names_list)
        self._index = {n: i for i, n in enumerate(names_list)}
        self._vectors = np.ascontiguousarray(descriptors)
        self._vectors.flags.writeable = False
        self.fallback = fallback
        self.source = source
        self._computed: dict[str, np.ndarray] = {}

    @classmethod
    def from_npz(cls, path: str | os.PathLike, *, fallback: DescriptorFn | None = None) -> DescriptorTable:
        """Read a table from an ``.npz`` with ``names`` (n,) str and ``descriptors`` (n, dim)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"descriptor table not found: {path}")
        with open(path, "rb") as handle:
            if handle.read(2) != b"PK":
                raise ValueError(f"{path}: not an .npz file (expected a zip archive written by np.savez)")
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [k for k in ("names", "descriptors") if k not in npz.files]
                if missing:
                    raise ValueError(f"{path}: descriptor table lacks {missing} (has {npz.files}); expected 'names' and 'descriptors'")
                names, descriptors = npz["names"], npz["descriptors"]
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise ValueError(
                    f"{path}: an array is stored as Python objects, which is not read (no unpickling); "
                    "save 'names' as a str array (np.array(names, dtype=str))"
                ) from None
            raise
        except (OSError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: not a readable .npz file ({exc})") from None
        table = cls(names, descriptors, fallback=fallback, source=str(path))
        logger.debug("read %d descriptors of dimension %d from %s", len(table), table.dim, path)
        return table

    # ------------------------------------------------------------------ lookups

    @property
    def dim(self) -> int:
        """Length of each descriptor vector."""
        return int(self._vectors.shape[1])

    @property
    def names(self) -> tuple[str, ...]:
        """Names in the table, in file order."""
        return self._names

    @property
    def dtype(self) -> np.dtype:
        return self._vectors.dtype

    @property
    def intermediates(self) -> frozenset[str]:
        """Names of the reaction intermediates (``"A@B"``) in the table."""
        return frozenset(n for n in self._names if INTERMEDIATE_SEP in n)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __repr__(self) -> str:
        fallback = "" if self.fallback is None else ", with fallback"
        return f"DescriptorTable({len(self)} names, dim={self.dim}{fallback})"

    def get(self, name: str) -> np.ndarray:
        """Descriptor of one chemical, shape ``(dim,)`` (a read-only view for table entries)."""
        index = self._index.get(name)
        if index is not None:
            return self._vectors[index]
        return self.lookup([name])[0]

    def lookup(self, names: Iterable[str]) -> np.ndarray:
        """Descriptors of ``names``, shape ``(n, dim)``, in the given order.

        Raises :class:`UnknownChemicalError` listing every name that is neither in the
        table nor computable by the fallback.
        """
        names = _as_name_list(names)
        unknown = list(dict.fromkeys(n for n in names if n not in self._index))
        if unknown and self.fallback is None:
            raise UnknownChemicalError(unknown, self.source, self._suggest(unknown))
        for name in unknown:
            if name not in self._computed:
                self._computed[name] = self._compute(name)
        out = np.empty((len(names), self.dim), dtype=self._vectors.dtype)
        for row, name in enumerate(names):
            index = self._index.get(name)
            out[row] = self._vectors[index] if index is not None else self._computed[name]
        return out

    def intermediates_for(self, names: Iterable[str]) -> list[tuple[str, str, str]]:
        """Pairs of ``names`` with a known intermediate: ``[(a, b, "a@b"), ...]``.

        Both orientations are tried; the tuple follows the one stored in the table.
        """
        return find_intermediates(names, self._index)

    # ------------------------------------------------------------------ helpers

    def _compute(self, name: str) -> np.ndarray:
        assert self.fallback is not None
        vector = np.asarray(self.fallback(name), dtype=float)
        if vector.shape != (self.dim,):
            raise ValueError(f"descriptor fallback returned shape {vector.shape} for {name!r}; the table needs ({self.dim},)")
        if not np.isfinite(vector).all():
            raise ValueError(f"descriptor fallback returned NaN or inf for {name!r}")
        logger.debug("computed descriptor for %r with the fallback", name)
        return vector.astype(self._vectors.dtype)

    def _suggest(self, unknown: list[str]) -> dict[str, str]:
        """Table names that differ from an unknown name only in case ('ola' → 'OLA').

        No fuzzy matching: for formulas a near miss is another chemical (ErBr3 vs LaBr3).
        """
        folded = {n.casefold(): n for n in self._names}
        return {n: folded[n.casefold()] for n in unknown if n.casefold() in folded}
