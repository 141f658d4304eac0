"""Scale bars: recogniser weights given to the EasyOCR reader (``new_ocr_reader(recognizer_weights=...)``)."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import ocr
from napari_nanocrystal.scalebar.reader import new_ocr_reader

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


@pytest.fixture(scope="module")
def stock_state():
    """The stock english_g2 recogniser's float weights."""
    model = new_ocr_reader(quantize=False, detector=False).recognizer
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def _line(text: str = "100 nm") -> np.ndarray:
    """Dark text on white, 40 px high, as ``ocr._recognise_line`` hands lines to EasyOCR."""
    from napari_nanocrystal.synthetic.scale_bar import _font
    from PIL import Image, ImageDraw

    font = _font("sans", 28)  # matplotlib's bundled DejaVu Sans: no system font needed
    image = Image.new("L", (160, 40), 255)
    ImageDraw.Draw(image).text((6, 4), text, font=font, fill=0)
    return np.asarray(image)


def _read(reader, image) -> str:
    found = reader.recognize(
        image, horizontal_list=[[0, image.shape[1], 0, image.shape[0]]], free_list=[], allowlist=ocr._OCR_ALLOWLIST, detail=1
    )
    return " ".join(str(t) for _, t, _ in found).strip()


def test_stock_weights_from_a_file_read_as_the_stock_reader(stock_state, tmp_path):
    """Loaded in float, then quantised as EasyOCR does: the stock weights given as a file read exactly as the stock
    reader (text and confidence), also with the feature extractor left out of the file."""
    from safetensors.torch import save_file

    path = tmp_path / "stock.safetensors"
    save_file({k: v for k, v in stock_state.items() if not k.startswith("FeatureExtraction.")}, str(path))
    stock = new_ocr_reader(detector=False)
    loaded = new_ocr_reader(recognizer_weights=path, detector=False)
    image = _line()
    found = [
        reader.recognize(image, horizontal_list=[[0, 160, 0, 40]], free_list=[], allowlist=ocr._OCR_ALLOWLIST) for reader in (stock, loaded)
    ]
    assert found[0] == found[1]
    assert "100" in found[0][0][1]
    assert type(loaded.recognizer.Prediction) is type(stock.recognizer.Prediction)  # quantised as the stock one


def test_recogniser_weights_change_the_reading(stock_state, tmp_path):
    """Weights whose output layer always says ``7`` make the reader read ``7``: the file is what is read with."""
    import torch
    from safetensors.torch import save_file

    reader = new_ocr_reader(detector=False)
    seven = reader.converter.character.index("7")
    state = dict(stock_state)
    state["Prediction.weight"] = torch.zeros_like(stock_state["Prediction.weight"])
    bias = torch.full_like(stock_state["Prediction.bias"], -10.0)
    bias[seven] = 10.0
    state["Prediction.bias"] = bias
    path = tmp_path / "seven.safetensors"
    save_file(state, str(path))
    image = _line()
    assert _read(reader, image) != "7"
    assert _read(new_ocr_reader(recognizer_weights=path, detector=False), image) == "7"


def test_weights_of_another_network_are_refused(stock_state, tmp_path):
    import torch
    from safetensors.torch import save_file

    unknown = tmp_path / "unknown.safetensors"
    save_file({**stock_state, "Other.weight": torch.zeros(3)}, str(unknown))
    with pytest.raises(ValueError, match="not english_g2 recogniser weights"):
        new_ocr_reader(recognizer_weights=unknown, detector=False)
    partial = tmp_path / "partial.safetensors"
    save_file({k: v for k, v in stock_state.items() if k != "Prediction.bias"}, str(partial))
    with pytest.raises(ValueError, match="missing"):
        new_ocr_reader(recognizer_weights=partial, detector=False)
