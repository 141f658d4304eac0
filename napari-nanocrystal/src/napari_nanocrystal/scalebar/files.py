"""The pixel size a micrograph file stores, with where it was found (see :mod:`.metadata`).

Images themselves are read by the one reader, :func:`napari_nanocrystal.images.read_image`
(re-exported here as ``read_image``), which takes its calibration from :mod:`.metadata` too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..images import read_image  # noqa: F401 - the one reader; public as napari_nanocrystal.scalebar.read_image
from .metadata import FileCalibration, dm_calibration, tiff_calibration

logger = logging.getLogger(__name__)


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
