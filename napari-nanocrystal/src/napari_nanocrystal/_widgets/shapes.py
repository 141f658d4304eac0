"""Shapes widget: cluster the measured particles of one or more Labels layers by shape.

k-means on standardised descriptors (:class:`napari_nanocrystal.shapes.ShapeClustering`) with
a t-SNE/UMAP embedding, plotted in a docked scatter plot linked to the labels: lasso points to
highlight their particles (the others are dimmed); selecting a particle in a layer rings its
point.  Particles are recoloured by cluster or by named shape class, and the proportions of
clusters or classes are shown per layer.  ``shape_cluster`` is written into each layer's
``features``.
"""

from __future__ import annotations

import logging
from collections.abc import Generator

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, Label, PushButton, Select, SpinBox
from napari.layers import Labels
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from ._common import TaskPanel, notify_error
from ._layers import compact, connect_layer_events, layer_choices
from ._views import PlotCanvas
from .measure import particle_table

logger = logging.getLogger(__name__)

DESCRIPTORS = ("circularity", "solidity", "convexity", "eccentricity", "aspect_ratio", "ecd_nm", "area_nm2")
EMBEDDINGS = {"t-SNE": "tsne", "UMAP": "umap", "none": None}
COLOUR_BY = ("cluster", "shape class", "original colours")
_DIMMED_ALPHA = 0.15


def cluster_colour(cluster: int) -> np.ndarray:
    from matplotlib import colormaps

    return np.asarray(colormaps["tab10"](int(cluster) % 10), float)


def class_colour(shape_class) -> np.ndarray:
    from matplotlib import colormaps
    from nc_synthmodel.contract import SHAPE_CLASSES

    if shape_class not in SHAPE_CLASSES:
        return np.array([0.6, 0.6, 0.6, 1.0])
    return np.asarray(colormaps["tab20"](SHAPE_CLASSES.index(shape_class) * 2 % 20), float)


def cluster_particles(tables: dict[str, pd.DataFrame], n_clusters: int, descriptors, embedding) -> Generator:
    """Task: cluster the particles of several tables together; returns the combined table with
    ``layer``, ``shape_cluster`` and the embedding ``x``, ``y`` (NaN without an embedding)."""
    from napari_nanocrystal.shapes import ShapeClustering

    combined = pd.concat([t.assign(layer=name) for name, t in tables.items()], ignore_index=True)
    yield f"clustering {len(combined)} particles (k = {n_clusters})", 0.1
    model = ShapeClustering(n_clusters=int(n_clusters), descriptors=list(descriptors), embedding=embedding, random_state=0).fit(combined)
    combined["shape_cluster"] = model.labels_
    xy = model.embedding_ if model.embedding_ is not None else np.full((len(combined), 2), np.nan)
    combined["x"], combined["y"] = xy[:, 0], xy[:, 1]
    yield "done", 1.0
    return combined


def suggest_k(tables: dict[str, pd.DataFrame], descriptors) -> Generator:
    """Task: the number of clusters with the best silhouette score, and all scores."""
    from napari_nanocrystal.shapes import suggest_n_clusters

    yield "scoring k = 2…10", 0.1
    combined = pd.concat(list(tables.values()), ignore_index=True)
    return suggest_n_clusters(combined, range(2, 11), descriptors=list(descriptors))


class ShapesWidget(QWidget):
    """Cluster particle shapes; a linked scatter plot, recoloured labels and proportions per layer."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        measured = layer_choices(napari_viewer, Labels, where=lambda layer: particle_table(layer) is not None)
        self.layers = Select(label="labels layers", choices=measured, allow_multiple=True)
        self.n_clusters = SpinBox(label="clusters (k)", value=4, min=1, max=50)
        self.suggest_button = PushButton(text="Suggest k (silhouette)")
        self.silhouette = Label(value="")
        self.descriptors = Select(label="descriptors", choices=list(DESCRIPTORS), value=list(DESCRIPTORS[:5]), allow_multiple=True)
        self.embedding = ComboBox(label="embedding", choices=list(EMBEDDINGS), value="t-SNE")
        self.colour_by = ComboBox(label="colour particles by", choices=list(COLOUR_BY), value="cluster")
        self.run_button = PushButton(text="Cluster shapes")
        self.proportions_of = ComboBox(label="proportions of", choices=["clusters", "shape classes"], value="clusters")
        self.clear_button = PushButton(text="Clear selection")
        self.form = Container(
            widgets=[
                self.layers,
                self.n_clusters,
                self.suggest_button,
                self.silhouette,
                self.descriptors,
                self.embedding,
                self.colour_by,
                self.run_button,
            ]
        )
        compact(self.silhouette)
        compact(self.layers, rows=3)
        compact(self.descriptors, rows=7)
        self.scatter = PlotCanvas(napari_viewer, self, height_in=3.0)
        self.bars = PlotCanvas(napari_viewer, self, height_in=3.0)
        proportions = QWidget(self)
        box = QVBoxLayout(proportions)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(Container(widgets=[self.proportions_of]).native)
        box.addWidget(self.bars, 1)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.scatter, "Embedding")
        self.tabs.addTab(proportions, "Proportions")
        self.task = TaskPanel(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.task.status)
        layout.addWidget(self.task)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.clear_button.native)

        self.points: pd.DataFrame | None = None  # layer, label, x, y, shape_cluster, shape_class
        self.selected = np.zeros(0, bool)
        self._lasso = None
        self._original: dict[str, object] = {}
        self._watched: list = []
        self.run_button.changed.connect(self.run)
        self.suggest_button.changed.connect(self.suggest)
        self.colour_by.changed.connect(lambda *_: self.recolour())
        self.proportions_of.changed.connect(lambda *_: self.plot_proportions())
        self.clear_button.changed.connect(lambda *_: self.set_selection(None))
        connect_layer_events(napari_viewer, self.reset_choices)
        self.reset_choices()

    def reset_choices(self, *_):
        self.form.reset_choices()
        if not self.layers.value and self.layers.choices:
            self.layers.value = list(self.layers.choices)

    def _tables(self) -> dict[str, pd.DataFrame] | None:
        layers = list(self.layers.value)
        if not layers:
            notify_error("Shapes: no measured Labels layer selected — measure particles first (Measure widget)")
            return None
        return {layer.name: particle_table(layer) for layer in layers}

    def suggest(self) -> None:
        tables = self._tables()
        if tables is not None:
            self.task.run("Suggest k", suggest_k, tables, list(self.descriptors.value), on_return=self._suggested)

    def _suggested(self, result) -> None:
        best, scores = result
        self.n_clusters.value = int(best)
        self.silhouette.value = "silhouette " + ", ".join(f"k={k}: {s:.2f}" for k, s in scores.items()) + f" → k = {best}"

    def run(self) -> None:
        tables = self._tables()
        if tables is None:
            return
        if not self.descriptors.value:
            notify_error("Shapes: choose at least one descriptor")
            return
        self.task.run(
            "Cluster shapes",
            cluster_particles,
            tables,
            self.n_clusters.value,
            list(self.descriptors.value),
            EMBEDDINGS[self.embedding.value],
            on_return=self._clustered,
        )

    def _clustered(self, combined: pd.DataFrame) -> None:
        for name, rows in combined.groupby("layer", sort=False):
            layer = self.viewer.layers[name]
            features = layer.features.copy()
            clusters = dict(zip(rows["label"].astype(int), rows["shape_cluster"].astype(int), strict=True))
            features["shape_cluster"] = [clusters.get(int(lab), -1) for lab in features["label"]]
            layer.features = features
            layer.metadata["shape_clustering"] = {"n_clusters": int(self.n_clusters.value), "descriptors": list(self.descriptors.value)}
        self.points = combined[["layer", "label", "x", "y", "shape_cluster", "shape_class"]].reset_index(drop=True)
        self.selected = np.zeros(len(self.points), bool)
        self._watch_layers()
        self.plot_scatter()
        self.plot_proportions()
        self.recolour()

    # -- plots

    def plot_scatter(self) -> None:
        from matplotlib.widgets import LassoSelector

        ax = self.scatter.new_axes()
        points = self.points
        if points is None or points[["x", "y"]].isna().all().all():
            ax.set_title("no embedding (choose t-SNE or UMAP)", fontsize="small")
            self.scatter.draw()
            return
        colours = np.array([cluster_colour(c) if c >= 0 else (0.5, 0.5, 0.5, 1.0) for c in points["shape_cluster"]])
        if self.selected.any():
            colours[~self.selected, 3] = _DIMMED_ALPHA
        ax.scatter(points["x"], points["y"], c=colours, s=18, linewidths=0)
        for cluster in sorted(points["shape_cluster"].unique()):
            if cluster >= 0:
                ax.scatter([], [], color=cluster_colour(cluster), label=f"C{cluster + 1}", s=18)
        ring = points[self.selected] if self.selected.any() else points.iloc[0:0]
        ax.scatter(ring["x"], ring["y"], s=60, facecolors="none", edgecolors=self.scatter.colours["text"], linewidths=1.0)
        ax.set_xlabel(f"{self.embedding.value} 1")
        ax.set_ylabel(f"{self.embedding.value} 2")
        ax.set_title("lasso points to highlight their particles", fontsize="small")
        self.scatter.style_legend(ax.legend(fontsize="x-small", markerscale=0.8, loc="best"))
        self._lasso = LassoSelector(ax, self._lassoed)
        self.scatter.draw()

    def plot_proportions(self) -> None:
        ax = self.bars.new_axes()
        points = self.points
        if points is None:
            self.bars.draw()
            return
        if self.proportions_of.value == "clusters":
            from napari_nanocrystal.shapes import cluster_proportions, plot_cluster_proportions

            table = cluster_proportions(points, group_by="layer", n_clusters=int(points["shape_cluster"].max()) + 1)
            plot_cluster_proportions(table, ax=ax)
        else:
            named = points.dropna(subset=["shape_class"])
            table = pd.crosstab(named["layer"], named["shape_class"], normalize="index") * 100.0
            bottom = np.zeros(len(table))
            for shape_class in table.columns:
                values = table[shape_class].to_numpy(float)
                ax.bar(range(len(table)), values, bottom=bottom, color=class_colour(shape_class), label=shape_class, width=0.8)
                bottom += values
            ax.set_xticks(range(len(table)), [str(i) for i in table.index])
            ax.set_ylim(0, 100)
            ax.set_ylabel("particles (%)")
            ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize="small")
        self.bars.style(ax)
        self.bars.style_legend(ax.get_legend())
        for label in ax.get_xticklabels():
            label.set_rotation(20)
        self.bars.draw()

    # -- selection and colours

    def _lassoed(self, vertices) -> None:
        from matplotlib.path import Path as PolygonPath

        xy = self.points[["x", "y"]].to_numpy(float)
        self.set_selection(PolygonPath(vertices).contains_points(xy))

    def set_selection(self, mask) -> None:
        """Highlight points (a boolean mask over :attr:`points`; None clears) and their particles."""
        if self.points is None:
            return
        self.selected = np.zeros(len(self.points), bool) if mask is None else np.asarray(mask, bool)
        self.plot_scatter()
        self.recolour()

    def recolour(self) -> None:
        """Colour each clustered layer's particles by cluster or class, dimming unselected ones."""
        if self.points is None:
            return
        mode = self.colour_by.value
        for name, rows in self.points.groupby("layer", sort=False):
            if name not in self.viewer.layers:
                continue
            layer = self.viewer.layers[name]
            self._original.setdefault(name, layer.colormap)
            if mode == "original colours":
                self._set_colormap(layer, self._original[name])
                continue
            colours: dict = {None: np.zeros(4), 0: np.zeros(4)}
            chosen = self.selected[rows.index.to_numpy()]
            particles = rows[["label", "shape_cluster", "shape_class"]].itertuples(index=False)
            for (label, cluster, shape_class), on in zip(particles, chosen, strict=True):
                colour = cluster_colour(cluster) if mode == "cluster" and cluster >= 0 else class_colour(shape_class)
                colour = colour.copy()
                if self.selected.any() and not on:
                    colour[3] = _DIMMED_ALPHA
                colours[int(label)] = colour
            self._set_colormap(layer, DirectLabelColormap(color_dict=colours))

    def _set_colormap(self, layer, colormap) -> None:
        # a new colormap re-emits the layer's selected label: not a pick by the user
        with layer.events.selected_label.blocker(self._particle_picked):
            layer.colormap = colormap

    def _watch_layers(self) -> None:
        for layer in self._watched:
            try:
                layer.events.selected_label.disconnect(self._particle_picked)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._watched = [self.viewer.layers[n] for n in self.points["layer"].unique() if n in self.viewer.layers]
        for layer in self._watched:
            layer.events.selected_label.connect(self._particle_picked)

    def _particle_picked(self, event) -> None:
        layer = event.source
        if self.points is None or layer.selected_label <= 0:
            return
        mask = (self.points["layer"] == layer.name).to_numpy() & (self.points["label"] == layer.selected_label).to_numpy()
        if mask.any():
            self.set_selection(mask)
