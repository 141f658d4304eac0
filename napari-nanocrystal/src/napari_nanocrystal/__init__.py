"""napari-nanocrystal: TEM nanocrystal segmentation, measurement and recipe linking for napari.

The package top level is the headless API; it never imports Qt or napari.  Names are
loaded on first use, so ``import napari_nanocrystal`` (and napari's start-up) stays fast:
torch and cellpose load only when :func:`segment` is first touched.
"""

from __future__ import annotations

import lazy_loader

__version__ = "0.1.0"

# module → the public names it defines, loaded on first use (lazy_loader, as napari and scikit-image do)
_SUBMOD_ATTRS = {
    "segmentation.inference": ["segment", "SegmentationResult"],
    "segmentation.evaluation": ["evaluate"],
    "segmentation.training": ["train", "TrainingResult"],
    "weak_labels": ["generate_weak_labels", "weak_label_from_boxes"],
    "scalebar": ["read_scale_bar", "ScaleBar", "ScaleBarError"],
    "synthetic": ["make_tem_image"],
    "analysis": [
        "read_micrograph",
        "analyze_image",
        "analyze_paths",
        "iter_analyze_image",
        "ImageAnalysis",
        "BatchReport",
        "AnalysisError",
    ],
    "measure": ["measure_particles"],
    "shapes": ["ShapeClustering", "classify_shapes", "assign_shape_classes"],
}
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=_SUBMOD_ATTRS)
