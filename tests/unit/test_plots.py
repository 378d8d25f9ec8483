"""The shared figures draw what they are given: panel counts, limits, labels, and the caption note."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from nine.book import plots, sweep_plots  # noqa: E402


def _table():
    rows = []
    for d in (2, 16):
        for level in (0.3, 1.0):
            for seed in (0, 1):
                rows.append(dict(head="nine", d=d, noise=level, seed=seed, kl_knn=0.1 / level + seed * 0.01,
                                 ks_max=0.05, probe_acc=0.9 - 0.1 * level))
        for head in ("plain", "normalise"):
            rows.append(dict(head=head, d=d, noise=np.nan, seed=0, kl_knn=1.0, ks_max=0.2, probe_acc=0.95))
    return pd.DataFrame(rows)


def test_sweep_figures_have_one_panel_per_metric_and_mark_the_levels():
    table = _table()
    fig = sweep_plots.metric_vs_noise(table, {"kl_knn": "KL", "probe_acc": "acc"}, "gaussian", {2: {"kl_knn": 0.01}, 16: {}})
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    fig = sweep_plots.tradeoff(table[table["d"] == 16], "kl_knn", "KL", "uniform", calibration=0.01)
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()][:2] == ["NINE, ε = 0.3", "NINE, ε = 1"]
    assert not fig.axes[0].texts  # levels are named in the legend, not written over the points
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= fig.axes[0].get_window_extent().x1  # beside the axes


def test_infinite_kl_is_marked_at_the_top_without_warnings():
    import warnings

    table = _table()
    low = (table["noise"] == 0.3) & (table["d"] == 2)
    table.loc[low, "kl_knn"] = np.inf  # an embedding with repeated points: the kNN KL estimate is infinite
    table.loc[table["head"] == "normalise", "kl_knn"] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = sweep_plots.metric_vs_noise(table, {"kl_knn": "KL"}, "uniform", {})
        sweep_plots.tradeoff(table[table["d"] == 2], "kl_knn", "KL", "uniform")
    assert [t.get_text() for t in fig.axes[0].texts] == ["∞", "∞", "∞"]  # NINE at ε=0.3 (d=2), normalise at d=2 and d=16


def test_embedding_and_qq_grids_and_images():
    rng = np.random.default_rng(0)
    z, labels = rng.uniform(size=(50, 2)), rng.integers(0, 10, 50)
    fig = sweep_plots.embedding_grid([("a", z, labels), ("prior", z, None)], "uniform")
    assert len(fig.axes) == 2 and fig.axes[0].get_xlim() == (-0.05, 1.05)
    fig = sweep_plots.qq_grid([("a", rng.standard_normal((40, 3)))], "gaussian")
    assert len(fig.axes[0].lines) == 3 + 1  # one line per coordinate and the diagonal
    fig = plots.image_grid({"x": rng.uniform(size=(3, 1, 28, 28)), "y": rng.uniform(size=(8, 1, 28, 28))})
    assert len(fig.axes) == 16 and fig.axes[0].get_ylabel() == "x"
    fig = plots.score_histograms({"in": rng.chisquare(2, 100), "out": rng.chisquare(4, 100)}, "score")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["in", "out"]


def test_figure_note_names_label_gallery_and_command():
    note = plots.figure_note("gaussian-tradeoff", "02_gaussian_matching", {"profile": "cpu", "sigma": 0.3})
    from nine import __version__

    assert note == (f"Cite as *nine {__version__}, figure `gaussian-tradeoff`* "
                    "({ref}`gallery entry <figure-gaussian-tradeoff>`). "
                    "Regenerate: `python -m nine rerun 02_gaussian_matching -p profile cpu -p sigma 0.3`.")


def test_a_legend_too_small_to_read_in_the_book_is_refused():
    """Legend text is measured where the book shows it: a figure wider than the column is scaled down with it."""
    import matplotlib.pyplot as plt
    import pytest

    from nine.book.plots import COLUMN_PX, check_legend_size, smallest_legend_px, use_style

    use_style()
    narrow, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], label="a line")
    ax.legend(fontsize=8)
    assert smallest_legend_px(narrow) == pytest.approx(8 / 72 * 150)  # 600 px wide: shown at its own size
    check_legend_size(narrow, "narrow")
    wide, axes = plt.subplots(1, 3, figsize=(16, 3))
    axes[0].plot([0, 1], label="a line")
    axes[0].legend(fontsize=8, title="title", title_fontsize=8)
    px = smallest_legend_px(wide)
    assert px < 8 and px == pytest.approx(8 / 72 * 150 * COLUMN_PX / (wide.get_tightbbox(wide.canvas.get_renderer()).width * 150))
    with pytest.raises(ValueError, match=r"figure wide: its smallest legend text is \d\.\d px"):
        check_legend_size(wide, "wide")
    blank, _ = plt.subplots()
    assert smallest_legend_px(blank) is None
    for fig in (narrow, wide, blank):
        plt.close(fig)


def test_a_sidecar_holds_what_each_panel_plots():
    """plotted_data: lines and scatters with their labels and values, panel titles and axes; a series
    larger than the limit is named with its size only; images are left out."""
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    from nine.book.plots import plotted_data, sidecar_text

    fig, (left, right, pictures) = plt.subplots(1, 3)
    left.plot([1, 2, 3], [0.5, 0.25, 0.125], label="gap")
    left.set(title="trajectory", xlabel="epochs", ylabel="nats", yscale="log")
    right.scatter(np.arange(10), np.arange(10) ** 2, label="runs")
    right.plot(np.arange(600), np.arange(600) / 3, label="_nolegend_")
    right.scatter(np.arange(30), np.arange(30), label="many")
    pictures.imshow(np.zeros((4, 4)))
    pictures.set_axis_off()
    panels = plotted_data(fig, max_points=20)
    assert json.loads(sidecar_text({"label": "a", "plotted": panels}))["plotted"] == panels
    assert len(panels) == 2
    assert panels[0]["title"] == "trajectory" and panels[0]["yscale"] == "log"
    assert panels[0]["series"] == [{"kind": "line", "label": "gap", "points": 3, "x": [1.0, 2.0, 3.0], "y": [0.5, 0.25, 0.125]}]
    kinds = {s["label"] or s["kind"]: s for s in panels[1]["series"]}
    assert kinds["runs"]["kind"] == "points" and kinds["runs"]["y"][3] == 9.0
    assert kinds["many"] == {"kind": "points", "label": "many", "points": 30}  # a scatter over the limit: its size only
    thinned = kinds["line"]  # a long line: thinned to LINE_POINTS, first and last kept, 4 significant digits
    assert thinned["points"] == 600 and thinned["kept"] == len(thinned["x"]) == 250
    assert thinned["x"][0] == 0 and thinned["x"][-1] == 599 and thinned["y"][1] == 0.6667
    plt.close(fig)
