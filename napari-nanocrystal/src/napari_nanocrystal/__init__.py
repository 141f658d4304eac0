"""napari-nanocrystal: TEM nanocrystal segmentation, measurement and recipe linking for napari.

The package top level is the headless API; it never imports Qt or napari.  Names are
loaded on first use, so ``import napari_nanocrystal`` (and napari's start-up) stays fast:
torch and cellpose load only when :func:`segment` is first touched.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name → module that defines it
_API = {
    "segment": "napari_nanocrystal.segmentation.inference",
    "SegmentationResult": "napari_nanocrystal.segmentation.inference",
    "evaluate": "napari_nanocrystal.segmentation.evaluation",
    "train": "napari_nanocrystal.segmentation.training",
    "TrainingResult": "napari_nanocrystal.segmentation.training",
    "generate_weak_labels": "napari_nanocrystal.weak_labels",
    "weak_label_from_boxes": "napari_nanocrystal.weak_labels",
    "read_scale_bar": "napari_nanocrystal.scalebar",
    "ScaleBar": "napari_nanocrystal.scalebar",
    "ScaleBarError": "napari_nanocrystal.scalebar",
    "make_tem_image": "napari_nanocrystal.synthetic",
    "read_micrograph": "napari_nanocrystal.analysis",
    "analyze_image": "napari_nanocrystal.analysis",
    "analyze_paths": "napari_nanocrystal.analysis",
    "iter_analyze_image": "napari_nanocrystal.analysis",
    "ImageAnalysis": "napari_nanocrystal.analysis",
    "BatchReport": "napari_nanocrystal.analysis",
    "AnalysisError": "napari_nanocrystal.analysis",
    "measure_particles": "napari_nanocrystal.measure",
    "ShapeClustering": "napari_nanocrystal.shapes",
    "classify_shapes": "napari_nanocrystal.shapes",
    "assign_shape_classes": "napari_nanocrystal.shapes",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
