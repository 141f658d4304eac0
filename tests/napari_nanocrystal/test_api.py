"""The package's flat public API resolves to the real implementations."""

import napari_nanocrystal


def test_every_public_name_resolves():
    for name in napari_nanocrystal.__all__:
        assert callable(getattr(napari_nanocrystal, name)), name
    from napari_nanocrystal.segmentation.inference import segment

    assert napari_nanocrystal.segment is segment
