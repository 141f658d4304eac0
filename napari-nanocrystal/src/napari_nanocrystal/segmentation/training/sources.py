"""Training data: the ``labeled`` / ``weak`` / ``val`` arguments of :func:`~.loop.train` as file
entries and in-memory pairs (:func:`collect_sources`), and the one rule for which images are
held out for validation (:func:`resolve_data`, :func:`split_files`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from ..data import emps_split, find_labelled_pairs, find_weak_pairs

__all__ = ["TrainingData", "collect_sources", "held_out", "resolve_data", "split_files"]

logger = logging.getLogger(__name__)


def _is_pathlike(value) -> bool:
    return isinstance(value, (str, PathLike))


def _items(sources) -> list:
    """Split a data argument into single sources (a tuple of two is one pair; a list is many)."""
    if sources is None:
        return []
    if isinstance(sources, tuple) or _is_pathlike(sources):
        return [sources]
    if isinstance(sources, list):
        return list(sources)
    raise TypeError(
        "training data must be a folder, an image file, an (image, labels) tuple of paths or arrays, "
        f"or a list of those; got {type(sources).__name__}"
    )


@dataclass
class TrainingData:
    """Resolved sources: file-pair entries and in-memory items, per role."""

    train_files: list = field(default_factory=list)
    train_memory: list = field(default_factory=list)
    val_files: list = field(default_factory=list)
    val_memory: list = field(default_factory=list)
    weak_files: list = field(default_factory=list)
    weak_memory: list = field(default_factory=list)
    val_note: str = ""

    def describe(self) -> dict:
        return {
            "labelled_train": [e["image"] for e in self.train_files] + [f"<memory> {n}" for n, _, _ in self.train_memory],
            "labelled_val": [e["image"] for e in self.val_files] + [f"<memory> {n}" for n, _, _ in self.val_memory],
            "weak": [e["image"] for e in self.weak_files] + [f"<memory> {n}" for n, _, _ in self.weak_memory],
            "validation": self.val_note,
        }


def collect_sources(sources, kind: str):
    """(file entries with a 'group' for EMPS folders, memory items) of labelled or weak sources."""
    finder = find_labelled_pairs if kind == "labels" else find_weak_pairs
    files, memory = [], []
    for index, source in enumerate(_items(sources)):
        if isinstance(source, tuple):
            if len(source) != 2:
                raise ValueError(f"a {kind} pair must be (image, {kind}); got a tuple of {len(source)}")
            image, labels = source
            if _is_pathlike(image) and _is_pathlike(labels):
                for path in (Path(image), Path(labels)):
                    if not path.is_file():
                        raise FileNotFoundError(f"training file not found: {path}")
                files.append({"name": Path(image).stem, "image": str(image), kind: str(labels), "group": None})
            else:
                image, labels = np.asarray(image), np.asarray(labels)
                if image.shape[:2] != labels.shape:
                    raise ValueError(f"in-memory pair {index}: image {image.shape} and {kind} {labels.shape} differ in size")
                memory.append((f"image_{index}", image, labels))
        elif _is_pathlike(source):
            path = Path(source)
            group = path if path.is_dir() and (path / "train.csv").is_file() else None
            for pair in finder(path):
                files.append({"name": pair.name, "image": str(pair.image), kind: str(pair.labels), "group": group})
        else:
            raise TypeError(f"unsupported {kind} source {type(source).__name__}: use a folder, an image file or an (image, {kind}) tuple")
    return files, memory


def held_out(files: list, memory: list = ()) -> tuple[str | None, list[bool], list[bool]]:
    """The one rule for which labelled images are validation: ``(rule, file flags, memory flags)``.

    ``rule`` is ``"emps"`` when some entries come from EMPS folders (a ``train.csv``): their
    publication-grouped validation part (:func:`~napari_nanocrystal.segmentation.data.emps_split`)
    is held out, nothing else; else ``"every_5th"`` with at least 5 images: every 5th of the
    files and in-memory items sorted by name; else None (fewer than 5: nothing held out).
    """
    groups = {e["group"] for e in files if e["group"] is not None}
    emps = {(str(g), n) for g in groups for n in emps_split(g)[1]}
    if emps:
        return "emps", [e["group"] is not None and (str(e["group"]), e["name"]) in emps for e in files], [False] * len(memory)
    if len(files) + len(memory) < 5:
        return None, [False] * len(files), [False] * len(memory)
    ordered = sorted(
        [("f", e["name"], i) for i, e in enumerate(files)] + [("m", n, i) for i, (n, _, _) in enumerate(memory)],
        key=lambda t: (t[1], t[0], t[2]),
    )
    chosen = {(k, i) for k, _, i in ordered[::5]}
    return "every_5th", [("f", i) in chosen for i in range(len(files))], [("m", i) in chosen for i in range(len(memory))]


def resolve_data(labeled, weak=None, val=None) -> TrainingData:
    """Resolve the ``labeled``/``weak``/``val`` arguments of :func:`train` (see its docs).

    Raises ``ValueError`` without labelled data, ``FileNotFoundError`` for missing paths and
    ``ValueError`` for mismatched pairs.
    """
    train_files, train_memory = collect_sources(labeled, "labels")
    if not train_files and not train_memory:
        raise ValueError("no labelled training data: pass labeled= a folder, an image file or (image, labels) pairs")
    weak_files, weak_memory = collect_sources(weak, "weak")
    data = TrainingData(weak_files=weak_files, weak_memory=weak_memory)
    if val is False:
        data.train_files, data.train_memory, data.val_note = train_files, train_memory, "none"
    elif val is not None and val != "auto":
        data.val_files, data.val_memory = collect_sources(val, "labels")
        data.train_files, data.train_memory, data.val_note = train_files, train_memory, "given"
    else:
        rule, file_val, memory_val = held_out(train_files, train_memory)
        if rule is not None:
            data.val_note = {
                "emps": "EMPS publication-grouped split (metadata.csv DOIs)",
                "every_5th": "every 5th labelled image (sorted by name)",
            }[rule]
            data.val_files = [e for e, v in zip(train_files, file_val) if v]
            data.train_files = [e for e, v in zip(train_files, file_val) if not v]
            data.val_memory = [m for m, v in zip(train_memory, memory_val) if v]
            data.train_memory = [m for m, v in zip(train_memory, memory_val) if not v]
        else:
            logger.warning("fewer than 5 labelled images: validating on the training images (not held out)")
            data.val_note = "training images (fewer than 5 labelled images: nothing held out)"
            data.train_files, data.train_memory = train_files, train_memory
            data.val_files, data.val_memory = list(train_files), list(train_memory)
    for entries in (data.train_files, data.val_files, data.weak_files):
        for entry in entries:
            entry.pop("group", None)
    return data


def split_files(files: list, split: str) -> tuple[list, str]:
    """The ``split`` ('val', 'train' or 'all') of file entries, with the rule of :func:`resolve_data`."""
    if split not in ("val", "train", "all"):
        raise ValueError(f"split must be 'val', 'train' or 'all', not {split!r}")
    if split == "all":
        return files, "all images"
    rule, is_val, _ = held_out(files)
    if rule is None:
        return files, "all images (fewer than 5)"
    note = {"emps": "EMPS publication-grouped split", "every_5th": "every 5th image"}[rule]
    picked = [e for e, v in zip(files, is_val) if v == (split == "val")]
    return picked, f"{split} split ({note})"
