"""Name → vector resolution shared by the descriptor estimators, ``"A@B"`` intermediates included.

:class:`_NamedDescriptors` resolves chemical names to structures, computes (via the
subclass's ``_vectors``) one vector per structure, gives an intermediate ``"A@B"`` the mean of
A and B with the ``intermediate`` flag set, and builds
:class:`~nc_synthmodel.descriptors.DescriptorTable` objects.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..contract import PLACEHOLDER
from ..descriptors import INTERMEDIATE_SEP, DescriptorTable
from .structures import Structure, UnknownStructureError, _structure_map


class _NamedDescriptors:
    """Name -> vector resolution shared by the estimators: structures, intermediates, tables."""

    def _fit_structures(self, names) -> None:
        self.structures_ = _structure_map(self.structures)
        if names is not None:
            self._resolve(_name_list(names))

    def _check_fitted(self) -> None:
        if not hasattr(self, "structures_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    def _resolve(self, names: list[str]) -> list[Structure]:
        """Structures behind ``names`` and the parts of intermediates (unique, in order)."""
        needed: dict[str, None] = {}
        unknown: dict[str, None] = {}
        for name in names:
            for part in _parts(name):
                if part in self.structures_:
                    needed[part] = None
                else:
                    unknown[part] = None
        if unknown:
            raise UnknownStructureError(list(unknown), "structure table")
        return [self.structures_[n] for n in needed]

    def transform(self, names: Iterable[str]) -> np.ndarray:
        """Descriptors of ``names``, shape ``(n, n_features_)`` float32, in order.

        ``"A@B"`` intermediates are the mean of A and B with the ``intermediate`` flag
        set (see :mod:`nc_synthmodel.chem`).
        """
        self._check_fitted()
        names = _name_list(names)
        structures = self._resolve(names)
        vectors = dict(zip((s.name for s in structures), self._vectors(structures)))
        out = np.empty((len(names), self.n_features_), dtype=np.float32)
        for row, name in enumerate(names):
            parts = _parts(name)
            if len(parts) == 1:
                out[row] = vectors[name]
            else:
                out[row] = (vectors[parts[0]].astype(float) + vectors[parts[1]]) / 2.0
                if self._intermediate_index is not None:
                    out[row, self._intermediate_index] = 1.0
        return out

    def descriptor(self, name: str) -> np.ndarray:
        """Descriptor of one name, shape ``(n_features_,)``: a ``DescriptorFn``."""
        if not isinstance(name, str):
            raise TypeError(f"a chemical name must be a str, got {type(name).__name__} {name!r}")
        return self.transform([name])[0]

    def to_table(self, names: Iterable[str]) -> DescriptorTable:
        """A :class:`DescriptorTable` of ``names`` (duplicates dropped) whose fallback is :meth:`descriptor`.

        Include the ``"A@B"`` intermediates that augmentation may insert: the table's
        ``intermediates`` are its ``A@B`` names.
        """
        names = list(dict.fromkeys(_name_list(names)))
        if not names:
            raise ValueError("to_table needs at least one chemical name")
        return DescriptorTable(names, self.transform(names), fallback=self.descriptor, source=self._source())


def _name_list(names) -> list[str]:
    if isinstance(names, str):
        raise TypeError("expected a sequence of chemical names, got a single string; wrap it in a list")
    names = list(names)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"chemical names must be str, got {type(bad[0]).__name__} {bad[0]!r}")
    return names


def _parts(name: str) -> tuple[str, ...]:
    if name == PLACEHOLDER:
        raise ValueError(f"{PLACEHOLDER!r} marks an empty recipe slot, not a chemical; drop it before computing descriptors")
    if INTERMEDIATE_SEP not in name:
        return (name,)
    parts = tuple(name.split(INTERMEDIATE_SEP))
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"intermediate name {name!r} must be 'A{INTERMEDIATE_SEP}B' with two non-empty parts")
    return parts
