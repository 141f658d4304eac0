"""The weights shipped with the package, found without importing torch (the widgets list them).

``napari_nanocrystal/models/<name>.safetensors`` (or ``.pt``/``.pth``), each with its
``<name>.json`` config; ``default`` is the model :func:`napari_nanocrystal.segment` uses.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODELS_DIR", "WEIGHT_SUFFIXES", "shipped_weights"]

#: Folder of the weights shipped with the package (``models/<name>.safetensors`` + ``.json``).
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"

#: Suffixes of weight files, in order of preference.
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")


def shipped_weights(folder=None) -> dict[str, Path]:
    """Weight files in ``folder`` (default :data:`MODELS_DIR`): name (file stem) → path, sorted.

    A name with several files takes the first suffix of :data:`WEIGHT_SUFFIXES`.
    """
    folder = Path(MODELS_DIR if folder is None else folder)
    found: dict[str, Path] = {}
    if folder.is_dir():
        for suffix in WEIGHT_SUFFIXES:
            for path in sorted(folder.glob(f"*{suffix}")):
                found.setdefault(path.stem, path)
    return found
