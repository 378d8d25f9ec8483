"""Figures of the noise sweeps of the matching pages (tables from :mod:`nine.experiments.sweep`) and of the
certificate beside them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from nine.book.plots import DIGIT_COLOURS, panel_grid
from nine.priors import PRIORS
from nine.priors import get as get_prior

PRIOR_NAMES = {name: (law.symbol, law.title) for name, law in PRIORS.items()}
# how a prior's lines are drawn where several priors share a panel (trajectories, and the floors of a prior sample)
PRIOR_LINES = dict(zip(PRIORS, ("-", "-.", "--")))
PRIOR_FLOORS = dict(zip(PRIORS, (":", (0, (1, 3)), (0, (3, 3)))))


REFERENCE_STYLES = {"plain": ("plain InfoNCE", "C3", "s"), "normalise": ("normalised, no noise", "C2", "D")}


def embedding_grid(panels: list[tuple], prior: str | list[str], columns: int = 3, size: float = 3.0) -> Figure:
    """d = 2 embeddings, one panel per (title, z, labels), ``columns`` to a row, on the prior's scale
    (``prior``: one for every panel, or a list with one per panel)."""
    fig, axes = panel_grid(len(panels), size, size + 0.1, columns=columns)
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
    fig, axes = panel_grid(len(metrics), 4.6, 3.6, columns=2)
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
    and the reference heads; lower-left is better matching with better accuracy. A prior sample's value
    (``calibration``) is a dotted line, or, when it lies a decade below every point, named in the legend."""
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
        if calibration < float((x - x_std).min()) / 10:  # drawn, the floor would leave most of the axis empty
            ax.plot([], [], ls="none", label=f"a sample of the prior: {calibration:.2g}\n(far left, off the axis)")
        else:
            ax.axvline(calibration, color="0.4", ls=":", lw=1, label="a sample of the prior")
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    if high / low < 10:  # within a decade: plain numbers on the ticks, not 5×10⁰
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
    ax.set(xlabel=f"{dm_title} (log scale; lower = better matching)", ylabel="linear-probe accuracy")
    handles, names = ax.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: names[i].startswith("a sample of the prior"))  # the floor last
    ax.legend([handles[i] for i in order], [names[i] for i in order], fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1))  # beside the axes: never over a point
    return fig


def qq_grid(panels: list[tuple[str, np.ndarray]], prior: str) -> Figure:
    """QQ plots against the prior's marginal, one panel per (title, z), every coordinate a line."""
    columns = 3
    fig, axes = panel_grid(len(panels), 3.0, 3.0, columns=columns, sharey=True)
    for ax, (title, z) in zip(axes, panels):
        n = len(z)
        probabilities = (np.arange(1, n + 1) - 0.5) / n
        theoretical = get_prior(prior).marginal.ppf(probabilities)
        for k in range(z.shape[1]):
            ax.plot(theoretical, np.sort(z[:, k]), lw=0.8, alpha=0.6)
        ends = (theoretical[0], theoretical[-1])
        ax.plot(ends, ends, color="k", lw=1, ls="--")
        ax.set(title=title, xlabel="prior quantile")
    for ax in axes[::columns]:  # the first panel of each row
        ax.set_ylabel("embedding quantile")
    fig.tight_layout()
    return fig


def certificate_plot(cert, prior: str, lowest: float = 1e-3) -> Figure:
    """The certificate C − InfoNCE (±2 standard errors) against independent estimates of the KL it bounds, one
    point per NINE run, every run shown (colour: noise level, marker: d), on log axes (values below ``lowest``
    drawn at it). Gaussian channel: a bar from the low (leave-one-out) to the high (resubstitution) estimate,
    the marker at the high end. Uniform channel: the marker at the kNN estimate, and a grey tick at the KL a
    sample of the uniform prior itself has (the prior is not the channel's optimum)."""
    law = get_prior(prior)
    levels = sorted(cert["noise"].unique())
    colours = {level: f"C{k}" for k, level in enumerate(levels)}
    markers = {d: m for d, m in zip(sorted(cert["d"].unique()), "os^D")}
    fig, ax = plt.subplots(figsize=(6.8, 5.0))
    clip = lambda v: max(float(v), lowest)  # noqa: E731
    for row in cert.itertuples():
        colour, y = colours[row.noise], clip(row.certificate)
        if law.gaussian_channel:
            ax.plot([clip(row.kl_low), clip(row.kl_high)], [y, y], color=colour, lw=1.2, alpha=0.8)
            x = clip(row.kl_high)
        else:
            ax.plot([clip(row.prior_kl)], [y], "|", color=colour, ms=10, mew=1.5, alpha=0.6)
            x = clip(row.kl_estimate)
        ax.errorbar(x, y, yerr=[[y - clip(row.certificate - 2 * row.certificate_se)], [2 * row.certificate_se]],
                    fmt=markers[row.d], color=colour, ms=6, lw=1)
    values = [*cert["certificate"], *cert["kl_estimate"], *cert.get("kl_high", [])]
    top = 1.5 * max(float(np.nanmax(values)), 1.0)
    ax.plot([lowest, top], [lowest, top], color="k", ls="--", lw=1)
    ax.set(xscale="log", yscale="log", xlim=(lowest / 1.5, top), ylim=(lowest / 1.5, top))
    for level in levels:
        ax.plot([], [], "o", color=colours[level], label=f"{law.symbol} = {level:g}")
    for d, m in markers.items():
        ax.plot([], [], m, color="grey", mfc="none", label=f"d = {d}")
    if not law.gaussian_channel:
        ax.plot([], [], "|", color="0.45", ms=10, mew=1.5, label="a prior sample's KL")
    title = "bar: leave-one-out (low) to resubstitution (high)" if law.gaussian_channel else "kNN estimate, nothing subtracted"
    ax.legend(fontsize=8, loc="lower right", ncol=2, title=title, title_fontsize=8)
    target = "smoothed prior" if law.gaussian_channel else "U[−ε, 1 + ε]ᵈ"
    ax.set_xlabel(f"independent estimate of KL(smoothed view law ‖ {target}) (nats)")
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




DEPARTURES = {"excess_kurtosis_mean": "mean excess kurtosis (tails)", "gaussian_kl": "Gaussian part of the KL (nats)",
              "eigenvalue_min": "smallest covariance eigenvalue"}


def departure_vs_noise(table, prior: str, bands: dict[int, dict[str, tuple[float, float]]]) -> Figure:
    """Where the law departs from its prior, against the noise level: one panel per distance of
    :data:`DEPARTURES` (mean ± std over seeds, one line per d, plain InfoNCE at the left edge), with the range
    samples of the prior reach at each d shaded (``bands[d]``, :func:`nine.experiments.omnibus_calibration.null_band`).
    Below the band, excess kurtosis means lighter tails than the prior's."""
    symbol = PRIOR_NAMES[prior][0]
    fig, axes = panel_grid(len(DEPARTURES), 3.3, 3.0, columns=3)
    for ax, (column, title) in zip(axes, DEPARTURES.items()):
        for k, (d, part) in enumerate(table.groupby("d")):
            colour = f"C{k}" if k == 0 else "C4"
            mean, std = _seed_spread(part, column)
            ax.errorbar(mean.index, mean, yerr=std, marker="o", ms=4, capsize=3, color=colour, label=f"NINE, d = {d}")
            plain = part.loc[part["head"] == "plain", column]
            if len(plain):
                ax.errorbar([mean.index.min() / 2.2], [plain.mean()], yerr=[_std(plain)], marker="s", ms=5, color=colour,
                            mfc="white", ls="none", capsize=2, label=f"plain InfoNCE, d = {d}")
            if d in bands:
                low, high = bands[d][column]
                ax.axhspan(low, high, color=colour, alpha=0.15, lw=0, label=f"prior samples (central 95%), d = {d}")
        ax.set_xscale("log")
        if column == "gaussian_kl":
            ax.set_yscale("symlog", linthresh=0.01)
            ax.set_ylim(bottom=0)
        ax.set(xlabel=f"noise level {symbol} (plain InfoNCE left)", title=title)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=9, loc="lower center", ncol=2, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.24, 1, 1))
    return fig
