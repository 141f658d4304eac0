"""Recipe widget: a synthesis recipe with the outcome measured on a Labels layer → a dataset row.

The form holds the recipe of :mod:`nc_synthmodel.contract` (product; chemicals with amount in
mmol and role; injection/reaction temperature, heating rate, time; DOI), typed or loaded from a
JSON/CSV/xlsx recipe file.  The measured :class:`~nc_synthmodel.contract.Outcome` comes from a
measured Labels layer (:func:`~nc_synthmodel.contract.outcome_from_particles`), with its
provenance (image, nm/px, calibration source).  "Append" adds the recipe to a dataset file
atomically (:func:`nc_synthmodel.io.append_recipes`; an existing ID is refused).  When an
nc-synthmodel model is available (the shipped default, or a saved model folder) the predicted
size, shape and success are shown beside the measured ones.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path

from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, Label, LineEdit, PushButton
from napari.layers import Labels
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QScrollArea, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ._common import TaskPanel, notify_error, notify_info
from ._layers import compact, connect_layer_events, nm_per_px, source_image
from .measure import particle_table

logger = logging.getLogger(__name__)

ROLES = ("precursor", "ligand", "solvent", "other")
NO_LAYER = "none (outcome from the loaded recipe)"
MODEL_DEFAULT = "shipped default"
MODEL_FOLDER = "model folder…"


class NoModel(str):
    """Why no synthesis model can be used (not installed, none shipped, unreadable).

    A result, not an exception: worker results that are exceptions are raised by superqt.
    """


def predict_outcome(recipe, model_dir=None) -> Generator:
    """Task: the model's prediction for ``recipe`` (dict: size_nm, shape, shape_probabilities,
    success_probability); returns ``NoModel`` (not raised) when no model is available."""
    yield "loading the synthesis model", 0.1
    try:
        from nc_synthmodel import models
    except ImportError as error:
        return NoModel(f"no model: nc_synthmodel.models cannot be imported ({error})")
    try:
        if model_dir is None:
            model = models.default_model()
        else:
            model = models.load_model(model_dir)  # a saved forest or transformer
    except (FileNotFoundError, ValueError, OSError) as error:
        return NoModel(f"no model: {error}")
    yield "predicting", 0.6
    return model.predict_outcomes([recipe])[0]


def append_recipe(recipe, path) -> Generator:
    """Task: append one recipe to a dataset file (atomic); returns the path."""
    from nc_synthmodel.io import append_recipes

    yield f"appending {recipe.id} to {Path(path).name}", 0.2
    return append_recipes([recipe], path)


class ChemicalsTable(QWidget):
    """Editable table of reactants: name, amount (mmol), role."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels(["chemical", "amount (mmol)", "role"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(120)
        add, remove = QPushButton("Add chemical"), QPushButton("Remove selected")
        add.clicked.connect(lambda: self.add_row())
        remove.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

    def add_row(self, name: str = "", amount_mmol=None, role: str = "precursor") -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(name))
        self.table.setItem(row, 1, QTableWidgetItem("" if amount_mmol is None else f"{amount_mmol:g}"))
        roles = QComboBox()
        roles.addItems(ROLES)
        roles.setCurrentText(role if role in ROLES else "other")
        self.table.setCellWidget(row, 2, roles)

    def remove_selected(self) -> None:
        for row in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(row)

    def set_chemicals(self, chemicals) -> None:
        self.table.setRowCount(0)
        for chemical in chemicals:
            self.add_row(chemical.name, chemical.amount_mmol, chemical.role)

    def chemicals(self) -> list[dict]:
        """Rows as contract dicts; blank rows skipped; a bad amount raises ValueError naming the row."""
        out = []
        for row in range(self.table.rowCount()):
            name = (self.table.item(row, 0).text() if self.table.item(row, 0) else "").strip()
            amount = (self.table.item(row, 1).text() if self.table.item(row, 1) else "").strip()
            if not name and not amount:
                continue
            try:
                value = float(amount.replace(",", ".")) if amount else None
            except ValueError:
                raise ValueError(f"chemical row {row + 1} ({name or 'no name'}): amount {amount!r} is not a number (mmol)") from None
            out.append({"name": name, "amount_mmol": value, "role": self.table.cellWidget(row, 2).currentText()})
        return out


class RecipeWidget(QWidget):
    """Recipe form + measured outcome → appended dataset row; predicted vs measured outcome."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.loaded: dict = {}  # id → Recipe from the last file loaded
        self.prediction: dict | None = None
        self.source_file = FileEdit(label="load recipes from", mode="r", filter="*.json *.csv *.xlsx")
        self.load_button = PushButton(text="Load")
        self.pick = ComboBox(label="recipe", choices=[])
        self.recipe_id = LineEdit(label="recipe ID")
        self.product = LineEdit(label="product")
        self.injection = FloatSpinBox(label="injection temp (°C)", value=25.0, min=-273.0, max=2000.0, step=1.0)
        self.reaction = FloatSpinBox(label="reaction temp (°C)", value=25.0, min=-273.0, max=2000.0, step=1.0)
        self.heating = FloatSpinBox(label="heating rate (°C/min, 0 = hot injection)", value=0.0, min=0.0, max=1e4, step=0.5)
        self.time = FloatSpinBox(label="time (min)", value=0.0, min=0.0, max=1e6, step=1.0)
        self.doi = LineEdit(label="DOI")
        self.labels = ComboBox(label="measured outcome from", choices=self._labels_choices)
        self.dataset = FileEdit(label="dataset file", mode="w", filter="*.csv *.json")
        self.append_button = PushButton(text="Append recipe to dataset")
        self.model = ComboBox(label="prediction model", choices=[MODEL_DEFAULT, MODEL_FOLDER], value=MODEL_DEFAULT)
        self.model_dir = FileEdit(label="model folder", mode="d", visible=False)
        self.predict_button = PushButton(text="Predict and compare")
        self.note = Label(value="")
        self.chemicals = ChemicalsTable(self)
        top = Container(widgets=[self.source_file, self.load_button, self.pick, self.recipe_id, self.product])
        middle = Container(
            widgets=[self.injection, self.reaction, self.heating, self.time, self.doi, self.labels, self.dataset, self.append_button]
        )
        bottom = Container(widgets=[self.model, self.model_dir, self.predict_button, self.note])
        self.forms = (top, middle, bottom)
        self.comparison = QTableWidget(3, 2, self)
        self.comparison.setHorizontalHeaderLabels(["predicted", "measured"])
        self.comparison.setVerticalHeaderLabels(["size (nm)", "shape", "success"])
        self.comparison.horizontalHeader().setStretchLastSection(True)
        header, row = self.comparison.horizontalHeader().sizeHint().height(), self.comparison.verticalHeader().defaultSectionSize()
        self.comparison.setFixedHeight(header + 3 * row + 4)
        compact(self.note)
        self.task = TaskPanel(self)
        form = QWidget()  # the long form scrolls, so the dock does not stretch the window
        column = QVBoxLayout(form)
        for part in (top.native, self.chemicals, middle.native, bottom.native, self.comparison):
            column.addWidget(part)
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(form)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.task.status)
        layout.addWidget(self.task)
        self.load_button.changed.connect(self.load)
        self.pick.changed.connect(self._picked)
        self.labels.changed.connect(lambda *_: self.show_comparison())
        self.append_button.changed.connect(self.append)
        self.model.changed.connect(lambda value: setattr(self.model_dir, "visible", value == MODEL_FOLDER))
        self.predict_button.changed.connect(self.predict)
        connect_layer_events(napari_viewer, self.reset_choices)
        self.chemicals.add_row()
        self.show_comparison()

    def _labels_choices(self, _widget=None) -> list:
        measured = [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Labels) and particle_table(layer) is not None]
        return [*measured, (NO_LAYER, NO_LAYER)]  # (None would not emit `changed` in magicgui)

    def reset_choices(self, *_):
        for form in self.forms:
            form.reset_choices()

    # -- loading and building

    def load(self) -> None:
        path = Path(self.source_file.value)
        from nc_synthmodel.io import read_recipes

        try:
            found = read_recipes(path)
        except (OSError, ValueError) as error:
            notify_error(f"Load recipes: {error}")
            return
        if not found.recipes:
            problems = "; ".join(str(e) for e in found.errors[:3])
            notify_error(f"Load recipes: no valid recipe in {path.name}" + (f" ({problems})" if problems else ""))
            return
        self.loaded = {r.id: r for r in found.recipes}
        self.pick.choices = list(self.loaded)
        self.pick.value = found.recipes[0].id
        self.fill(found.recipes[0])
        if found.errors:
            notify_info(f"{path.name}: {len(found.errors)} invalid row(s) skipped")

    def _picked(self, value) -> None:
        if value in self.loaded:
            self.fill(self.loaded[value])

    def fill(self, recipe) -> None:
        """Show a contract Recipe in the form."""
        self.recipe_id.value = recipe.id
        self.product.value = recipe.product.name if recipe.product else ""
        self.chemicals.set_chemicals(recipe.chemicals)
        conditions = recipe.conditions
        self.injection.value, self.reaction.value = conditions.injection_temp_c, conditions.reaction_temp_c
        self.heating.value, self.time.value = conditions.heating_rate_c_per_min, conditions.time_min
        self.doi.value = recipe.provenance.doi or ""
        self.show_comparison()

    def measured_outcome(self):
        """(Outcome, Provenance fields) from the chosen Labels layer, or the loaded recipe's; (None, {})."""
        from nc_synthmodel.contract import CALIBRATION_SOURCES, outcome_from_particles

        layer = self.labels.value
        if not isinstance(layer, Labels):
            recipe = self.loaded.get(self.recipe_id.value.strip())
            return (recipe.outcome, {}) if recipe is not None else (None, {})
        outcome = outcome_from_particles(particle_table(layer))  # raises: no particles / not calibrated
        image = source_image(self.viewer, layer)
        source = (image or layer).metadata.get("calibration_source")
        origin = (image.metadata.get("source_path") or image.name) if image is not None else layer.name
        provenance = {
            "source_images": [str(origin)],
            "nm_per_px": nm_per_px(layer, self.viewer),
            "calibration_source": source if source in CALIBRATION_SOURCES else None,
            "size_from_segmentation": layer.metadata.get("made_by") == "segment",
        }
        return outcome, provenance

    def build_recipe(self):
        """The contract Recipe of the form (validated), with the measured outcome."""
        from nc_synthmodel.contract import validate_recipe

        outcome, provenance = self.measured_outcome()
        product = self.product.value.strip()
        data = {
            "id": self.recipe_id.value.strip(),
            "product": {"name": product, "role": "product"} if product else None,
            "chemicals": self.chemicals.chemicals(),
            "conditions": {
                "injection_temp_c": self.injection.value,
                "reaction_temp_c": self.reaction.value,
                "heating_rate_c_per_min": self.heating.value,
                "time_min": self.time.value,
            },
            "outcome": None if outcome is None else outcome.model_dump(),
            "provenance": {"doi": self.doi.value.strip() or None, **provenance},
        }
        return validate_recipe(data)

    # -- actions

    def append(self) -> None:
        path = Path(self.dataset.value)
        if not path.name or path.is_dir() or path.suffix.lower() not in (".csv", ".json"):
            notify_error("Append recipe: choose a dataset file (.csv or .json)")
            return
        try:
            recipe = self.build_recipe()
        except ValueError as error:  # RecipeValidationError, outcome problems, bad amounts
            notify_error(f"Append recipe: {error}")
            return
        self.task.run(f"Append recipe {recipe.id}", append_recipe, recipe, path, on_return=lambda p: self._appended(recipe, p))

    def _appended(self, recipe, path) -> None:
        roles = " (this CSV layout keeps no chemical roles: read it back with a roles sheet)" if Path(path).suffix.lower() == ".csv" else ""
        notify_info(f"appended recipe {recipe.id} to {path}{roles}")
        self.task.then(self.predict)

    def predict(self) -> None:
        try:
            recipe = self.build_recipe()
        except ValueError as error:
            notify_error(f"Predict: {error}")
            return
        folder = None
        if self.model.value == MODEL_FOLDER:
            folder = Path(self.model_dir.value)
            if not folder.is_dir():
                notify_error(f"Predict: model folder not found: {folder}")
                return
        self.task.run("Predict outcome", predict_outcome, recipe, folder, on_return=self._predicted)

    def _predicted(self, result) -> None:
        if isinstance(result, NoModel):
            self.prediction = None
            self.note.value = f"{result} — measured values only"
        else:
            self.prediction = result
            self.note.value = "prediction of the nc-synthmodel synthesis model"
        self.show_comparison()

    def show_comparison(self) -> None:
        """Fill the predicted / measured table."""
        try:
            outcome = self.measured_outcome()[0]
        except ValueError as error:
            outcome = None
            self.note.value = f"measured outcome unavailable: {error}"
        p = self.prediction
        predicted = ["—", "—", "—"]
        if p is not None:
            probability = p.get("shape_probabilities", {}).get(p.get("shape"), float("nan"))
            success = p.get("success_probability")
            predicted = [f"{p['size_nm']:.3g}", f"{p['shape']} ({probability:.0%})", "—" if success is None else f"{success:.0%}"]
        measured = ["—", "—", "—"]
        if outcome is not None:
            size = "—"
            if outcome.size_nm is not None:
                size = f"{outcome.size_nm:.3g} ± {outcome.size_dispersion_pct or 0:.1f} % (N = {outcome.n_particles})"
            measured = [size, outcome.shape or "—", "yes" if outcome.success else "no"]
        for row in range(3):
            self.comparison.setItem(row, 0, QTableWidgetItem(predicted[row]))
            self.comparison.setItem(row, 1, QTableWidgetItem(measured[row]))
