"""Helper of the scale-bar tests: a label found silently wrong once must now be read right or refused."""

from __future__ import annotations

from napari_nanocrystal.scalebar import ScaleBarError, read_scale_bar


def assert_read_right_or_refused(image, reader, value: float, unit: str, bar_px: float | None = None) -> None:
    """``image``'s scale bar is read as ``value`` ``unit`` (and, given ``bar_px``, its bar measured within
    ±1 px of it) or refused: a refusal asks the user to type the value; only a wrong number is a failure."""
    try:
        result = read_scale_bar(image, reader=reader)
    except ScaleBarError:
        return
    assert (result.value, result.unit) == (value, unit)
    if bar_px is not None:
        assert abs(result.bar_length_px - bar_px) <= 1.0, f"bar measured {result.bar_length_px:.2f} px for {bar_px}"
