"""Synthetic bright-field TEM images of particles, with their instance maps, and training sets.

:func:`make_tem_image` draws particles of the shape classes of
:data:`~nc_synthmodel.contract.SHAPE_CLASSES` (masks from
:func:`napari_nanocrystal.shapes.render_shape_mask`), places them free or touching, and images
them the way a bright-field TEM does: dark particles on a bright, unevenly illuminated carbon
film (mass-thickness contrast), a Fresnel fringe at the particle edges, defocus blur and shot
noise at a given dose, then burns in a scale bar (:mod:`.scale_bar`).
:func:`random_tem_image` draws every style at random and :func:`write_training_set` writes
such images with their instance maps for ``nanocrystal train``.  Labels are int32,
0 = background.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from nc_synthmodel.contract import SHAPE_CLASSES
from scipy import ndimage as ndi

from .scale_bar import POSITIONS, ScaleBarTruth, _default_bar_style, _draw_scale_bar, _round_bar_values

logger = logging.getLogger(__name__)

_ROUNDED_PROFILE = {"sphere", "rod", "Irregular shape", "flower shape"}


@dataclass
class SyntheticTEM:
    """A synthetic TEM image and its truth.

    Attributes
    ----------
    image : (rows, columns) array of the requested dtype
    labels : (rows, columns) int32 instance map, 0 = background
    nm_per_px : float, the image calibration
    particles : DataFrame, one row per particle (see :func:`make_tem_image`)
    scale_bar : ScaleBarTruth or None
    """

    image: np.ndarray
    labels: np.ndarray
    nm_per_px: float
    particles: pd.DataFrame
    scale_bar: ScaleBarTruth | None = None


def _render_mask(shape_class: str, diameter_px: float, rotation_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Particle mask of ``shape_class`` (ECD ``diameter_px``) from :func:`~napari_nanocrystal.shapes.render_shape_mask`."""
    from ..shapes.render import render_shape_mask

    return np.asarray(render_shape_mask(shape_class, diameter_px, rotation_deg=rotation_deg, rng=rng), dtype=bool)


def _thickness(mask: np.ndarray, shape_class: str) -> np.ndarray:
    """Projected thickness in [0, 1]: a dome for round classes, a plateau for faceted ones."""
    d = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    r = max(float(d.max()), 1.0)
    if shape_class in _ROUNDED_PROFILE:
        return np.sqrt(np.clip(1.0 - (1.0 - d / r) ** 2, 0.0, 1.0)) * mask
    return np.clip(d / max(1.5, 0.25 * r), 0.0, 1.0)


def _check_shape(shape) -> tuple[int, int]:
    if len(shape) != 2 or min(shape) < 32:
        raise ValueError(f"shape must be (rows, columns), each ≥ 32; got {shape!r}")
    return int(shape[0]), int(shape[1])


def _place(masks, labels, occupied, rng, touching, max_tries=60):
    """Place each mask: touching → in contact with (or slightly overlapping) an earlier
    particle; else free with a gap of ≥ 2 px. Returns the top-left corner of each or None."""
    H, W = labels.shape
    corners: list[tuple[int, int] | None] = []
    centres: list[tuple[float, float, float, int]] = []  # (row, col, radius, label) of placed particles
    for i, mask in enumerate(masks):
        h, w = mask.shape
        radius = math.sqrt(mask.sum() / math.pi)
        grown1 = ndi.binary_dilation(np.pad(mask, 1))
        grown2 = ndi.binary_dilation(np.pad(mask, 2), iterations=2)
        placed = None
        for _ in range(max_tries):
            if touching[i] and centres:
                k = int(rng.integers(len(centres)))
                pr, pc, prad, partner = centres[k]
                angle = rng.uniform(0, 2 * math.pi)
                for dist in np.arange(prad + radius + 3, 0.5 * (prad + radius), -0.5):
                    top = int(round(pr + dist * math.sin(angle) - h / 2))
                    left = int(round(pc + dist * math.cos(angle) - w / 2))
                    if top < 1 or left < 1 or top + h > H - 1 or left + w > W - 1:
                        break
                    hit = labels[top - 1 : top + h + 1, left - 1 : left + w + 1][grown1]
                    if np.any((hit != 0) & (hit != partner)) or occupied[top : top + h, left : left + w][mask].any():
                        break
                    if np.any(hit == partner):
                        overlap = int(rng.integers(0, max(1, int(0.12 * min(prad, radius))) + 1))
                        top = int(round(top - overlap * math.sin(angle)))
                        left = int(round(left - overlap * math.cos(angle)))
                        sub = labels[top : top + h, left : left + w][mask]
                        if not np.any((sub != 0) & (sub != partner)):
                            placed = (top, left)
                        break
            else:
                top = int(rng.integers(1, max(2, H - h - 1)))
                left = int(rng.integers(1, max(2, W - w - 1)))
                if top + h > H - 1 or left + w > W - 1:
                    continue
                window = labels[max(0, top - 2) : top + h + 2, max(0, left - 2) : left + w + 2]
                if window.shape == grown2.shape and not window[grown2].any() and not occupied[top : top + h, left : left + w][mask].any():
                    placed = (top, left)
            if placed is not None:
                break
        corners.append(placed)
        if placed is not None:
            top, left = placed
            labels[top : top + h, left : left + w][mask] = i + 1
            rows, cols = np.nonzero(mask)
            centres.append((top + rows.mean(), left + cols.mean(), radius, i + 1))
    return corners


def make_tem_image(
    shape: tuple[int, int] = (512, 512),
    *,
    n_particles: int = 60,
    shape_classes: Sequence[str] = ("sphere",),
    diameter_nm: tuple[float, float] = (8.0, 1.0),
    nm_per_px: float = 0.5,
    touching_fraction: float = 0.2,
    contrast: tuple[float, float] = (0.4, 0.9),
    background: float = 0.15,
    film: float = 0.04,
    fringe: float = 0.3,
    blur_px: float = 0.8,
    dose: float | None = 300.0,
    scale_bar: bool = True,
    bar_position: str | None = None,
    bar_polarity: str | None = None,
    bar_panel: bool | None = None,
    dtype: str | np.dtype = "uint8",
    rng: np.random.Generator | int | None = None,
) -> SyntheticTEM:
    """A synthetic bright-field TEM image of nanocrystals with ground truth.

    Parameters
    ----------
    shape : (rows, columns)
    n_particles : int
        Particles requested; fewer are placed when the field is too crowded (logged).
    shape_classes : sequence of str
        Classes of :data:`SHAPE_CLASSES` drawn uniformly at random per particle.
    diameter_nm : (mean, sd)
        Normal distribution of the equivalent circle diameters, truncated at 30 % of the mean.
    nm_per_px : float
        Image calibration.
    touching_fraction : float in [0, 1]
        Fraction of particles put in contact with, or slightly overlapping, an earlier one
        (pairs, chains and clusters).
    contrast : (low, high)
        Range of the particles' mass-thickness absorption (transmission exp(-a) at the centre).
    background : float
        Amplitude of the uneven illumination (low-frequency field plus a gradient).
    film : float
        Relative amplitude of the fine amorphous-carbon texture.
    fringe : float
        Strength of the Fresnel fringe; > 0 (underfocus) gives a bright halo outside the
        edge and a dark rim inside, < 0 the opposite.
    blur_px : float
        Gaussian defocus blur (sigma, px).
    dose : float or None
        Electrons per pixel of the background for Poisson shot noise; None = noise-free.
    scale_bar : bool
        Burn in a scale bar with a "50 nm"-style label (DejaVu Sans): a 1-2-5 value whose bar is
        10–30 % of the width.
    bar_position : {"bottom-left", "bottom-right", "top-left", "top-right"} or None (random)
    bar_polarity : {"dark", "bright"} or None (random)
    bar_panel : bool or None (random)
        Draw the bar on a solid panel of the opposite colour, or directly over the image.
    dtype : {"uint8", "uint16", "float32"}
        Output type; float32 images are in [0, 1].
    rng : numpy Generator, int seed or None

    Returns
    -------
    SyntheticTEM
        ``particles`` has one row per placed particle: ``label``, ``shape_class``,
        ``ecd_nm`` (of the whole particle, occluded parts included), ``area_px``,
        ``centroid_y_px``, ``centroid_x_px``, ``rotation_deg`` and ``touching``.
    """
    H, W = _check_shape(shape)
    rng = np.random.default_rng(rng)
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f"dtype must be uint8, uint16 or float32, not {dtype}")
    unknown = [s for s in shape_classes if s not in SHAPE_CLASSES]
    if unknown or not len(shape_classes):
        raise ValueError(f"unknown shape class(es) {unknown}; expected some of {list(SHAPE_CLASSES)}")
    mean_nm, sd_nm = (float(v) for v in diameter_nm)
    if not (nm_per_px > 0 and mean_nm > 0 and sd_nm >= 0):
        raise ValueError(f"need nm_per_px > 0, diameter mean > 0 and sd ≥ 0; got {nm_per_px}, {diameter_nm}")
    if not 0.0 <= touching_fraction <= 1.0:
        raise ValueError(f"touching_fraction must be within [0, 1], not {touching_fraction}")
    if bar_polarity not in (None, "dark", "bright"):
        raise ValueError(f"bar_polarity must be 'dark', 'bright' or None, not {bar_polarity!r}")
    if bar_position is not None and bar_position not in POSITIONS:
        raise ValueError(f"bar_position must be one of {POSITIONS}, not {bar_position!r}")

    # scale bar first, so that no particle hides under it
    occupied = np.zeros((H, W), dtype=bool)
    bar_args = None
    if scale_bar:
        values = _round_bar_values(W, nm_per_px)
        value_nm = float(rng.choice(values))
        style = _default_bar_style((H, W), rng, position=bar_position, polarity=bar_polarity, panel=bar_panel)
        style["bar_length_px"] = int(round(value_nm / nm_per_px))
        value, unit = (value_nm / 1000.0, "µm") if value_nm >= 1000 else (value_nm, "nm")
        probe = np.zeros((H, W))
        truth = _draw_scale_bar(probe, value, unit, np.random.default_rng(0), **style)
        r0, c0, r1, c1 = _extent(probe != 0, truth)
        occupied[max(0, r0 - 3) : r1 + 3, max(0, c0 - 3) : c1 + 3] = True
        bar_args = (value, unit, style)

    # particles
    diam_px = np.clip(rng.normal(mean_nm, sd_nm, n_particles), 0.3 * mean_nm, None) / nm_per_px
    diam_px = np.maximum(diam_px, 3.0)
    classes = [str(c) for c in rng.choice(list(shape_classes), n_particles)]
    rotations = rng.uniform(0.0, 360.0, n_particles)
    masks = [_render_mask(c, d, r, rng) for c, d, r in zip(classes, diam_px, rotations)]
    touching = rng.random(n_particles) < touching_fraction
    labels = np.zeros((H, W), dtype=np.int32)
    corners = _place(masks, labels, occupied, rng, touching)

    thickness = np.zeros((H, W))
    union = np.zeros((H, W))
    rows_out = []
    next_label = 0
    relabel = np.zeros(n_particles + 1, dtype=np.int32)
    for i, (mask, corner) in enumerate(zip(masks, corners)):
        if corner is None:
            continue
        next_label += 1
        relabel[i + 1] = next_label
        top, left = corner
        h, w = mask.shape
        thickness[top : top + h, left : left + w] += rng.uniform(*contrast) * _thickness(mask, classes[i])
        union[top : top + h, left : left + w] = np.maximum(union[top : top + h, left : left + w], mask)
        rr, cc = np.nonzero(mask)
        rows_out.append(
            {
                "label": next_label,
                "shape_class": classes[i],
                "ecd_nm": math.sqrt(4 * len(rr) / math.pi) * nm_per_px,
                "area_px": float(len(rr)),
                "centroid_y_px": top + rr.mean(),
                "centroid_x_px": left + cc.mean(),
                "rotation_deg": float(rotations[i]),
                "touching": bool(touching[i]),
            }
        )
    if next_label < n_particles:
        logger.info("placed %d of %d particles (the field is crowded)", next_label, n_particles)
    labels = relabel[labels]
    particles = pd.DataFrame(
        rows_out, columns=["label", "shape_class", "ecd_nm", "area_px", "centroid_y_px", "centroid_x_px", "rotation_deg", "touching"]
    )

    # image formation: illumination × (transmission + Fresnel fringe) × film, blur, shot noise
    yy, xx = np.mgrid[0:H, 0:W] / max(H, W)
    coarse = rng.normal(size=(5, 5))  # low-frequency field: a smooth interpolation of a 5×5 grid
    field_lf = ndi.map_coordinates(coarse, [yy * 4.0 * max(H, W) / H, xx * 4.0 * max(H, W) / W], order=3, mode="nearest")
    field_lf /= np.abs(field_lf).max() + 1e-12
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (yy * math.sin(angle) + xx * math.cos(angle)) - 0.5
    illumination = 1.0 + background * (0.7 * field_lf + 0.6 * ramp)
    rim = union - ndi.gaussian_filter(union, 1.5)
    texture = ndi.gaussian_filter(rng.normal(size=(H, W)), 0.8)
    texture /= texture.std() + 1e-12
    intensity = illumination * (np.exp(-thickness) - fringe * rim) * (1.0 + film * texture)
    intensity = ndi.gaussian_filter(np.clip(intensity, 0.0, None), blur_px) if blur_px > 0 else np.clip(intensity, 0, None)
    if dose is not None:
        intensity = rng.poisson(intensity * dose) / float(dose)
    display = np.clip(0.62 * intensity, 0.0, 1.0)

    truth = None
    if bar_args is not None:
        value, unit, style = bar_args
        truth = _draw_scale_bar(display, value, unit, np.random.default_rng(0), **style)
    return SyntheticTEM(_to_dtype(display, dtype), labels, float(nm_per_px), particles, truth)


def _extent(drawn: np.ndarray, truth: ScaleBarTruth) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(drawn)
    if rows.size == 0:
        return truth.bar_box
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def _to_dtype(display: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.float32:
        return display.astype(np.float32)
    top = np.iinfo(dtype).max
    return np.round(display * top).astype(dtype)


def random_tem_image(shape: tuple[int, int] = (512, 512), *, rng: np.random.Generator | int | None = None) -> SyntheticTEM:
    """A :func:`make_tem_image` with every style drawn at random: training data for segmentation.

    One to three shape classes (spheres in half of the images), a median particle of 12–60 px
    at 0.1–2 nm/px, 10–45 % of the field covered, 0–50 % of the particles touching, varied
    contrast, illumination, Fresnel fringe, blur and dose, and a random scale bar.
    """
    rng = np.random.default_rng(rng)
    rows, cols = _check_shape(shape)
    if rng.random() < 0.5:
        classes = ("sphere",)
    else:
        classes = tuple(rng.choice(SHAPE_CLASSES, size=int(rng.integers(1, 4)), replace=False).tolist())
    diameter_px = float(np.exp(rng.uniform(math.log(12.0), math.log(60.0))))
    nm_per_px = float(np.exp(rng.uniform(math.log(0.1), math.log(2.0))))
    coverage = rng.uniform(0.10, 0.45)
    n_particles = max(3, int(round(coverage * rows * cols / (math.pi / 4.0 * diameter_px**2))))
    low = rng.uniform(0.25, 0.7)
    return make_tem_image(
        (rows, cols),
        n_particles=n_particles,
        shape_classes=classes,
        diameter_nm=(diameter_px * nm_per_px, rng.uniform(0.04, 0.15) * diameter_px * nm_per_px),
        nm_per_px=nm_per_px,
        touching_fraction=rng.uniform(0.0, 0.5),
        contrast=(low, min(1.5, low + rng.uniform(0.1, 0.6))),
        background=rng.uniform(0.03, 0.3),
        film=rng.uniform(0.0, 0.08),
        fringe=rng.uniform(0.0, 0.5),
        blur_px=rng.uniform(0.4, 1.6),
        dose=None if rng.random() < 0.15 else float(np.exp(rng.uniform(math.log(80.0), math.log(2000.0)))),
        rng=rng,
    )


def write_training_set(
    out_dir, n_images: int, *, shape: tuple[int, int] = (512, 512), seed: int = 0, overwrite: bool = False, progress=None
) -> list[tuple[Path, Path]]:
    """Write ``n_images`` :func:`random_tem_image` pairs for ``nanocrystal train --labeled``.

    Files: ``synthetic-<seed>-<i>_image.png`` (8-bit gray) and ``..._instances.tif`` (instance
    map, :func:`~napari_nanocrystal.label_files.label_tiff_bytes`), each written atomically; image ``i`` is drawn with seed ``(seed, i)``, so a
    set is reproducible and can be extended.  Existing files are an error unless ``overwrite``.
    ``progress(message, fraction)`` is called after each pair.  Returns the (image, instances) paths.
    """
    from nc_synthmodel.files import atomic_write_bytes

    from ..label_files import label_tiff_bytes, labelled_pair_paths, png_bytes

    n_images = int(n_images)
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    out = Path(out_dir)
    paths = [labelled_pair_paths(out, f"synthetic-{int(seed)}-{i:04d}") for i in range(n_images)]
    existing = [str(p) for pair in paths for p in pair if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{len(existing)} files exist already (e.g. {existing[0]}); pass overwrite=True / --overwrite to replace them"
        )
    out.mkdir(parents=True, exist_ok=True)
    for i, (image_path, labels_path) in enumerate(paths):
        sample = random_tem_image(shape, rng=np.random.default_rng([int(seed), i]))
        atomic_write_bytes(image_path, png_bytes(np.asarray(sample.image, dtype=np.uint8)))
        atomic_write_bytes(labels_path, label_tiff_bytes(sample.labels))
        if progress is not None:
            progress(f"{image_path.name}: {int(sample.labels.max())} particles", (i + 1) / n_images)
    return paths
