"""Drive the whole napari workflow in a real viewer window and save a screenshot of every step.

    xvfb-run -a python examples/napari_screenshots.py docs/screenshots
    python examples/napari_screenshots.py OUT [--model W.safetensors] [--synthesis-model DIR] [--overwrite]

Opens the synthetic sample (File ▸ Open Sample ▸ Nanocrystal), then — with the plugin's dock
widgets, their real background workers and napari progress bars — calibrates it from its scale
bar, segments it (the shipped default model when installed, else ``--model``, else the
Otsu–watershed baseline), measures the particles (table and size histogram), clusters their
shapes, makes weak labels, trains the "tiny" preset for a few iterations, and fills a recipe
whose measured outcome is appended to a recipe dataset and compared with the prediction of the
nc-synthmodel model (the shipped default or ``--synthesis-model``).

Writes only ``OUT/01_sample.png`` … ``OUT/09_recipe.png`` (whole window, atomically); the
dataset, weak labels and training run go to a temporary folder (``--work DIR`` keeps them).
Existing screenshots are kept unless ``--overwrite``.  Needs a display (Xvfb is fine).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

SHOTS = (
    "01_sample",
    "02_calibrate",
    "03_segment",
    "04_measure_table",
    "05_measure_histogram",
    "06_shapes",
    "07_weak_labels",
    "08_train",
    "09_recipe",
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the PNG files (e.g. docs/screenshots)")
    parser.add_argument("--model", type=Path, help="segmentation weight file (default: the shipped model, else the baseline)")
    parser.add_argument("--synthesis-model", type=Path, help="nc-synthmodel model folder (default: the shipped one)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing screenshots")
    parser.add_argument("--work", type=Path, help="a new folder for the dataset, weak labels and training run (default: temporary)")
    parser.add_argument("--size", default="1500x950", help="window size WIDTHxHEIGHT (default 1500x950)")
    return parser.parse_args(argv)


class Session:
    """A viewer with the plugin's widgets docked as tabs, and screenshot helpers."""

    def __init__(self, out: Path, size: tuple[int, int]):
        import napari

        self.napari = napari
        self.out = out
        self.viewer = napari.Viewer(title="napari-nanocrystal")
        self.viewer.window._qt_window.resize(*size)
        self.docks: dict[str, object] = {}
        self.widgets: dict[str, object] = {}

    def dock(self, name: str, widget) -> None:
        self.widgets[name] = widget
        self.docks[name] = self.viewer.window.add_dock_widget(widget, name=name, area="right", tabify=bool(self.docks))

    def show(self, name: str) -> None:
        self.docks[name].show()
        self.docks[name].raise_()
        self.settle()

    def scroll_to_end(self, name: str) -> None:
        """Scroll a docked widget to its bottom (where results are shown)."""
        from qtpy.QtWidgets import QScrollArea

        for area in self.docks[name].findChildren(QScrollArea):
            bar = area.verticalScrollBar()
            bar.setValue(bar.maximum())
        self.settle()

    def settle(self, seconds: float = 0.5) -> None:
        from qtpy.QtWidgets import QApplication

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            QApplication.processEvents()
            time.sleep(0.02)

    def run(self, name: str, action=None, timeout_s: float = 900.0) -> None:
        """Start a widget's task and process events until it has finished; stop on errors."""
        widget = self.widgets[name]
        (action or widget.run)()
        end = time.monotonic() + timeout_s
        while widget.task.is_running:
            if time.monotonic() > end:
                raise TimeoutError(f"{name}: still running after {timeout_s:.0f} s")
            self.settle(0.1)
        if widget.task.last_error is not None:
            raise SystemExit(f"{name} failed: {widget.task.last_error}")
        self.settle()

    def shot(self, stem: str) -> Path:
        from napari._qt.dialogs.qt_notification import NapariQtNotification
        from nc_synthmodel.io import atomic_write_bytes
        from PIL import Image

        for toast in self.viewer.window._qt_window.findChildren(NapariQtNotification):
            toast.close()  # pop-up notifications would cover the canvas
        self.settle()
        pixels = self.viewer.screenshot(canvas_only=False, flash=False)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        path = self.out / f"{stem}.png"
        atomic_write_bytes(path, buffer.getvalue())
        print(f"wrote {path}")
        return path


def main(argv=None) -> int:
    args = parse_args(argv)
    out = args.out
    existing = [out / f"{s}.png" for s in SHOTS if (out / f"{s}.png").exists()]
    if existing and not args.overwrite:
        print(f"{existing[0]} exists (and {len(existing) - 1} more): pass --overwrite to replace them", file=sys.stderr)
        return 2
    if args.work is not None and args.work.exists():
        print(f"{args.work} exists: --work must name a new folder", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="nanocrystal-screenshots-"))
    work.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))
    os.environ.setdefault("OMP_NUM_THREADS", "2")

    from napari_nanocrystal._widgets.calibrate import CalibrateWidget
    from napari_nanocrystal._widgets.measure import MeasureWidget
    from napari_nanocrystal._widgets.recipe import MODEL_FOLDER, RecipeWidget
    from napari_nanocrystal._widgets.segment import MODEL_BASELINE, MODEL_DEFAULT, SegmentWidget, shipped_models
    from napari_nanocrystal._widgets.shapes import ShapesWidget
    from napari_nanocrystal._widgets.train import TrainWidget
    from napari_nanocrystal._widgets.weak_labels import WeakLabelsWidget

    session = Session(out, (width, height))
    viewer = session.viewer
    for name, cls in (
        ("Calibrate", CalibrateWidget),
        ("Segment", SegmentWidget),
        ("Measure", MeasureWidget),
        ("Shapes", ShapesWidget),
        ("Weak labels", WeakLabelsWidget),
        ("Train", TrainWidget),
        ("Recipe", RecipeWidget),
    ):
        session.dock(name, cls(viewer))

    # 1. the sample
    viewer.open_sample("napari-nanocrystal", "synthetic_tem")
    image = viewer.layers["synthetic TEM"]
    viewer.layers["synthetic TEM ground truth"].visible = False
    session.show("Calibrate")
    session.shot("01_sample")

    # 2. calibrate from the scale bar
    calibrate = session.widgets["Calibrate"]
    calibrate.image.value, calibrate.mode.value = image, "scale bar (OCR)"
    session.run("Calibrate", calibrate.read)
    session.shot("02_calibrate")

    # 3. segment
    segment = session.widgets["Segment"]
    segment.image.value = image
    if args.model is not None:
        segment.select_model_file(args.model)
    elif "default" in shipped_models():
        segment.model.value = MODEL_DEFAULT
    else:
        segment.model.value = MODEL_BASELINE
    segment.diameter.value, segment.diameter_unit.value = 15.0, "nm"
    session.show("Segment")
    session.run("Segment")
    labels = viewer.layers["synthetic TEM labels"]
    session.shot("03_segment")

    # 4–5. measure: table, then histogram
    measure = session.widgets["Measure"]
    measure.labels.value = labels
    session.show("Measure")
    session.run("Measure")
    measure.table.select_labels([int(labels.features["label"].iloc[len(labels.features) // 2])])
    measure.select_particles(measure.table.selected_labels())
    session.shot("04_measure_table")
    viewer.reset_view()
    measure.tabs.setCurrentIndex(1)
    session.shot("05_measure_histogram")

    # 6. shapes
    shapes = session.widgets["Shapes"]
    shapes.reset_choices()
    shapes.layers.value = [labels]
    shapes.n_clusters.value = 4
    session.show("Shapes")
    session.run("Shapes")
    session.shot("06_shapes")

    # 7. weak labels (Otsu detector) saved as training pairs
    weak = session.widgets["Weak labels"]
    weak.images.value = [image]
    weak.detector.value = "Otsu + watershed (no model)"
    weak.diameter.value = 15.0
    weak.folder.value = work / "weak_labels"
    session.show("Weak labels")
    shapes.colour_by.value = "original colours"
    labels.visible = False
    session.run("Weak labels")
    session.shot("07_weak_labels")
    viewer.layers["synthetic TEM weak labels"].visible = False
    labels.visible = True

    # 8. train the tiny preset (seconds) on the sample's ground truth + its weak labels
    train = session.widgets["Train"]
    truth = viewer.layers["synthetic TEM ground truth"]
    truth.metadata.update(source_image=image.name, source_image_id=str(image.unique_id))
    train.reset_choices()
    train.labelled_layers.value = [truth]
    train.weak_layers.value = [viewer.layers["synthetic TEM weak labels"]]
    train.config.value = "tiny"
    train.out.value = work / "training_run"
    session.show("Train")
    session.run("Train", train.start)
    session.shot("08_train")

    # 9. recipe: the measured outcome appended to a dataset, the model's prediction beside it
    recipe = session.widgets["Recipe"]
    recipe.reset_choices()
    recipe.labels.value = labels
    recipe.recipe_id.value, recipe.product.value = "synthetic-001", "PbSe"
    recipe.chemicals.table.setRowCount(0)
    for name, amount, role in (("PbO", 5.0, "precursor"), ("Se", 5.0, "precursor"), ("OA", 22.2, "ligand"), ("ODE", 46.9, "solvent")):
        recipe.chemicals.add_row(name, amount, role)
    recipe.injection.value = recipe.reaction.value = 150.0
    recipe.time.value = 5.0
    if args.synthesis_model is not None:
        recipe.model.value = MODEL_FOLDER
        recipe.model_dir.value = args.synthesis_model
    recipe.dataset.value = work / "recipes.json"
    session.show("Recipe")
    session.run("Recipe", recipe.append)  # append, then predict
    while recipe.task.is_running:
        session.settle(0.1)
    session.scroll_to_end("Recipe")  # the prediction table sits below the form
    session.shot("09_recipe")
    print(recipe.note.value)
    viewer.close()
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
