"""Bad and odd inputs against the CLIs and the API: the reproducible table of ``docs/bad_inputs.md``.

(~830 lines: mostly the probes themselves, a few declarative lines each in three groups - segment, analyze,
recipes - kept in one file so that the report is one reproducible table.)

Each probe runs one bad input through ``nanocrystal`` / ``nc-synthmodel`` (in-process, exactly
as the console scripts run them) or the API, and is put in one category:

* **clear error** — non-zero exit (or an exception of the API) whose message is one line naming
  the input, and every file the user had is unchanged;
* **handled right** — the command does the right thing (the check of the probe holds);
* **warning** — it goes on and says what it did;
* **data loss** — a file the user had (an input, an earlier output, a dataset) changed or vanished;
* **silently wrong** — success where an error was due, or a wrong result;
* **traceback** — an exception escaped, or the message does not name the input;
* **ran away** — took over 120 s.

The last four must stay at zero rows.  Usage::

    python benchmarks/bad_inputs.py                 # writes docs/bad_inputs.md
    python benchmarks/bad_inputs.py --out /tmp/bad.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "napari_nanocrystal"))  # the DM3/DM4 writer of the tests

CATEGORIES = ("clear error", "handled right", "warning", "data loss", "silently wrong", "traceback", "ran away")
BAD = ("data loss", "silently wrong", "traceback", "ran away")


@dataclass
class Outcome:
    code: int | None
    out: str
    err: str
    error: BaseException | None = None


@dataclass
class Probe:
    tool: str
    what: str
    expect: str  # "error" (naming `names`), "ok" (check holds) or "warning"
    run: Callable[[], Outcome]
    names: tuple[str, ...] = ()
    check: Callable[[Outcome], bool] | None = None
    protect: tuple[Path, ...] = ()


def call(main, argv) -> Outcome:
    """Run a CLI ``main(argv)`` in-process; stdout, stderr and any escaping exception captured."""
    out, err = io.StringIO(), io.StringIO()
    code, error = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 2
        except Exception as exc:  # noqa: BLE001 - a traceback is what we are looking for
            error = exc
    return Outcome(code, out.getvalue(), err.getvalue(), error)


def api(function, *args, **kwargs) -> Outcome:
    """Run an API call; a ValueError/OSError with a message is the API's clear error."""
    try:
        result = function(*args, **kwargs)
    except (ValueError, OSError, TimeoutError) as exc:
        return Outcome(2, "", f"{type(exc).__name__}: {exc}\n")
    except Exception as exc:  # noqa: BLE001
        return Outcome(None, "", "", exc)
    return Outcome(0, str(result)[:300] if isinstance(result, (str, Path)) else f"returned a {type(result).__name__}", "")


def classify(probe: Probe, outcome: Outcome, seconds: float, before: dict) -> tuple[str, str]:
    """(category, what happened: the first line of the message)."""
    message = next((line for line in outcome.err.splitlines() if line.strip() and not line.startswith("skipped")), "")
    message = message or next(iter(outcome.err.splitlines()), "") or outcome.out.splitlines()[0] if (outcome.err or outcome.out) else ""
    if seconds > 120:
        return "ran away", f"{seconds:.0f} s"
    if outcome.error is not None or "Traceback" in outcome.err:
        return "traceback", f"{type(outcome.error).__name__}: {outcome.error}"[:200]
    if any(_digest(p) != d for p, d in before.items()):
        return "data loss", "a protected file changed: " + ", ".join(p.name for p, d in before.items() if _digest(p) != d)
    if probe.expect == "error":
        if outcome.code == 0:
            return "silently wrong", "exit 0: " + (outcome.out.splitlines() or [""])[0][:150]
        # argparse's standard form (usage lines, then "prog: error: …") counts as its one error line
        errors = [line for line in outcome.err.splitlines() if line.strip() and not line.startswith(("skipped", "note:", "usage:", " "))]
        if len(errors) != 1 or not all(name in errors[0] for name in probe.names):
            return "traceback", "not one line naming the input: " + " | ".join(errors)[:200]
        skipped = next((line for line in outcome.err.splitlines() if line.startswith("skipped")), None)
        return "clear error", errors[0][:220] + (f" — {skipped[:200]}" if skipped else "")
    ok = probe.check(outcome) if probe.check else outcome.code == 0
    if not ok:
        return "silently wrong", f"exit {outcome.code}: {message[:180]}"
    return ("warning" if probe.expect == "warning" else "handled right"), (
        message or outcome.out.splitlines()[0] if outcome.out else message
    )[:220]


def _digest(path: Path):
    return path.read_bytes() if path.is_file() else None


# ----------------------------------------------------------------------------------------
# inputs


def _images(root: Path) -> dict[str, Path]:
    """Small bad and good micrographs in ``root``; name → path."""
    from napari_nanocrystal.synthetic import make_tem_image
    from test_scalebar import _write_dm

    tem = make_tem_image((64, 64), n_particles=5, diameter_nm=(10.0, 1.0), nm_per_px=0.5, scale_bar=False, rng=3)
    f = {}

    def put(name, writer):
        f[name] = root / name
        writer(f[name])

    put("good.png", lambda p: Image.fromarray(tem.image).save(p))
    put("good.tif", lambda p: tifffile.imwrite(p, tem.image))
    nan = tem.image.astype(np.float32)
    nan[5:9, 5:9] = np.nan
    put("nan.tif", lambda p: tifffile.imwrite(p, nan))
    put("inf.tif", lambda p: tifffile.imwrite(p, np.where(np.isnan(nan), np.inf, nan)))
    put("huge.tif", lambda p: tifffile.imwrite(p, shape=(20000, 20000), dtype=np.uint8))
    put("bomb.png", lambda p: Image.new("1", (14000, 14000)).save(p))
    put("stack.tif", lambda p: tifffile.imwrite(p, np.stack([tem.image] * 3), photometric="minisblack"))
    put("hyper.tif", lambda p: tifffile.imwrite(p, np.stack([tem.image] * 3), imagej=True, metadata={"axes": "TYX"}))
    put("twochan.tif", lambda p: tifffile.imwrite(p, np.stack([tem.image] * 2, axis=-1)))
    put("cyx.tif", lambda p: tifffile.imwrite(p, np.stack([tem.image] * 2), imagej=True, metadata={"axes": "CYX"}))
    put("image.dm4", lambda p: _write_dm(p, tem.image.astype(np.float32), 0.5, "nm", 4))
    put("image.dm3", lambda p: _write_dm(p, tem.image.astype(np.float32), 0.5, "nm", 3))
    put("truncated.png", lambda p: p.write_bytes(Image.fromarray(tem.image)._repr_png_()[:60]))
    put("empty.tif", lambda p: p.write_bytes(b""))
    put("text.jpg", lambda p: p.write_text("not a JPEG"))
    put("broken.dm4", lambda p: p.write_bytes(b"\x00\x00\x00\x04" + bytes(40)))
    put("image.gif", lambda p: Image.fromarray(tem.image).save(p))
    put("rgba.png", lambda p: Image.fromarray(np.dstack([tem.image] * 3 + [np.full_like(tem.image, 255)])).save(p))
    put("gray16.png", lambda p: Image.fromarray(tem.image.astype(np.uint16) * 200).save(p))
    put("binary.png", lambda p: Image.fromarray(tem.image > 128).save(p))
    put("blank.png", lambda p: Image.fromarray(np.zeros((64, 64), np.uint8)).save(p))
    put("tiny.png", lambda p: Image.fromarray(np.zeros((1, 1), np.uint8)).save(p))
    put("palette.png", lambda p: Image.fromarray(tem.image).convert("P").save(p))
    put("animated.png", lambda p: Image.fromarray(tem.image).save(p, save_all=True, append_images=[Image.fromarray(255 - tem.image)]))
    f["tem"] = tem
    return f


def _models(root: Path) -> dict[str, Path]:
    import torch
    from napari_nanocrystal.segmentation.network import SeedFlowNet

    torch.manual_seed(0)
    m = {"tiny": SeedFlowNet((1, 4, 8), diameter_px=24).save(root / "tiny.safetensors")}
    m["random"] = root / "random.safetensors"
    m["random"].write_bytes(os.urandom(256))
    m["wide"] = root / "wide.pt"
    m["wide"].write_bytes(b"x")
    m["wide"].with_suffix(".json").write_text(json.dumps({"kind": "SeedFlowNet", "nbase": [1, 65536, 65536], "sz": 3, "diameter_px": 30.0}))
    m["badjson"] = root / "badjson.pt"
    m["badjson"].write_bytes(b"x")
    m["badjson"].with_suffix(".json").write_text("{nope")
    marker = root / "PWNED"
    m["pickle"] = root / "evil.pt"
    m["pickle"].write_bytes(
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."  # a pickle that runs a shell command if unpickled
    )
    m["marker"] = marker
    return m


def _recipe(rid: str, extra=None, **changes) -> dict:
    data = {
        "id": rid,
        "product": {"name": "PbSe", "role": "product"},
        "chemicals": [
            {"name": n, "amount_mmol": a, "role": "other"}
            for n, a in (("PbO", 5.0), ("Se", 5.0), ("ODE", 46.875), ("OLA", 5.015), ("TOP", 5.605), ("OA", 44.459))
        ]
        + (extra or []),
        "conditions": {"injection_temp_c": 160.0, "reaction_temp_c": 160.0, "time_min": 2.0},
        "outcome": {"size_nm": 5.65, "shape": "sphere"},
    }
    for path, value in changes.items():
        node, *keys = path.split("__")
        if not keys:
            data[node] = value
            continue
        target = data[node]
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return data


def _recipe_file(path: Path, *recipes) -> Path:
    path.write_text(json.dumps({"schema": "nc-recipes", "schema_version": "1.0", "recipes": list(recipes)}))
    return path


def _model_dir(root: Path, name: str, **params) -> Path:
    from nc_synthmodel.models import DEFAULT_MODEL_DIR

    folder = root / name
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    config = json.loads((folder / "model.json").read_text())
    config["params"].update(params)
    (folder / "model.json").write_text(json.dumps(config))
    return folder


def _append_many(path: str, prefix: str) -> None:
    from nc_synthmodel.io import append_recipes

    for b in range(5):
        append_recipes([_recipe(f"{prefix}{b}-{i}") for i in range(3)], path)


def _append_and_hang(path: str) -> None:
    from nc_synthmodel import files
    from nc_synthmodel.io import append_recipes

    files.os.fsync = lambda fd: time.sleep(600)
    append_recipes([_recipe("killed")], path)


def _executed_note(outcome: Outcome) -> Outcome:
    """``train --help``, reduced to its sentence about config files being executed."""
    text = " ".join(outcome.out.split())
    start = text.find("A config file")
    return Outcome(0, "--help: " + text[start : text.find("trust", start) + 5], "")


def _summary_rows(path: Path) -> Outcome:
    import pandas as pd

    stems = pd.read_csv(path)["output_stem"].tolist()
    return Outcome(0, f"summary.csv keeps the earlier row and adds the new one: {stems}", "")


def _concurrent(path: Path) -> Outcome:
    from nc_synthmodel.io import read_recipes

    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(path), p)) for p in "ab"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    n = len(read_recipes(path).recipes)
    return Outcome(0 if n == 31 else 1, f"{n} recipes after 2 processes appended 15 each to 1", "")


def _killed(path: Path) -> Outcome:
    from nc_synthmodel.io import append_recipes, read_recipes

    before = path.read_bytes()
    worker = multiprocessing.get_context("fork").Process(target=_append_and_hang, args=(str(path),))
    worker.start()
    deadline = time.monotonic() + 60
    while not [p for p in os.listdir(path.parent) if p.startswith(f".{path.stem}.") and ".tmp" in p] and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    intact = path.read_bytes() == before
    append_recipes([_recipe("after")], path)
    orphans = [p for p in os.listdir(path.parent) if p.startswith(f".{path.stem}.") and ".tmp" in p]
    ids = [r.id for r in read_recipes(path).recipes]
    ok = intact and not orphans and ids[-1] == "after"
    return Outcome(
        0 if ok else 1, f"killed mid-append: dataset intact {intact}; next append cleaned {0 if orphans else 1} orphan temp file", ""
    )


# ----------------------------------------------------------------------------------------
# probes


def _segment_probes(f, m, root, nc) -> list[Probe]:
    seg = lambda *a: lambda: call(nc, ["segment", *a, "--model", m["tiny"]])  # noqa: E731
    out = root / "seg"
    out.mkdir()
    existing = out / "exists.tif"
    existing.write_bytes(b"earlier labels")
    notes = out / "notes.csv"
    notes.write_text("my notes")
    blocker = root / "blocker"
    blocker.write_text("a file")
    ok = lambda o: o.code == 0  # noqa: E731
    P = Probe
    return [
        P(
            "segment",
            "--out is the input image itself",
            "error",
            seg(f["good.tif"], "--out", f["good.tif"]),
            ("good.tif", "replace the input"),
            protect=(f["good.tif"],),
        ),
        P(
            "segment",
            "--out is the input image, with --overwrite",
            "error",
            seg(f["good.tif"], "--out", f["good.tif"], "--overwrite"),
            ("good.tif",),
            protect=(f["good.tif"],),
        ),
        P(
            "segment",
            "--out exists, no --overwrite",
            "error",
            seg(f["good.png"], "--out", existing),
            ("exists.tif", "--overwrite"),
            protect=(existing,),
        ),
        P(
            "segment",
            "a CSV of the user's beside --out",
            "error",
            seg(f["good.png"], "--out", out / "notes.tif"),
            ("notes.csv",),
            protect=(notes,),
        ),
        P("segment", "NaN pixels (float TIFF)", "error", seg(f["nan.tif"], "--out", out / "n.tif"), ("nan.tif", "NaN")),
        P("segment", "infinite pixels", "error", seg(f["inf.tif"], "--out", out / "i.tif"), ("inf.tif", "infinite")),
        P("segment", "--confidence nan", "error", seg(f["good.png"], "--out", out / "c.tif", "--confidence", "nan"), ("--confidence",)),
        P("segment", "--confidence 2", "error", seg(f["good.png"], "--out", out / "c.tif", "--confidence", "2"), ("--confidence",)),
        P("segment", "--confidence -0.5", "error", seg(f["good.png"], "--out", out / "c.tif", "--confidence", "-0.5"), ("--confidence",)),
        P("segment", "20000 × 20000 TIFF (400 M pixels)", "error", seg(f["huge.tif"], "--out", out / "h.tif"), ("huge.tif", "too large")),
        P(
            "segment",
            "14000 × 14000 PNG (Pillow decompression bomb)",
            "error",
            seg(f["bomb.png"], "--out", out / "b.tif"),
            ("bomb.png", "too large"),
        ),
        P("segment", "3-page TIFF stack", "error", seg(f["stack.tif"], "--out", out / "s.tif"), ("stack.tif", "--plane")),
        P("segment", "ImageJ time series (TYX)", "error", seg(f["hyper.tif"], "--out", out / "t.tif"), ("hyper.tif", "TYX")),
        P(
            "segment",
            "2-channel TIFF written as (H, W, 2)",
            "error",
            seg(f["twochan.tif"], "--out", out / "2.tif"),
            ("twochan.tif", "axes"),
        ),
        P("segment", "ImageJ 2-channel TIFF (CYX)", "error", seg(f["cyx.tif"], "--out", out / "cyx.tif"), ("cyx.tif", "CYX")),
        P(
            "segment",
            "TIFF stack with --plane 1",
            "ok",
            seg(f["stack.tif"], "--out", out / "p.tif", "--plane", "1", "--confidence", "0"),
            check=ok,
        ),
        P(
            "segment",
            "TIFF stack with --plane 7 (no such plane)",
            "error",
            seg(f["stack.tif"], "--out", out / "p7.tif", "--plane", "7"),
            ("stack.tif", "plane 7"),
        ),
        P(
            "segment",
            "DM4 file",
            "ok",
            seg(f["image.dm4"], "--out", out / "dm4.tif", "--confidence", "0"),
            check=lambda o: o.code == 0 and (out / "dm4.tif").is_file(),
        ),
        P(
            "segment",
            "DM3 file",
            "ok",
            seg(f["image.dm3"], "--out", out / "dm3.tif", "--confidence", "0"),
            check=lambda o: o.code == 0 and (out / "dm3.tif").is_file(),
        ),
        P("segment", "truncated PNG", "error", seg(f["truncated.png"], "--out", out / "tr.tif"), ("truncated.png", "truncated")),
        P("segment", "empty (0-byte) TIFF", "error", seg(f["empty.tif"], "--out", out / "e.tif"), ("empty.tif", "empty")),
        P("segment", "a text file named .jpg", "error", seg(f["text.jpg"], "--out", out / "j.tif"), ("text.jpg", "JPG")),
        P("segment", "corrupt DM4", "error", seg(f["broken.dm4"], "--out", out / "d.tif"), ("broken.dm4",)),
        P("segment", "missing file", "error", seg(root / "missing.png", "--out", out / "m.tif"), ("missing.png", "not found")),
        P("segment", "a GIF (unsupported type)", "error", seg(f["image.gif"], "--out", out / "g.tif"), ("image.gif", "unsupported")),
        P("segment", "output folder is a file", "error", seg(f["good.png"], "--out", blocker / "x.tif"), ("blocker", "existing file")),
        P("segment", "--tile-size 0", "error", seg(f["good.png"], "--out", out / "ts.tif", "--tile-size", "0"), ("--tile-size",)),
        P("segment", "--diameter -5", "error", seg(f["good.png"], "--out", out / "d5.tif", "--diameter", "-5"), ("--diameter",)),
        P("segment", "--diameter nan", "error", seg(f["good.png"], "--out", out / "dn.tif", "--diameter", "nan"), ("--diameter",)),
        P(
            "segment",
            "two inputs with one stem into one folder",
            "error",
            seg(f["good.png"], f["good.tif"], "--out", out / "both"),
            ("good",),
        ),
        P("segment", "RGBA PNG", "ok", seg(f["rgba.png"], "--out", out / "rgba.tif", "--confidence", "0"), check=ok),
        P("segment", "16-bit PNG", "ok", seg(f["gray16.png"], "--out", out / "g16.tif", "--confidence", "0"), check=ok),
        P("segment", "1-bit PNG", "ok", seg(f["binary.png"], "--out", out / "bin.tif", "--confidence", "0"), check=ok),
        P("segment", "palette PNG", "ok", seg(f["palette.png"], "--out", out / "pal.tif", "--confidence", "0"), check=ok),
        P(
            "segment",
            "blank image (no particles)",
            "ok",
            seg(f["blank.png"], "--out", out / "blank.tif"),
            check=lambda o: o.code == 0 and ": 0 particles" in o.out,
        ),
        P(
            "segment",
            "1 × 1 pixel image",
            "ok",
            seg(f["tiny.png"], "--out", out / "tiny.tif"),
            check=lambda o: o.code == 0 and ": 0 particles" in o.out,
        ),
        P("segment", "animated PNG (2 frames)", "error", seg(f["animated.png"], "--out", out / "anim.tif"), ("animated.png", "--plane")),
        P(
            "segment",
            "model file missing",
            "error",
            lambda: call(nc, ["segment", f["good.png"], "--out", out / "mm.tif", "--model", root / "none.safetensors"]),
            ("none.safetensors",),
        ),
        P(
            "segment",
            "model file of random bytes",
            "error",
            lambda: call(nc, ["segment", f["good.png"], "--out", out / "mr.tif", "--model", m["random"]]),
            ("random.safetensors",),
        ),
        P(
            "segment",
            "model config asking for 65,536 channels",
            "error",
            lambda: call(nc, ["segment", f["good.png"], "--out", out / "mw.tif", "--model", m["wide"]]),
            ("wide.pt", "65,536"),
        ),
        P(
            "segment",
            "model config sidecar not JSON",
            "error",
            lambda: call(nc, ["segment", f["good.png"], "--out", out / "mj.tif", "--model", m["badjson"]]),
            ("badjson.pt",),
        ),
        P(
            "segment",
            "model file that is a pickle running a command",
            "error",
            lambda: call(nc, ["segment", f["good.png"], "--out", out / "mp.tif", "--model", m["pickle"]]),
            ("evil.pt",),
        ),
        P(
            "segment",
            "… and the pickle's command never ran",
            "ok",
            lambda: Outcome(0, f"marker file exists: {m['marker'].exists()}", ""),
            check=lambda o: not m["marker"].exists(),
        ),
    ]


def _analyze_probes(f, m, root, nc) -> list[Probe]:
    from napari_nanocrystal.analysis import analyze_image, analyze_paths

    tem = f["tem"]
    out = root / "analyze"
    ana = lambda *a: lambda: call(nc, ["analyze", *a, "--model", m["tiny"]])  # noqa: E731
    labelled = lambda images, folder, **o: analyze_paths(
        images, folder, labels={p: tem.labels for p in images}, nm_per_px=0.5, min_area_px=5, **o
    )  # noqa: E731
    kept = root / "kept"
    a, b = root / "a.tif", root / "b.tif"
    tifffile.imwrite(a, tem.image)
    tifffile.imwrite(b, tem.image)
    labelled([a, b], kept)
    earlier = tuple(kept / f"b{s}" for s in ("_particles.csv", "_labels.tif", "_overlay.png", "_outcome.json"))

    def rerun_broken():
        b.write_bytes(b"II*\x00" + bytes(12))
        report = labelled([a, b], kept, overwrite=True)
        return Outcome(0, "; ".join(r.error for r in report.failed), "")

    merged = root / "merged"
    labelled([a], merged)
    foreign = root / "foreign"
    foreign.mkdir()
    (foreign / "summary.csv").write_text("mine,not,yours\n")
    clash_dir = root / "clash"
    clash_dir.mkdir()
    x, x_labels = clash_dir / "x.tif", clash_dir / "x_labels.tif"
    tifffile.imwrite(x, tem.image)
    tifffile.imwrite(x_labels, tem.image)
    exists_dir = root / "exists"
    labelled([a], exists_dir)
    blocker = root / "blocker2"
    blocker.write_text("a file")
    P = Probe
    return [
        P("analyze", "--nm-per-px 1e30", "error", ana(f["good.png"], "--out", out, "--nm-per-px", "1e30"), ("--nm-per-px", "nm/px")),
        P("analyze", "--nm-per-px 0", "error", ana(f["good.png"], "--out", out, "--nm-per-px", "0"), ("--nm-per-px",)),
        P("analyze", "--nm-per-px -1", "error", ana(f["good.png"], "--out", out, "--nm-per-px", "-1"), ("--nm-per-px",)),
        P(
            "analyze",
            "--nm-per-px 1e-9 (a unit mistake)",
            "error",
            ana(f["good.png"], "--out", out, "--nm-per-px", "1e-9"),
            ("--nm-per-px", "plausible"),
        ),
        P("analyze", "--min-area-px -1", "error", ana(f["good.png"], "--out", out, "--min-area-px", "-1"), ("--min-area-px",)),
        P(
            "analyze",
            "--overwrite run where an image now fails",
            "ok",
            rerun_broken,
            check=lambda o: o.code == 0 and "earlier outputs of b are kept" in o.out,
            protect=earlier,
        ),
        P(
            "analyze",
            "one more image into a results folder",
            "ok",
            lambda: _summary_rows(labelled([f["good.tif"]], merged).summary_path),
            check=lambda o: o.code == 0 and len((merged / "summary.csv").read_text().strip().splitlines()) == 3,
            protect=(merged / "a_particles.csv",),
        ),
        P(
            "analyze",
            "a foreign summary.csv in the output folder",
            "error",
            lambda: api(labelled, [a], foreign),
            ("summary.csv", "not a nanocrystal summary"),
            protect=(foreign / "summary.csv",),
        ),
        P(
            "analyze",
            "outputs exist, no --overwrite",
            "error",
            ana(a, "--out", exists_dir, "--nm-per-px", "0.5"),
            ("already exist", "--overwrite"),
            protect=(exists_dir / "a_particles.csv",),
        ),
        P(
            "analyze",
            "an input named like an output (x_labels.tif)",
            "error",
            lambda: api(labelled, [x, x_labels], clash_dir, overwrite=True),
            ("x_labels.tif", "replace the input"),
            protect=(x_labels,),
        ),
        P("analyze", "NaN pixels", "error", ana(f["nan.tif"], "--out", root / "an", "--nm-per-px", "0.5"), ("nan.tif", "NaN")),
        P("analyze", "a TIFF stack", "error", ana(f["stack.tif"], "--out", root / "as", "--nm-per-px", "0.5"), ("stack.tif", "--plane")),
        P("analyze", "output folder is a file", "error", ana(f["good.png"], "--out", blocker, "--nm-per-px", "0.5"), ("blocker2",)),
        P(
            "analyze",
            "output folder inside a file",
            "error",
            ana(f["good.png"], "--out", blocker / "sub", "--nm-per-px", "0.5"),
            ("blocker2",),
        ),
        P(
            "analyze API",
            "image with NaN pixels",
            "error",
            lambda: api(analyze_image, np.where(tem.labels > 0, np.nan, 1.0), labels=tem.labels, nm_per_px=0.5),
            ("NaN",),
        ),
        P(
            "analyze API",
            "labels of another shape",
            "error",
            lambda: api(analyze_image, tem.image, labels=tem.labels[:10], nm_per_px=0.5),
            ("labels shape",),
        ),
        P(
            "analyze API",
            "boolean mask as labels",
            "error",
            lambda: api(analyze_image, tem.image, labels=tem.labels > 0, nm_per_px=0.5),
            ("label a boolean mask",),
        ),
        P(
            "analyze API",
            "nm_per_px as text '0.5'",
            "error",
            lambda: api(analyze_image, tem.image, labels=tem.labels, nm_per_px="0.5"),
            ("nm_per_px must be a number",),
        ),
        P(
            "weak-labels",
            "DM4 file (self-free Otsu detector)",
            "ok",
            lambda: call(nc, ["weak-labels", f["image.dm4"], "--detector", "otsu", "--out", root / "weak"]),
            check=lambda o: o.code == 0 and (root / "weak" / "image_weak.png").is_file(),
        ),
        P(
            "weak-labels",
            "model config asking for 65,536 channels",
            "error",
            lambda: call(nc, ["weak-labels", f["good.png"], "--out", root / "weak2", "--model", m["wide"]]),
            ("wide.pt", "65,536"),
        ),
        P(
            "train",
            "a config file (Python, executed by mmengine)",
            "ok",
            lambda: _executed_note(call(nc, ["train", "--help"])),
            check=lambda o: "EXECUTED" in o.out,
        ),
    ]


def _recipe_probes(root) -> list[Probe]:
    from nc_synthmodel.cli import main as sm
    from nc_synthmodel.io import append_recipes, write_recipes
    from nc_synthmodel.models import SynthesisTransformer

    r = root / "recipes"
    r.mkdir()
    pred = lambda path, *a: lambda: call(sm, ["predict", path, *a])  # noqa: E731
    one = lambda name, *recipes: _recipe_file(r / name, *recipes)  # noqa: E731
    (r / "zero.json").write_bytes(b"")
    (r / "binary.json").write_bytes(bytes(range(256)) * 4)
    (r / "corrupt.xlsx").write_bytes(b"PK\x03\x04" + bytes(300))
    (r / "header.csv").write_text(
        "ID,Temperature1,Temperature2,Speed,Time,Num,Y1,Y2,Y3,T1,T2,"
        + ",".join(f"{s}1" for s in "ABCDEFGHIJKLM")
        + ","
        + ",".join(f"{s}2" for s in "ABCDEFGHIJKLM")
        + "\n"
    )
    (r / "recipes.txt").write_text("hello")
    mixed = one("mixed.json", _recipe("good-1"), _recipe("unknown", [{"name": "NotAChemical42", "amount_mmol": 1.0}]), _recipe("good-2"))
    crowded = one("crowded.json", _recipe("good"), _recipe("crowded", [{"name": f"X{i}", "amount_mmol": 1.0} for i in range(200)]))
    fourteen = one(
        "fourteen.json",
        _recipe("good"),
        _recipe("fourteen", [{"name": n, "amount_mmol": 1.0} for n in ("OAm", "DDT", "TOPO", "HDA", "ODA", "TOA", "Toluene", "Hexane")]),
    )
    named = lambda *ids: lambda o: o.code == 1 and all(f"recipe {i}" in o.err for i in ids) and "good" in o.out  # noqa: E731
    dataset = r / "dataset.json"
    write_recipes([_recipe("1")], dataset)
    killed = r / "killed.json"
    write_recipes([_recipe("1")], killed)
    csv_data = r / "dataset.csv"
    write_recipes([_recipe("1")], csv_data)
    dup = r / "dup.json"
    write_recipes([_recipe("1")], dup)
    predictions = r / "pred.csv"
    predictions.write_text("earlier predictions")
    wide, words, missing = _model_dir(root, "wide", d_model=65536), _model_dir(root, "words", n_layers="4"), _model_dir(root, "missing")
    (missing / "weights.safetensors").unlink()
    binary_config = _model_dir(root, "binary_config")
    (binary_config / "model.json").write_bytes(bytes(range(256)))
    single = one("single.json", _recipe("x"))
    P = Probe
    return [
        P("predict", "0-byte JSON", "error", pred(r / "zero.json"), ("zero.json", "empty")),
        P("predict", "JSON with an empty recipe list", "error", pred(one("none.json")), ("none.json", "no valid recipes")),
        P("predict", "CSV with a header only", "error", pred(r / "header.csv"), ("header.csv", "no valid recipes")),
        P("predict", "binary file named .json", "error", pred(r / "binary.json"), ("binary.json", "not a text file")),
        P("predict", "corrupt .xlsx", "error", pred(r / "corrupt.xlsx"), ("corrupt.xlsx", "corrupt")),
        P("predict", "unknown file type .txt", "error", pred(r / "recipes.txt"), ("recipes.txt",)),
        P("predict", "missing file", "error", pred(r / "nope.json"), ("nope.json", "not found")),
        P("predict", "one unknown chemical among good recipes", "ok", pred(mixed), check=named("unknown")),
        P("predict", "200 chemicals in one recipe", "ok", pred(crowded), check=named("crowded")),
        P("predict", "14 chemicals (more than the model's slots)", "ok", pred(fourteen), check=named("fourteen")),
        P("predict", "amount 1e9 mmol", "error", pred(one("amount.json", _recipe("a", chemicals__0__amount_mmol=1e9))), ("amount.json",)),
        P(
            "predict",
            "one recipe taking 1e9 min among good ones",
            "ok",
            pred(one("rows.json", _recipe("good"), _recipe("slow", conditions__time_min=1e9))),
            check=named("slow"),
        ),
        P("predict", "time_min given as text '2'", "error", pred(one("text.json", _recipe("t", conditions__time_min="2"))), ("text.json",)),
        P("predict", "success given as 'yes'", "error", pred(one("yes.json", _recipe("y", outcome__success="yes"))), ("yes.json",)),
        P(
            "predict",
            "provenance nm_per_px 1e30",
            "error",
            pred(one("px.json", _recipe("p", provenance={"nm_per_px": 1e30}))),
            ("px.json",),
        ),
        P(
            "predict",
            "reaction at 5000 °C",
            "error",
            pred(one("hot.json", _recipe("h", conditions__reaction_temp_c=5000.0))),
            ("hot.json",),
        ),
        P("predict", "size 1e32 nm", "error", pred(one("big.json", _recipe("b", outcome__size_nm=1e32))), ("big.json",)),
        P("predict", "negative amount", "error", pred(one("neg.json", _recipe("n", chemicals__0__amount_mmol=-5.0))), ("neg.json",)),
        P("predict", "model config d_model 65,536", "error", pred(single, "--model", wide), ("model.json", "d_model")),
        P("predict", "model config n_layers as text", "error", pred(single, "--model", words), ("model.json", "n_layers")),
        P("predict", "model folder without weights", "error", pred(single, "--model", missing), ("weights.safetensors",)),
        P("predict", "model.json of binary bytes", "error", pred(single, "--model", binary_config), ("model.json",)),
        P("predict", "model folder that does not exist", "error", pred(single, "--model", root / "no-model"), ("no-model",)),
        P(
            "cv",
            "--predictions over an existing file",
            "error",
            lambda: call(sm, ["cv", dataset, "--model", "RF", "--predictions", predictions]),
            ("pred.csv", "--overwrite"),
            protect=(predictions,),
        ),
        P(
            "cv",
            "--predictions is the input, with --overwrite",
            "error",
            lambda: call(sm, ["cv", dataset, "--model", "RF", "--predictions", dataset, "--overwrite"]),
            ("dataset.json", "replace the input"),
            protect=(dataset,),
        ),
        P("append_recipes", "2 processes appending at once (JSON)", "ok", lambda: _concurrent(dataset), check=lambda o: o.code == 0),
        P("append_recipes", "2 processes appending at once (CSV)", "ok", lambda: _concurrent(csv_data), check=lambda o: o.code == 0),
        P("append_recipes", "SIGKILL in the middle of an append", "ok", lambda: _killed(killed), check=lambda o: o.code == 0),
        P(
            "append_recipes",
            "an ID already in the dataset",
            "error",
            lambda: api(append_recipes, [_recipe("1")], dup),
            ("dup.json", "already present: 1"),
            protect=(dup,),
        ),
        P(
            "append_recipes",
            "… with duplicates='skip'",
            "ok",
            lambda: api(append_recipes, [_recipe("1"), _recipe("2")], dup, duplicates="skip"),
            check=lambda o: o.code == 0 and '"2"' in dup.read_text() and dup.read_text().count('"id"') == 2,
        ),
        P(
            "append_recipes",
            "one ID twice in the batch",
            "error",
            lambda: api(append_recipes, [_recipe("9"), _recipe("9")], dup),
            ("repeat the ID",),
        ),
        P(
            "SynthesisTransformer.load",
            "config with d_model 65,536",
            "error",
            lambda: api(SynthesisTransformer.load, wide),
            ("model.json", "65536"),
        ),
    ]


# ----------------------------------------------------------------------------------------
# report


def run_all(root: Path) -> list[tuple[Probe, str, str, float]]:
    from napari_nanocrystal.cli import main as nc

    files, models = _images(root), _models(root)
    probes = _segment_probes(files, models, root, nc) + _analyze_probes(files, models, root, nc) + _recipe_probes(root)
    rows = []
    for i, probe in enumerate(probes, 1):
        before = {p: _digest(p) for p in probe.protect}
        start = time.perf_counter()
        outcome = probe.run()
        seconds = time.perf_counter() - start
        category, detail = classify(probe, outcome, seconds, before)
        rows.append((probe, category, detail, seconds))
        print(f"[{i}/{len(probes)}] {category:14s} {probe.tool}: {probe.what} ({seconds:.1f} s)", file=sys.stderr)
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report(rows, root: Path) -> str:
    counts = Counter(category for _, category, _, _ in rows)
    lines = [
        "# Bad inputs: what each one does",
        "",
        f"{len(rows)} kinds of bad or odd input, run by [`benchmarks/bad_inputs.py`](../benchmarks/bad_inputs.py) "
        "(`python benchmarks/bad_inputs.py` rewrites this page) against `nanocrystal`, `nc-synthmodel`, model loading "
        "and `append_recipes` — the classes of issue 19.  Categories: *clear error* (non-zero exit, one line naming "
        "the input, no file of the user's touched), *handled right*, *warning*; and the ones that must stay empty: "
        "*data loss*, *silently wrong*, *traceback* (or a message that does not name the input), *ran away* (> 120 s).",
        "",
        "| category | rows |",
        "|---|---:|",
        *(f"| {c} | {counts.get(c, 0)} |" for c in CATEGORIES),
        "",
        "| # | tool | input | outcome | what the user sees |",
        "|---:|---|---|---|---|",
    ]
    for i, (probe, category, detail, _) in enumerate(rows, 1):
        lines.append(f"| {i} | {probe.tool} | {_cell(probe.what)} | {category} | {_cell(detail.replace(str(root) + os.sep, ''))} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "bad_inputs.md"), help="markdown table to write (default: %(default)s)")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.INFO)  # progress logs are not the report; warnings still show
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as tmp:
        rows = run_all(Path(tmp))
        text = report(rows, Path(tmp))
    from nc_synthmodel.files import atomic_write_text

    atomic_write_text(args.out, text)
    counts = Counter(category for _, category, _, _ in rows)
    print(f"{len(rows)} probes: " + ", ".join(f"{c} {counts.get(c, 0)}" for c in CATEGORIES) + f" -> {args.out}")
    return 1 if any(counts.get(c) for c in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
