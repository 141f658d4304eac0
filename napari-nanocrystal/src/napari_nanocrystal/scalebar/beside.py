"""Label ink right beside a read line: a glyph OCR missed ("5 um" read from "0.5 µm").

Split from :mod:`.glyphs` (at the ~500-line limit).  The ninth pass (issue 16) added the case of a
glyph standing on another surface: generated seed 26023 draws a monospace ``0.5 µm`` whose ``0.``
lies on a dark particle; the recogniser's line began at the ``5``, and the side holding the ``0``
was skipped as "another surface" (a panel's edge), so ``5 µm`` was returned — a silent ×10.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .glyphs import _INK_TOLERANCE

#: How far (fraction of the line's height, at least 2 px) a glyph on another surface may start from
#: the line's top ink row (its cap line) to count as one of the line's glyphs.
_CAP_ALIGN = 0.15


def _truncated(crop: np.ndarray, box, polarity: str | None = None) -> bool:
    """Whether label ink continues right beside a read line (OCR missed a glyph: "1 um" read from
    "0.1 µm").

    The line's ink and ground are split by a three-class Otsu threshold of its box; beside it (up
    to 1.2 line heights away) a glyph-sized stroke inside the line's band (at least 0.4 of its
    height, touching neither the band's top nor its bottom) of the line's own ink level counts (a
    grey particle beside a black label is no glyph).  A side whose surface differs from the
    label's ground (the edge of a panel, a particle under the label) is looked at too, but there
    only ink at the label's ink level counts (within :data:`~.glyphs._INK_TOLERANCE` of the ink-to-ground
    contrast) and the stroke must start at the line's cap line (within :data:`_CAP_ALIGN` of its
    height; a tight box's cap line is its top row), be at most 0.9 line heights wide and end within
    2.5 of them (tune ``5c418c2eb0``: a bright patch of the image past the edge of a dark label
    panel, from the band's top, is no glyph): a digit of the label drawn over a particle, not what
    lies past a panel's edge.
    """
    from skimage.filters import threshold_multiotsu

    r0, c0, r1, c1 = (max(0, int(v)) for v in box)
    h = r1 - r0
    patch = crop[r0:r1, c0:c1]
    if h < 4 or patch.size < 20 or np.ptp(patch) == 0:
        return False
    try:
        low, high = threshold_multiotsu(patch, classes=3)
    except ValueError:
        return False
    kinds = {"bright": ["bright"], "dark": ["dark"]}.get(polarity, ["bright", "dark"])
    reach, gap = int(round(1.2 * h)), max(2, int(round(0.15 * h)))  # the gap: glyph edges the box cut
    wide_reach = int(round(2.5 * h))  # on another surface a stroke must end within this (a glyph, not a patch)
    for far, side in ((0, crop[r0:r1, max(0, c0 - wide_reach) : max(0, c0 - gap)]), (1, crop[r0:r1, c1 + gap : c1 + wide_reach])):
        if side.size == 0:
            continue
        near = side[:, -(reach - gap) :] if far == 0 else side[:, : reach - gap]  # within 1.2 heights of the line
        for kind in kinds:
            ink_in = patch > high if kind == "bright" else patch < low
            if not ink_in.any() or ink_in.all():
                continue
            ink_level, ground = float(np.median(patch[ink_in])), float(np.median(patch[~ink_in]))
            tolerance = _INK_TOLERANCE * abs(ground - ink_level)
            other = abs(float(np.median(near)) - ground) > 0.25 * abs(ink_level - ground)  # a panel's edge, a particle
            if other:  # the wider side: a glyph ends within it, a patch of the image past a panel's edge does not
                mask, offset = np.abs(side - ink_level) <= tolerance, (side.shape[1] - near.shape[1] if far == 0 else 0)
                cap = int(np.flatnonzero(ink_in.any(axis=1))[0])
            else:
                mask, offset = (near > high if kind == "bright" else near < low), 0
            comp, _ = ndi.label(mask)
            for index, sl in enumerate(ndi.find_objects(comp), start=1):
                tall, wide = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
                if not (tall >= 0.4 * h and wide >= 2 and sl[0].stop < h and (other or sl[0].start > 0)):
                    continue  # not a glyph-sized stroke inside the line band (a blob crossing it)
                if other:  # only a glyph standing on the line's cap line (which may be the band's top), within reach
                    inside = sl[1].stop > offset if far == 0 else sl[1].start < near.shape[1]
                    ends = sl[1].start > 0 if far == 0 else sl[1].stop < side.shape[1]
                    if abs(sl[0].start - cap) > max(2.0, _CAP_ALIGN * h) or wide > 0.9 * h or not (inside and ends):
                        continue
                    return True  # at the label's ink level by the mask
                if abs(float(np.median(near[sl][comp[sl] == index])) - ink_level) <= tolerance:
                    return True  # of the label's own shade (a particle beside it is not)
    return False
