"""EMPS dataset access, image/label readers and weak labels.

EMPS (Yildirim & Cole, J. Chem. Inf. Model. 2021; MIT licence), training split as laid out in
the shared datasets folder: ``emps-train/images/<name>.png`` (RGB figure crops),
``emps-train/segmaps/<name>.png`` (16-bit instance maps, 0 = background), ``train.csv`` (one
name per line, no header).  The datasets are read in place, never copied.

Folders of training pairs (:func:`find_labelled_pairs`, :func:`find_weak_pairs`) follow one
of two naming conventions:

* **subfolders** (the EMPS layout): ``<root>/images/<name>.<ext>`` with the instance maps in
  ``<root>/segmaps/`` (or ``labels/``, ``masks/``, ``instances/``) and the weak labels in
  ``<root>/weak/``, each ``<name>.<ext>``; a ``train.csv`` listing, when present, selects
  the names;
* **flat**: ``<root>/<name>_image.<ext>`` beside ``<name>_instances.<ext>`` (or
  ``_labels``, ``_masks``) for instance maps, and beside ``<name>_weak.<ext>`` (one map,
  0 = background, 1 = particle, 255 = uncertain) or ``<name>_weaklabel_pair.<ext>`` (the
  paper's side-by-side format, see :func:`weak_label_from_pair`) for weak labels.

``<ext>`` is any of :data:`IMAGE_SUFFIXES`.  A single image file stands for itself plus its
partner found by the flat convention.

Fixed validation split (:func:`emps_split`), grouped by publication: images cropped from one
paper look alike, so a split that puts one paper on both sides overstates accuracy on new
data.  With ``metadata.csv`` (``filename,doi,…``) beside ``train.csv``, the publications are
ordered by the SHA-1 of their DOI and the first 1/:data:`VALIDATION_EVERY` of them (rounded;
49 of EMPS-train's 247 publications, 79 of its 366 images) are validation, every image of
each; names without a DOI count as their own publication.
Without ``metadata.csv`` every name is its own publication.  The split depends only on the
names and DOIs, so it is the same on every machine and in every run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..images import IMAGE_SUFFIXES  # the one suffix list (images.py is a torch-free leaf)
from ..label_files import IMAGE_ENDING, LABEL_SUFFIXES, WEAK_SUFFIXES

__all__ = [
    "IMAGE_SUFFIXES",
    "LABEL_SUFFIXES",
    "VALIDATION_EVERY",
    "WEAK_SUFFIXES",
    "PairFiles",
    "emps_names",
    "emps_publications",
    "emps_split",
    "find_labelled_pairs",
    "find_weak_pairs",
    "iter_emps",
    "load_emps_pair",
    "read_image",
    "read_labels",
    "read_weak_label",
    "weak_label_from_pair",
]

logger = logging.getLogger(__name__)

#: 1 / VALIDATION_EVERY of the publications (DOIs) are validation (see :func:`emps_split`).
VALIDATION_EVERY = 5


def read_image(path) -> np.ndarray:
    """Read an image file as stored: (H, W) gray or (H, W, 3|4) RGB(A), original dtype.

    The one reader (:func:`napari_nanocrystal.images.read_image`: TIFF, PNG, JPEG, BMP,
    DM3/DM4; palette images expanded), without its pixel limit (training images are the
    user's own files) and without the calibration.
    """
    from ..images import read_image as read_micrograph_file

    return read_micrograph_file(path, max_pixels=None)[0]


def read_labels(path) -> np.ndarray:
    """Read an instance label image (0 = background) as int32 (H, W)."""
    labels = read_image(path)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: not a single-channel integer label image (shape {labels.shape}, dtype {labels.dtype})")
    return labels.astype(np.int32)


def emps_names(root) -> list[str]:
    """Sorted image names (without extension) listed in ``<root>/train.csv``."""
    listing = Path(root) / "train.csv"
    if not listing.is_file():
        raise FileNotFoundError(f"EMPS listing not found: {listing} (root should be the emps-train folder)")
    names = {line.strip().split(",")[0] for line in listing.read_text(encoding="utf-8").splitlines()}
    names.discard("")
    names.discard("name")  # tolerate a header line
    return sorted(names)


def emps_publications(root) -> dict[str, str]:
    """{image name: publication} of an EMPS folder: the DOI from ``metadata.csv``, else the name."""
    import csv

    names = emps_names(root)
    dois: dict[str, str] = {}
    metadata = Path(root) / "metadata.csv"
    if metadata.is_file():
        with metadata.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                name = Path(row.get("filename") or "").stem
                if name and (row.get("doi") or "").strip():
                    dois[name] = row["doi"].strip().lower()
    return {name: dois.get(name, name) for name in names}


def emps_split(root) -> tuple[list[str], list[str]]:
    """Fixed, publication-grouped train/validation split of EMPS-train: (train_names, val_names).

    Both sorted; no publication is on both sides (see the module docstring).
    """
    import hashlib

    publications = emps_publications(root)
    ordered = sorted(set(publications.values()), key=lambda pub: hashlib.sha1(pub.encode("utf-8")).hexdigest())
    held_out = set(ordered[: round(len(ordered) / VALIDATION_EVERY)])
    val = [n for n, pub in publications.items() if pub in held_out]
    return [n for n, pub in publications.items() if pub not in held_out], val


def load_emps_pair(root, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One EMPS example: (image uint8 (H, W, 3) RGB, labels int32 (H, W), 0 = background)."""
    root = Path(root)
    image = read_image(root / "images" / f"{name}.png")
    labels = read_labels(root / "segmaps" / f"{name}.png")
    if image.shape[:2] != labels.shape:
        raise ValueError(f"EMPS {name}: image {image.shape} and labels {labels.shape} differ in size")
    return image, labels


def iter_emps(root, names: Sequence[str] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (image, labels) pairs of ``names`` (default: all of train.csv, sorted)."""
    for name in emps_names(root) if names is None else names:
        yield load_emps_pair(root, name)


def weak_label_from_pair(pair) -> np.ndarray:
    """Weak label (0 / 1 / 255) from the paper's side-by-side weak-label image.

    Parameters
    ----------
    pair : array_like, (H, 2·W) gray
        Left half: the uncertain boundary band (non-zero = uncertain); right half: the
        foreground (non-zero = particle), as in ``weak_1-0001_weaklabel_pair.png``.

    Returns
    -------
    np.ndarray
        uint8 (H, W): 0 = background, 1 = foreground, 255 = uncertain (excluded from the loss).
    """
    pair = np.asarray(pair)
    if pair.ndim == 3:
        pair = pair[..., 0]
    if pair.ndim != 2 or pair.shape[1] % 2:
        raise ValueError(f"weak-label pair must be (H, 2*W) gray; got shape {pair.shape}")
    width = pair.shape[1] // 2
    uncertain, foreground = pair[:, :width] > 0, pair[:, width:] > 0
    weak = foreground.astype(np.uint8)
    weak[uncertain] = 255
    return weak


# Name endings in flat folders (LABEL_SUFFIXES, WEAK_SUFFIXES: one 0/1/255 map, or the paper's
# side-by-side pair) are the layout of napari_nanocrystal.label_files; subfolder names of the EMPS layout:
_LABEL_DIRS = ("segmaps", "labels", "masks", "instances")
_WEAK_DIRS = ("weak",)
_IMAGE_ENDING = IMAGE_ENDING


class PairFiles(NamedTuple):
    """An image file and its label file (instance map or weak label); ``name`` identifies it."""

    name: str
    image: Path
    labels: Path


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _by_stem(files) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in files:
        if path.stem in found:
            raise ValueError(f"two files for one name: {found[path.stem].name} and {path.name} in {path.parent}")
        found[path.stem] = path
    return found


def _list_some(names, limit: int = 5) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f" … ({len(names)} in all)" if len(names) > limit else "")


def _partner(image: Path, suffixes: Sequence[str]) -> Path | None:
    base = image.stem[: -len(_IMAGE_ENDING)] if image.stem.endswith(_IMAGE_ENDING) else image.stem
    for suffix in suffixes:
        for path in _image_files(image.parent):
            if path.stem == base + suffix:
                return path
    return None


def _find_pairs(path, suffixes: Sequence[str], subdirs: Sequence[str], what: str) -> list[PairFiles]:
    path = Path(path)
    if path.is_file():
        partner = _partner(path, suffixes)
        if partner is None:
            base = path.stem[: -len(_IMAGE_ENDING)] if path.stem.endswith(_IMAGE_ENDING) else path.stem
            raise FileNotFoundError(f"no {what} for {path}: expected {base}{suffixes[0]}.png (or {', '.join(suffixes[1:])}) beside it")
        name = path.stem[: -len(_IMAGE_ENDING)] if path.stem.endswith(_IMAGE_ENDING) else path.stem
        return [PairFiles(name, path, partner)]
    if not path.is_dir():
        raise FileNotFoundError(f"{what} data not found: {path} is neither a folder nor an image file")

    if (path / "images").is_dir():
        label_dir = next((path / d for d in subdirs if (path / d).is_dir()), None)
        if label_dir is None:
            raise FileNotFoundError(f"{path} has images/ but no {what} folder ({', '.join(d + '/' for d in subdirs)})")
        images, labels = _by_stem(_image_files(path / "images")), _by_stem(_image_files(label_dir))
        if (path / "train.csv").is_file():
            names = emps_names(path)
            missing = [n for n in names if n not in images or n not in labels]
            if missing:
                raise ValueError(f"{path}/train.csv lists names without an image or {what} file: {_list_some(missing)}")
        else:
            unpaired = set(images) ^ set(labels)
            if unpaired:
                raise ValueError(
                    f"mismatched pairs in {path}: these names are in only one of images/ and {label_dir.name}/: {_list_some(unpaired)}"
                )
            names = sorted(images)
        pairs = [PairFiles(n, images[n], labels[n]) for n in names]
    else:
        files = _by_stem(_image_files(path))
        images = {s[: -len(_IMAGE_ENDING)]: p for s, p in files.items() if s.endswith(_IMAGE_ENDING)}
        labels: dict[str, Path] = {}
        for suffix in suffixes:
            for stem, p in files.items():
                if stem.endswith(suffix) and stem[: -len(suffix)] not in labels:
                    labels[stem[: -len(suffix)]] = p
        unpaired = set(images) ^ set(labels)
        if unpaired:
            raise ValueError(
                f"mismatched pairs in {path}: each <name>_image file needs a <name>{suffixes[0]} file "
                f"(or {', '.join(suffixes[1:])}) and vice versa; unpaired: {_list_some(unpaired)}"
            )
        pairs = [PairFiles(n, images[n], labels[n]) for n in sorted(images)]
    if not pairs:
        raise ValueError(
            f"no {what} pairs in {path}: expected images/ + {subdirs[0]}/ subfolders or <name>_image.png + <name>{suffixes[0]}.png files"
        )
    return pairs


def find_labelled_pairs(path) -> list[PairFiles]:
    """Image + instance-map files of a folder (or of one image file), sorted by name.

    See the module docstring for the naming conventions.  Raises ``FileNotFoundError`` for a
    missing folder/partner and ``ValueError`` for mismatched pairs (an image without an
    instance map or the reverse), naming the offending files.
    """
    return _find_pairs(path, LABEL_SUFFIXES, _LABEL_DIRS, "instance map")


def find_weak_pairs(path) -> list[PairFiles]:
    """Image + weak-label files of a folder (or of one image file), sorted by name.

    Weak labels are ``weak/<name>.<ext>`` (subfolder layout) or ``<name>_weak.<ext>`` /
    ``<name>_weaklabel_pair.<ext>`` (flat); read them with :func:`read_weak_label`.
    """
    return _find_pairs(path, WEAK_SUFFIXES, _WEAK_DIRS, "weak label")


def read_weak_label(path) -> np.ndarray:
    """Read a weak label file as uint8 (H, W): 0 = background, 1 = particle, 255 = uncertain.

    Files named ``*_weaklabel_pair.*`` are the paper's side-by-side format
    (:func:`weak_label_from_pair`); any other file must hold only the values 0, 1 and 255.
    """
    path = Path(path)
    data = read_image(path)
    if path.stem.endswith("_weaklabel_pair"):
        return weak_label_from_pair(data)
    if data.ndim == 3:
        data = data[..., 0]
    if data.ndim != 2:
        raise ValueError(f"{path}: a weak label must be a single-channel image; got shape {data.shape}")
    values = np.unique(data)
    if not set(values.tolist()) <= {0, 1, 255}:
        raise ValueError(f"{path}: weak labels hold only 0 (background), 1 (particle) and 255 (uncertain); found {values[:10].tolist()}")
    return data.astype(np.uint8)
