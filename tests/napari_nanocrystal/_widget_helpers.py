"""Helpers of the widget tests: small synthetic TEM images and a tiny trained segmentation model.

The model is a real :class:`~napari_nanocrystal.segmentation.network.SeedFlowNet` (8-16-32
channels) fitted in ~20 s to the test image with the package's own flow targets and loss, so
that the Segment widget is tested on a model file that finds particles.  It is trained once
and kept in pytest's cache folder (``.pytest_cache``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: Bump to retrain the cached model.
MODEL_VERSION = "tiny-seedflow-v2"


def tem_image(seed: int = 3, shape=(192, 192), dtype="uint8", n_particles: int = 14, **kwargs):
    """A small synthetic TEM image with a readable scale bar (bottom right, on a panel)."""
    from napari_nanocrystal.synthetic import make_tem_image

    options = dict(
        n_particles=n_particles,
        shape_classes=("sphere", "cube", "rod"),
        diameter_nm=(14.0, 1.5),
        nm_per_px=0.5,
        touching_fraction=0.0,
        bar_position="bottom-right",
        bar_polarity="dark",
        bar_panel=True,
        dtype=dtype,
        rng=seed,
    )
    options.update(kwargs)
    return make_tem_image(shape, **options)


#: The small test image of the widget tests: 160², 9 particles, 0.5 nm/px, a "20 nm" bar.
TEST_IMAGE = {"seed": 3, "shape": (160, 160), "n_particles": 10}


def train_tiny_model(folder: Path, iterations: int = 110) -> Path:
    """Train (or reuse) a tiny SeedFlowNet that segments :data:`TEST_IMAGE`; returns its weight file.

    It is fitted to that one image (flow targets of its ground truth, the package's loss):
    a model file whose output on the test image is known — all its particles — so the
    widget tests can check the layers built from it.  Not a general model.
    """
    import torch

    from napari_nanocrystal.segmentation._image import prepare_image
    from napari_nanocrystal.segmentation.losses import labelled_loss
    from napari_nanocrystal.segmentation.network import SeedFlowNet, load_model
    from napari_nanocrystal.segmentation.targets import flow_targets

    path = Path(folder) / f"{MODEL_VERSION}.safetensors"
    if path.is_file():
        try:
            load_model(path)
            return path
        except (ValueError, OSError):
            pass
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        sample = tem_image(**TEST_IMAGE)
        x = torch.from_numpy(prepare_image(sample.image))[None, None]
        y = torch.from_numpy(flow_targets(sample.labels))[None]
        net = SeedFlowNet((1, 8, 16, 32), diameter_px=30.0)
        optimiser = torch.optim.AdamW(net.parameters(), lr=5e-3)
        net.train()
        for _ in range(iterations):
            loss = labelled_loss(net(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        net.eval()
        tmp = path.with_name(f"{path.stem}-{os.getpid()}.safetensors")
        written = net.save(tmp)
        os.replace(written.with_suffix(".json"), path.with_suffix(".json"))
        os.replace(written, path)
    finally:
        torch.set_num_threads(threads)
    return path


def tiny_synthesis_model(folder: Path) -> Path:
    """A tiny nc-synthmodel SynthesisTransformer saved in ``folder`` (PbSe/CdSe toy recipes)."""
    from nc_synthmodel.contract import Chemical, Conditions, Outcome, Recipe
    from nc_synthmodel.descriptors import DescriptorTable
    from nc_synthmodel.models import SynthesisTransformer

    names = ["PbSe", "CdSe", "PbO", "CdO", "Se", "OA", "ODE"]
    roles = {"PbO": "precursor", "CdO": "precursor", "Se": "precursor", "OA": "ligand", "ODE": "solvent"}
    table = DescriptorTable(names, np.random.default_rng(0).normal(size=(len(names), 4)).astype(np.float32))
    recipes = []
    for i in range(24):
        lead = i % 2 == 0
        temp = 120.0 + 5.0 * i
        chemicals = [("PbO" if lead else "CdO", 1.0), ("Se", 1.0), ("OA", 2.0), ("ODE", 10.0)]
        recipes.append(
            Recipe(
                id=f"toy{i}",
                product=Chemical(name="PbSe" if lead else "CdSe", role="product"),
                chemicals=[Chemical(name=n, amount_mmol=a, role=roles[n]) for n, a in chemicals],
                conditions=Conditions(injection_temp_c=temp, reaction_temp_c=temp, time_min=5.0),
                outcome=Outcome(size_nm=2.0 + temp / 25.0, n_particles=400, shape="cube" if lead else "sphere"),
            )
        )
    model = SynthesisTransformer(
        table,
        d_model=16,
        n_layers=1,
        n_heads=2,
        dim_feedforward=32,
        dropout=0.0,
        batch_size=16,
        n_threads=1,
        augment=False,
        pretrain_epochs=0,
        finetune_epochs=3,
        validation_fraction=0.0,
    ).fit(recipes)
    return model.save(Path(folder))


# ----------------------------------------------------------------------------------------
# fixtures (imported by the widget test modules)


@pytest.fixture(autouse=True)
def sync_tasks(monkeypatch):
    """Run widget tasks synchronously (the widgets' environment flag) with one torch thread."""
    monkeypatch.setenv("NAPARI_NANOCRYSTAL_SYNC", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def notes():
    """``notes(severity="error")``: messages of the napari notifications shown during the test."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)

    def messages(severity: str = "error") -> list[str]:
        return [str(r.message) for r in notification_manager.records[start:] if getattr(r.severity, "value", r.severity) == severity]

    return messages


@pytest.fixture
def answer(monkeypatch):
    """``answer(True|False)``: what the widgets' yes/no questions get; records the questions."""
    from napari_nanocrystal._widgets import _common

    asked: list[str] = []
    state = {"reply": False}

    def confirm(_parent, question, title="napari-nanocrystal"):
        asked.append(question)
        return state["reply"]

    for module in ("_common", "calibrate", "measure", "weak_labels"):
        import importlib

        target = importlib.import_module(f"napari_nanocrystal._widgets.{module}")
        if hasattr(target, "confirm"):
            monkeypatch.setattr(target, "confirm", confirm)
    monkeypatch.setattr(_common, "confirm", confirm)

    def set_reply(reply: bool) -> list[str]:
        state["reply"] = reply
        return asked

    return set_reply


@pytest.fixture(scope="session")
def tiny_model(pytestconfig) -> Path:
    """Weight file of the tiny SeedFlowNet fitted to :data:`TEST_IMAGE` (cached across runs)."""
    return train_tiny_model(pytestconfig.cache.mkdir("napari-nanocrystal-widgets"))


@pytest.fixture(scope="session")
def synthesis_model(tmp_path_factory) -> Path:
    """Folder of a tiny saved nc-synthmodel model."""
    return tiny_synthesis_model(tmp_path_factory.mktemp("synthesis-model"))
