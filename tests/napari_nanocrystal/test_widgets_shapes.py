"""Shapes widget: clusters in features, linked scatter plot, recoloured labels, proportions per layer."""

from __future__ import annotations

import numpy as np
import pytest
from _widget_helpers import notes, sync_tasks, tem_image  # noqa: F401 - fixtures

from napari_nanocrystal._widgets.measure import MeasureWidget
from napari_nanocrystal._widgets.shapes import ShapesWidget, class_colour, cluster_colour

pytestmark = pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")


@pytest.fixture
def setup(make_napari_viewer):
    """Two measured Labels layers (spheres+rods, cubes+triangles) and the widget."""
    viewer = make_napari_viewer()
    measure = MeasureWidget(viewer)
    for name, seed, classes in (("A", 5, ("sphere", "rod")), ("B", 6, ("cube", "triangle"))):
        sample = tem_image(seed=seed, shape=(160, 160), n_particles=12, shape_classes=classes, scale_bar=False)
        layer = viewer.add_labels(sample.labels, name=name, scale=(0.5, 0.5), metadata={"nm_per_px": 0.5})
        measure.labels.value = layer
        measure.exclude_border.value = False
        measure.run()
    widget = ShapesWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.reset_choices()
    return viewer, widget


def test_cluster_scatter_recolour_and_proportions(setup, notes):
    viewer, widget = setup
    a, b = viewer.layers["A"], viewer.layers["B"]
    assert set(widget.layers.value) == {a, b}  # every measured layer by default
    widget.n_clusters.value = 3
    widget.run()
    assert notes() == []
    for layer in (a, b):
        clusters = layer.features["shape_cluster"].to_numpy()
        assert set(clusters) <= {0, 1, 2} and layer.metadata["shape_clustering"]["n_clusters"] == 3
    assert set(np.concatenate([a.features["shape_cluster"], b.features["shape_cluster"]])) == {0, 1, 2}
    points = widget.points
    assert len(points) == len(a.features) + len(b.features) and points[["x", "y"]].notna().all().all()
    # scatter: one point per particle
    ax = widget.scatter.figure.axes[0]
    assert len(ax.collections[0].get_offsets()) == len(points)
    # labels coloured by cluster
    first = a.features.iloc[0]
    np.testing.assert_allclose(a.colormap.color_dict[int(first["label"])], cluster_colour(int(first["shape_cluster"])))
    # by named shape class
    widget.colour_by.value = "shape class"
    np.testing.assert_allclose(a.colormap.color_dict[int(first["label"])], class_colour(first["shape_class"]))
    # proportions per layer: one stacked bar per layer, 100 % each
    bars = widget.bars.figure.axes[0]
    heights = {}
    for patch in bars.patches:
        heights.setdefault(round(patch.get_x(), 3), 0.0)
        heights[round(patch.get_x(), 3)] += patch.get_height()
    assert len(heights) == 2 and all(v == pytest.approx(100.0) for v in heights.values())
    assert [t.get_text() for t in bars.get_xticklabels()] == ["A", "B"]
    widget.proportions_of.value = "shape classes"
    legend = [t.get_text() for t in widget.bars.figure.axes[0].get_legend().get_texts()]
    assert set(legend) == set(points["shape_class"])


def test_lasso_and_picking_highlight(setup):
    viewer, widget = setup
    widget.n_clusters.value = 2
    widget.run()
    points = widget.points
    xy = points[["x", "y"]].to_numpy()
    # a lasso around the points of the left half of the embedding
    xs = np.sort(xy[:, 0])
    cut = 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])  # between two points
    lo, hi = xy.min(axis=0) - 1, xy.max(axis=0) + 1
    widget._lassoed([(lo[0], lo[1]), (cut, lo[1]), (cut, hi[1]), (lo[0], hi[1])])
    inside = xy[:, 0] < cut
    assert (widget.selected == inside).all() and 0 < inside.sum() < len(points)
    for (name, label), chosen in zip(points[["layer", "label"]].itertuples(index=False), inside, strict=True):
        alpha = viewer.layers[name].colormap.color_dict[int(label)][3]
        assert alpha == pytest.approx(1.0 if chosen else 0.15)
    # selecting a particle in a layer rings its point alone
    b = viewer.layers["B"]
    label = int(b.features["label"].iloc[2])
    b.selected_label = label
    assert widget.selected.sum() == 1
    assert points[widget.selected].iloc[0][["layer", "label"]].tolist() == ["B", label]
    widget.set_selection(None)
    assert not widget.selected.any()
    assert b.colormap.color_dict[label][3] == pytest.approx(1.0)
    widget.colour_by.value = "original colours"
    assert not hasattr(b.colormap, "color_dict") or label not in b.colormap.color_dict


def test_suggest_k_and_errors(setup, notes):
    viewer, widget = setup
    widget.suggest()
    assert 2 <= widget.n_clusters.value <= 10 and widget.silhouette.value.endswith(f"→ k = {widget.n_clusters.value}")
    widget.n_clusters.value = 50  # more clusters than particles
    widget.run()
    assert any(m.startswith("Cluster shapes:") and "fewer than n_clusters=50" in m for m in notes())
    widget.layers.value = []
    widget.run()
    assert any("no measured Labels layer selected" in m for m in notes())
