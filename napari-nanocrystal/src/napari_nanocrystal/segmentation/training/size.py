"""The size model of a trained network (:mod:`~napari_nanocrystal.segmentation.size_model`), fitted on its training images."""

from __future__ import annotations

from ..data import read_image, read_weak_label
from .sources import TrainingData, resolve_data

__all__ = ["add_size_model"]


def _size_samples(data: TrainingData, weak_repeat: int):
    """(image, median diameter px) of the training images: labelled by their instance maps,
    weak ones (repeated ``weak_repeat`` times: few but the target domain) by their weak labels."""
    from ..data import read_labels
    from ..engine.datasets import weak_diameter_px
    from ..targets import median_diameter_px

    for entry in data.train_files:
        yield read_image(entry["image"]), median_diameter_px(read_labels(entry["labels"]))
    for _name, image, labels in data.train_memory:
        yield image, median_diameter_px(labels)
    weak = [(read_image(e["image"]), read_weak_label(e["weak"])) for e in data.weak_files]
    weak += [(image, labels) for _name, image, labels in data.weak_memory]
    for _ in range(int(weak_repeat)):
        for image, labels in weak:
            yield image, weak_diameter_px(labels)


def add_size_model(model, labeled, weak=None, *, out=None, val=None, zooms_per_image: int = 3, weak_repeat: int = 4, seed: int = 0) -> dict:
    """Fit the size model (:mod:`..size_model`) of a trained network and store it in its config.

    ``labeled`` / ``weak`` / ``val`` as for :func:`train` (the validation images are left
    out, by the same rule).  ``model``: a weight file (rewritten in place unless ``out`` names
    a new one) or a :class:`~.network.SeedFlowNet` (its config is updated).  Returns the fit
    info (samples, median |log error| on them).
    """
    from ..inference import bfloat16_supported
    from ..network import SeedFlowNet, load_model
    from ..size_model import fit_size_model

    net = model if isinstance(model, SeedFlowNet) else load_model(model)
    data = resolve_data(labeled, weak, val)
    size_model, info = fit_size_model(
        net, _size_samples(data, weak_repeat), zooms_per_image=zooms_per_image, seed=seed, bfloat16=bfloat16_supported()
    )
    net.config["size_model"] = size_model.to_dict()
    if not isinstance(model, SeedFlowNet) or out is not None:
        net.save(out if out is not None else model)
    return info
