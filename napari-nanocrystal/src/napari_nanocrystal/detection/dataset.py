"""mmdet dataset and image loader for particle detection from instance maps.

* ``DATASETS`` ``ParticleDetDataset`` — image + instance-map pairs → one box per particle,
  class ``particle``.  Reads a folder in either layout of
  :func:`napari_nanocrystal.segmentation.data.find_labelled_pairs` (EMPS
  ``images/*.png`` + ``segmaps/*.png``, or flat ``<name>_image.png`` + ``<name>_instances.png``),
  optionally restricted to ``names``; or, built in Python, in-memory ``samples``
  ``[(image, labels), …]``.  A box is the particle's pixel extent in pixel-edge coordinates
  (exclusive ends, mmdet ``xyxy``); boxes with a side below ``min_box_px`` are kept as
  *ignored* instances.
* ``TRANSFORMS`` ``LoadTEMImage`` — reads any image the package reads (8/16-bit, float, gray,
  RGB(A), TIFF) or takes ``results['img']``, and makes the detector input:
  :func:`detector_input`, gray percentile-normalised to uint8 and repeated to 3 channels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS, TRANSFORMS

from ..segmentation._image import DEFAULT_PERCENTILES, prepare_image
from ..segmentation.data import find_labelled_pairs, read_image, read_labels
from ..weak_labels import boxes_from_labels

__all__ = ["LoadTEMImage", "ParticleDetDataset", "detector_input", "instances_from_labels"]

logger = logging.getLogger(__name__)

#: Class names and palette of the one-class particle detector.
PARTICLE_METAINFO = {"classes": ("particle",), "palette": [(220, 20, 60)]}


def detector_input(image, percentiles=DEFAULT_PERCENTILES) -> np.ndarray:
    """Detector input from any image: uint8 (H, W, 3).

    The image is converted to gray, its ``percentiles`` mapped to 0 and 255 (clipped) and the
    channel repeated three times (the order is irrelevant: all channels are equal).
    """
    gray = prepare_image(image, percentiles)
    gray = np.clip(gray * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def instances_from_labels(labels, min_box_px: float = 2.0) -> list[dict]:
    """mmdet ``instances`` (bbox, bbox_label 0, ignore_flag) of an instance map's particles."""
    boxes = boxes_from_labels(labels)
    small = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) < float(min_box_px)
    return [{"bbox": [float(v) for v in box], "bbox_label": 0, "ignore_flag": int(flag)} for box, flag in zip(boxes, small)]


@TRANSFORMS.register_module()
class LoadTEMImage(BaseTransform):
    """Load a TEM image as the detector's uint8 (H, W, 3) input (see :func:`detector_input`).

    Required keys: ``img_path``, or ``img`` (an array, used instead of the file).
    Added/modified keys: ``img``, ``img_shape``, ``ori_shape``.
    """

    def __init__(self, percentiles: Sequence[float] = DEFAULT_PERCENTILES):
        lower, upper = (float(p) for p in percentiles)
        if not 0.0 <= lower < upper <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 ≤ lower < upper ≤ 100, got {percentiles}")
        self.percentiles = (lower, upper)

    def transform(self, results: dict) -> dict:
        image = results.get("img")
        if image is None:
            path = results.get("img_path")
            if path is None:
                raise KeyError("LoadTEMImage needs 'img_path' or 'img' in the results")
            image = read_image(path)
        image = detector_input(image, self.percentiles)
        results["img"] = image
        results["img_shape"] = image.shape[:2]
        results["ori_shape"] = image.shape[:2]
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(percentiles={self.percentiles})"


@DATASETS.register_module()
class ParticleDetDataset(BaseDetDataset):
    """Particle boxes from image + instance-map pairs (one class, ``particle``).

    Parameters
    ----------
    data_root : str
        A folder of pairs (EMPS layout or flat, see the module docstring), or one image file
        with its ``_instances`` partner beside it.
    names : sequence of str, optional
        Only these pair names (e.g. one side of :func:`~napari_nanocrystal.segmentation.data.emps_split`).
    samples : sequence of (image, labels), optional
        In-memory pairs instead of ``data_root`` (Python use; not expressible in a config file).
    min_box_px : float
        Boxes with a side below this are ignored instances.
    filter_cfg : dict, optional
        ``filter_empty_gt`` (drop training images without a usable box), ``min_size``
        (drop images whose shorter side is smaller, px).
    **kwargs
        Passed to mmdet's ``BaseDetDataset`` (``pipeline``, ``test_mode``, ``lazy_init``, …).
    """

    METAINFO = PARTICLE_METAINFO

    def __init__(self, *args, names: Sequence[str] | None = None, samples=None, min_box_px: float = 2.0, **kwargs):
        self.names = None if names is None else [str(n) for n in names]
        self.samples = samples
        self.min_box_px = float(min_box_px)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        if self.samples is not None:
            return [self._sample_info(i, image, labels) for i, (image, labels) in enumerate(self.samples)]
        if not self.data_root:
            raise ValueError("ParticleDetDataset needs data_root (a folder of image + instance-map pairs) or samples")
        pairs = find_labelled_pairs(self.data_root)
        if self.names is not None:
            by_name = {p.name: p for p in pairs}
            missing = [n for n in self.names if n not in by_name]
            if missing:
                raise ValueError(
                    f"{self.data_root}: no image + instance-map pair named {', '.join(missing[:5])}" + (" …" if len(missing) > 5 else "")
                )
            pairs = [by_name[n] for n in self.names]
        infos = []
        for i, pair in enumerate(pairs):
            labels = read_labels(pair.labels)
            infos.append(
                {
                    "img_path": str(pair.image),
                    "img_id": i,
                    "name": pair.name,
                    "height": int(labels.shape[0]),
                    "width": int(labels.shape[1]),
                    "instances": instances_from_labels(labels, self.min_box_px),
                }
            )
        logger.info("%s: %d images, %d boxes", self.data_root, len(infos), sum(len(d["instances"]) for d in infos))
        return infos

    def _sample_info(self, index: int, image, labels) -> dict:
        image, labels = np.asarray(image), np.asarray(labels)
        if image.shape[:2] != labels.shape:
            raise ValueError(f"sample {index}: image {image.shape} and labels {labels.shape} differ in size")
        return {
            "img": image,
            "img_path": None,
            "img_id": index,
            "name": f"sample_{index:04d}",
            "height": int(labels.shape[0]),
            "width": int(labels.shape[1]),
            "instances": instances_from_labels(labels, self.min_box_px),
        }

    def filter_data(self) -> list[dict]:
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        empty_ok = not self.filter_cfg.get("filter_empty_gt", False)
        min_size = float(self.filter_cfg.get("min_size", 0))
        kept = [
            info
            for info in self.data_list
            if min(info["height"], info["width"]) >= min_size and (empty_ok or any(not inst["ignore_flag"] for inst in info["instances"]))
        ]
        if len(kept) < len(self.data_list):
            logger.info("filtered out %d of %d images (no usable box or too small)", len(self.data_list) - len(kept), len(self.data_list))
        return kept
