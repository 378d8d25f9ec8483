"""The readings behind ledger rows, on inputs with known answers: the smoothed-law KL estimator and the
certificate row, the attribution of failing claims, and the choice of the tuned adversary."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nine.book.tables import failure_attribution
from nine.config import make_config
from nine.eval.smoothed import smoothed_kl
from nine.experiments import certificate, tuning
from nine.store import resolve_numerics


@pytest.mark.parametrize(("shift", "sigma"), [(1.0, 1.0), (0.5, 0.5)])
def test_smoothed_kl_of_a_shifted_gaussian_matches_the_closed_form(shift, sigma):
    # U ~ N(shift, 1) in d = 1: Y = U + Z ~ N(shift, 1 + σ²) against N(0, 1 + σ²): KL = shift² / (2 (1 + σ²))
    u = np.random.default_rng(0).standard_normal((3000, 1)) + shift
    exact = shift**2 / (2 * (1 + sigma**2))
    assert smoothed_kl(u, "gaussian", sigma, draws=3) == pytest.approx(exact, abs=0.03)


def test_smoothed_kl_of_a_prior_sample_is_near_zero_and_of_a_narrow_law_large():
    rng = np.random.default_rng(1)
    assert abs(smoothed_kl(rng.standard_normal((2000, 2)), "gaussian", 0.5)) < 0.03
    assert smoothed_kl(0.1 * rng.standard_normal((2000, 2)), "gaussian", 0.5) > 0.5
    # a perfect U[0,1]^d sample smoothed by U(−ε, ε) is a trapezoid law, d·(log(1 + 2ε) − ε) nats from
    # U[−ε, 1 + ε]^d: a true KL, not the estimator's bias (2·(log 1.4 − 0.2) = 0.273 at d = 2, ε = 0.2)
    exact = 2 * (math.log(1.4) - 0.2)
    assert smoothed_kl(rng.uniform(0, 1, (2000, 2)), "uniform", 0.2) == pytest.approx(exact, abs=0.05)


def _run(head="nine", prior="gaussian", capacity=3.0, infonce=2.5, log=(), seed=0, d=2, u=None):
    cfg = make_config("cpu", head=head, prior=prior, d=d, sigma=1.0, seed=seed)
    u = np.random.default_rng(seed).standard_normal((500, d)) if u is None else u
    return SimpleNamespace(hash=f"run{seed}{head}", config=cfg, embeddings={"z_test_view": u},
                           metrics={"capacity": capacity, "infonce_test": infonce, "infonce_test_std": 0.1,
                                    "log_n": math.log(512)}, log=[{"infonce": v} for v in log])


def test_certificate_row_reads_the_gap_and_the_second_moment():
    row = certificate.certificate_row(_run(capacity=3.0, infonce=2.5, u=2 * np.ones((400, 2))))
    assert row["certificate"] == pytest.approx(0.5) and row["certificate_se"] == pytest.approx(0.1 / math.sqrt(10))
    assert row["second_moment"] == pytest.approx(4.0) and row["saturated"] is False
    assert row["kl_estimate"] > 1.0  # every embedding at (2, 2): far from N(0, I)
    with pytest.raises(ValueError, match="head='plain'"):
        certificate.certificate_row(_run(head="plain"))


def test_failure_attribution_counts_what_limits_each_failing_claim():
    rising, flat = list(np.linspace(1, 2, 10)), [2.0] * 10
    runs = {"a": _run(log=rising, seed=1), "b": _run(log=flat, seed=2),
            "c": _run(log=flat, seed=3, capacity=9.0)}  # C > log N: the estimator limits it
    for key, run in runs.items():
        run.hash = key
    table = pd.DataFrame({"run": ["a", "b", "c"], "head": "nine", "d": 2, "noise": [0.3, 0.3, 0.5]})
    claims = [SimpleNamespace(id="gaussian-dm-improves-with-noise-d2", verdict="FAIL"),
              SimpleNamespace(id="gaussian-views-match-prior", verdict="FAIL"),
              SimpleNamespace(id="gaussian-passing", verdict="pass")]
    scopes = {"gaussian-dm-improves-with-noise-d2": (2, [0.3, 0.5]), "gaussian-views-match-prior": (2, [0.3]),
              "gaussian-passing": (2, [0.3])}
    rows = failure_attribution(claims, scopes, table, runs)
    rows = rows.set_index("claim")
    assert list(rows.index) == ["gaussian-dm-improves-with-noise-d2", "gaussian-views-match-prior"]
    trend, best = rows.loc["gaussian-dm-improves-with-noise-d2"], rows.loc["gaussian-views-match-prior"]
    assert (trend["runs"], trend["budget"], trend["method (plateau)"], trend["estimator"]) == (3, 1, 1, 1)
    assert (best["runs"], best["budget"], best["method (plateau)"], best["estimator"]) == (2, 1, 1, 0)


def test_the_tuned_adversary_is_the_setting_of_lowest_score(monkeypatch):
    configs = resolve_numerics(tuning.tuning_configs("gaussian", "cpu"))[0]  # as the runs are found (committed)
    scores = {cfg: float(k == 2) * -1 + k for k, cfg in enumerate(configs)}  # setting 2 scores lowest
    runs = {cfg: SimpleNamespace(config=cfg) for cfg in configs}
    monkeypatch.setattr("nine.store.get_or_train", lambda cfg: runs[cfg])
    monkeypatch.setattr(tuning, "selection_score", lambda run: scores[run.config])
    chosen, scored = tuning.best_setting("gaussian", "cpu")
    best = min(scores, key=scores.get)
    assert chosen == tuning.setting(best) and len(scored) == len(configs)


def test_a_failing_claim_carries_its_reason_into_the_ledger():
    import pandas as pd

    from nine.book.claims import Ledger, render_rows
    from nine.book.tables import failure_reasons

    attribution = pd.DataFrame([{"claim": "c", "runs": 6, "estimator": 3, "budget": 0, "method (plateau)": 3}])
    reasons = failure_reasons(attribution)
    assert reasons == {"c": "what limits its 6 runs: the estimator (C > log N) in 3, a plateau below C in 3"}
    ledger = Ledger("02_gaussian_matching", "cpu")
    ledger.check("c", "s", "how", measured=0.5, expected=0.05, relation="le")
    ledger.check("d", "s", "how", measured=0.01, expected=0.05, relation="le")
    ledger.explain("c", reasons["c"])
    ledger.explain("d", "never shown: d passes")
    html = render_rows(list(ledger.claims.values()), link=None)
    assert "a plateau below C in 3</small>" in html and "never shown" not in html


def test_the_smoothed_kl_estimates_bracket_an_exact_kl():
    """Rademacher input (unit power): KL(P_Y ‖ N(0, (1 + σ²) I)) is d times a one-dimensional integral. The
    leave-one-out estimate reads at most it and the resubstitution one at least it, up to their Monte-Carlo error."""
    from scipy import integrate

    from nine.eval.smoothed import smoothed_kl

    d, sigma = 2, 0.5
    p = lambda y: 0.5 * (stats.norm.pdf(y, 1, sigma) + stats.norm.pdf(y, -1, sigma))  # noqa: E731
    q = stats.norm(scale=np.sqrt(1 + sigma**2)).pdf
    exact = d * integrate.quad(lambda y: p(y) * np.log(p(y) / q(y)), -12, 12, limit=200)[0]
    u = np.random.default_rng(0).choice([-1.0, 1.0], size=(2000, d))
    low, high = smoothed_kl(u, "gaussian", sigma), smoothed_kl(u, "gaussian", sigma, leave_out=False)
    assert low <= high and low - 0.005 <= exact <= high + 0.005
    # a sample of the prior itself: KL 0, the bracket straddles it
    z = np.random.default_rng(1).standard_normal((1000, 16))
    assert smoothed_kl(z, "gaussian", 1.0) < 0 < smoothed_kl(z, "gaussian", 1.0, leave_out=False)


def test_a_uniform_sample_is_a_known_distance_from_the_box_and_the_knn_estimate_finds_it():
    from nine.eval.smoothed import smoothed_kl_floor, smoothed_prior_kl

    assert smoothed_prior_kl("gaussian", 0.5, 16) == 0.0
    for eps in (0.1, 0.5):
        exact = smoothed_prior_kl("uniform", eps, 2)
        assert exact == pytest.approx(2 * (np.log(1 + 2 * eps) - eps))
        mean, spread = smoothed_kl_floor("uniform", eps, 1000, 2, draws=5)
        assert abs(mean - exact) < 0.03


def test_certificate_violations_count_runs_beyond_a_family_wise_margin():
    from nine.experiments.certificate import certificate_violations, violation_margin

    assert violation_margin(3) == pytest.approx(stats.norm.isf(0.05 / 3))  # 2.13 standard errors for 3 runs
    # 2.05 standard errors above the bound: a violation at 2 (one run alone), not at the 3-run margin
    cert = pd.DataFrame({"certificate": [1.0, 1.0, 1.0], "certificate_se": [0.1, 0.1, 0.1], "kl_estimate": [0.5, 1.205, 1.3]})
    assert certificate_violations(cert) == 1
    assert certificate_violations(cert.iloc[1:2]) == 1  # one run: the margin is 1.64
    # with every run exactly on the bound, some run counts as a violation about 5 % of the time, not more
    rng = np.random.default_rng(0)
    runs = 30
    hits = [certificate_violations(pd.DataFrame({"certificate": np.ones(runs), "certificate_se": np.full(runs, 0.1),
                                                 "kl_estimate": 1 + 0.1 * rng.standard_normal(runs)})) > 0
            for _ in range(2000)]
    assert np.mean(hits) <= 0.05 + 0.01
    with pytest.raises(ValueError, match="runs=0"):
        violation_margin(0)


def test_the_adversary_is_tuned_where_it_is_compared(monkeypatch):
    # the setting best at d = 2 need not be best at d = 16: the final runs take the one chosen at their own d
    asked = []

    def best(prior, profile, d=2, **overrides):
        asked.append(d)
        return {"adv_head": "normalise" if d == 16 else "squash", "adv_gp": 0.0, "adv_lr_ratio": 4.0}, []

    monkeypatch.setattr(tuning, "best_setting", best)
    finals = tuning.final_configs("gaussian", (0, 1), "cpu", d=16)
    assert asked == [16] and {cfg.adv_head for cfg in finals} == {"normalise"} and {cfg.d for cfg in finals} == {16}
