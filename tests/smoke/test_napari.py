"""napari: a real viewer under Xvfb, and the plugin manifest validated by npe2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

# napari on PyQt5 cannot detect the desktop theme; harmless here
pytestmark = pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")


@pytest.mark.smoke
def test_viewer_adds_image_layer(make_napari_viewer):
    """An image added to a viewer becomes its only layer, holding the same data."""
    viewer = make_napari_viewer()
    data = np.random.default_rng(0).random((32, 48))

    layer = viewer.add_image(data, name="tem")

    assert len(viewer.layers) == 1
    assert viewer.layers["tem"] is layer
    assert layer.data.shape == (32, 48)
    np.testing.assert_array_equal(layer.data, data)


@pytest.mark.smoke
def test_plugin_manifest_is_valid():
    """`npe2 validate --imports napari-nanocrystal` accepts the installed plugin's manifest."""
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "--imports", "napari-nanocrystal"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid!" in result.stdout
