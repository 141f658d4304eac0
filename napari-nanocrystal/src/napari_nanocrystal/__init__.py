"""napari-nanocrystal: TEM nanocrystal segmentation, measurement and recipe linking for napari.

The package top level is the headless API; it never imports Qt or napari.
"""

__version__ = "0.1.0"

__all__: list[str] = []
