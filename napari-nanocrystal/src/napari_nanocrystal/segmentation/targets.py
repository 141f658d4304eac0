"""Training targets for :class:`~napari_nanocrystal.segmentation.network.SeedFlowNet`.

An instance label image (int, (H, W), 0 = background, 1..N = particles) becomes a float32
target stack (3, H, W) = [flow_y, flow_x, seed]: cellpose's flows (``dynamics.labels_to_flows``:
heat diffusion from each particle's centre, gradient normalised to unit length; they point
towards the centre) and the seed map (1 on particles, 0 on background).  The losses multiply
the flows by :data:`~napari_nanocrystal.segmentation.network.FLOW_SCALE`.

Flows cost time on large particles (diffusion runs ~2 × the particle's extent iterations),
so images are first rescaled so that the median particle diameter is the network's training
diameter (:func:`rescale_to_diameter`), and :func:`cached_targets` stores the result on disk,
keyed by the content hash of the image and label files.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import cellpose
import numpy as np
import torch
from cellpose import dynamics, utils
from nc_synthmodel.io import atomic_path
from scipy import ndimage

from ._image import DEFAULT_PERCENTILES, prepare_image, resize_image, resize_labels, scaled_shape

__all__ = [
    "CACHE_VERSION",
    "area_weighted_diameter_px",
    "cached_targets",
    "flow_targets",
    "median_diameter_px",
    "pin_weak_edges",
    "rescale_to_diameter",
    "weak_label_instances",
]

logger = logging.getLogger(__name__)

#: Bump when the cached content changes meaning; old cache entries are then ignored.
CACHE_VERSION = 1

_CPU = torch.device("cpu")  # cellpose 3.1 labels_to_flows(device=None) crashes on CPU


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D label image (rows, columns); got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers (0 = background, 1..N = objects); got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative (0 = background)")
    return labels


def flow_targets(labels) -> np.ndarray:
    """Flow and seed targets of an instance label image.

    Parameters
    ----------
    labels : array_like of int, (H, W)
        0 = background, 1..N = objects (any numbering; touching objects must differ).

    Returns
    -------
    np.ndarray
        float32 (3, H, W): unit flow_y, unit flow_x (zero on background; each object's flow
        points to its centre) and seed (1.0 on objects, 0.0 on background).
    """
    labels = _check_labels(labels)
    if labels.max(initial=0) == 0:
        return np.zeros((3, *labels.shape), np.float32)
    # labels_to_flows renumbers its input in place: hand it a copy
    stack = dynamics.labels_to_flows([labels.astype(np.int32)], device=_CPU)[0]  # labels, fg, dy, dx
    return np.stack([stack[2], stack[3], (stack[0] > 0).astype(np.float32)]).astype(np.float32)


def median_diameter_px(labels) -> float:
    """Median object diameter (px) of a label image: that of the disc of median area
    (``cellpose.utils.diameters``); 0.0 without objects."""
    labels = _check_labels(labels)
    if labels.max(initial=0) == 0:
        return 0.0
    return float(utils.diameters(labels.astype(np.int32))[0])


def area_weighted_diameter_px(labels) -> float:
    """Diameter (px) of the disc as large as the object holding the median object pixel; 0.0
    without objects.

    Weighting objects by area keeps the estimate on the particles when a segmentation or a weak
    label also holds many small pieces (specks, fragments, the small dots beside large stars):
    counted one per object they would be the median.
    """
    labels = _check_labels(labels)
    areas = np.bincount(labels.ravel())[1:]
    areas = np.sort(areas[areas > 0])
    if not areas.size:
        return 0.0
    cumulative = np.cumsum(areas)
    median_area = areas[np.searchsorted(cumulative, 0.5 * cumulative[-1])]
    return float(2.0 * np.sqrt(median_area / np.pi))


def weak_label_instances(
    weak, *, band_px: float = 4.0, peak_depth: float = 0.25, max_elongation: float = 1.6, area_range=(0.25, 2.0)
) -> np.ndarray:
    """The single particles a weak label outlines, as an instance map (0 elsewhere).

    A weak label (0 background, 1 particle core, :data:`~napari_nanocrystal.label_files.UNCERTAIN`
    boundary band) says where particles are, not where one ends and the next begins.  Each
    core (connected component of 1) is grown by up to ``band_px`` px into the inner half of the
    uncertain band around it — the band pixels nearer the core than the background: the band
    straddles the particle's edge (growing through all of it taught the network particles ~30 %
    too large) — with :func:`skimage.segmentation.expand_labels` (a band shared by two cores is
    split between them, as the nearest core); an instance is kept when it looks like one particle:
    its distance transform has one peak after the h-maximum transform (h = ``peak_depth`` × its
    largest inscribed radius, at least 1 px; :func:`skimage.morphology.h_maxima` would count two
    equal peaks twice): touching particles whose cores merged keep a peak each, while a star,
    concave as it is, has one; major / minor axis at
    most ``max_elongation`` (two merged particles are long), area within ``area_range`` × the
    area-weighted median instance area (:func:`area_weighted_diameter_px`).  Merged clusters and
    fragments are left out (0), so that flow targets are computed only where they are right.

    Returns int32 (H, W), instances numbered 1..N.
    """
    from skimage.measure import regionprops
    from skimage.segmentation import expand_labels

    from ..label_files import UNCERTAIN

    weak = np.asarray(weak)
    if weak.ndim != 2:
        raise ValueError(f"weak label must be 2-D (rows, columns); got shape {weak.shape}")
    if not peak_depth > 0:
        raise ValueError(f"peak_depth must be positive, got {peak_depth}")
    low, high = (float(v) for v in area_range)
    if not 0 < low <= high:
        raise ValueError(f"area_range must be 0 < low <= high, got {area_range}")
    cores, n = ndimage.label(weak == 1)
    if n == 0:
        return np.zeros(weak.shape, np.int32)
    nearer_core = ndimage.distance_transform_edt(weak != 1) <= ndimage.distance_transform_edt(weak != 0)
    grown = expand_labels(cores, distance=float(band_px))
    grown[(grown != cores) & ~((weak == UNCERTAIN) & nearer_core)] = 0  # the inner half of the band only
    regions = regionprops(grown)
    median_area = np.pi * (area_weighted_diameter_px(grown) / 2.0) ** 2  # fragments do not set the scale
    keep = np.zeros(n + 1, bool)
    for r in regions:
        elongation = r.axis_major_length / max(r.axis_minor_length, 1.0)
        if elongation <= max_elongation and low * median_area <= r.area <= high * median_area:
            keep[r.label] = _distance_peaks(r.image, peak_depth) == 1
    lut = np.zeros(n + 1, np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[grown]


def pin_weak_edges(weak, instances, *, band_px: float = 4.0) -> np.ndarray:
    """A weak label whose uncertain band is resolved around the single particles it outlines.

    ``instances`` (from :func:`weak_label_instances`, same ``band_px``) become particle (1), and
    the rest of the band that their cores are nearest to (up to ``band_px`` px) background (0), so
    that the seed is taught the same edge as the flows; the band around everything else stays
    uncertain.  Without it, nothing on a weak image says where a particle ends (flows taught there
    drew particles ~20 % larger in area than the weak label's; with it too, as measured in
    BENCHMARKS.md: the seed term is outweighed, see ``SeedFlowModel(weak_flow_weight=...)``).
    """
    from skimage.segmentation import expand_labels

    from ..label_files import UNCERTAIN

    weak, instances = np.asarray(weak), np.asarray(instances)
    if weak.shape != instances.shape:
        raise ValueError(f"weak label {weak.shape} and instances {instances.shape} differ in shape")
    cores, n = ndimage.label(weak == 1)
    kept = np.zeros(n + 1, bool)
    kept[np.unique(cores[instances > 0])] = True
    kept[0] = False
    pinned = weak.copy()
    pinned[(weak == UNCERTAIN) & kept[expand_labels(cores, distance=float(band_px))]] = 0
    pinned[instances > 0] = 1
    return pinned


def _distance_peaks(mask: np.ndarray, depth: float) -> int:
    """Regional maxima of a mask's distance transform after its peaks lower than ``depth`` × its
    maximum (at least 1 px) are levelled (the h-maximum transform, by reconstruction)."""
    from skimage.morphology import local_maxima, reconstruction

    distance = ndimage.distance_transform_edt(np.pad(mask, 1))
    levelled = reconstruction(distance - max(1.0, depth * float(distance.max())), distance, method="dilation")
    return int(ndimage.label(local_maxima(levelled, connectivity=2) & (distance > 0), np.ones((3, 3)))[1])


def rescale_to_diameter(image, labels, target_diameter_px: float = 30.0):
    """Resize an image and its labels so that the median object diameter is ``target_diameter_px``.

    Parameters
    ----------
    image : array_like, (H, W) or (H, W, C)
        Any dtype; resized per channel (area averaging when shrinking, bilinear when enlarging)
        and returned as float32 in its own units.
    labels : array_like of int, (H, W)
        0 = background; resized by nearest neighbour, returned as int32 (objects that shrink
        below one pixel may disappear).
    target_diameter_px : float
        Wanted median diameter in px after resizing.

    Returns
    -------
    image, labels, scale
        The resized pair and the factor applied (new size / old size).  Without objects the
        pair is returned unchanged (as float32/int32) with scale 1.0.
    """
    labels = _check_labels(labels)
    image = np.asarray(image)
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    if target_diameter_px <= 0:
        raise ValueError(f"target_diameter_px must be positive, got {target_diameter_px}")
    diameter = median_diameter_px(labels)
    scale = float(target_diameter_px) / diameter if diameter > 0 else 1.0
    shape = scaled_shape(labels.shape, scale)
    image = image.astype(np.float32)
    if image.ndim == 3:
        image = np.moveaxis(resize_image(np.moveaxis(image, -1, 0), shape), 0, -1)
    else:
        image = resize_image(image, shape)
    return image, resize_labels(labels, shape), scale


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_targets(
    image_path,
    labels_path,
    cache_dir,
    *,
    target_diameter_px: float | None = 30.0,
    percentiles=DEFAULT_PERCENTILES,
) -> dict[str, np.ndarray | float]:
    """Network input and targets of one labelled image, computed once and cached on disk.

    The image is read, converted to gray and percentile-normalised (as at inference), the
    pair is rescaled to ``target_diameter_px`` (None: native size) and :func:`flow_targets`
    computed.  The result is stored in ``cache_dir`` as ``<key>.npz`` (read back with
    ``allow_pickle=False``), where the key hashes the two files' contents, the parameters,
    :data:`CACHE_VERSION` and the cellpose version: renaming a file keeps its entry, editing
    it makes a new one.

    Returns
    -------
    dict
        ``image`` float32 (h, w) network input; ``labels`` int32 (h, w); ``targets``
        float32 (3, h, w) [flow_y, flow_x, seed]; ``scale`` float (h / H).
    """
    from .data import read_image, read_labels

    image_path, labels_path, cache_dir = Path(image_path), Path(labels_path), Path(cache_dir)
    params = {
        "version": CACHE_VERSION,
        "cellpose": cellpose.version,
        "target_diameter_px": None if target_diameter_px is None else float(target_diameter_px),
        "percentiles": [float(p) for p in percentiles],
    }
    key = hashlib.sha256(
        "|".join([_file_digest(image_path), _file_digest(labels_path), json.dumps(params, sort_keys=True)]).encode()
    ).hexdigest()[:40]
    entry = cache_dir / f"{key}.npz"
    if entry.is_file():
        try:
            with np.load(entry, allow_pickle=False) as data:
                result = {name: data[name] for name in ("image", "labels", "targets")}
                result["scale"] = float(data["scale"])
            return result
        except (OSError, ValueError, KeyError) as error:
            logger.warning("ignoring unreadable cache entry %s (%s); recomputing", entry, error)

    image = prepare_image(read_image(image_path), percentiles)
    labels = read_labels(labels_path)
    scale = 1.0
    if target_diameter_px is not None:
        image, labels, scale = rescale_to_diameter(image, labels, target_diameter_px)
    result = {"image": image.astype(np.float32), "labels": labels, "targets": flow_targets(labels), "scale": scale}

    with atomic_path(entry) as tmp:
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in result.items()})
    logger.debug("cached targets of %s in %s", image_path.name, entry)
    return result
