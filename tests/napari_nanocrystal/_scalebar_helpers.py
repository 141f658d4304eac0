"""Helper of the scale-bar tests: a label found silently wrong once must now be read right or refused."""

from __future__ import annotations

from napari_nanocrystal.scalebar import ScaleBarError, read_scale_bar


def assert_read_right_or_refused(image, reader, value: float, unit: str) -> None:
    """``image``'s scale bar is read as ``value`` ``unit`` or refused: a refusal asks the user to type the
    value; only a wrong number is a failure."""
    try:
        result = read_scale_bar(image, reader=reader)
    except ScaleBarError:
        return
    assert (result.value, result.unit) == (value, unit)
