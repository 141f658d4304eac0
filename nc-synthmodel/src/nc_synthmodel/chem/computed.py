""":class:`ComputedDescriptors`: fixed-length descriptors computed from structure, cached on disk.

The scikit-learn-style estimator over :mod:`.vector`: ``fit`` resolves the structure table,
``transform`` / ``descriptor`` / ``to_table`` give vectors; computed vectors are cached in
:func:`default_cache_dir`, one ``.npy`` per structure, keyed by a hash of the structure, the
seed, the force-field steps, :data:`~.layout.DESCRIPTOR_VERSION` and the RDKit / pymatgen
versions, written atomically.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..io import atomic_write_bytes
from .intermediates import _NamedDescriptors
from .layout import _INTERMEDIATE_INDEX, DESCRIPTOR_VERSION, FEATURE_NAMES
from .structures import Structure
from .vector import _compute_vector, _import_chem

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/nc-synthmodel/descriptors`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nc-synthmodel" / "descriptors"


class ComputedDescriptors(_NamedDescriptors):
    """Fixed-length descriptors computed from structure with RDKit and pymatgen.

    Parameters
    ----------
    structures : path, sequence of Structure, or None
        The name -> structure table; None reads the shipped ``data/structures.csv``.
        Add chemicals with ``read_structures() + [Structure("X", smiles="...")]``.
    cache_dir : path or None
        Folder of the disk cache (one ``.npy`` per structure, keyed by a hash of the
        structure, ``random_state``, ``max_iters``, ``DESCRIPTOR_VERSION`` and the RDKit
        and pymatgen versions); None is :func:`default_cache_dir`.
    use_cache : bool
        False computes everything in memory only.
    random_state : int
        Seed of the ETKDG conformer embedding.
    max_iters : int
        Force-field optimisation steps.

    Attributes
    ----------
    structures_ : dict of str -> Structure
    feature_names_ : tuple of str
        :data:`FEATURE_NAMES`.
    n_features_ : int
    n_computed_ : int
        Structures computed (not read from the cache) by this instance so far.

    Examples
    --------
    >>> table = ComputedDescriptors().fit().to_table(names)  # doctest: +SKIP
    >>> encoder = RecipeEncoder(table).fit(recipes)  # doctest: +SKIP
    """

    _intermediate_index = _INTERMEDIATE_INDEX

    def __init__(
        self,
        structures: str | os.PathLike | Sequence[Structure] | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
        random_state: int = 0,
        max_iters: int = 500,
    ):
        self.structures = structures
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.random_state = random_state
        self.max_iters = max_iters

    def fit(self, names: Iterable[str] | None = None, y=None) -> ComputedDescriptors:
        """Read and check the structure table; with ``names``, check each has a structure."""
        _import_chem()
        _check_int("random_state", self.random_state, minimum=0)
        _check_int("max_iters", self.max_iters, minimum=1)
        self._fit_structures(names)
        self._key_base = _key_base(self.random_state, self.max_iters)
        self.feature_names_ = FEATURE_NAMES
        self.n_features_ = len(FEATURE_NAMES)
        self.n_computed_ = 0
        self._memory: dict[str, np.ndarray] = {}
        self._cache_warned = False
        return self

    # ------------------------------------------------------------------ internals

    def _source(self) -> str:
        return f"computed descriptors v{DESCRIPTOR_VERSION}"

    def _cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()

    def _key(self, structure: Structure) -> str:
        payload = dict(self._key_base, kind=structure.kind, smiles=structure.smiles, formula=structure.formula)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:32]

    def _vectors(self, structures: list[Structure]) -> list[np.ndarray]:
        start = time.perf_counter()
        n_cached = n_new = 0
        out = []
        for structure in structures:
            key = self._key(structure)
            vector = self._memory.get(key)
            if vector is None and self.use_cache:
                vector = self._read_cache(key, structure.name)
                n_cached += vector is not None
            if vector is None:
                vector = _compute_vector(structure, self.random_state, self.max_iters)
                n_new += 1
                self.n_computed_ += 1
                logger.debug("computed descriptors of %r", structure.name)
                if self.use_cache:
                    self._write_cache(key, vector)
            self._memory[key] = vector
            out.append(vector)
        if n_new or n_cached:
            logger.log(
                logging.INFO if n_new else logging.DEBUG,
                "descriptors of %d structure(s): %d computed, %d from the cache (%.1f s)",
                len(structures),
                n_new,
                n_cached,
                time.perf_counter() - start,
            )
        return out

    def _read_cache(self, key: str, name: str) -> np.ndarray | None:
        path = self._cache_path() / f"{key}.npy"
        if not path.is_file():
            return None
        try:
            vector = np.load(path, allow_pickle=False)
            if vector.shape != (self.n_features_,) or vector.dtype != np.float32 or not np.isfinite(vector).all():
                raise ValueError(f"holds {vector.shape} {vector.dtype}, expected ({self.n_features_},) finite float32")
        except (OSError, ValueError, EOFError) as exc:
            logger.warning("corrupt descriptor cache file %s for %r (%s); recomputing it", path, name, exc)
            return None
        vector.flags.writeable = False
        return vector

    def _write_cache(self, key: str, vector: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, vector, allow_pickle=False)
        path = self._cache_path() / f"{key}.npy"
        try:
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as exc:
            if not self._cache_warned:
                logger.warning("cannot write the descriptor cache %s (%s); continuing without it", path.parent, exc)
                self._cache_warned = True


def _key_base(random_state: int, max_iters: int) -> dict:
    """What, besides the structure, determines a vector: part of every cache key."""
    from importlib.metadata import PackageNotFoundError, version

    import rdkit

    try:
        pymatgen_version = version("pymatgen")
    except PackageNotFoundError:
        pymatgen_version = "unknown"
    return {
        "descriptor_version": DESCRIPTOR_VERSION,
        "random_state": int(random_state),
        "max_iters": int(max_iters),
        "rdkit": rdkit.__version__,
        "pymatgen": pymatgen_version,
    }


def _check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
