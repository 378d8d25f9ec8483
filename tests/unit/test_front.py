"""The book's first screen: verdict counts split by kind, and sentences computed from the result tables."""

import json

import pandas as pd

from nine.book.claims import Claim
from nine.book.front import claim_kind, counts_html, counts_line, findings, verdict_counts


def claim(id, measured, expected=0.05, relation="le", inconclusive="", notebook="02_gaussian_matching"):
    return Claim(id, "statement", "check", measured, expected, 0.0, relation, notebook, "cpu", inconclusive)


CLAIMS = [
    claim("gaussian-best-noise-not-rejected", 0.01, relation="ge"),  # paper, FAIL
    claim("gaussian-moderate-tradeoff", 0.97, 0.9, "ge"),  # paper, pass
    claim("generative-nine-prior-samples-as-good", 1.0, inconclusive="no power", notebook="04_generative"),
    claim("gaussian-plain-rejected", 0.001),  # control, pass
    claim("dsprites-vae-control", 0.01, 0.1, "ge", notebook="05_disentanglement"),  # control, FAIL
    claim("budget-matches-prior-d16", 0.01, relation="ge", notebook="08_budget"),  # companion, FAIL
]


def test_counts_are_split_by_kind_and_add_up():
    rows = {r["kind"]: r for r in verdict_counts(CLAIMS)}
    assert rows["the paper's claims"] == {"kind": "the paper's claims", "pass": 1, "FAIL": 1, "inconclusive": 1, "total": 3}
    assert rows["controls (known answers)"]["FAIL"] == 1 and rows["the companion's own checks"]["FAIL"] == 1
    assert rows["all"] == {"kind": "all", "pass": 2, "FAIL": 3, "inconclusive": 1, "total": 6}
    assert claim_kind("a-claim-of-the-paper") == "paper"
    assert counts_html(CLAIMS).count("<tr") == 5  # the header, three kinds, the totals
    line = counts_line(CLAIMS)
    assert "Verdicts of the 6 checks" in line
    assert "the paper&#x27;s claims 3 (1 pass, 1 FAIL, 1 inconclusive)" in line
    assert "controls (known answers) 2 (1 pass, 1 FAIL)" in line  # no "0 inconclusive"


def test_findings_state_the_numbers_of_the_tables(tmp_path):
    def row(head, d, p, kl=0.5):
        return dict(run="abc", head=head, d=d, omnibus_p=p, excess_kurtosis_mean=-0.3, gaussian_kl=kl)

    rows = [row("nine", 2, p) for p in (0.3, 0.6, 0.01)]
    rows += [row("nine", 16, p, kl) for p, kl in ((0.001, 0.43), (0.002, 2.5))] + [row("plain", 16, 0.001)]
    pd.DataFrame(rows).to_csv(tmp_path / "matching-gaussian.csv", index=False)
    pd.DataFrame([dict(prior="gaussian", noise=0.5, reading="still falling (budget)",
                        **{"kl_knn at 60": 4.75, "kl_knn at 600": 1.38, "prior sample": 0.006})]
                 ).to_csv(tmp_path / "budget-readings.csv", index=False)
    (tmp_path / "bench.json").write_text(json.dumps({"overhead": {"ratio": 1.004, "ratio_quartiles": [0.94, 1.06],
                                                                  "repeats": 30, "machine": "x86_64"}}))
    text = findings(CLAIMS, tmp_path)
    assert text[0].startswith("<b>At d = 2 NINE matches its prior on most runs</b>")
    assert "does not reject 2 of 3 Gaussian-prior runs" in text[0]
    assert "but does not reach it" in text[1]
    assert "falls from 4.75 nats after 60 epochs to 1.38 after 600, against 0.006" in text[1]
    assert "rejects 2 of the 2 NINE runs at d = 16" in text[1] and "Gaussian part of their KL 0.43 to 2.50 nats" in text[1]
    assert "keeps 97% (Gaussian)" in text[2] and "MLP" not in text[2]  # no readout rows: nothing said of them
    more = CLAIMS + [claim("gaussian-moderate-tradeoff-mlp", 1.0, 0.9, "ge"), claim("gaussian-moderate-tradeoff-knn", 0.8, 0.9, "ge")]
    assert "of the MLP-probe and 5-NN rows 1 of 2 pass" in findings(more, tmp_path)[2]
    assert "1.00× a plain InfoNCE step" in text[3]
    # a price of matching needs a match: where the trade-off rows are inconclusive for want of it, no price is stated
    unmatched = [c for c in CLAIMS if c.id != "gaussian-moderate-tradeoff"] + [
        Claim("gaussian-moderate-tradeoff", "s", "c", 0.99, 0.9, 0.0, "ge", "02_gaussian_matching", "cpu",
              "its premise gaussian-best-noise-not-rejected is not a pass (FAIL)", premise="gaussian-best-noise-not-rejected")]
    price = findings(unmatched, tmp_path)[2]
    assert price.startswith("<b>No price of matching can be stated at this budget</b>") and "keeps 99% (Gaussian)" in price
    assert "1 of the paper's claims cannot be decided" in text[4] and "1 of the paper's claims FAIL" in text[5]
    assert '1 on <a href="../notebooks/04_generative.html">generation</a>' in text[4]  # each page with its count
    assert '1 on <a href="../notebooks/02_gaussian_matching.html">Gaussian matching</a>' in text[5]
    assert findings(CLAIMS, tmp_path / "nowhere")[0].startswith("<b>The price")  # no table: no sentence, no guess
    assert text[2].startswith("<b>The price in accuracy is moderate</b>")  # no long runs: nothing said of them
    long = [dict(epochs=e, probe_acc=p, mlp_acc=m, knn_acc=k) for e, p, m, k in ((60, 0.89, 0.94, 0.91), (600, 0.72, 0.94, 0.93))]
    pd.DataFrame(long).to_csv(tmp_path / "budget-trajectories.csv", index=False)
    longer = findings(CLAIMS, tmp_path)[2]
    assert longer.startswith("<b>The price in accuracy is moderate at 60 epochs; with longer training a linear probe pays more</b>")
    assert "the linear probe goes 0.89 → 0.72, the MLP probe goes 0.94 → 0.94" in longer


def test_tails_are_counted_against_what_prior_samples_reach():
    from nine.book.front import _tails

    text = _tails("gaussian", pd.Series([-0.48, -0.3, 0.0, 1.06]), (-0.21, 0.22))
    assert text.startswith("2 Gaussian-prior runs have lighter tails than the prior's (mean excess kurtosis down to -0.48)")
    assert "1 heavier (up to +1.06), 1 with tails within that range, where samples of the prior reach -0.21 to +0.22" in text


def test_the_mlp_probe_reads_what_a_linear_probe_cannot_and_is_stored_once(tmp_path):
    from types import SimpleNamespace

    import numpy as np

    from nine.eval.metrics import linear_probe_accuracy, mlp_probe_accuracy
    from nine.experiments.readouts import mlp_probe, readout_key

    rng = np.random.default_rng(0)

    def rings(n):  # class 0 inside a circle, class 1 on a ring around it: not linearly separable
        y = rng.integers(0, 2, n)
        angle, radius = rng.uniform(0, 2 * np.pi, n), np.where(y == 0, 1.0, 3.0) + 0.2 * rng.standard_normal(n)
        return np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1), y

    (x, y), (xt, yt) = rings(600), rings(300)
    assert mlp_probe_accuracy(x, y, xt, yt) > 0.95 > 0.7 > linear_probe_accuracy(x, y, xt, yt)
    run = SimpleNamespace(hash="abc123", embeddings={"z_train": x, "y_train": y, "z_test": xt, "y_test": yt})
    first = mlp_probe(run, tmp_path)
    assert (tmp_path / readout_key("abc123") / "readout.json").is_file()
    run.embeddings = None  # a stored readout is read, never refitted
    assert mlp_probe(run, tmp_path) == first


def test_the_first_screen_says_at_what_scale_from_the_committed_runs(tmp_path):
    """The digits and epochs come from a committed run and the budget study's table, not from prose; that the
    paper's scale was not run is said only while no claim was checked at it."""
    from dataclasses import replace

    from nine.book.front import scale_line

    run = tmp_path / "abc123"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"n_train": 4000, "n_test": 1000}))
    (run / "config.json").write_text(json.dumps({"epochs": 60}))
    pd.DataFrame({"run": ["abc123"]}).to_csv(tmp_path / "matching-gaussian.csv", index=False)
    pd.DataFrame({"epochs": [60, 600, 2000]}).to_csv(tmp_path / "budget-continued.csv", index=False)
    line = scale_line(CLAIMS, tmp_path)
    assert "<code>cpu</code> profile: on MNIST, 4,000 training and 1,000 test digits, 60 epochs a run (the budget study: up to 2,000)" in line
    assert "was not run here" in line
    assert "was not run" not in scale_line([*CLAIMS, replace(CLAIMS[0], profile="paper")], tmp_path)
    assert scale_line(CLAIMS, tmp_path / "nothing") == ""
