"""The package's flat public API resolves to the real implementations."""

import importlib
import inspect
import subprocess
import sys

import numpy as np
import pytest

import napari_nanocrystal


def test_every_public_name_resolves():
    api = {name: f"napari_nanocrystal.{module}" for module, names in napari_nanocrystal._SUBMOD_ATTRS.items() for name in names}
    assert napari_nanocrystal.__all__ == sorted(api) and set(api) <= set(dir(napari_nanocrystal))
    for name in napari_nanocrystal.__all__:
        value = getattr(napari_nanocrystal, name)
        # the very object its module defines (not a stub), a documented class or function of this package
        assert value is getattr(importlib.import_module(api[name]), name), name
        assert inspect.isclass(value) or inspect.isfunction(value), name
        assert value.__module__.startswith("napari_nanocrystal."), (name, value.__module__)
        assert inspect.getdoc(value), f"{name} has no docstring"
    from napari_nanocrystal.segmentation.inference import segment

    assert napari_nanocrystal.segment is segment
    with pytest.raises(AttributeError, match="attribute not_a_public_name"):
        napari_nanocrystal.not_a_public_name  # noqa: B018


def test_import_is_lazy():
    """``import napari_nanocrystal`` loads none of the heavy modules behind its names."""
    code = "import sys, napari_nanocrystal; print(sorted(m for m in ('torch', 'cellpose', 'sklearn', 'napari_nanocrystal.segmentation') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_public_name_works():
    sample = napari_nanocrystal.make_tem_image((96, 96), n_particles=4, diameter_nm=(8.0, 0.5), scale_bar=False, rng=1)
    assert sample.image.shape == sample.labels.shape == (96, 96) and sample.image.dtype == np.uint8
    classes = napari_nanocrystal.classify_shapes(sample.labels)
    assert sorted(classes) == sorted(int(v) for v in np.unique(sample.labels) if v) and len(classes) >= 3
