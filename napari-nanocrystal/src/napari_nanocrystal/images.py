"""The one micrograph reader: TIFF, PNG, JPEG, BMP, DM3 and DM4, with the pixel size stored in the file.

:func:`read_image` is what every entry point (``nanocrystal analyze / segment / weak-labels``,
the npe2 reader, the widgets through :mod:`napari_nanocrystal.analysis`) reads images with;
:data:`IMAGE_SUFFIXES` is the one list of file types they accept.  No torch, Qt or napari import.

Every problem is a :class:`ImageReadError` that names the file: unsupported type, empty,
corrupt or truncated file, an image above ``max_pixels`` (checked from the header, before
the pixels are decoded — Pillow's ``DecompressionBombError`` included), and files holding
several images.  A multi-page or multi-channel TIFF (ImageJ hyperstack, time series,
``CYX`` channels, a plain page stack) is read through its ``tifffile`` series and axes: a
stack needs ``plane=`` (CLI ``--plane``), it is never read as page 0 silently.  RGB(A)
samples (axis ``S``) are one image, not a stack.

Pixel sizes stored in the file are read by the calibration code of
:mod:`napari_nanocrystal.scalebar` (TIFF resolution tags, ImageJ and microscope metadata;
DigitalMicrograph axes; print/display resolutions such as 72 dpi are ignored).  PNG, JPEG and
BMP carry none.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS", "ImageReadError", "read_image", "stored_shape", "to_gray"]

logger = logging.getLogger(__name__)

#: File types read as images (case-insensitive), by every command and the napari reader.
IMAGE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".dm3", ".dm4")

#: Largest image read by default, in pixels (8192²).  Segmentation needs ~60 bytes per pixel
#: at its peak; larger micrographs should be cropped or binned.
MAX_PIXELS = 8192 * 8192

_TIFF = (".tif", ".tiff")
_DM = (".dm3", ".dm4")
_IMAGE_AXES = set("YXS")  # rows, columns, samples (RGB) — everything else is a plane axis


class ImageReadError(ValueError):
    """An image file cannot be read as one micrograph; the message names the file and the problem."""


# ----------------------------------------------------------------------------------------
# calibration: one implementation, in napari_nanocrystal.scalebar (imported when a file is read)


def _tiff_nm_per_px(tif, page) -> float | None:
    from .scalebar import _tiff_nm_per_px as from_tags

    return from_tags(tif, page)


def _dm_nm_per_px(axes: list[dict]) -> float | None:
    from .scalebar import _dm_nm_per_px as from_axes

    return from_axes(axes)


# ----------------------------------------------------------------------------------------
# checks


def _check_pixels(path: Path, rows: int, cols: int, max_pixels: int | None) -> None:
    n = int(rows) * int(cols)
    if max_pixels is not None and n > max_pixels:
        raise ImageReadError(
            f"{path}: image too large: {rows} × {cols} = {n:,} pixels exceeds the limit of {max_pixels:,} "
            "pixels (max_pixels); crop or bin it first"
        )


def _pick_plane(path: Path, n_planes: int, plane: int | None, what: str) -> int:
    """The plane to read of ``n_planes``: 0 when there is one, else ``plane`` (checked)."""
    if n_planes == 1 and plane in (None, 0):
        return 0
    if plane is None:
        raise ImageReadError(f"{path}: holds {n_planes} images ({what}); choose one with plane=K (CLI: --plane K), K = 0..{n_planes - 1}")
    if isinstance(plane, bool) or not isinstance(plane, (int, np.integer)) or not 0 <= plane < n_planes:
        raise ImageReadError(f"{path}: plane {plane!r} does not exist: the file holds {n_planes} image(s) ({what}), 0..{n_planes - 1}")
    return int(plane)


# ----------------------------------------------------------------------------------------
# formats


def _tiff_series(path: Path):
    import tifffile

    tif = tifffile.TiffFile(path)
    if not tif.series:
        tif.close()
        raise ValueError("no image in the TIFF file")  # read_image words it: corrupt, truncated or not a TIF
    return tif


def _axes(series) -> str:
    """The series' axes; a plain (rows, columns, 2–4) array written without metadata (tifffile:
    ``QYX``, i.e. rows × columns read as planes) is channels last: ``YXC``."""
    axes, shape = series.axes, tuple(series.shape)
    if axes == "QYX" and shape[2] <= 4 and min(shape[0], shape[1]) >= 16:
        return "YXC"
    return axes


def _plane_layout(series) -> tuple[tuple[int, ...], str, tuple[int, int]]:
    """(plane shape, plane axes, (rows, columns)) of a tifffile series."""
    axes, shape = _axes(series), tuple(series.shape)
    plane_dims = tuple(n for a, n in zip(axes, shape) if a not in _IMAGE_AXES)
    plane_axes = "".join(a for a in axes if a not in _IMAGE_AXES)
    rows = shape[axes.index("Y")] if "Y" in axes else shape[-2]
    cols = shape[axes.index("X")] if "X" in axes else shape[-1]
    return plane_dims, plane_axes, (rows, cols)


def _read_tiff(path: Path, plane: int | None, max_pixels: int | None) -> tuple[np.ndarray, float | None]:
    import tifffile

    with _tiff_series(path) as tif:
        series = tif.series[0]
        plane_dims, _, (rows, cols) = _plane_layout(series)
        _check_pixels(path, rows, cols, max_pixels)
        n_planes = int(np.prod(plane_dims)) if plane_dims else 1
        what = f"axes {_axes(series)}, shape {tuple(series.shape)}"
        index = _pick_plane(path, n_planes, plane, what)
        data = series.asarray() if n_planes == 1 else _tiff_plane(series, index, plane_dims)
        data = _samples_last(np.asarray(data), series)
        page = tif.pages[0]
        if page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None and data.ndim == 2:
            data = _apply_palette(data, np.asarray(page.colormap))
        if len(tif.series) > 1:
            logger.info("%s: %d image series; read the first (the others are thumbnails or previews)", path.name, len(tif.series))
        return data, _tiff_nm_per_px(tif, page)


def _samples_last(data: np.ndarray, series) -> np.ndarray:
    """(rows, columns) or (rows, columns, samples) from one plane of ``series`` (planar RGB too)."""
    kept = [(a, n) for a, n in zip(_axes(series), series.shape) if a in _IMAGE_AXES]
    data = data.reshape([n for _, n in kept])
    axes = [a for a, _ in kept]
    if "S" in axes and axes[-1] != "S":
        data = np.moveaxis(data, axes.index("S"), -1)
    return data


def _tiff_plane(series, index: int, plane_dims: tuple[int, ...]) -> np.ndarray:
    """One (rows, columns[, samples]) plane of a stacked series, by flat index over its plane axes."""
    axes = _axes(series)
    if len(series.pages) == int(np.prod(plane_dims)) and axes.endswith(("YX", "YXS")):
        return series.pages[index].asarray()
    data = series.asarray()
    moved = [i for i, a in enumerate(axes) if a not in _IMAGE_AXES]
    kept = [i for i, a in enumerate(axes) if a in _IMAGE_AXES]
    data = np.transpose(data, moved + kept).reshape((-1, *[data.shape[i] for i in kept]))
    return data[index]


def _apply_palette(indices: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """Pixels of a palette image: the indices themselves for a gray ramp (index ∝ gray level),
    else RGB from the (3, n) colormap, 8-bit when the colormap is 16-bit."""
    gray = np.array_equal(colormap[0], colormap[1]) and np.array_equal(colormap[1], colormap[2])
    ramp = np.arange(colormap.shape[1], dtype=np.float64)
    if gray and colormap[0, -1] > 0 and np.allclose(colormap[0] / colormap[0, -1], ramp / ramp[-1], atol=1e-3):
        return indices
    rgb = colormap[:, indices].transpose(1, 2, 0)
    return (rgb >> 8).astype(np.uint8) if colormap.max() > 255 else rgb.astype(np.uint8)


def _read_dm(path: Path, plane: int | None, max_pixels: int | None) -> tuple[np.ndarray, float | None]:
    try:
        from rsciio.digitalmicrograph import file_reader
    except ImportError:
        raise ImportError("reading DM3/DM4 files needs rosettasciio: pip install rosettasciio") from None
    signals = file_reader(str(path))
    images = [s for s in signals if np.asarray(s["data"]).ndim == 2]
    stacks = [s for s in signals if np.asarray(s["data"]).ndim == 3]
    if not images and len(stacks) == 1:  # an image stack: one plane of it
        data = np.asarray(stacks[0]["data"])
        index = _pick_plane(path, data.shape[0], plane, f"a DigitalMicrograph stack of shape {data.shape}")
        _check_pixels(path, *data.shape[1:], max_pixels)
        return data[index], _dm_nm_per_px(stacks[0]["axes"])
    if not images:
        shapes = ", ".join(str(np.shape(s["data"])) for s in signals) or "none"
        raise ImageReadError(f"{path}: no 2-D image in this DigitalMicrograph file (data shapes: {shapes})")
    index = _pick_plane(path, len(images), plane, "DigitalMicrograph images")
    data = np.asarray(images[index]["data"])
    _check_pixels(path, *data.shape[:2], max_pixels)
    return data, _dm_nm_per_px(images[index]["axes"])


def _read_pillow(path: Path, plane: int | None, max_pixels: int | None) -> np.ndarray:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as error:
            raise ImageReadError(f"{path}: image too large: Pillow refuses to decode it ({error})") from None
    with im:
        _check_pixels(path, im.size[1], im.size[0], max_pixels)
        n_frames = int(getattr(im, "n_frames", 1))
        index = _pick_plane(path, n_frames, plane, f"{n_frames} frames")
        if index:
            im.seek(index)
        if im.mode in ("P", "PA"):
            im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
        elif im.mode == "LA":
            im = im.convert("L")
        elif im.mode not in ("1", "L", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L", "F"):
            im = im.convert("RGB")
        return np.array(im)


# ----------------------------------------------------------------------------------------
# public


def stored_shape(path) -> tuple[int, ...] | None:
    """(rows, columns, ...) of the first image from the file header, without decoding pixels; None if unknown."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _TIFF:
        with _tiff_series(path) as tif:
            _, _, (rows, cols) = _plane_layout(tif.series[0])
            return rows, cols
    if suffix in _DM:
        return None
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            return im.size[1], im.size[0]


def _decode(path: Path, suffix: str, plane: int | None, max_pixels: int | None) -> tuple[np.ndarray, float | None]:
    if suffix in _TIFF:
        return _read_tiff(path, plane, max_pixels)
    if suffix in _DM:
        return _read_dm(path, plane, max_pixels)
    return _read_pillow(path, plane, max_pixels), None


def read_image(path, *, plane: int | None = None, max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray, float | None, str | None]:
    """Read one micrograph and the pixel size stored in its file.

    Parameters
    ----------
    path : str or Path
        A file with a suffix of :data:`IMAGE_SUFFIXES`.
    plane : int, optional
        Which image of a file that holds several (TIFF stack or hyperstack, flat index over
        its non-image axes in file order; DM stack; animated PNG).  Required for such files.
    max_pixels : int or None
        Refuse larger images, from the header before decoding (:data:`MAX_PIXELS`); None = no limit.

    Returns
    -------
    (array, nm_per_px or None, "metadata" or None)
        The pixels as stored — (rows, columns) gray or (rows, columns, 3|4) RGB(A), original
        dtype — the file's calibration and its source.

    Raises
    ------
    FileNotFoundError
        ``no such image file: <path>``.
    ImageReadError
        Naming the file: a folder, an unsupported type, an empty, corrupt or truncated file,
        an image above ``max_pixels``, a stack without ``plane`` or a plane that does not exist.
    ImportError
        DM3/DM4 without rosettasciio installed.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ImageReadError(f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; supported: {', '.join(IMAGE_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: cannot read the image: the file is empty (0 bytes)")
    try:
        data, nm_per_px = _decode(path, suffix, plane, max_pixels)
    except (ImageReadError, ImportError):
        raise
    except Exception as error:  # noqa: BLE001 - decoders raise anything on a bad file
        if type(error).__name__ == "DecompressionBombError":
            raise ImageReadError(f"{path}: image too large: {error}") from None
        raise ImageReadError(
            f"{path}: cannot read the image ({type(error).__name__}: {error}); "
            f"the file is corrupt, truncated or not a {suffix[1:].upper()} image"
        ) from None
    data = np.asarray(data)
    if data.ndim < 2 or data.size == 0:
        raise ImageReadError(f"{path}: not an image: decoded data of shape {data.shape}")
    return data, nm_per_px, ("metadata" if nm_per_px is not None else None)


# ----------------------------------------------------------------------------------------
# grey conversion (segmentation, weak labels)

# ITU-R BT.709 luma weights, as skimage.color.rgb2gray
_LUMA = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)


def to_gray(image) -> np.ndarray:
    """Convert any 2-D image to one float32 channel.

    Parameters
    ----------
    image : array_like
        (H, W) gray of any real or bool dtype, or (H, W, C) channel-last with C = 1 (gray),
        2 (gray + alpha), 3 (RGB) or 4 (RGBA).  Alpha is dropped; RGB becomes BT.709 luma.

    Returns
    -------
    np.ndarray
        float32 (H, W), values in the input's own units (no rescaling).
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"image must be a real-valued array, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[-1] in (1, 2):
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] in (3, 4):
        image = image[..., :3].astype(np.float32) @ _LUMA
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (rows, columns) gray or (rows, columns, 1|3|4) channel-last; got shape {image.shape}")
    if min(image.shape) < 1:
        raise ValueError(f"image is empty: shape {image.shape}")
    return image.astype(np.float32, copy=False)
