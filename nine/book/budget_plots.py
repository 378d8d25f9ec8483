"""Figures of the budget study (tables from :mod:`nine.experiments.budget_readings`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from nine.book.plots import panel_grid
from nine.book.sweep_plots import PRIOR_FLOORS, PRIOR_LINES, PRIOR_NAMES

TRAJECTORY_PANELS = {
    "reachable_gap": "min(C, log N) − InfoNCE (nats)", "kl_knn": "kNN KL to the prior (nats)",
    "excess_kurtosis_mean": "mean excess kurtosis (tails)", "gaussian_kl": "Gaussian part of the KL (nats)",
    "probe_acc": "linear-probe accuracy (— test, -- train)",
    "knn_acc": "5-NN accuracy (test)",
}


def trajectories(table, floors: dict[str, dict[str, float]]) -> Figure:
    """Each statistic of :data:`TRAJECTORY_PANELS` against the epochs of training, one line per
    configuration (mean over seeds, the seeds' range shaded), the value a prior sample scores dotted."""
    fig, axes = panel_grid(len(TRAJECTORY_PANELS), 3.2, 2.7, columns=3)
    configurations = list(table.groupby(["prior", "noise"], sort=False).groups)
    for k, (prior, noise) in enumerate(configurations):
        part = table[(table["prior"] == prior) & (table["noise"] == noise)]
        colour, style = f"C{k}", PRIOR_LINES[prior]
        label = f"{PRIOR_NAMES[prior][0]} = {noise:g} ({prior})"
        for ax, column in zip(axes, TRAJECTORY_PANELS):
            by_epoch = part.groupby("epochs")[column]
            epochs = np.asarray(list(by_epoch.groups), dtype=float)
            ax.plot(epochs, by_epoch.mean(), style, color=colour, marker="o", ms=3, label=label)
            ax.fill_between(epochs, by_epoch.min(), by_epoch.max(), color=colour, alpha=0.15, lw=0)
            if column == "probe_acc":
                train = part.groupby("epochs")["probe_train_acc"].mean()
                ax.plot(epochs, train, "--", color=colour, lw=1)
    ticks = sorted(set(table["epochs"]))
    ticks = [e for k, e in enumerate(ticks) if k == 0 or e >= 1.8 * ticks[k - 1] or e == ticks[-1]]  # no crowding
    for ax, (column, title) in zip(axes, TRAJECTORY_PANELS.items()):
        logarithmic = column in ("reachable_gap", "kl_knn", "gaussian_kl")
        lowest = float(table[column].min())
        for prior, style in PRIOR_FLOORS.items():
            floor = floors.get(prior, {}).get(column)
            # a floor far below the data (a kNN KL of ~0 on a log axis) would squash the panel: the table gives it
            if floor is not None and prior in set(table["prior"]) and (not logarithmic or floor > lowest / 100):
                ax.axhline(floor, color="0.3", ls=style, lw=1)
        ax.set(title=title, xlabel="epochs", xscale="log")
        ax.set_xticks(ticks, [str(e) for e in ticks])
        ax.minorticks_off()
        if logarithmic:
            ax.set_yscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="0.3", ls=":", lw=1))
    labels.append("a prior sample (dotted)")
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8)
    fig.tight_layout()
    return fig


def statistic_against_gap(table, column: str, title: str, fits, gap: str = "reachable_gap") -> Figure:
    """``column`` against the reachable gap min(C, log N) − InfoNCE for every snapshot of every long
    run, one colour per configuration, with its least-squares line from ``fits`` over the gaps measured (not
    extrapolated: the page reads the intercepts, with their intervals, in its text); one panel per prior."""
    priors = list(dict.fromkeys(table["prior"]))
    fig, axes = panel_grid(len(priors), 4.6, 3.6, columns=2)
    configurations = list(table.groupby(["prior", "noise"], sort=False).groups)
    for ax, prior in zip(axes, priors):
        for k, (law, noise) in enumerate(configurations):
            if law != prior:
                continue
            part = table[(table["prior"] == law) & (table["noise"] == noise)]
            fit = fits[(fits["prior"] == law) & (fits["noise"] == noise)].iloc[0]
            ax.scatter(part[gap], part[column], color=f"C{k}", s=14 + 6 * np.log2(part["epochs"] / part["epochs"].min()),
                       label=f"{PRIOR_NAMES[law][0]} = {noise:g} (r = {fit['Pearson r']:.2f})")
            x = np.linspace(part[gap].min(), part[gap].max(), 50)  # over the data only: a KL line drawn on to
            ax.plot(x, fit["intercept"] + fit["slope"] * x, color=f"C{k}", lw=1)  # zero gap can fall below zero
        ax.set(title=f"{PRIOR_NAMES[prior][1]} prior", xlabel="min(C, log N) − InfoNCE on test digits (nats)", ylabel=title)
        ax.set_xlim(left=0)
        ax.legend(fontsize=8, loc="best", title="larger points: more epochs", title_fontsize=8)
    fig.tight_layout()
    return fig


def prediction_test(long, continued, verdicts, column: str = "reachable_gap",
                    title: str = "reachable gap min(C, log N) − InfoNCE (nats)") -> Figure:
    """``column`` against the epochs of training for each configuration (one panel each): the long runs'
    mean over seeds (solid, seeds' range shaded), the continued runs' seeds (points, the mean dashed),
    and the registered prediction at the last epoch with its 95% interval (an error bar)."""
    configurations = list(verdicts[["prior", "noise"]].itertuples(index=False, name=None))
    fig, axes = panel_grid(len(configurations), 3.2, 2.7, columns=3)
    every = sorted({*long["epochs"], *(continued["epochs"] if len(continued) else ()), 2000})
    ticks = [every[0]]
    for e in every[1:]:
        if e >= 2.5 * ticks[-1]:  # no crowding
            ticks.append(e)
    ticks = ticks[:-1] + [every[-1]] if every[-1] < 2.5 * ticks[-1] and len(ticks) > 1 else ticks + [every[-1]]
    ticks = sorted(set(ticks))
    for k, (ax, (prior, noise)) in enumerate(zip(axes, configurations)):
        colour = f"C{k}"
        part = long[(long["prior"] == prior) & (long["noise"] == noise)].groupby("epochs")[column]
        epochs = np.asarray(list(part.groups), dtype=float)
        ax.plot(epochs, part.mean(), "-", color=colour, marker="o", ms=3)
        ax.fill_between(epochs, part.min(), part.max(), color=colour, alpha=0.15, lw=0)
        later = (continued[(continued["prior"] == prior) & (continued["noise"] == noise)]
                 if len(continued) else continued)
        if len(later):
            ax.plot(later["epochs"], later[column], "x", color=colour, ms=5)
            mean = later.groupby("epochs")[column].mean()
            ax.plot([epochs[-1], *mean.index], [float(part.mean().iloc[-1]), *mean], "--", color=colour, lw=1)
        row = verdicts[(verdicts["prior"] == prior) & (verdicts["noise"] == noise)].iloc[0]
        target = float(later["epochs"].max()) if len(later) else 2000.0
        ax.errorbar([target * 1.06], [row["predicted"]], yerr=[[row["predicted"] - row["predicted low"]],
                    [row["predicted high"] - row["predicted"]]], fmt="s", color="0.2", ms=4, capsize=3)
        ax.set(title=f"{PRIOR_NAMES[prior][0]} = {noise:g} ({prior}): {row['verdict']}", xlabel="epochs",
               xscale="log")
        ax.set_xticks(ticks, [str(e) for e in ticks])
        ax.minorticks_off()
    axes[0].set_ylabel(title)
    handles = [plt.Line2D([], [], color="0.4", marker="o", ms=3), plt.Line2D([], [], color="0.4", marker="x", ls="--"),
               plt.Line2D([], [], color="0.2", marker="s", ms=4, ls="")]
    labels = [f"to {max(long['epochs'])} epochs (mean of seeds, range shaded)", "continued: each seed, mean dashed",
              "registered prediction, 95% interval"]
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8)
    fig.tight_layout()
    return fig


def class_pair_views(panels: list[tuple[str, np.ndarray, np.ndarray]], classes: tuple[int, int] = (4, 9)) -> Figure:
    """Two digit classes of test embeddings in the plane of their first two principal components, one panel
    per (title, embeddings, labels): whether each class is one blob (linearly separable from the other) or
    several sub-clusters."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
    for ax, (title, z, y) in zip(axes[0], panels):
        keep = np.isin(y, classes)
        part = np.asarray(z[keep], dtype=np.float64)
        part = part - part.mean(0)
        plane = np.linalg.svd(part, full_matrices=False)[2][:2].T
        xy = part @ plane
        for label, colour in zip(classes, ("#0969da", "#cf222e")):
            mine = y[keep] == label
            ax.scatter(xy[mine, 0], xy[mine, 1], s=5, alpha=0.6, color=colour, label=f"digit {label}")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    axes[0][0].legend(fontsize=8, markerscale=2, loc="best")
    fig.tight_layout()
    return fig


def class_separation(z: np.ndarray, y: np.ndarray) -> float:
    """Fisher's ratio of the class means' spread to the spread within classes (trace of between- over
    within-class covariance): what a linear probe can use."""
    z = np.asarray(z, dtype=np.float64)
    means = np.stack([z[y == c].mean(0) for c in np.unique(y)])
    within = np.mean([z[y == c].var(0).sum() for c in np.unique(y)])
    return float(means.var(0).sum() / within)
