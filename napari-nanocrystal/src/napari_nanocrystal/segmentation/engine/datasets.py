"""Training datasets (mmengine ``DATASETS``): labelled instance maps and weak labels.

Both datasets read *pairs*: a list whose entries are file pairs
``dict(name=..., image=<path>, labels=<path>)`` (weak: ``weak=<path>``) or the key of an
in-memory source (:func:`register_memory_source`, for arrays such as napari layers), so that
dataset configs stay plain data.

Every image is converted once, when the dataset is initialised, to the network's input:
gray, percentile-normalised and rescaled so that the median particle diameter is
``target_diameter_px``.  Labelled images also get their flow targets
(:func:`~napari_nanocrystal.segmentation.targets.cached_targets`); file pairs are cached on
disk in ``cache_dir`` (keyed by file content) and read back per sample, in-memory pairs
are kept in memory.  Samples are the dicts described in :mod:`.transforms`.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from mmengine.dataset import BaseDataset
from nc_synthmodel.io import atomic_path
from scipy import ndimage

from ...label_files import UNCERTAIN
from .._image import DEFAULT_PERCENTILES, prepare_image, resize_image, resize_labels, scaled_shape
from ..data import read_image, read_weak_label
from ..targets import (
    area_weighted_diameter_px,
    cached_targets,
    flow_targets,
    pin_weak_edges,
    rescale_to_diameter,
    weak_label_instances,
)
from .registry import DATASETS

__all__ = [
    "LabelledFlowDataset",
    "WeakLabelDataset",
    "default_cache_dir",
    "register_memory_source",
    "release_memory_source",
    "WEAK_MAX_SCALE",
    "weak_diameter_px",
]

logger = logging.getLogger(__name__)

#: Shared by both datasets so that mmengine's ``ConcatDataset`` accepts mixing them.
METAINFO = {"classes": ("particle",)}

#: Bump when the weak-label cache changes meaning.
WEAK_CACHE_VERSION = 3  # 2: resize factor limited to WEAK_MAX_SCALE; 3: area-weighted diameter
#: Bump when the flow targets of weak labels (``targets.weak_label_instances``) change.
WEAK_FLOW_VERSION = 4  # 2: inner half of the band only; 3: one distance peak, not convexity; 4: edges pinned

_MEMORY: dict[str, list] = {}
#: Prepared samples of in-memory items: (memory key, index, dataset class, parameters) → sample.
_PREPARED: dict[tuple, dict] = {}
_MEMORY_PREFIX = "memory:"

#: ``progress(done, total)`` while images are prepared.
PrepareProgress = Callable[[int, int], object]


def register_memory_source(items: Sequence) -> str:
    """Keep in-memory training pairs for the datasets; returns the key to put in ``pairs``.

    ``items``: a sequence of ``(name, image, labels)`` (labelled: int instance map;
    weak: uint8 0/1/255 map) with image (H, W) or (H, W, C) of any dtype.  Release with
    :func:`release_memory_source` when training is done.
    """
    key = f"{_MEMORY_PREFIX}{uuid.uuid4().hex}"
    _MEMORY[key] = [(str(name), np.asarray(image), np.asarray(labels)) for name, image, labels in items]
    return key


def release_memory_source(key: str) -> None:
    """Forget an in-memory source and its prepared samples (no error if it is already gone)."""
    _MEMORY.pop(key, None)
    for prepared in [k for k in _PREPARED if k[0] == key]:
        del _PREPARED[prepared]


def default_cache_dir() -> Path:
    """Where targets are cached unless told otherwise: ``$NANOCRYSTAL_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/napari-nanocrystal`` (default ``~/.cache/napari-nanocrystal``)."""
    if os.environ.get("NANOCRYSTAL_CACHE_DIR"):
        return Path(os.environ["NANOCRYSTAL_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "napari-nanocrystal"


def _expand(pairs, label_key: str) -> list[dict]:
    """Entries of ``pairs`` as dicts ``name, image, <label_key>`` (paths or arrays)."""
    if isinstance(pairs, (str, dict)):
        pairs = [pairs]
    entries = []
    for entry in pairs:
        if isinstance(entry, str) and entry.startswith(_MEMORY_PREFIX):
            if entry not in _MEMORY:
                raise KeyError(f"in-memory source {entry} is not registered (released, or registered in another process)")
            for index, (name, image, labels) in enumerate(_MEMORY[entry]):
                entries.append({"name": name, "image": image, label_key: labels, "in_memory": True, "memory": (entry, index)})
        elif isinstance(entry, dict) and {"image", label_key} <= set(entry):
            image, labels = Path(entry["image"]), Path(entry[label_key])
            for path in (image, labels):
                if not path.is_file():
                    raise FileNotFoundError(f"training file not found: {path}")
            entries.append({"name": str(entry.get("name", image.stem)), "image": str(image), label_key: str(labels), "in_memory": False})
        else:
            raise TypeError(f"a pairs entry must be dict(name, image, {label_key}) or a memory key, not {entry!r}")
    return entries


def _spread(items: list, count: int | None) -> list:
    """``count`` items evenly spread over the list (all of them if None or enough)."""
    if count is None or count >= len(items):
        return items
    if count < 1:
        raise ValueError(f"max_images must be >= 1, got {count}")
    picks = np.unique(np.linspace(0, len(items) - 1, int(count)).round().astype(int))
    return [items[i] for i in picks]


class _SeedFlowDataset(BaseDataset, abc.ABC):
    """Common plumbing: entries → prepared samples, repeat, subsampling, shallow info copies."""

    METAINFO = METAINFO
    _label_key = "labels"

    def __init__(
        self,
        pairs,
        *,
        target_diameter_px: float | None = 30.0,
        percentiles=DEFAULT_PERCENTILES,
        cache_dir=None,
        repeat: int = 1,
        max_images: int | None = None,
        keep_in_memory: bool = False,
        pipeline=(),
        test_mode: bool = False,
        lazy_init: bool = False,
        progress: PrepareProgress | None = None,
    ):
        if target_diameter_px is not None and not float(target_diameter_px) > 0:
            raise ValueError(f"target_diameter_px must be positive or None, got {target_diameter_px}")
        if int(repeat) < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        self.pairs = pairs
        self.target_diameter_px = None if target_diameter_px is None else float(target_diameter_px)
        self.percentiles = tuple(float(p) for p in percentiles)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.repeat = int(repeat)
        self.max_images = max_images
        self.keep_in_memory = bool(keep_in_memory)
        self._progress = progress
        super().__init__(
            ann_file="",
            metainfo=None,
            data_root="",
            pipeline=list(pipeline),
            test_mode=test_mode,
            lazy_init=lazy_init,
            serialize_data=False,
        )

    def load_data_list(self) -> list[dict]:
        entries = _spread(_expand(self.pairs, self._label_key), self.max_images)
        if not entries:
            raise ValueError(f"{type(self).__name__}: no training pairs")
        infos = []
        for i, entry in enumerate(entries):
            if entry["in_memory"]:
                key = (*entry["memory"], type(self).__name__, self._params_key())
                if key not in _PREPARED:
                    _PREPARED[key] = self._prepare(entry)
                sample = _PREPARED[key]
            else:
                sample = self._prepare(entry)
            info = {"name": entry["name"], "kind": sample["kind"], "shape": tuple(sample["image"].shape), "scale": float(sample["scale"])}
            if entry["in_memory"] or self.keep_in_memory:
                info["sample"] = sample
            else:
                info["entry"] = entry
            infos.append(info)
            if self._progress is not None:
                self._progress(i + 1, len(entries))
            if (i + 1) % 25 == 0:
                logger.info("%s: prepared %d / %d images", type(self).__name__, i + 1, len(entries))
        return infos * self.repeat

    def _params_key(self) -> str:
        return json.dumps(
            [self.target_diameter_px, list(self.percentiles), getattr(self, "diameter_px", None), getattr(self, "flow_targets", False)]
        )

    def get_data_info(self, idx: int) -> dict:
        info = dict(self.data_list[idx])
        info["sample_idx"] = idx
        return info

    def prepare_data(self, idx):
        info = self.get_data_info(idx)
        sample = dict(info["sample"]) if "sample" in info else self._prepare(info["entry"])
        return self.pipeline(sample)

    @abc.abstractmethod
    def _prepare(self, entry: dict) -> dict:
        """The sample dict (see :mod:`.transforms`) of one entry of ``pairs``."""


@DATASETS.register_module()
class LabelledFlowDataset(_SeedFlowDataset):
    """Images with instance maps → samples with flow targets (``kind='labelled'``).

    Parameters
    ----------
    pairs : list
        ``dict(name, image, labels)`` file pairs and/or memory keys of ``(name, image,
        labels)`` items; labels int (H, W), 0 = background.
    target_diameter_px : float or None
        Rescale each image so that its median particle diameter is this (None: native size).
    percentiles : (float, float)
        Input normalisation, as the network's.
    cache_dir : path or None
        Disk cache of the targets of file pairs (default :func:`default_cache_dir`).
    repeat : int
        Each image appears this many times per epoch (crops are random).
    max_images : int or None
        Use only this many images, evenly spread over the sorted list (e.g. a quick validation).
    keep_in_memory : bool
        Keep the prepared arrays of file pairs in RAM (≈ 20 bytes per rescaled pixel) instead of
        reading them back from the cache for every sample.
    pipeline : list of dict
        Transforms (:mod:`.transforms`).
    progress : callable(done, total) or None
        Called after each image is prepared.
    """

    _label_key = "labels"

    def _prepare(self, entry: dict) -> dict:
        if entry["in_memory"]:
            image = prepare_image(entry["image"], self.percentiles)
            labels = np.asarray(entry["labels"])
            if image.shape != labels.shape:
                raise ValueError(f"{entry['name']}: image {image.shape} and labels {labels.shape} differ in size")
            scale = 1.0
            if self.target_diameter_px is not None:
                image, labels, scale = rescale_to_diameter(image, labels, self.target_diameter_px)
            result = {"image": image.astype(np.float32), "labels": labels.astype(np.int32), "targets": flow_targets(labels), "scale": scale}
        else:
            try:
                result = cached_targets(
                    entry["image"],
                    entry["labels"],
                    self.cache_dir,
                    target_diameter_px=self.target_diameter_px,
                    percentiles=self.percentiles,
                )
            except ValueError as error:
                raise ValueError(f"{entry['name']} ({entry['image']}, {entry['labels']}): {error}") from error
        return {
            "name": entry["name"],
            "kind": "labelled",
            "image": result["image"],
            "labels": result["labels"],
            "targets": result["targets"],
            "scale": float(result["scale"]),
        }


#: Weak images are resized by at most this factor (either way) when their particle diameter is
#: read off the weak label: a detector that finds fragments of particles gives tiny diameters,
#: which would blow an image up 20x (150 Mpx from a 700 x 500 crop) and swamp training with it.
WEAK_MAX_SCALE = 4.0


def _area_weighted_median_diameter(mask) -> float:
    """:func:`~..targets.area_weighted_diameter_px` of the connected components of a mask."""
    return area_weighted_diameter_px(ndimage.label(mask)[0])


def weak_diameter_px(weak) -> float:
    """Typical particle diameter (px) read off a weak label (0 / 1 / 255).

    The mean of the area-weighted median diameters of the certain-foreground components
    (particle cores) and of the foreground + uncertain components (cores with their boundary
    band): the band straddles the particle edge.  0.0 without foreground.
    """
    weak = np.asarray(weak)
    core = weak == 1
    if not core.any():
        return 0.0
    outer = core | (weak == UNCERTAIN)
    return 0.5 * (_area_weighted_median_diameter(core) + _area_weighted_median_diameter(outer))


def _digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@DATASETS.register_module()
class WeakLabelDataset(_SeedFlowDataset):
    """Images with weak labels (0 background, 1 particle, 255 uncertain) → ``kind='weak'`` samples.

    Parameters as :class:`LabelledFlowDataset`; ``pairs`` entries are ``dict(name, image,
    weak)`` file pairs (read with :func:`~napari_nanocrystal.segmentation.data.read_weak_label`)
    or memory keys of ``(name, image, weak)`` items.  Images are rescaled by
    ``target_diameter_px`` / :func:`weak_diameter_px` unless ``diameter_px`` gives the
    particle diameter of all of them.  File pairs are cached in ``cache_dir`` too.

    ``flow_targets=True``: the samples also get ``targets`` (3, H, W): the flows of the single
    particles the weak label outlines (:func:`~..targets.weak_label_instances`, after rescaling)
    and their mask in the seed channel, so that the network's flows learn the target domain too
    (:func:`~..losses.weak_loss` masks the flow term to those pixels), and the band around those
    particles is resolved in ``weak`` (:func:`~..targets.pin_weak_edges`) so that the seed learns
    the same edges.  Without it, weak images train the seed only (the paper's weak loss).
    """

    _label_key = "weak"

    def __init__(self, pairs, *, diameter_px: float | None = None, flow_targets: bool = False, **kwargs):
        if diameter_px is not None and not float(diameter_px) > 0:
            raise ValueError(f"diameter_px must be positive or None, got {diameter_px}")
        self.diameter_px = None if diameter_px is None else float(diameter_px)
        self.flow_targets = bool(flow_targets)
        super().__init__(pairs, **kwargs)

    def _compute(self, name: str, image, weak) -> dict:
        image = prepare_image(image, self.percentiles)
        weak = np.asarray(weak)
        if image.shape != weak.shape:
            raise ValueError(f"{name}: image {image.shape} and weak label {weak.shape} differ in size")
        scale = 1.0
        if self.target_diameter_px is not None:
            diameter = self.diameter_px or weak_diameter_px(weak)
            if diameter > 0:
                scale = self.target_diameter_px / diameter
                if self.diameter_px is None and not 1.0 / WEAK_MAX_SCALE <= scale <= WEAK_MAX_SCALE:
                    logger.warning(
                        "%s: the weak label's particles (%.1f px) would resize the image %.1fx; limited to %gx "
                        "(fragments of missed particles make such estimates)",
                        name,
                        diameter,
                        scale,
                        WEAK_MAX_SCALE,
                    )
                    scale = float(np.clip(scale, 1.0 / WEAK_MAX_SCALE, WEAK_MAX_SCALE))
            else:
                logger.warning("%s: weak label without foreground; used at native size", name)
        if scale != 1.0:
            shape = scaled_shape(image.shape, scale)
            image = resize_image(image, shape)
            weak = resize_labels(weak, shape)
        result = {"image": image.astype(np.float32), "weak": weak.astype(np.uint8), "scale": float(scale)}
        if self.flow_targets:
            instances = weak_label_instances(weak)
            result["targets"] = flow_targets(instances)
            result["weak"] = pin_weak_edges(weak, instances).astype(np.uint8)
        return result

    def _prepare(self, entry: dict) -> dict:
        if entry["in_memory"]:
            result = self._compute(entry["name"], entry["image"], entry["weak"])
        else:
            result = self._cached(entry)
        return {"name": entry["name"], "kind": "weak", **result}

    def _cached(self, entry: dict) -> dict:
        params = {
            "version": WEAK_CACHE_VERSION,
            "target_diameter_px": self.target_diameter_px,
            "diameter_px": self.diameter_px,
            "percentiles": list(self.percentiles),
            "weak_name": Path(entry["weak"]).name,  # the file name selects the format (pair or map)
        }
        if self.flow_targets:  # older cache keys stay valid for seed-only samples
            params["flow_targets"] = WEAK_FLOW_VERSION
        key = hashlib.sha256(
            "|".join([_digest(entry["image"]), _digest(entry["weak"]), json.dumps(params, sort_keys=True)]).encode()
        ).hexdigest()[:40]
        path = self.cache_dir / f"weak-{key}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    cached = {"image": data["image"], "weak": data["weak"], "scale": float(data["scale"])}
                    if self.flow_targets:
                        cached["targets"] = data["targets"]
                    return cached
            except (OSError, ValueError, KeyError) as error:
                logger.warning("ignoring unreadable cache entry %s (%s); recomputing", path, error)
        try:
            result = self._compute(entry["name"], read_image(entry["image"]), read_weak_label(entry["weak"]))
        except ValueError as error:
            raise ValueError(f"{entry['name']} ({entry['image']}, {entry['weak']}): {error}") from error
        with atomic_path(path) as tmp:
            np.savez_compressed(tmp, **{k: (np.float64(v) if k == "scale" else v) for k, v in result.items()})
        return result
