"""Drawn stress labels for the scale-bar reader: kinds of label the generator does not draw.

Issue 16 asks for no silently wrong calibration; fresh generated seeds and drawn labels keep finding
defects that the real-label sets do not show.  Each case is a TEM-like image
(:func:`napari_nanocrystal.synthetic.tem.make_tem_image`), a bar of known length in its bottom right
and a label drawn with PIL in one of matplotlib's fonts (DejaVu, STIX, Computer Modern), of a kind:

- ``touch`` / ``overlap``: the label's bottom on the bar's top row / 2 px into it;
- ``u_for_mu``: ``0.5 um`` typed with a ``u`` (read as µm);
- ``two``: a second text in the figure (``x 20000``, ``200 kV``, ``10 nm``, …) left of the label or top left;
- ``box``: the label inside a thin drawn frame;
- ``jpeg``: the figure JPEG-compressed at quality 15–40;
- ``small``: 10–11 px print (7-px digits in STIX and Computer Modern);
- ``space2``: two spaces between number and unit;
- ``angstrom``: ``Å`` labels.

Each (kind, text, shade) is drawn in ``--per`` fonts chosen at random (``--seed``), on a black
panel or the image itself.  Outcomes: *correct* (value and unit exact, bar within ±1 px), *refused*
(``ScaleBarError``) or *wrong* (anything else returned: a silent wrong number).  Writes a markdown
report atomically::

    python benchmarks/scalebar_stress.py --out /tmp/stress.md
    python benchmarks/scalebar_stress.py --kinds box,small --per 7 --save-wrong /tmp/wrong
    python benchmarks/scalebar_stress.py --out /tmp/stress.md --recognizer-weights tuned.safetensors  # fine-tuned recogniser
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / torch: the machine's cores are shared

import argparse
import itertools
import platform
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from napari_nanocrystal.synthetic.scale_bar_samples import _jpeg_round_trip
from nc_synthmodel.io import atomic_write_text

FONTS = {
    "sans": "DejaVuSans.ttf",
    "serif": "DejaVuSerif.ttf",
    "mono": "DejaVuSansMono.ttf",
    "stix": "STIXGeneral.ttf",
    "stixb": "STIXGeneralBol.ttf",
    "cmss": "cmss10.ttf",
    "cmr": "cmr10.ttf",
}
KINDS = {
    "touch": [("50 nm", 50, "nm"), ("0.5 µm", 0.5, "µm"), ("200 nm", 200, "nm"), ("20 Å", 20, "Å")],
    "overlap": [("50 nm", 50, "nm"), ("0.5 µm", 0.5, "µm"), ("100 nm", 100, "nm")],
    "u_for_mu": [("0.5 um", 0.5, "µm"), ("2 um", 2, "µm"), ("10 um", 10, "µm"), ("0.2 um", 0.2, "µm")],
    "two": [("50 nm", 50, "nm"), ("0.5 µm", 0.5, "µm"), ("200 nm", 200, "nm")],
    "box": [("50 nm", 50, "nm"), ("0.5 µm", 0.5, "µm"), ("100 nm", 100, "nm"), ("5 nm", 5, "nm")],
    "jpeg": [("50 nm", 50, "nm"), ("0.5 µm", 0.5, "µm"), ("20 nm", 20, "nm"), ("1 µm", 1, "µm")],
    "small": [("50 nm", 50, "nm"), ("0.5 µm", 0.5, "µm"), ("200 nm", 200, "nm"), ("10 nm", 10, "nm")],
    "space2": [("50  nm", 50, "nm"), ("0.5  µm", 0.5, "µm"), ("100  nm", 100, "nm")],
    "angstrom": [("20 Å", 20, "Å"), ("50 Å", 50, "Å"), ("5 Å", 5, "Å"), ("10 Å", 10, "Å")],
}
_SHAPE = (420, 560)
_OTHER_TEXTS = ["x 20000", "200 kV", "10 nm", "HV 80 kV", "50000 x", "2 µm"]


def _font_path(name: str) -> str:
    import matplotlib

    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf", FONTS[name])


def _background(rng: np.random.Generator) -> np.ndarray:
    from napari_nanocrystal.synthetic.tem import make_tem_image

    base = make_tem_image(
        _SHAPE,
        n_particles=60,
        shape_classes=("sphere", "cube"),
        diameter_nm=(20.0, 3.0),
        nm_per_px=1.0,
        background=0.1,
        dose=300.0,
        fringe=0.1,
        scale_bar=False,
        dtype="float32",
        rng=rng,
    )
    image = base.image.astype(float)
    return (image / image.max() * 220).clip(0, 255)


def draw_case(kind: str, text: str, font: str, size: int, dark: bool, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One drawn figure (uint8, rows × columns) and its bar's length in px."""
    from PIL import Image, ImageDraw, ImageFont

    H, W = _SHAPE
    canvas = Image.fromarray(_background(rng).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    ink, ground = (0, 255) if dark else (255, 0)
    face = ImageFont.truetype(_font_path(font), size)
    bar = int(rng.integers(70, 170))
    thick = max(2, size // 5)
    x0, ybar = W - bar - 40, H - 40
    width = draw.textlength(text, font=face)
    box = draw.textbbox((0, 0), text, font=face)
    gap = {"touch": 0, "overlap": -2}.get(kind, max(3, size // 3))
    tx, ty = x0 + bar / 2 - width / 2, ybar - gap - box[3]
    if kind in ("box", "two", "touch", "overlap", "jpeg") and rng.random() < 0.7:  # a panel behind bar and label
        draw.rectangle((min(x0, tx) - 10, ty + box[1] - 10, max(x0 + bar, tx + width) + 10, ybar + thick + 10), fill=ground)
    if kind == "box":
        draw.rectangle((tx - 4, ty + box[1] - 4, tx + width + 4, ty + box[3] + 4), outline=ink, width=1 + int(rng.integers(0, 2)))
    draw.rectangle((x0, ybar, x0 + bar - 1, ybar + thick - 1), fill=ink)
    draw.text((tx, ty), text, font=face, fill=ink)
    if kind == "two":
        other = str(rng.choice(_OTHER_TEXTS))
        if rng.random() < 0.5:
            draw.text((20, 20), other, font=face, fill=ink)
        else:
            draw.text((x0 - draw.textlength(other, font=face) - 30, ty), other, font=face, fill=ink)
    image = (np.asarray(canvas).astype(float) + rng.normal(0, 3, (H, W))).clip(0, 255).astype(np.uint8)
    if kind == "jpeg":
        image = _jpeg_round_trip(image, int(rng.integers(15, 40)))
    return image, bar


def cases(kinds, fonts, per: int, rng: np.random.Generator):
    """(kind, text, value, unit, font, size, dark) of every case, in a fixed order for a seed (lazily: the
    drawing of each case takes its random numbers from ``rng`` between these)."""
    for kind in kinds:
        for (text, value, unit), dark in itertools.product(KINDS[kind], (True, False)):
            for font in rng.choice(fonts, size=min(per, len(fonts)), replace=False):
                size = int(rng.integers(10, 12)) if kind == "small" else int(rng.integers(16, 30))
                yield kind, text, float(value), unit, str(font), size, dark


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated kinds (default all: {','.join(KINDS)})")
    parser.add_argument("--fonts", default=",".join(FONTS), help="comma-separated fonts to draw from (default all)")
    parser.add_argument("--per", type=int, default=2, help="fonts per (kind, text, shade), at random (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the drawing (default 1)")
    parser.add_argument("--out", required=True, help="markdown report (written atomically)")
    parser.add_argument("--save-wrong", default=None, help="folder to save the silently wrong figures as PNG (optional)")
    parser.add_argument(
        "--recognizer-weights",
        default=None,
        help="read with these EasyOCR recogniser weights (.safetensors, e.g. from scalebar_ocr_finetune.py train; default the stock)",
    )
    args = parser.parse_args(argv)
    kinds, fonts = args.kinds.split(","), args.fonts.split(",")
    unknown = [k for k in kinds if k not in KINDS] + [f for f in fonts if f not in FONTS]
    if unknown:
        parser.error(f"unknown kinds or fonts: {unknown}")

    import torch

    torch.set_num_threads(1)
    from napari_nanocrystal.scalebar import ScaleBarError, get_ocr_reader, read_scale_bar
    from napari_nanocrystal.scalebar.reader import new_ocr_reader

    reader = new_ocr_reader(recognizer_weights=args.recognizer_weights) if args.recognizer_weights else get_ocr_reader()
    rng = np.random.default_rng(args.seed)
    load = os.getloadavg()
    started, date = time.time(), datetime.now().isoformat(timespec="seconds")
    rows, counts, seconds = [], {}, []
    for kind, text, value, unit, font, size, dark in cases(kinds, fonts, args.per, rng):  # lazily: drawn in one random sequence
        image, bar = draw_case(kind, text, font, size, dark, rng)
        clock = time.process_time()
        try:
            result = read_scale_bar(image.astype(float), reader=reader)
            exact = (result.value, result.unit) == (value, unit) and abs(result.bar_length_px - bar) <= 1
            outcome = "correct" if exact else "wrong"
            what = f"{result.value:g} {result.unit} ({result.text!r}), bar {result.bar_length_px:.1f} px"
        except ScaleBarError as error:
            outcome, what = "refused", str(error)[:90].replace("|", "/")
        seconds.append(time.process_time() - clock)
        counts.setdefault(kind, {"correct": 0, "refused": 0, "wrong": 0})[outcome] += 1
        name = f"{kind}_{text.replace(' ', '_')}_{font}{size}_{'dark' if dark else 'bright'}"
        print(outcome, name, what, flush=True)
        if outcome != "correct":
            rows.append(f"| {kind} | {text!r} | {font} {size} px, {'dark' if dark else 'bright'} | {bar} | {outcome} | {what} |")
        if outcome == "wrong" and args.save_wrong:
            from PIL import Image

            Path(args.save_wrong).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(Path(args.save_wrong) / f"{name}.png")
    total = {k: sum(c[k] for c in counts.values()) for k in ("correct", "refused", "wrong")}
    lines = [
        "## Scale-bar reader on drawn stress labels",
        "",
        f"Command: `python benchmarks/scalebar_stress.py {' '.join(sys.argv[1:] if argv is None else argv)}`  ",
        f"Date: {date} (start); machine: {platform.platform()}, {os.cpu_count()} CPU cores, "
        f"one torch thread, recogniser {args.recognizer_weights or 'stock english_g2'}; load average at the start {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}; wall {time.time() - started:.0f} s  ",
        f"**{total['correct']} correct, {total['refused']} refused, {total['wrong']} silently wrong** of {sum(total.values())}; "
        f"CPU s per label median {np.median(seconds):.2f}, p90 {np.percentile(seconds, 90):.2f}",
        "",
        "| kind | correct | refused | **wrong** |",
        "|---|---:|---:|---:|",
        *(f"| {k} | {c['correct']} | {c['refused']} | {c['wrong']} |" for k, c in counts.items()),
        "",
        "| kind | label | font, shade | bar px | outcome | what the reader returned |",
        "|---|---|---|---:|---|---|",
        *rows,
        "",
    ]
    atomic_write_text(Path(args.out), "\n".join(lines))
    return 1 if total["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
