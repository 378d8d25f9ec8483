"""One figure style for the book, and the figures the notebooks share."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

import nine
from nine.book.rerun import publish_dir, rerun_command
from nine.store.provenance import git

DIGIT_COLOURS = plt.get_cmap("tab10")


def use_style() -> None:
    """The book's figure style: light grid, no top/right spines, readable sizes, 120 dpi."""
    plt.rcParams.update(
        {
            "figure.dpi": 120,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.frameon": False,
        }
    )


def scatter_by_label(ax: Axes, z: np.ndarray, labels: np.ndarray | None = None, title: str = "") -> None:
    """A 2-D point cloud, coloured by digit when labels are given; axes share one scale."""
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=4, alpha=0.5, color="0.3", linewidths=0)
    else:
        for digit in np.unique(labels):
            pts = z[labels == digit]
            ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6, color=DIGIT_COLOURS(int(digit)), linewidths=0, label=str(digit))
        ax.legend(markerscale=3, ncols=2, fontsize=8, loc="upper right", handletextpad=0.1, columnspacing=0.5)
    ax.set_aspect("equal")
    ax.set_title(title)


def embedding_vs_prior(
    z: np.ndarray, labels: np.ndarray, prior_sample: np.ndarray, limits: tuple[float, float] = (-4.0, 4.0)
) -> Figure:
    """Left: the first two embedding coordinates coloured by digit; right: as many prior samples."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.3), sharex=True, sharey=True)
    scatter_by_label(axes[0], z[:, :2], labels, "NINE embedding f(x) of the test digits")
    scatter_by_label(axes[1], prior_sample[:, :2], None, f"{len(prior_sample)} samples of the prior")
    for ax in axes:
        ax.set_xlim(*limits)
        ax.set_ylim(*limits)
        ax.set_xlabel("coordinate 1")
    axes[0].set_ylabel("coordinate 2")
    return fig


def marginals_vs_normal(z: np.ndarray, z_view: np.ndarray | None = None) -> Figure:
    """Per coordinate: a histogram against the N(0, 1) density, and a QQ plot against N(0, 1).

    z: clean embeddings (n×d); z_view: optional embeddings of augmented views, drawn in the QQ plot too.
    """
    d = z.shape[1]
    fig, axes = plt.subplots(2, d, figsize=(3.2 * d, 5.6), squeeze=False)
    grid = np.linspace(-4, 4, 200)
    n = len(z)
    theoretical = stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n)
    for k in range(d):
        top, bottom = axes[0, k], axes[1, k]
        top.hist(z[:, k], bins=40, range=(-4, 4), density=True, color="C0", alpha=0.6, label="clean digits")
        top.plot(grid, stats.norm.pdf(grid), color="k", lw=1.2, label="N(0, 1)")
        top.set_title(f"coordinate {k + 1}")
        bottom.plot(theoretical, np.sort(z[:, k]), ".", ms=2, color="C0", label="clean digits")
        if z_view is not None:
            bottom.plot(theoretical, np.sort(z_view[:, k]), ".", ms=2, color="C1", label="augmented views")
        bottom.plot([-4, 4], [-4, 4], color="k", lw=1)
        bottom.set_xlabel("N(0, 1) quantile")
        bottom.set_aspect("equal")
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].legend(fontsize=8, markerscale=4, loc="upper left")
    axes[0, 0].set_ylabel("density")
    axes[1, 0].set_ylabel("embedding quantile")
    fig.tight_layout()
    return fig


def training_curve(log: list[dict], capacity: float, log_n: float, test: float | None = None) -> Figure:
    """The per-epoch InfoNCE estimate against the channel capacity and the log N ceiling (and the
    estimate on held-out digits, ``test``)."""
    fig, ax = plt.subplots(figsize=(7.2, 3.4))
    epochs = [r["epoch"] for r in log]
    ax.plot(epochs, [r["infonce"] for r in log], color="C0", label="InfoNCE estimate (train batches)")
    ax.axhline(capacity, color="C3", ls="--", label=f"capacity C = {capacity:.2f}")
    ax.axhline(log_n, color="0.4", ls=":", label=f"log N = {log_n:.2f}")
    if test is not None:
        ax.axhline(test, color="C2", ls="-.", label=f"test estimate {test:.2f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats")
    ax.set_ylim(0, max(capacity, log_n) * 1.1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # beside the axes: never over a curve
    return fig


# The width of the book's text column in a 1400 px wide window (sphinx-book-theme; measured in Chromium):
# a wider figure is scaled down to it, and its text with it.
COLUMN_PX = 756
MIN_LEGEND_PX = 8.0  # the smallest legend text a reader at that width can read


def smallest_legend_px(fig: Figure, column_px: int = COLUMN_PX) -> float | None:
    """The smallest legend text of ``fig`` (entries and titles) in screen pixels where the book shows it:
    the figure as saved (tight box, ``savefig.dpi``), scaled down to ``column_px`` when wider. None
    without a legend."""
    renderer = fig.canvas.get_renderer()
    dpi = float(plt.rcParams["savefig.dpi"]) if plt.rcParams["savefig.dpi"] != "figure" else fig.dpi
    width_px = fig.get_tightbbox(renderer).width * dpi
    scale = min(1.0, column_px / width_px)
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    texts = [t for legend in legends for t in (*legend.get_texts(), legend.get_title()) if t.get_text() and t.get_visible()]
    return min(t.get_fontsize() / 72 * dpi * scale for t in texts) if texts else None


def check_legend_size(fig: Figure, name: str) -> None:
    """ValueError when a legend of ``fig`` would be smaller than :data:`MIN_LEGEND_PX` in the book."""
    px = smallest_legend_px(fig)
    if px is not None and px < MIN_LEGEND_PX:
        raise ValueError(f"figure {name}: its smallest legend text is {px:.1f} px in the book's {COLUMN_PX} px column; "
                         f"at least {MIN_LEGEND_PX:g} px is allowed: raise the legend's fontsize or make the figure narrower")


MAX_POINTS = 2000  # points of one scatter a sidecar copies; a larger one is named with its size only
LINE_POINTS = 250  # a longer line (a QQ curve, a trajectory) is kept at this many evenly spaced points
DIGITS = 4  # significant digits of every copied value


def shrink_series(entry: dict[str, Any], max_points: int = MAX_POINTS) -> dict[str, Any]:
    """A series as a sidecar keeps it: a line of more than :data:`LINE_POINTS` points thinned to that many,
    evenly spaced, its first and last kept (``kept``; ``points`` stays the number drawn), a scatter over
    ``max_points`` reduced to its size, values to :data:`DIGITS` significant digits."""
    entry = dict(entry)
    if "x" not in entry:
        return entry
    x, y = np.asarray(entry.pop("x"), dtype=float), np.asarray(entry.pop("y"), dtype=float)
    if entry["kind"] == "line" and len(x) > LINE_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, LINE_POINTS).round().astype(int))
        x, y, entry["kept"] = x[keep], y[keep], len(keep)
    elif entry["kind"] == "points" and len(x) > max_points:
        return entry
    entry["x"], entry["y"] = ([float(f"{v:.{DIGITS}g}") for v in values] for values in (x, y))
    return entry


def plotted_data(fig: Figure, max_points: int = MAX_POINTS) -> list[dict[str, Any]]:
    """What each panel of ``fig`` draws, as data a citer can replot: its title and axis labels, and every
    line (x, y) and scatter (the points' x, y) with its legend label, as :func:`shrink_series` keeps them (the
    runs named in the sidecar hold the rest). Images are not copied."""
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D

    def series(kind: str, label: str, xy: np.ndarray) -> dict[str, Any]:
        entry = {"kind": kind, "label": "" if label.startswith("_") else label, "points": len(xy),
                 "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist()}
        return shrink_series(entry, max_points)

    panels = []
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        drawn = []
        for artist in ax.get_children():
            if isinstance(artist, Line2D) and artist.get_visible():
                xy = np.column_stack([np.asarray(artist.get_xdata(), dtype=float), np.asarray(artist.get_ydata(), dtype=float)])
                if len(xy):
                    drawn.append(series("line", artist.get_label(), xy))
            elif isinstance(artist, PathCollection) and artist.get_visible() and len(artist.get_offsets()):
                drawn.append(series("points", artist.get_label(), np.asarray(artist.get_offsets(), dtype=float)))
        if drawn:
            panels.append({"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                           "xscale": ax.get_xscale(), "yscale": ax.get_yscale(), "series": drawn})
    return panels


def sidecar_text(sidecar: dict[str, Any]) -> str:
    """A sidecar as JSON: its fields indented and key-sorted, the plotted data (``plotted``) last and compact,
    so that the file stays readable and small."""
    head = json.dumps({k: v for k, v in sidecar.items() if k != "plotted"}, indent=2, sort_keys=True, ensure_ascii=False)
    if "plotted" not in sidecar:
        return head + "\n"
    data = json.dumps(sidecar["plotted"], ensure_ascii=False, separators=(",", ":"))
    return head[:-2] + f',\n  "plotted": {data}\n}}\n'


def export_figure(
    fig: Figure, label: str, notebook: str, parameters: dict, run_hashes: list[str], details: dict | None = None
) -> Path:
    """Write a citable copy of ``fig`` to ``<figures>/<label>.{png,pdf}`` with a JSON sidecar.

    ``<figures>`` is ``book/figures`` (or the rerun folder's, see :func:`nine.book.rerun.publish_dir`). The
    sidecar records the notebook and the parameters it ran with (enough to rerun it), ``details`` of
    what the figure shows (e.g. a sweep grid), the runs it was drawn from, what each panel plots
    (:func:`plotted_data`), the git commit and the date.
    """
    if not label.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"label={label!r} is not allowed: use letters, digits, '-' and '_' only")
    folder = publish_dir("figures")
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "pdf"):
        fig.savefig(folder / f"{label}.{suffix}", metadata={"CreationDate": None} if suffix == "pdf" else None)
    sidecar = {
        "label": label,
        "notebook": notebook,
        "notebook_parameters": parameters,
        "details": details or {},
        "rerun": rerun_command(notebook, parameters),
        "runs": run_hashes,
        "plotted": plotted_data(fig),
        "git_commit": git("rev-parse", "HEAD"),
        "nine_version": nine.__version__,
        "date": datetime.now(timezone.utc).date().isoformat(),
    }
    (folder / f"{label}.json").write_text(sidecar_text(sidecar))
    return folder / f"{label}.png"


def figure_note(label: str, notebook: str, parameters: dict) -> str:
    """The end of a citable figure's caption (MyST): how to cite it (version and label), its gallery
    entry (PNG, PDF, data) and the command that regenerates it."""
    return (f"Cite as *nine {nine.__version__}, figure `{label}`* ({{ref}}`gallery entry <figure-{label}>`). "
            f"Regenerate: `{rerun_command(notebook, parameters)}`.")


# ---------------------------------------------------------------------------------------------
# Images and score distributions


def image_grid(rows: dict[str, np.ndarray], columns: int = 8) -> Figure:
    """One row of grey images per named set (N×1×H×W arrays or tensors in [0, 1])."""
    fig, axes = plt.subplots(len(rows), columns, figsize=(0.9 * columns + 1.6, 0.95 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        images = np.asarray(images)
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(images[c, 0], cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def score_histograms(scores: dict[str, np.ndarray], xlabel: str) -> Figure:
    """Overlaid density histograms of an outlier score, the first entry (inliers) filled."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = list(scores)
    high = np.quantile(np.concatenate([np.asarray(s) for s in scores.values()]), 0.99)
    bins = np.linspace(0, high, 60)
    for k, name in enumerate(names):
        style = dict(histtype="stepfilled", alpha=0.35, color="0.3") if k == 0 else dict(histtype="step", lw=1.3)
        ax.hist(np.clip(scores[name], 0, high), bins=bins, density=True, label=name, **style)
    ax.set(xlabel=xlabel, ylabel="density")
    ax.legend(fontsize=8)
    return fig



def panel_grid(count: int, width: float, height: float, columns: int = 4, **options):
    """A figure of ``count`` panels, ``columns`` per row (so that each stays legible in a browser),
    with the unused panels of the last row switched off; returns (figure, the ``count`` axes)."""
    columns = min(columns, count)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False, **options)
    for ax in axes.flat[count:]:
        ax.set_axis_off()
    return fig, list(axes.flat[:count])
