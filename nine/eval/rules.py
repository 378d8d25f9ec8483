"""Decision rules: the functions that turn embeddings into pass/FAIL, each an instrument with a stated
null hypothesis, a measured size and a measured power.

A rule's **size** is the share of samples of the prior itself it rejects, measured through the
matching pages' evaluation path (n_train prior points standardise the coordinates of n test points,
then Φ for the uniform prior) at the pages' n and d; it must be at most its nominal level, family-wise
over the d coordinates. Its **power** is the share it rejects of samples of a named alternative at a
stated distance from the prior: coordinates drawn independently from a standardised Student t law
whose degrees of freedom put the whole d-dimensional law at ``kl`` nats from N(0, I) (on the Gaussian
side of the path; Φ maps it to the uniform prior's side at the same KL, a KL being invariant under a
bijection). The path standardises every coordinate, so only a difference of *shape* can be detected:
the alternative is one of shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import integrate, optimize, stats

from nine.config import PRIORS, check_choice
from nine.eval.metrics import ks_critical_value, ks_per_coordinate, sample_prior, standardise_like_train
from nine.priors import get as get_prior


@dataclass(frozen=True)
class Decision:
    """What a rule says of one sample: its statistic, the threshold it is compared with, the verdict, and
    (for a rule with a simulated null) its p-value."""

    statistic: float
    threshold: float
    rejected: bool
    pvalue: float = float("nan")


def max_ks_bonferroni(z: np.ndarray, prior: str, alpha: float = 0.05) -> Decision:
    """H0: every coordinate of z (n×d) follows the prior's marginal. Reject when the largest
    per-coordinate KS statistic exceeds the critical value at alpha / d (Bonferroni: the family-wise
    size is at most alpha; with "reject if any" Holm's procedure rejects exactly the same samples)."""
    ks = ks_per_coordinate(z, prior)[0]
    threshold = ks_critical_value(len(z), alpha / len(ks))
    return Decision(float(ks.max()), threshold, bool(ks.max() > threshold))


def max_ks_uncorrected(z: np.ndarray, prior: str, alpha: float = 0.05) -> Decision:
    """The rule the pages used before: the largest per-coordinate KS statistic against the critical value of
    one coordinate at alpha. Its family-wise size exceeds alpha for d > 1 (kept to show by how much)."""
    ks = ks_per_coordinate(z, prior)[0]
    threshold = ks_critical_value(len(z), alpha)
    return Decision(float(ks.max()), threshold, bool(ks.max() > threshold))


@lru_cache(maxsize=64)
def null_max_ks_quantile(prior: str, n: int, d: int, n_train: int, alpha: float = 0.05, draws: int = 2000,
                         seed: int = 12345) -> float:
    """The 1 − alpha quantile of the largest per-coordinate KS statistic of prior samples pushed through the
    evaluation path (n_train train points standardise n test points): the critical value of
    :func:`max_ks_path`. The path's own estimation of mean and scale makes this larger than the
    Bonferroni value, which assumes the exact prior."""
    values = simulate(lambda z: float(ks_per_coordinate(z, prior)[0].max()), prior, n, d, n_train, draws, seed=seed)
    return float(np.quantile(values, 1 - alpha))


def max_ks_path(z: np.ndarray, prior: str, alpha: float = 0.05, n_train: int = 4000) -> Decision:
    """H0: z (n×d) is a sample of the prior pushed through the evaluation path with ``n_train`` train
    points. Reject when the largest per-coordinate KS statistic exceeds the simulated 1 − alpha quantile of
    that statistic under H0 (:func:`null_max_ks_quantile`): a family-wise test of size alpha for the
    statistic the pages compute."""
    n, d = np.shape(z)
    threshold = null_max_ks_quantile(prior, n, d, n_train, alpha)
    statistic = float(ks_per_coordinate(z, prior)[0].max())
    return Decision(statistic, threshold, statistic > threshold)


# ---------------------------------------------------------------------------------------------
# A two-sample test without a lottery: the energy distance to one large fixed sample of the prior, its
# p-value from the simulated null of n-point prior samples pushed through the evaluation path against that
# same reference. A reference of as many points as the tested sample (the permutation test of the DM
# table) makes the p-value depend on which prior sample was drawn; 20,000 points make it a property of
# the embedding.

REFERENCE_SIZE = 20_000
REFERENCE_SEED = 0


WITHIN_POINTS = 5_000


class EnergyToReference:
    """The energy distance 2E‖X−R‖ − E‖X−X'‖ − E‖R−R'‖ of a sample X to the fixed reference sample R of
    ``size`` points of the prior (seed ``seed``): the first two terms over every pair (V-statistics), the
    last, a constant of the reference, over distinct pairs of its first :data:`WITHIN_POINTS` points. Distances
    are computed in float32 (twice as fast; their error, ~1e-6, is a thousandth of the statistic's spread)."""

    def __init__(self, prior: str, d: int, seed: int = REFERENCE_SEED, size: int = REFERENCE_SIZE) -> None:
        import torch

        check_choice("prior", prior, PRIORS)
        self.prior, self.d, self.seed, self.size = prior, d, seed, size
        self._torch = torch
        self.reference = torch.as_tensor(sample_prior(prior, size, d, seed=seed), dtype=torch.float32)
        inner = self.reference[:WITHIN_POINTS]  # E‖R−R'‖ is a constant of the reference: it moves no p-value
        self.within = float(torch.cdist(inner, inner).sum(dtype=torch.float64)) / (len(inner) * (len(inner) - 1))

    def __call__(self, z: np.ndarray) -> float:
        torch = self._torch
        z = torch.as_tensor(np.asarray(z, dtype=np.float32))
        if z.ndim != 2 or z.shape[1] != self.d:
            raise ValueError(f"z has shape {tuple(z.shape)}: the reference has d = {self.d}")
        cross = float(torch.cdist(z, self.reference).mean(dtype=torch.float64))
        inner = float(torch.cdist(z, z).mean(dtype=torch.float64))
        return 2 * cross - inner - self.within


def path_sample(rng: np.random.Generator, prior: str, n: int, d: int, n_train: int, dof: float | None = None) -> np.ndarray:
    """n test points pushed through the evaluation path with n_train train points, both drawn from N(0, I)
    (``dof`` None) or from the standardised t law with ``dof`` degrees of freedom; Φ for the uniform prior.
    ``n_train = 0``: no path, the n points as drawn (then Φ for the uniform prior)."""
    draw = (lambda m: rng.standard_normal((m, d))) if dof is None else (lambda m: sample_t(rng, m, d, dof))
    if n_train == 0:
        test = draw(n)
        return get_prior(prior).from_normal(test)
    train, test = draw(n_train), draw(n)
    return standardise_like_train(train, {"z": test}, None, prior)["z"]


def simulate(statistic: Callable[[np.ndarray], float], prior: str, n: int, d: int, n_train: int, draws: int,
             kl: float = 0.0, seed: int = 0) -> np.ndarray:
    """``statistic`` of ``draws`` samples through the evaluation path: of the prior (``kl = 0``, its null
    distribution) or of the t alternative at ``kl`` nats."""
    check_choice("prior", prior, PRIORS)
    rng = np.random.default_rng(seed)
    dof = t_dof_at(kl, d) if kl > 0 else None
    return np.array([statistic(path_sample(rng, prior, n, d, n_train, dof)) for _ in range(draws)])


def simulated_pvalue(statistic: float, null: np.ndarray) -> float:
    """The share of the null draws at least as large as ``statistic``, counting the observation: (1 + k)/(1 + m)."""
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.sum(null >= statistic)) / (1 + len(null)))


def energy_path(z: np.ndarray, energy: EnergyToReference, null: np.ndarray, alpha: float = 0.05) -> Decision:
    """H0: z is a sample of the prior pushed through the evaluation path. Reject when the p-value of its
    energy distance to the reference, from ``null`` (the same statistic of simulated H0 samples at the same
    n, d and n_train against the same reference), is at most alpha."""
    statistic = energy(z)
    p = simulated_pvalue(statistic, null)
    return Decision(statistic, float(np.quantile(null, 1 - alpha)), p <= alpha, p)


def rates(statistics: np.ndarray, threshold: float) -> dict[str, float]:
    """Share of simulated statistics above ``threshold`` (a rejection rate) with its 95% Wilson interval."""
    k, m = int(np.sum(np.asarray(statistics) > threshold)), len(statistics)
    low, high = wilson(k, m)
    return {"rate": k / m, "low": low, "high": high, "draws": m}


RULES: dict[str, Callable[..., Decision]] = {
    "max KS, simulated null of the evaluation path": max_ks_path,
    "max KS, Bonferroni over coordinates": max_ks_bonferroni,
    "max KS, one coordinate's 5% value (uncorrected)": max_ks_uncorrected,
}


def t_kl_to_normal(dof: float) -> float:
    """KL(standardised Student t with ``dof`` degrees of freedom ‖ N(0, 1)) in nats, by quadrature (dof > 2)."""
    scale = math.sqrt((dof - 2) / dof)  # a t_dof variable times this has unit variance
    law = stats.t(dof, scale=scale)

    def integrand(x: float) -> float:
        log_p = law.logpdf(x)
        return math.exp(log_p) * (log_p - stats.norm.logpdf(x))

    return float(integrate.quad(integrand, -np.inf, np.inf, limit=200)[0])


@lru_cache(maxsize=64)
def t_dof_at(kl: float, d: int) -> float:
    """The degrees of freedom of the standardised t law whose d independent coordinates are ``kl`` nats
    (in all) from N(0, I_d)."""
    per_coordinate = kl / d
    return float(optimize.brentq(lambda dof: t_kl_to_normal(dof) - per_coordinate, 2.05, 1e6, xtol=1e-6))


def sample_t(rng: np.random.Generator, n: int, d: int, dof: float) -> np.ndarray:
    """n × d independent standardised t_dof coordinates (unit variance)."""
    return rng.standard_t(dof, size=(n, d)) * math.sqrt((dof - 2) / dof)


def rejection_rate(rule: Callable[..., Decision], prior: str, n: int, d: int, n_train: int, draws: int = 500,
                   kl: float = 0.0, seed: int = 0) -> dict[str, float]:
    """Share of ``draws`` samples that ``rule`` rejects, each pushed through the evaluation path: n_train
    train and n test points, from the prior itself (``kl = 0``: the rule's size) or from the t alternative
    at ``kl`` nats (its power). Returns the rate and its 95% Wilson interval."""
    check_choice("prior", prior, PRIORS)
    rng = np.random.default_rng(seed)
    dof = t_dof_at(kl, d) if kl > 0 else None
    rejected = sum(rule(path_sample(rng, prior, n, d, n_train, dof), prior).rejected for _ in range(draws))
    low, high = wilson(rejected, draws)
    return {"rate": rejected / draws, "low": low, "high": high, "draws": draws}


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion k / n."""
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def calibration_table(prior: str, n: int, dims: tuple[int, ...], n_train: int, kls: tuple[float, ...] = (0.1, 0.5),
                      draws: int = 500, rules: dict | None = None):
    """For each rule of :data:`RULES` and each d: its size (false-rejection rate on prior samples) and its
    power at each KL of ``kls``, from ``draws`` simulated samples through the evaluation path at n."""
    import pandas as pd

    rows = []
    for name, rule in (rules or RULES).items():
        for d in dims:
            size = rejection_rate(rule, prior, n, d, n_train, draws, seed=d)
            row = {"rule": name, "d": d, "n": n, "size": size["rate"], "size 95% high": size["high"]}
            for kl in kls:
                row[f"power at KL {kl:g}"] = rejection_rate(rule, prior, n, d, n_train, draws, kl=kl, seed=1000 + d)["rate"]
            rows.append(row)
    return pd.DataFrame(rows)


