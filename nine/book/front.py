"""The book's first screen: what the companion found, computed from the claims ledger and the committed
result tables when the book is built, so that it always states the numbers the pages show.

Each claim of the ledger is one of three kinds (:data:`KINDS`): a claim of the paper, a control (a check
whose answer is known, run to show that the instrument can see it), or a check of the companion's own (the
certificate, the estimator's behaviour, the budget study). The counts are split by kind, so that a failed
control or a budget check is never counted as a failure of the paper.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

KIND_LABELS = {
    "paper": "the paper's claims",
    "control": "controls (known answers)",
    "companion": "the companion's own checks",
}
# Every ledger claim that is not the paper's, by id; any other id is a claim of the paper.
KINDS = {
    **dict.fromkeys(("gaussian-plain-rejected", "uniform-plain-rejected", "generative-plain-prior-samples-worse",
                     "dsprites-metric-control", "dsprites-vae-control", "outliers-positive-control"), "control"),
    **dict.fromkeys(("infonce-tracks-capacity", "infonce-saturates-at-log-n", "infonce-never-exceeds-log-n",
                     "certificate-identity-multivariate", "certificate-bounds-kl", "gaussian-certificate-holds",
                     "uniform-certificate-holds", "gaussian-mnist-infonce-below-capacity",
                     "uniform-mnist-infonce-below-capacity", "budget-matching-improves-d16",
                     "budget-matches-prior-d16", "laplace-run-is-gaussian-run-mapped"), "companion"),
}
VERDICTS = ("pass", "FAIL", "inconclusive")


def prior_word(prior: str) -> str:
    """A prior's name in a sentence: "Gaussian" (a proper name), "uniform", "Laplace"."""
    return {"gaussian": "Gaussian", "laplace": "Laplace"}.get(prior, prior)


def claim_kind(claim_id: str) -> str:
    """"paper", "control" or "companion" (:data:`KINDS`)."""
    return KINDS.get(claim_id, "paper")


def verdict_counts(claims) -> list[dict]:
    """One row per kind of claim (and a total row): how many pass, FAIL, are inconclusive, and in all."""
    rows = []
    for kind, label in KIND_LABELS.items():
        verdicts = [c.verdict for c in claims if claim_kind(c.id) == kind]
        rows.append({"kind": label, **{v: verdicts.count(v) for v in VERDICTS}, "total": len(verdicts)})
    rows.append({"kind": "all", **{v: sum(r[v] for r in rows) for v in VERDICTS}, "total": sum(r["total"] for r in rows)})
    return rows


def counts_html(claims) -> str:
    """:func:`verdict_counts` as an HTML table (the last row, the totals, in bold)."""
    head = "".join(f"<th>{h}</th>" for h in ("", *VERDICTS, "total"))
    body = []
    for row in verdict_counts(claims):
        cells = "".join(f"<td>{row[k]}</td>" for k in (*VERDICTS, "total"))
        body.append(f'<tr{" class=glance-total" if row["kind"] == "all" else ""}><th scope="row">{html.escape(row["kind"])}</th>{cells}</tr>')
    return f'<table class="claims-glance"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def counts_line(claims) -> str:
    """:func:`verdict_counts` in one sentence, for the first screen (the table below it has the same numbers)."""
    def part(row: dict) -> str:
        return ", ".join(f"{row[v]} {v}" for v in VERDICTS if row[v])

    rows = verdict_counts(claims)
    kinds = "; ".join(f"{html.escape(row['kind'])} {row['total']} ({part(row)})" for row in rows[:-1] if row["total"])
    return (f'<p class="glance-line"><b>Verdicts of the {rows[-1]["total"]} checks</b> '
            f'(<a href="claims.html">ledger</a>): {kinds}.</p>')


def scale_line(claims, results: Path) -> str:
    """At what scale the checks ran, for the first screen: the claims' profile, with the digits and epochs of
    the headline Gaussian run and the longest training of the budget study, read from the committed runs; and
    that the paper's own scale was not run where no claim was checked at it. Empty without those tables."""
    import json

    import pandas as pd

    from nine.config import PROFILES

    results = Path(results)
    matching, continued = results / "matching-gaussian.csv", results / "budget-continued.csv"
    if not matching.is_file():
        return ""
    run = results / str(pd.read_csv(matching)["run"].iloc[0])
    metrics, config = (json.loads((run / name).read_text()) for name in ("metrics.json", "config.json"))
    profiles = sorted({c.profile for c in claims})
    longest = f" (the budget study: up to {int(pd.read_csv(continued)['epochs'].max()):,})" if continued.is_file() else ""
    paper = "" if "paper" in profiles else (
        f"; the paper's scale (the <code>paper</code> profile: all of MNIST, {PROFILES['paper']['epochs']:,} epochs) "
        'was not run here (<a href="reproducing.html">reproducing</a>)')
    return (f'<p class="glance-scale"><b>At what scale.</b> Every check ran at the '
            f'{", ".join(f"<code>{html.escape(p)}</code>" for p in profiles)} profile: on MNIST, {metrics["n_train"]:,} '
            f'training and {metrics["n_test"]:,} test digits, {config["epochs"]} epochs a run{longest}, on CPUs{paper}.</p>')


# a page as the first screen names it
PAGE_WORDS = {"01_theory": "theory", "02_gaussian_matching": "Gaussian matching", "03_uniform_matching": "uniform matching",
              "04_generative": "generation", "05_disentanglement": "disentanglement", "06_outliers": "outlier detection",
              "07_baselines": "baselines", "08_budget": "budget study"}


def _per_page(claims) -> str:
    """"2 on Gaussian matching, 3 on generation": how many of ``claims`` each page holds, linked, in book order."""
    pages = sorted({c.notebook for c in claims})
    return ", ".join(f"{sum(c.notebook == p for c in claims)} on {_link(p, PAGE_WORDS.get(p, p))}" for p in pages)


def _link(page: str, text: str, anchor: str = "") -> str:
    return f'<a href="../notebooks/{page}.html{anchor}">{html.escape(text)}</a>'


def _claim(claims, claim_id: str):
    return next((c for c in claims if c.id == claim_id), None)


# the prior whose step cost and budget readings the first screen quotes (the paper's main prior)
FIRST_PRIOR = "gaussian"
LONG_FALL = 0.05  # an accuracy falling by more than this over the budget study's training "pays more"


def _band(results: Path, table, prior: str, d: int) -> tuple[float, float] | None:
    """The range of mean excess kurtosis that samples of ``prior`` reach through the evaluation path at the
    table's n and d (the committed null draws); None where the run's record is missing."""
    from nine.experiments.omnibus_calibration import null_band

    metrics = Path(results) / str(table["run"].iloc[0]) / "metrics.json"
    if not metrics.is_file():
        return None
    m = json.loads(metrics.read_text())
    return null_band(prior, int(m["n_test"]), d, int(m["n_train"]))["excess_kurtosis_mean"]


def _tails(prior: str, kurtosis, band: tuple[float, float]) -> str:
    """How many rejected runs of ``prior`` have lighter or heavier tails than samples of the prior reach (their mean
    excess kurtosis below or above ``band``), in words."""
    low, high = band
    lighter, heavier = int((kurtosis < low).sum()), int((kurtosis > high).sum())
    parts = [f"{lighter} {prior_word(prior)}-prior runs have lighter tails than the prior's (mean excess kurtosis down to "
             f"{kurtosis.min():+.2f})" if lighter else "",
             f"{heavier} heavier (up to {kurtosis.max():+.2f})" if heavier else "",
             f"{len(kurtosis) - lighter - heavier} with tails within that range" if len(kurtosis) - lighter - heavier else ""]
    return ", ".join(part for part in parts if part) + f", where samples of the prior reach {low:+.2f} to {high:+.2f}"


def findings(claims, results: Path) -> list[str]:
    """The five or six sentences of the first screen, as HTML, each with its numbers and a link to the page
    that shows them. A sentence whose table is missing is left out rather than guessed."""
    import pandas as pd

    results = Path(results)
    out = []
    matching = {prior: pd.read_csv(results / f"matching-{prior}.csv") for prior in ("gaussian", "uniform")
                if (results / f"matching-{prior}.csv").is_file()}
    p_column = "omnibus_p"
    small, passed, total, kurtosis = [], 0, 0, []
    for prior, table in matching.items():
        if p_column not in table:
            continue
        nine = table[(table["head"] == "nine") & (table["d"] == 2)]
        kept = int((nine[p_column] > 0.05).sum())
        passed, total = passed + kept, total + len(nine)
        small.append(f"{kept} of {len(nine)} {prior_word(prior)}-prior runs")
        kurtosis.append((prior, nine[nine[p_column] <= 0.05]["excess_kurtosis_mean"], _band(results, table, prior, 2)))
    if small:
        verdict = ("matches its prior on most runs" if passed > total / 2 else
                   "matches its prior on some runs only" if passed > total / 4 else
                   f"matches its prior on {passed} of {total} runs" if passed else "does not match its prior")
        tails = "; ".join(_tails(prior, k, band) for prior, k, band in kurtosis if len(k) and band)
        out.append(f"<b>At d = 2 NINE {verdict}</b>: the omnibus matching test (tails, skew, correlation and "
                   f"marginals together) does not reject {' and '.join(small)} (every noise level and seed)"
                   + (f"; of the rejected runs, {tails}" if tails else "")
                   + f" ({_link('02_gaussian_matching', 'Gaussian')}, {_link('03_uniform_matching', 'uniform')}).")
    readings, prediction = results / "budget-readings.csv", results / "budget-prediction.csv"
    if FIRST_PRIOR in matching and readings.is_file():
        table = matching[FIRST_PRIOR]
        top = table[table["d"] == table["d"].max()]
        nine = top[top["head"] == "nine"]
        rejected = int((nine[p_column] <= 0.05).sum()) if p_column in nine else None
        read = pd.read_csv(readings)
        row = read[(read["prior"] == FIRST_PRIOR)].sort_values("kl_knn at 600").iloc[0]
        reached = row["reading"] == "at the floor"
        sentence = (f"<b>At d = 16 it moves towards the prior{' and reaches it' if reached else ' but does not reach it'}</b>: "
                    f"at σ = {row['noise']:g} (the closest of the budget study's {int((read['prior'] == FIRST_PRIOR).sum())} noise levels) the joint "
                    f"kNN KL to N(0, I) falls from {row['kl_knn at 60']:.2f} nats after 60 epochs to {row['kl_knn at 600']:.2f} "
                    f"after 600")
        if prediction.is_file():
            pred = pd.read_csv(prediction)
            hit = pred[(pred["prior"] == FIRST_PRIOR) & (pred["noise"] == row["noise"]) & pred["measured (kNN KL)"].notna()]
            if len(hit):
                sentence += f" and {hit.iloc[0]['measured (kNN KL)']:.2f} after 2,000"
        sentence += (f", against {row['prior sample']:.3f} for a sample of the prior ({_link('08_budget', 'budget study')}, "
                     f"mean of its seeds)"
                     + (f"; at 60 epochs the omnibus matching test rejects {rejected} of the {len(nine)} NINE runs at d = 16 "
                        f"of the {_link('02_gaussian_matching', 'Gaussian sweep')}, the Gaussian part of their KL "
                        f"{nine['gaussian_kl'].min():.2f} to {nine['gaussian_kl'].max():.2f} nats" if rejected is not None else "") + ".")
        out.append(sentence)
    trade = [(prior, _claim(claims, f"{prior}-moderate-tradeoff")) for prior in ("gaussian", "uniform")]
    trade = [(prior, c) for prior, c in trade if c is not None and math.isfinite(c.measured)]
    if trade:
        kept = " and ".join(f"{c.measured:.0%} ({prior_word(prior)})" for prior, c in trade)
        others = [_claim(claims, f"{prior}-moderate-tradeoff-{readout}") for prior, _ in trade for readout in ("mlp", "knn")]
        others = [c for c in others if c is not None]
        also = (", and an MLP probe and 5-NN keep at least 90% too" if others and all(c.passed for c in others) else
                f"; of the MLP-probe and 5-NN rows {sum(c.passed for c in others)} of {len(others)} pass" if others else "")
        longer, headline = "", "The price in accuracy is moderate"
        trajectories = results / "budget-trajectories.csv"
        if trajectories.is_file():
            traj = pd.read_csv(trajectories)
            columns = [c for c in ("probe_acc", "mlp_acc", "knn_acc") if c in traj]
            ends = traj[traj["epochs"].isin([traj["epochs"].min(), traj["epochs"].max()])]
            means = ends.groupby("epochs")[columns].mean()
            names = {"probe_acc": "linear probe", "mlp_acc": "MLP probe", "knn_acc": "5-NN"}
            fall = {c: float(means[c].iloc[0] - means[c].iloc[-1]) for c in columns}
            if fall.get("probe_acc", 0.0) > LONG_FALL and any(fall[c] <= LONG_FALL for c in columns if c != "probe_acc"):
                headline = "The price in accuracy is moderate at 60 epochs; with longer training a linear probe pays more"
            longer = ("; over ten times the training (d = 16, mean of every long run) "
                      + ", ".join(f"the {names[c]} goes {means[c].iloc[0]:.2f} → {means[c].iloc[-1]:.2f}" for c in columns))
        if any(c.premise and c.verdict == "inconclusive" for _, c in trade):  # a price of matching needs a match
            headline = "No price of matching can be stated at this budget"
            also = ("; no noise level matched its prior at d = 16, so the trade-off claims are inconclusive" if not others or
                    all(not c.passed for c in others) else also)
            out.append(f"<b>{headline}</b>: at the noise level closest to the prior a linear probe keeps {kept} "
                       f"of plain InfoNCE's accuracy at d = 16{also}{longer} ({_link('08_budget', 'budget study')}).")
        else:
            out.append(f"<b>{headline}</b>: at the best-matched noise level a linear probe keeps {kept} "
                       f"of plain InfoNCE's accuracy at d = 16{also}{longer} ({_link('08_budget', 'budget study')}).")
    bench = results / "bench.json"
    if bench.is_file():
        overhead = json.loads(bench.read_text()).get("overhead", {})
        if "ratio" in overhead:
            low, high = overhead.get("ratio_quartiles", [math.nan, math.nan])
            cpu = overhead.get("cpu") or {}
            machine = (f"{cpu['model']}, {cpu['class']}" if cpu else
                       f"{overhead.get('machine', 'a CPU')}; CPU class (bf16 units or not) not recorded")
            out.append(f"<b>It adds nothing to the cost of training</b>: a NINE step takes {overhead['ratio']:.2f}× a plain "
                       f"InfoNCE step (interquartile range {low:.2f}–{high:.2f} over {overhead.get('repeats', '?')} interleaved "
                       f"repeats on {html.escape(machine)}; {_link('07_baselines', 'baselines')}).")
    open_claims = [c for c in claims if claim_kind(c.id) == "paper" and c.verdict == "inconclusive"]
    if open_claims:
        out.append(f"<b>Still open</b>: {len(open_claims)} of the paper's claims cannot be decided on this data: "
                   + _per_page(open_claims) + " (each says why on its page and in the ledger).")
    failed = [c for c in claims if claim_kind(c.id) == "paper" and c.verdict == "FAIL"]
    if failed:
        out.append(f"<b>{len(failed)} of the paper's claims FAIL here</b>: {_per_page(failed)}, each shown with the "
                   f'measurement that fails it and why on its page and in the <a href="claims.html">ledger</a>.')
    return out
