"""Reading micrographs with the pixel size their file stores (see :mod:`.metadata`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .metadata import FileCalibration, _dm_nm_per_px, _tiff_nm_per_px, dm_calibration, tiff_calibration

logger = logging.getLogger(__name__)



def _read_tiff(path: Path) -> tuple[np.ndarray, float | None]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        data = page.asarray()
        if page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None and data.ndim == 2:
            data = _apply_palette(data, np.asarray(page.colormap))
        return data, _tiff_nm_per_px(tif, page)


def _apply_palette(indices: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """Pixels of a palette image: the indices themselves for a gray ramp (index ∝ gray level),
    else RGB from the (3, n) colormap, 8-bit when the colormap is 16-bit."""
    gray = np.array_equal(colormap[0], colormap[1]) and np.array_equal(colormap[1], colormap[2])
    ramp = np.arange(colormap.shape[1], dtype=np.float64)
    if gray and colormap[0, -1] > 0 and np.allclose(colormap[0] / colormap[0, -1], ramp / ramp[-1], atol=1e-3):
        return indices
    rgb = colormap[:, indices].transpose(1, 2, 0)
    return (rgb >> 8).astype(np.uint8) if colormap.max() > 255 else rgb.astype(np.uint8)


def _read_dm(path: Path) -> tuple[np.ndarray, float | None]:
    try:
        from rsciio.digitalmicrograph import file_reader
    except ImportError:
        raise ImportError("reading DM3/DM4 files needs rosettasciio: pip install rosettasciio") from None
    signals = file_reader(str(path))
    images = [s for s in signals if np.asarray(s["data"]).ndim == 2]
    if not images:
        raise ValueError(f"{path.name}: no 2-D image in this DigitalMicrograph file")
    if len(images) > 1:
        logger.info("%s holds %d images; using the first", path.name, len(images))
    return np.asarray(images[0]["data"]), _dm_nm_per_px(images[0]["axes"])




def read_image(path) -> tuple[np.ndarray, float | None, str | None]:
    """Read a micrograph and its pixel size from the file, if it has one.

    TIFF: ImageJ ``unit`` + XResolution, else XResolution + ResolutionUnit (inch, cm,
    mm, µm); print/display resolutions such as 72 dpi are ignored (see
    :data:`PLAUSIBLE_NM_PER_PX`); palette images are expanded.  DM3/DM4: the x-axis
    scale and units from rosettasciio.  PNG, JPEG and other formats (Pillow) carry no
    calibration.

    Returns
    -------
    (array, nm_per_px or None, "metadata" or None)
        The pixels as stored (gray, or RGB/RGBA), the calibration and its source.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        data, nm_per_px = _read_tiff(path)
    elif suffix in (".dm3", ".dm4"):
        data, nm_per_px = _read_dm(path)
    else:
        from PIL import Image

        with Image.open(path) as im:
            if im.mode in ("P", "PA"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            data = np.asarray(im).copy()
        nm_per_px = None
    return data, nm_per_px, ("metadata" if nm_per_px is not None else None)


def read_file_calibration(path) -> FileCalibration | None:
    """The pixel size a micrograph file stores and where it was found, without reading its pixels
    (TIFF: tags only; DM3/DM4: the x-axis calibration).  None for other formats or none stored.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return tiff_calibration(tif, tif.pages[0])
    if suffix in (".dm3", ".dm4"):
        from rsciio.digitalmicrograph import file_reader

        images = [s for s in file_reader(str(path)) if np.asarray(s["data"]).ndim == 2]
        return dm_calibration(images[0]["axes"]) if images else None
    return None
