"""Fine-tune EasyOCR's English recogniser (english_g2: VGG features, BiLSTM, CTC) on scale-bar label lines
(issue 16, twentieth to twenty-second passes: stage A here, offline at line level; stage B reads with the weights through the
benchmarks' `--recognizer-weights`, i.e. `new_ocr_reader(recognizer_weights=...)`).
(~560 lines: one protocol in five steps that share the line format; each step is a short subcommand.)

Steps (each a subcommand, output under ``--dir``):

``capture``   the lines the reader checks on the real-label tune crops (the tune lines ``evaluate`` reads).
``lines``     label lines drawn by the scale-bar generator with their exact text. Each sample is drawn by
              :func:`~napari_nanocrystal.synthetic.make_scale_bar_sample` (seeds ``--seed`` …; with ``--fonts``
              the DejaVu condensed/extra-light and STIX faces join the generator's five), a window around its
              label is cut from the gray image, and the label's line is found as the reader finds it
              (:func:`~napari_nanocrystal.scalebar.lines.ink_lines`, the row overlapping the drawn text box;
              a few lines use the drawn box grown by 0–3 px instead, as a CRAFT box would be). ``--tiny``:
              a fraction drawn in tiny print (``--tiny-px``, default 8–12 px, at and below the generator's
              smallest 12); ``--cut``: a fraction cut between the first two glyphs or the last two, labelled
              with what is left (``100 nm`` -> ``00 nm`` or ``100 n``: a lost digit does not parse).
``features``  every line's recogniser input, made by the reader's own code (:func:`ocr._recognise_line`
              with a recorder in place of EasyOCR's ``recognize``, then EasyOCR's ``get_image_list`` and
              ``AlignCollate`` as in its ``get_text``), at ``--heights`` and binarised at one of them, run
              through the frozen VGG feature extractor once.
``train``     the BiLSTM and the output layer trained on those features with CTC (the feature extractor,
              which dynamic quantisation leaves in float, stays as shipped); weights saved as safetensors.
``evaluate``  lines read with the stock reader and with the fine-tuned recogniser (both dynamically
              quantised as EasyOCR does on CPU), through :func:`ocr._recognise_line` at every text height
              of the reader, and scored parsed value + unit exact.

µ is written ``u`` and Å ``A`` in the targets (the model has neither; the reader's allowlist maps them so).
No file is unpickled: arrays are ``.npz`` read with ``allow_pickle=False``, weights ``.safetensors``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
EXTRA_FONTS = {  # name -> font file (not among the generator's five DejaVu faces)
    "sans-condensed": FONT_DIR / "DejaVuSansCondensed.ttf",
    "sans-condensed-bold": FONT_DIR / "DejaVuSansCondensed-Bold.ttf",
    "sans-light": FONT_DIR / "DejaVuSans-ExtraLight.ttf",
    "serif-bold": FONT_DIR / "DejaVuSerif-Bold.ttf",
    "serif-condensed": FONT_DIR / "DejaVuSerifCondensed.ttf",
    "mono-bold": FONT_DIR / "DejaVuSansMono-Bold.ttf",
}


def _stix_fonts() -> dict[str, Path]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return {"stix": folder / "STIXGeneral.ttf", "stix-bold": folder / "STIXGeneralBol.ttf", "stix-italic": folder / "STIXGeneralItalic.ttf"}


def _add_fonts() -> None:
    """Let the generator draw with :data:`EXTRA_FONTS` and STIX too (its own font table, patched in this process)."""
    from functools import lru_cache

    from napari_nanocrystal.synthetic import scale_bar
    from PIL import ImageFont

    files = {**EXTRA_FONTS, **_stix_fonts()}
    files = {k: v for k, v in files.items() if v.is_file()}
    own = scale_bar._font

    @lru_cache(maxsize=256)
    def font(name: str, size_px: int):
        return ImageFont.truetype(str(files[name]), size_px) if name in files else own(name, size_px)

    scale_bar._font = font
    for name in files:
        scale_bar._FONTS[name] = ("extra", "normal", "normal")


def _target(text: str) -> str:
    return text.replace("µ", "u").replace("Å", "A")


def _overlap(a, b) -> float:
    rows = min(a[2], b[2]) - max(a[0], b[0])
    cols = min(a[3], b[3]) - max(a[1], b[1])
    if rows <= 0 or cols <= 0:
        return 0.0
    inter = rows * cols
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _glyph_columns(font, text: str) -> list[tuple[int, int, int]]:
    """(index, first, last ink column) of each non-space glyph of ``text`` as PIL draws it in ``font``, columns
    counted from the ink's left edge of the whole text (any coverage, as the generator crops it); a glyph's ink:
    coverage > 0.1."""
    from PIL import Image, ImageDraw

    def ink(chars, x, level=25):
        canvas = Image.new("L", (int(font.getlength(text)) + 4 * font.size, 3 * font.size), 0)
        ImageDraw.Draw(canvas).text((font.size + x, font.size), chars, font=font, fill=255, anchor="lt")
        cols = np.nonzero((np.asarray(canvas) > level).any(axis=0))[0]
        return (int(cols.min()), int(cols.max())) if cols.size else None

    whole = ink(text, 0, level=0)
    spans = []
    for k, char in enumerate(text):
        span = ink(char, font.getlength(text[:k])) if char != " " else None
        if span is not None and whole is not None:
            spans.append((k, span[0] - whole[0], span[1] - whole[0]))
    return spans


def _cut_line(sample, local, side):
    """Where to cut a drawn label between its first two glyphs (``side`` "lead") or its last two ("trail"):
    (window column of the cut, left and right columns of the text left visible, that text), or None where
    no ink-free column lies between the two glyphs (no clean cut)."""
    from napari_nanocrystal.synthetic import scale_bar

    text = sample.scale_bar.text
    spans = _glyph_columns(scale_bar._font(sample.params["font"], int(sample.params["font_px"])), text)
    if len(spans) < 3:
        return None
    (_, _, last), (k, first, _) = (spans[0], spans[1]) if side == "lead" else (spans[-2], spans[-1])
    if first - last < 2:  # no ink-free column between them
        return None
    column = local[1] + (last + 1 + first) // 2
    if side == "lead":
        return column, local[1] + first, local[3], text[k:]
    return column, local[1], local[1] + last + 1, text[:k].rstrip()


def cmd_lines(args) -> None:
    from napari_nanocrystal.scalebar.lines import ink_lines
    from napari_nanocrystal.scalebar.locate import _to_gray
    from napari_nanocrystal.synthetic import make_scale_bar_sample

    if args.fonts:
        _add_fonts()
    shapes = ((512, 512), (448, 640), (600, 480), (667, 1002))
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays, meta = {}, []
    jitter = np.random.default_rng(args.seed + 7)
    for seed in range(args.seed, args.seed + args.n):
        value = None
        if jitter.random() < args.random_values:  # any number, so that digits are read, not a 1-2-5 prior
            digits = int(jitter.integers(1, 4))
            value = float(jitter.integers(1, 10**digits))
            if jitter.random() < 0.3:
                value = float(f"{value / 10 ** int(jitter.integers(1, digits + 1)):g}")
        font_px = int(jitter.integers(args.tiny_px[0], args.tiny_px[1] + 1)) if args.tiny and jitter.random() < args.tiny else None
        try:
            sample = make_scale_bar_sample(shapes[seed % 4], rng=seed, value=value, font_px=font_px)
        except ValueError:
            continue
        truth = sample.scale_bar
        gray = _to_gray(sample.image).astype(np.float32)
        t0, l0, t1, l1 = truth.text_box
        h = t1 - t0
        r0, c0 = max(0, t0 - 2 * h), max(0, l0 - 2 * h)
        window = gray[r0 : min(gray.shape[0], t1 + 2 * h), c0 : min(gray.shape[1], l1 + 2 * h)]
        local = (t0 - r0, l0 - c0, t1 - r0, l1 - c0)
        text, cut = truth.text, None
        if args.cut and jitter.random() < args.cut:  # the window cut between two glyphs: the line labelled with what is left
            cut = "lead" if jitter.random() < 0.5 else "trail"
            found_cut = _cut_line(sample, local, cut)
            if found_cut is None:
                cut = None
            else:
                column, left, right, text = found_cut
                window = window[:, column:] if cut == "lead" else window[:, :column]
                shift = column if cut == "lead" else 0
                local = (local[0], left - shift, local[2], right - shift)
        how = "ink"
        found = [(b, s) for b, s in ink_lines(window, ((local[0] + local[2]) / 2, (local[1] + local[3]) / 2)) if _overlap(b, local) >= 0.5]
        if found and jitter.random() >= args.loose:
            box, shade = found[0]
        else:
            g = jitter.integers(0, 4, size=4)
            H, W = window.shape
            box = (max(0, local[0] - g[0]), max(0, local[1] - g[1]), min(H, local[2] + g[2]), min(W, local[3] + g[3]))
            shade, how = truth.polarity, "drawn box"
        key = f"w{len(meta)}"
        arrays[key] = window
        meta.append(
            dict(
                key=key,
                seed=seed,
                box=[int(v) for v in box],
                shade=shade,
                text=text,
                target=_target(text),
                value=truth.value,
                unit=truth.unit,
                bar=truth.bar_length_px,
                how=how,
                font=sample.params["font"],
                font_px=sample.params["font_px"],
                cut=cut,
            )
        )
        if len(meta) % 100 == 0:
            print(f"{len(meta)} lines, seed {seed}", file=sys.stderr, flush=True)
    np.savez_compressed(out / "windows.npz", **arrays)
    (out / "lines.json").write_text(json.dumps(meta))
    print(f"{len(meta)} lines from seeds {args.seed}–{args.seed + args.n - 1}", file=sys.stderr)


class _Recorder:
    """Stands in for an easyocr.Reader in :func:`ocr._recognise_line`: records the image it would recognise."""

    def __init__(self):
        self.images = []

    def recognize(self, image, **kwargs):
        self.images.append(image)
        return []


def recogniser_inputs(crop, box, shade, heights, binary=False):
    """The tensors (1, 1, 64, W) EasyOCR's recogniser gets for this line at ``heights``, made by the reader's code."""
    import torch
    from easyocr.recognition import AlignCollate
    from easyocr.utils import get_image_list
    from napari_nanocrystal.scalebar import ocr
    from PIL import Image

    recorder = _Recorder()
    ocr._recognise_line(recorder, crop, tuple(box), shade, binary=binary, heights=heights)
    out = []
    for big in recorder.images:
        image_list, max_width = get_image_list([[0, big.shape[1], 0, big.shape[0]]], [], big, model_height=64)
        if not image_list:
            continue
        tensor = AlignCollate(imgH=64, imgW=int(max_width), keep_ratio_with_pad=True)([Image.fromarray(image_list[0][1], "L")])
        out.append(tensor)
    return out if out else [torch.zeros(0)]


def float_model():
    """EasyOCR's english_g2 recogniser in float (not quantised), without the text detector."""
    from napari_nanocrystal.scalebar.reader import new_ocr_reader

    return new_ocr_reader(quantize=False, detector=False)


def _features(model, tensor):
    import torch

    with torch.no_grad():
        v = model.FeatureExtraction(tensor)
        v = model.AdaptiveAvgPool(v.permute(0, 3, 1, 2)).squeeze(3)
    return v[0].numpy().astype(np.float16)


def cmd_features(args) -> None:
    import torch
    from napari_nanocrystal.scalebar import ocr

    torch.set_num_threads(1)
    reader = float_model()
    model = reader.recognizer.eval()
    folder = Path(args.dir)
    meta = json.loads((folder / "lines.json").read_text())
    windows = np.load(folder / "windows.npz", allow_pickle=False)
    rng = np.random.default_rng(args.seed)
    heights = [int(h) for h in args.heights.split(",")] if args.heights else list(ocr._LINE_HEIGHTS)
    feats, rows = {}, []
    started = time.time()
    for i, m in enumerate(meta):
        crop = windows[m["key"]]
        chosen = [int(h) for h in rng.choice(heights, size=args.per_line, replace=False)]
        variants = [(h, False) for h in chosen] + ([(int(rng.choice(heights)), True)] if args.binary else [])
        for h, binary in variants:
            tensors = recogniser_inputs(crop, m["box"], m["shade"], (h,), binary)
            if tensors[0].numel() == 0:
                continue
            key = f"f{len(rows)}"
            feats[key] = _features(model, tensors[0])
            rows.append(dict(key=key, line=m["key"], height=h, binary=binary, target=m["target"]))
        if i % 200 == 0:
            print(f"{i}/{len(meta)} lines, {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    np.savez(folder / "features.npz", **feats)
    (folder / "features.json").write_text(json.dumps(rows))


def cmd_train(args) -> None:
    import torch
    from safetensors.torch import save_file
    from torch.optim.swa_utils import AveragedModel

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    reader = float_model()
    model = reader.recognizer
    converter = reader.converter
    rows, feats = [], {}
    for folder in args.dir.split(","):
        folder = Path(folder)
        part = json.loads((folder / "features.json").read_text())
        data = np.load(folder / "features.npz", allow_pickle=False)
        for r in part:
            feats[(str(folder), r["key"])] = torch.from_numpy(data[r["key"]].astype(np.float32))
            rows.append((str(folder), r["key"], r["target"]))
    buckets: dict[int, list] = {}
    for folder, key, target in rows:
        buckets.setdefault(feats[(folder, key)].shape[0], []).append((folder, key, target))
    params = list(model.SequenceModeling.parameters()) + list(model.Prediction.parameters())
    for p in model.FeatureExtraction.parameters():
        p.requires_grad_(False)
    optimiser = torch.optim.Adam(params, lr=args.lr)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    started, step = time.time(), 0
    log = open(out.with_suffix(".log"), "a", encoding="utf-8")
    model.train()
    averaged = AveragedModel(model) if args.average_from else None  # uniform mean of end-of-epoch weights (SWA)
    for epoch in range(args.epochs):
        batches = []
        for T, items in buckets.items():
            order = rng.permutation(len(items))
            batches += [[items[j] for j in order[k : k + args.batch]] for k in range(0, len(items), args.batch)]
        rng.shuffle(batches)
        total, count = 0.0, 0
        for batch in batches:
            x = torch.stack([feats[(f, k)] for f, k, _ in batch])
            text, length = converter.encode([t for _, _, t in batch])
            y = model.Prediction(model.SequenceModeling(x).contiguous())
            logp = y.log_softmax(2).permute(1, 0, 2)
            loss = ctc(logp, text, torch.full((len(batch),), logp.shape[0], dtype=torch.long), length)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimiser.step()
            total, count, step = total + float(loss) * len(batch), count + len(batch), step + 1
        line = f"epoch {epoch + 1}: loss {total / max(1, count):.4f}, {step} steps, {time.time() - started:.0f} s"
        if args.average_from and epoch + 1 >= args.average_from:
            line += f"; saved: mean of epochs {args.average_from}-{epoch + 1}"
        print(line, file=log, flush=True)
        print(line, file=sys.stderr, flush=True)
        source = model
        if averaged is not None and epoch + 1 >= args.average_from:
            averaged.update_parameters(model)
            source = averaged.module
        state = {k: v.detach().clone().contiguous() for k, v in source.state_dict().items()}
        tmp = out.with_suffix(".tmp")
        save_file(state, str(tmp))
        os.replace(tmp, out)
        if time.time() - started > args.budget_s:
            break
    log.close()


def tuned_reader(weights):
    """An easyocr.Reader whose recogniser has the fine-tuned weights, quantised as EasyOCR does (the reader's
    own option: :func:`~napari_nanocrystal.scalebar.reader.new_ocr_reader` ``recognizer_weights``)."""
    from napari_nanocrystal.scalebar.reader import new_ocr_reader

    return new_ocr_reader(recognizer_weights=weights)


#: The label line of the tune crops HEAD's reader refuses, picked by eye among the lines it checks (the first is
#: ``HV=120.0kV`` or a cut ``00 nm`` in two of them): crop name -> index among its checked lines.
TUNE_PICKS = {"173c98ef82": 1, "1ecd5c901c": 5, "3430b20071": 0, "63df66fb4d": 0, "bc5529f7ca": 0}


def cmd_capture(args) -> None:
    """Every line the reader checks (:func:`ocr._check_line`) on the real-label tune crops, with its crop, box,
    shade, bar length and whether it was accepted: the tune lines of ``evaluate --tune``."""
    import torch
    from napari_nanocrystal.scalebar import ScaleBarError, get_ocr_reader, ocr, read_image, read_scale_bar

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scalebar_benchmark

    torch.set_num_threads(1)
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    check, calls = ocr._check_line, []

    def spy(reader, crop, box, polarity, bar_length_px=None, glyphs=True, extra=()):
        result = check(reader, crop, box, polarity, bar_length_px, glyphs, extra)
        calls.append(dict(crop=np.asarray(crop, np.float32).copy(), box=[int(v) for v in box], polarity=polarity, bar=bar_length_px,
                          accepted=result[0] is not None))  # fmt: skip
        return result

    ocr._check_line = spy
    reader, meta = get_ocr_reader(), []
    for i, row in enumerate(r for r in scalebar_benchmark.read_labels() if r["split"] == "tune"):
        calls.clear()
        r0, c0, r1, c1 = row["box"]
        try:
            read_scale_bar(read_image(Path(args.datasets) / row["source"])[0][r0:r1, c0:c1], reader=reader)
        except ScaleBarError:
            pass
        name = Path(row["source"]).stem
        np.savez_compressed(out / f"{i:03d}_{name}.npz", **{f"crop{j}": c.pop("crop") for j, c in enumerate(calls)})
        meta.append(dict(i=i, source=row["source"], value=row["value"], unit=row["unit"], lines=list(calls)))
    ocr._check_line = check
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


def _score(text: str, value: float, unit: str, bar):
    from napari_nanocrystal.scalebar.votes import _normalise, _plausible_reading

    parsed = _plausible_reading(_normalise(text)[0], bar)
    if parsed is None:
        return "none"
    return "exact" if parsed == (value, unit) else "other"


def cmd_evaluate(args) -> None:
    import torch
    from napari_nanocrystal.scalebar import ocr
    from napari_nanocrystal.scalebar.reader import get_ocr_reader

    torch.set_num_threads(1)
    readers = {} if args.no_stock else {"stock": get_ocr_reader()}
    if args.weights:
        readers["tuned"] = tuned_reader(args.weights)
    lines = []
    if args.generated:
        folder = Path(args.generated)
        meta = json.loads((folder / "lines.json").read_text())
        windows = np.load(folder / "windows.npz", allow_pickle=False)
        for m in meta:
            lines.append(
                dict(
                    set="generated",
                    id=m["seed"],
                    crop=windows[m["key"]],
                    box=m["box"],
                    shade=m["shade"],
                    value=m["value"],
                    unit=m["unit"],
                    bar=m["bar"],
                )
            )
    if args.tune:
        folder = Path(args.tune)
        picks = json.loads(Path(args.tune_pick).read_text()) if args.tune_pick else TUNE_PICKS
        for m in json.loads((folder / "meta.json").read_text()):
            if not m["lines"]:
                continue
            pick = next((j for j, l in enumerate(m["lines"]) if l["accepted"]), picks.get(Path(m["source"]).stem, 0))
            crops = np.load(folder / f"{m['i']:03d}_{Path(m['source']).stem}.npz", allow_pickle=False)
            line = m["lines"][pick]
            lines.append(
                dict(
                    set="tune",
                    id=Path(m["source"]).stem,
                    crop=crops[f"crop{pick}"],
                    box=line["box"],
                    shade=line["polarity"],
                    value=m["value"],
                    unit=m["unit"],
                    bar=line["bar"],
                    accepted=line["accepted"],
                )
            )
    records = []
    for n, line in enumerate(lines):
        rec = {k: line[k] for k in ("set", "id", "value", "unit")}
        for name, reader in readers.items():
            readings = ocr._recognise_line(reader, line["crop"], tuple(line["box"]), line["shade"])  # at every _LINE_HEIGHTS
            rec[name] = [t for t, _ in readings]
            rec[name + "_conf"] = [round(c, 3) for _, c in readings]
            rec[name + "_score"] = [_score(t, line["value"], line["unit"], line["bar"]) for t, _ in readings]
        records.append(rec)
        if n % 50 == 0:
            print(f"{n}/{len(lines)}", file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(records, indent=0))
    summary(records, readers)


def summary(records, readers) -> None:
    from napari_nanocrystal.scalebar.ocr import _FIRST_HEIGHTS, _LINE_HEIGHTS

    first_heights = [_LINE_HEIGHTS.index(h) for h in _FIRST_HEIGHTS]
    for subset in sorted({r["set"] for r in records}):
        recs = [r for r in records if r["set"] == subset]
        for name in readers:
            scores = [s for r in recs for s in r[name + "_score"]]
            first = [all(r[name + "_score"][i] == "exact" for i in first_heights) for r in recs]  # heights 40 and 56
            other_lines = sum("other" in r[name + "_score"] for r in recs)
            print(
                f"{subset} {name}: lines {len(recs)}; readings exact {scores.count('exact')}/{len(scores)} "
                f"({100 * scores.count('exact') / len(scores):.1f} %), other number {scores.count('other')} "
                f"({100 * scores.count('other') / len(scores):.1f} %); lines exact at 40 and 56: {sum(first)} "
                f"({100 * sum(first) / len(recs):.1f} %); lines with any other-number reading: {other_lines}"
            )


def cmd_summary(args) -> None:
    merged: dict = {}
    names = []
    for path in args.records.split(","):
        for r in json.loads(Path(path).read_text()):
            merged.setdefault((r["set"], r["id"]), {}).update(r)
            names += [k[: -len("_score")] for k in r if k.endswith("_score") and k[: -len("_score")] not in names]
    summary(list(merged.values()), names)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("lines")
    a.add_argument("--dir", required=True)
    a.add_argument("--seed", type=int, required=True)
    a.add_argument("--n", type=int, default=1000)
    a.add_argument("--fonts", action="store_true")
    a.add_argument("--loose", type=float, default=0.2, help="fraction of lines cut with the drawn box grown by 0-3 px")
    a.add_argument("--random-values", type=float, default=0.0, help="fraction of labels with a random number (1-3 digits, some decimals)")
    a.add_argument("--tiny", type=float, default=0.0, help="fraction of labels drawn in tiny print (font px from --tiny-px)")
    a.add_argument(
        "--tiny-px", type=lambda t: tuple(int(v) for v in t.split(",")), default=(8, 12), help="tiny font px range (default 8,12)"
    )
    a.add_argument("--cut", type=float, default=0.0, help="fraction of lines cut between their first or last two glyphs, labelled as seen")
    a = sub.add_parser("features")
    a.add_argument("--dir", required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--heights", default=None, help="text heights, comma-separated (default the reader's _LINE_HEIGHTS)")
    a.add_argument("--per-line", type=int, default=2)
    a.add_argument("--binary", action="store_true")
    a = sub.add_parser("train")
    a.add_argument("--dir", required=True, help="feature folders, comma-separated")
    a.add_argument("--out", required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--lr", type=float, default=1e-4)
    a.add_argument("--batch", type=int, default=32)
    a.add_argument("--epochs", type=int, default=30)
    a.add_argument("--budget-s", type=float, default=2400)
    a.add_argument(
        "--average-from", type=int, default=0, help="save the mean of the end-of-epoch weights from this epoch on (0: the last weights)"
    )
    a = sub.add_parser("capture")
    a.add_argument("--dir", required=True)
    a.add_argument(
        "--datasets", default=os.environ.get("NANOCRYSTAL_DATASETS", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    )
    a = sub.add_parser("evaluate")
    a.add_argument("--generated")
    a.add_argument("--tune")
    a.add_argument("--tune-pick", help="JSON: crop name -> index of its label line among the checked lines (default TUNE_PICKS)")
    a.add_argument("--weights")
    a.add_argument("--no-stock", action="store_true", help="read with the fine-tuned recogniser only")
    a.add_argument("--out", required=True)
    a = sub.add_parser("summary")
    a.add_argument("--records", required=True, help="evaluate outputs, comma-separated (merged by set and id)")
    args = p.parse_args(argv)
    commands = {
        "capture": cmd_capture,
        "lines": cmd_lines,
        "features": cmd_features,
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "summary": cmd_summary,
    }
    commands[args.cmd](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
