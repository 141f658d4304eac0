"""npe2 sample data: a synthetic bright-field TEM image with a scale bar and its ground truth.

Only synthetic data ship with the plugin (no dataset images).  The image comes from
:func:`napari_nanocrystal.synthetic.make_tem_image` with a fixed seed, so it is the same
every time; layers are scaled in nm with the generator's pixel size.  No Qt or napari import.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["make_synthetic_tem", "SAMPLE_SEED", "SAMPLE_SHAPE", "SAMPLE_NM_PER_PX"]

logger = logging.getLogger(__name__)

#: Fixed generator settings of the sample.
SAMPLE_SEED = 2025
SAMPLE_SHAPE = (512, 512)
SAMPLE_NM_PER_PX = 0.5
_SAMPLE_CLASSES = ("sphere", "cube", "triangle", "hexagon", "rod")


def make_synthetic_tem() -> list[tuple[Any, dict[str, Any], str]]:
    """Synthetic TEM image (512², uint8, burned-in scale bar) and its ground-truth labels.

    Returns
    -------
    list of LayerData tuples
        ``(image, {"name": "synthetic TEM", "scale": (0.5, 0.5), "units": "nm", "metadata": …}, "image")``
        and ``(labels, {"name": "synthetic TEM ground truth", "scale": …}, "labels")``: int32,
        0 = background.  The image metadata hold ``nm_per_px``, ``calibration_source``
        ("metadata": the generator's pixel size), the scale bar's text and box, and the
        truth per particle (``label``, ``shape_class``, ``ecd_nm``) as ``particles``.
    """
    from .synthetic import make_tem_image

    sample = make_tem_image(
        SAMPLE_SHAPE,
        n_particles=45,
        shape_classes=_SAMPLE_CLASSES,
        diameter_nm=(15.0, 2.0),
        nm_per_px=SAMPLE_NM_PER_PX,
        rng=SAMPLE_SEED,
    )
    nm = float(sample.nm_per_px)
    bar = sample.scale_bar
    metadata = {
        "nm_per_px": nm,
        "calibration_source": "metadata",
        "calibrated": True,
        "synthetic": {"generator": "napari_nanocrystal.synthetic.make_tem_image", "seed": SAMPLE_SEED},
        "scale_bar": None
        if bar is None
        else {"text": bar.text, "bar_box": bar.bar_box, "text_box": bar.text_box, "nm_per_px": bar.nm_per_px},
        "particles": sample.particles[["label", "shape_class", "ecd_nm"]].to_dict("list"),
    }
    logger.debug("synthetic TEM sample: %d particles, %.3g nm/px", int(sample.labels.max()), nm)
    common = {"scale": (nm, nm), "units": ("nm", "nm")}
    return [
        (sample.image, {"name": "synthetic TEM", **common, "metadata": metadata}, "image"),
        (sample.labels, {"name": "synthetic TEM ground truth", **common, "metadata": {"nm_per_px": nm}}, "labels"),
    ]
