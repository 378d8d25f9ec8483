"""One figure style for the book, and the figures the notebooks share."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

import nine
from nine.book.rerun import publish_dir, rerun_command
from nine.priors import PRIORS
from nine.priors import get as get_prior
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


def export_figure(
    fig: Figure, label: str, notebook: str, parameters: dict, run_hashes: list[str], details: dict | None = None
) -> Path:
    """Write a citable copy of ``fig`` to ``<figures>/<label>.{png,pdf}`` with a JSON sidecar.

    ``<figures>`` is ``book/figures`` (or the rerun folder's, see :func:`nine.book.rerun.publish_dir`). The
    sidecar records the notebook and the parameters it ran with (enough to rerun it), ``details`` of
    what the figure shows (e.g. a sweep grid), the runs it was drawn from, the git commit and the date.
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
        "git_commit": git("rev-parse", "HEAD"),
        "nine_version": nine.__version__,
        "date": datetime.now(timezone.utc).date().isoformat(),
    }
    (folder / f"{label}.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return folder / f"{label}.png"


def figure_note(label: str, notebook: str, parameters: dict) -> str:
    """The end of a citable figure's caption (MyST): how to cite it (version and label), its gallery
    entry (PNG, PDF, data) and the command that regenerates it."""
    return (f"Cite as *nine {nine.__version__}, figure `{label}`* ({{ref}}`gallery entry <figure-{label}>`). "
            f"Regenerate: `{rerun_command(notebook, parameters)}`.")


# ---------------------------------------------------------------------------------------------
# Figures of the noise sweeps (tables from nine.experiments.sweep.sweep_table)

PRIOR_NAMES = {name: (law.symbol, law.title) for name, law in PRIORS.items()}
# how a prior's lines are drawn where several priors share a panel (trajectories, and the floors of a prior sample)
PRIOR_LINES = dict(zip(PRIORS, ("-", "-.", "--")))
PRIOR_FLOORS = dict(zip(PRIORS, (":", (0, (1, 3)), (0, (3, 3)))))


REFERENCE_STYLES = {"plain": ("plain InfoNCE", "C3", "s"), "normalise": ("normalised, no noise", "C2", "D")}


def _panel_grid(count: int, width: float, height: float, columns: int = 4, **options):
    """A figure of ``count`` panels, ``columns`` per row (so that each stays legible in a browser),
    with the unused panels of the last row switched off; returns (figure, the ``count`` axes)."""
    columns = min(columns, count)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False, **options)
    for ax in axes.flat[count:]:
        ax.set_axis_off()
    return fig, list(axes.flat[:count])


def embedding_grid(panels: list[tuple], prior: str | list[str], columns: int = 3, size: float = 3.0) -> Figure:
    """d = 2 embeddings, one panel per (title, z, labels), ``columns`` to a row, on the prior's scale
    (``prior``: one for every panel, or a list with one per panel)."""
    fig, axes = _panel_grid(len(panels), size, size + 0.1, columns=columns)
    priors = [prior] * len(panels) if isinstance(prior, str) else list(prior)
    for ax, (title, z, labels), law in zip(axes, panels, priors):
        low, high = get_prior(law).view
        colours = "0.3" if labels is None else DIGIT_COLOURS(labels % 10)
        ax.scatter(z[:, 0], z[:, 1], c=colours, s=2, alpha=0.7, linewidths=0)
        ax.set(xlim=(low, high), ylim=(low, high), title=title, aspect="equal")
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def _std(values) -> float:
    """Sample std over seeds; 0 for one seed, NaN (drawn without a bar) where a value is infinite."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return 0.0
    return float(values.std(ddof=1)) if np.isfinite(values).all() else float("nan")


def _seed_spread(table, column: str):
    """Mean and std over seeds of ``column`` per noise level (NINE rows of the table)."""
    grouped = table[table["head"] == "nine"].groupby("noise")[column]
    return grouped.mean(), grouped.agg(_std)


def mark_infinite(ax, x, y, colour, marker="o") -> None:
    """Draw infinite values (a kNN KL of an embedding with repeated points) as open marks at the top."""
    x, y = np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(y, dtype=float))
    top = np.isposinf(y)
    if top.any():
        ax.plot(x[top], np.full(top.sum(), 0.97), marker=marker, ms=7, mfc="white", color=colour, ls="none",
                transform=ax.get_xaxis_transform(), clip_on=False)
        for xi in x[top]:
            ax.annotate("∞", (xi, 0.97), xycoords=ax.get_xaxis_transform(), xytext=(0, -11),
                        textcoords="offset points", ha="center", fontsize=7, color=colour)


LOG_SCALE = ("kl_knn", "energy", "sw", "ad_max")  # DM statistics that span decades between d = 2 and d = 16


def metric_vs_noise(table, metrics: dict[str, str], prior: str, calibration: dict[int, dict[str, float]]) -> Figure:
    """One panel per metric: mean ± std over seeds against the noise level, one line per d, with
    the references (plain InfoNCE, normalised without noise) as marks at the left edge and the
    value a sample of the prior itself scores (dotted) where the metric is a DM statistic.
    Statistics in :data:`LOG_SCALE` get a logarithmic y axis."""
    symbol = PRIOR_NAMES[prior][0]
    fig, axes = _panel_grid(len(metrics), 4.6, 3.6, columns=2)
    for ax, (column, title) in zip(axes, metrics.items()):
        for k, (d, part) in enumerate(table.groupby("d")):
            mean, std = _seed_spread(part, column)
            colour = f"C{k}" if k == 0 else "C4"
            ax.errorbar(mean.index, mean, yerr=std, marker="o", ms=4, capsize=3, color=colour, label=f"NINE, d = {d}")
            mark_infinite(ax, mean.index, mean, colour)
            for head, (name, ref_colour, marker) in REFERENCE_STYLES.items():
                values = part.loc[part["head"] == head, column]
                if len(values):
                    ax.errorbar([mean.index.min() / 2.2], [values.mean()], yerr=[_std(values)],
                                marker=marker, ms=5, color=colour, mfc="white", ls="none", capsize=2,
                                label=f"{name}, d = {d}")
                    mark_infinite(ax, [mean.index.min() / 2.2], [values.mean()], colour, marker)
            if column in calibration.get(d, {}):
                ax.axhline(calibration[d][column], color=colour, ls=":", lw=1, label=f"prior sample, d = {d}")
        ax.set_xscale("log")
        if column in LOG_SCALE:
            ax.set_yscale("log")
        ax.set(xlabel=f"noise level {symbol} (references at the left)", title=title)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def tradeoff(table, dm_column: str, dm_title: str, prior: str, calibration: float | None = None) -> Figure:
    """Linear-probe accuracy against a DM statistic: one point per noise level (mean ± std over
    seeds), coloured from weak to strong noise and named in the legend, joined in order of the level,
    and the reference heads; lower-left is better matching with better accuracy."""
    symbol = PRIOR_NAMES[prior][0]
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    x, x_std = _seed_spread(table, dm_column)
    y, y_std = _seed_spread(table, "probe_acc")
    ax.plot(x, y, color="0.6", lw=1, zorder=1)
    colours = plt.cm.viridis(np.linspace(0.05, 0.85, len(x)))
    for level, colour in zip(x.index, colours):
        ax.errorbar(x[level], y[level], xerr=x_std[level], yerr=y_std[level], marker="o", ms=6, capsize=3,
                    color=colour, ls="none", label=f"NINE, {symbol} = {level:g}", zorder=2)
    for head, (name, colour, marker) in REFERENCE_STYLES.items():
        part = table[table["head"] == head]
        if len(part):
            ax.errorbar(part[dm_column].mean(), part["probe_acc"].mean(),
                        xerr=_std(part[dm_column]), yerr=_std(part["probe_acc"]), mfc="white",
                        marker=marker, ms=7, color=colour, ls="none", capsize=3, label=name, zorder=3)
    if calibration is not None:
        ax.axvline(calibration, color="0.4", ls=":", lw=1, label="a sample of the prior")
    ax.set_xscale("log")
    ax.set(xlabel=f"{dm_title} (log scale; lower = better matching)", ylabel="linear-probe accuracy")
    handles, names = ax.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: names[i] == "a sample of the prior")  # the floor last
    ax.legend([handles[i] for i in order], [names[i] for i in order], fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1))  # beside the axes: never over a point
    return fig


def qq_grid(panels: list[tuple[str, np.ndarray]], prior: str) -> Figure:
    """QQ plots against the prior's marginal, one panel per (title, z), every coordinate a line."""
    fig, axes = _panel_grid(len(panels), 3.0, 3.0, columns=3, sharey=True)
    for ax, (title, z) in zip(axes, panels):
        n = len(z)
        probabilities = (np.arange(1, n + 1) - 0.5) / n
        theoretical = get_prior(prior).marginal.ppf(probabilities)
        for k in range(z.shape[1]):
            ax.plot(theoretical, np.sort(z[:, k]), lw=0.8, alpha=0.6)
        ends = (theoretical[0], theoretical[-1])
        ax.plot(ends, ends, color="k", lw=1, ls="--")
        ax.set(title=title, xlabel="prior quantile")
    for ax in axes[:: min(4, len(axes))]:
        ax.set_ylabel("embedding quantile")
    fig.tight_layout()
    return fig


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
    ax.legend(fontsize=7)
    return fig


def certificate_plot(cert, prior: str, informative: float = 0.5) -> Figure:
    """Left: the certificate C − InfoNCE against the independent KL estimate, one point per NINE run
    (colour: noise level, marker: d; hollow where the estimator is uninformative, its value on a prior
    sample more than ``informative`` nats from 0). Right: the critic temperature over training."""
    symbol = get_prior(prior).symbol
    levels = sorted(cert["noise"].unique())
    colours = {level: f"C{k}" for k, level in enumerate(levels)}
    markers = {d: m for d, m in zip(sorted(cert["d"].unique()), "os^D")}
    fig, ax = plt.subplots(figsize=(6.8, 5.0))
    for row in cert.itertuples():
        solid = abs(row.kl_floor) <= informative
        ax.errorbar(row.kl_estimate, row.certificate, yerr=2 * row.certificate_se, fmt=markers[row.d],
                    color=colours[row.noise], mfc=colours[row.noise] if solid else "none", ms=6, lw=1)
    shown = cert[cert["kl_floor"].abs() <= informative]
    top = float(max(shown["certificate"].max(), shown["kl_estimate"].max(), 0.5)) * 1.15 if len(shown) else 1.0
    ax.plot([0, top], [0, top], color="k", ls="--", lw=1)
    ax.set_xlim(-0.05 * top, top)
    ax.set_ylim(-0.05 * top, top)
    for level in levels:
        ax.plot([], [], "o", color=colours[level], label=f"{symbol} = {level:g}")
    for d, m in markers.items():
        ax.plot([], [], m, color="grey", mfc="none", label=f"d = {d}")
    ax.legend(fontsize=8, loc="upper left", ncol=2, title="hollow: estimator uninformative", title_fontsize=7)
    ax.set_xlabel("independent estimate of KL(smoothed view law ‖ smoothed prior) (nats)")
    ax.set_ylabel("certificate C − InfoNCE on test digits (nats)")
    ax.set_title("Points above the dashed line: the certificate holds")
    fig.tight_layout()
    return fig


def temperature_curves(runs: list, prior: str) -> Figure:
    """τ / (std of the channel noise) per epoch for each run (one line per noise level)."""
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    symbol = get_prior(prior).symbol
    for k, run in enumerate(sorted(runs, key=lambda r: r.config.noise_std)):
        tau = [record["tau"] for record in run.log]
        level = run.config.noise_level
        ax.plot(range(1, len(tau) + 1), np.array(tau) / run.config.noise_std, color=f"C{k}", label=f"{symbol} = {level:g}")
    ax.axhline(1, color="k", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("τ / noise std")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Figures of the budget study (tables from nine.experiments.budget)

TRAJECTORY_PANELS = {
    "reachable_gap": "min(C, log N) − InfoNCE (nats)", "kl_knn": "kNN KL to the prior (nats)", "ks_max": "max KS over coordinates",
    "max_corr": "max |correlation| between coordinates", "probe_acc": "linear-probe accuracy (— test, -- train)",
    "knn_acc": "5-NN accuracy (test)",
}


def trajectories(table, floors: dict[str, dict[str, float]]) -> Figure:
    """Each statistic of :data:`TRAJECTORY_PANELS` against the epochs of training, one line per
    configuration (mean over seeds, the seeds' range shaded), the value a prior sample scores dotted."""
    fig, axes = _panel_grid(len(TRAJECTORY_PANELS), 3.2, 2.7, columns=3)
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
        logarithmic = column in ("reachable_gap", "kl_knn")
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
    run, one colour per configuration, with its least-squares line from ``fits``; one panel per prior."""
    priors = list(dict.fromkeys(table["prior"]))
    fig, axes = _panel_grid(len(priors), 4.6, 3.6, columns=2)
    configurations = list(table.groupby(["prior", "noise"], sort=False).groups)
    for ax, prior in zip(axes, priors):
        for k, (law, noise) in enumerate(configurations):
            if law != prior:
                continue
            part = table[(table["prior"] == law) & (table["noise"] == noise)]
            fit = fits[(fits["prior"] == law) & (fits["noise"] == noise)].iloc[0]
            ax.scatter(part[gap], part[column], color=f"C{k}", s=14 + 6 * np.log2(part["epochs"] / part["epochs"].min()),
                       label=f"{PRIOR_NAMES[law][0]} = {noise:g} (r = {fit['Pearson r']:.2f})")
            x = np.linspace(0, part[gap].max() * 1.05, 50)
            ax.plot(x, fit["intercept"] + fit["slope"] * x, color=f"C{k}", lw=1)
        ax.set(title=f"{PRIOR_NAMES[prior][1]} prior", xlabel="min(C, log N) − InfoNCE on test digits (nats)", ylabel=title)
        ax.set_xlim(left=0)
        ax.legend(fontsize=8, loc="lower right", title="larger points: more epochs", title_fontsize=7)
    fig.tight_layout()
    return fig


def prediction_test(long, continued, verdicts, column: str = "reachable_gap",
                    title: str = "reachable gap min(C, log N) − InfoNCE (nats)") -> Figure:
    """``column`` against the epochs of training for each configuration (one panel each): the long runs'
    mean over seeds (solid, seeds' range shaded), the continued runs' seeds (points, the mean dashed),
    and the registered prediction at the last epoch with its 95% interval (an error bar)."""
    configurations = list(verdicts[["prior", "noise"]].itertuples(index=False, name=None))
    fig, axes = _panel_grid(len(configurations), 3.2, 2.7, columns=3)
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
