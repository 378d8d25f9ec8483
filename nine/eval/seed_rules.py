"""Decision rules over seeds: the verdict of a claim measured as one number per seed (a FID ratio, an
AUROC difference, a kNN KL difference, a MIG), and each rule's size and power as an instrument.

:func:`seed_interval` is the rule of pages 04–07: the mean over seeds with its 95 % t-interval passes a
claim when the whole interval lies on the claim's side of the threshold, fails it when the whole interval
lies on the other side, and leaves it *inconclusive* when the interval contains the threshold.
:func:`welch_all_greater` is the rule of a comparison of methods trained separately (05): one-sided Welch
t-tests that one method's mean exceeds each other's, the claim passing when the largest p is at most α
(an intersection–union test, whose size is at most α); a p above α fails it only where the rule has the
power to see the effect that matters, else the claim is inconclusive.

An instrument's figures come from simulated sets of seed values run through the same function at the
same number of seeds (:func:`interval_instrument`, :func:`welch_instrument`): seed values are drawn
normal with the spread the committed seeds show (and, for robustness, from a heavy-tailed t law with
3 degrees of freedom at the same spread). **False pass**: the share of verdicts "pass" when the true mean
sits exactly on the threshold; **false FAIL**: the share "FAIL" there (each at most 2.5 % by
construction under normality). **Power**: the share "pass" when the true mean is the named effect that
matters. A verdict of the interval rule is a significant finding either way (each false verdict at most
2.5 %), so its power says how often it reaches a verdict at all; a Welch p above α is read as a FAIL only
where the power at the effect that matters is at least 50 % (:data:`MIN_POWER`), else as inconclusive.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95  # of the t-interval
ALPHA = 0.05  # of a Welch test
MIN_POWER = 0.5  # below it at the effect that matters, a pass is inconclusive
DRAWS = 2000  # simulated seed sets per figure of an instrument
RELATIONS = ("le", "ge")


@dataclass(frozen=True)
class SeedVerdict:
    """The interval rule's reading of one claim: mean over ``n`` seeds, its interval, verdict and (when it
    cannot decide) why."""

    mean: float
    low: float
    high: float
    n: int
    verdict: str  # "pass" | "FAIL" | "inconclusive"
    reason: str = ""


def _check_relation(relation: str) -> None:
    if relation not in RELATIONS:
        raise ValueError(f"relation={relation!r} is not allowed: must be one of {', '.join(RELATIONS)}")


def _interval(sets: np.ndarray, threshold: float, relation: str, level: float) -> tuple[np.ndarray, ...]:
    """The interval rule on each row of ``sets`` (rows × seeds): mean, low, high, and the codes 1 pass,
    -1 FAIL, 0 inconclusive. :func:`seed_interval` and the simulations share it."""
    n = sets.shape[1]
    mean = sets.mean(axis=1)
    half = stats.t.ppf((1 + level) / 2, n - 1) * sets.std(axis=1, ddof=1) / math.sqrt(n)
    low, high = mean - half, mean + half
    holds, breaks = (high <= threshold, low > threshold) if relation == "le" else (low >= threshold, high < threshold)
    return mean, low, high, np.where(holds, 1, np.where(breaks, -1, 0))


def seed_interval(values, threshold: float, relation: str, level: float = LEVEL) -> SeedVerdict:
    """The interval rule. ``relation`` "le": the claim holds when the mean is at most ``threshold``; "ge": at
    least. Fewer than two values give no interval and no verdict."""
    _check_relation(relation)
    values = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError(f"values={values.tolist()} is not allowed: every seed's value must be finite")
    n = len(values)
    if n < 2:
        mean = float(values.mean()) if n else float("nan")
        return SeedVerdict(mean, float("nan"), float("nan"), n, "inconclusive",
                           f"{n} seed{'s' if n != 1 else ''}: no interval (the rule needs at least 2)")
    mean, low, high, code = (float(x[0]) for x in _interval(values[None, :], threshold, relation, level))
    verdict = {1: "pass", -1: "FAIL", 0: "inconclusive"}[int(code)]
    reason = "" if verdict != "inconclusive" else \
        f"the {level:.0%} interval [{low:.3g}, {high:.3g}] over {n} seeds contains {threshold:g}"
    return SeedVerdict(mean, low, high, n, verdict, reason)


def _welch_p(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One-sided Welch p-values of "mean of a > mean of b" for each row of a (rows × n) and b (rows × m)."""
    n, m = a.shape[1], b.shape[1]
    va, vb = a.var(axis=1, ddof=1) / n, b.var(axis=1, ddof=1) / m
    t = (a.mean(axis=1) - b.mean(axis=1)) / np.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (n - 1) + vb**2 / (m - 1))
    return stats.t.sf(t, dof)


def welch_all_greater(a, others: list) -> float:
    """The largest one-sided Welch p-value of "the mean of ``a`` exceeds the mean of each of ``others``"
    (NaN when a group has fewer than two values). The claim passes when it is at most :data:`ALPHA`."""
    a = np.asarray(a, dtype=float)
    if len(a) < 2 or any(len(o) < 2 for o in others):
        return float("nan")
    return max(float(_welch_p(a[None, :], np.asarray(o, float)[None, :])[0]) for o in others)


@dataclass(frozen=True)
class Instrument:
    """A seed rule's figures at one claim's number of seeds and seed spread."""

    name: str  # short: "t-interval" | "Welch"
    rule: str
    n: int
    spread: float
    threshold: float
    effect: float
    false_pass: float
    false_fail: float  # interval rule: FAIL with the mean on the threshold; Welch rule: 1 − power
    power: float
    heavy_tailed_size: float  # with t(3) seed values: interval rule, the larger of false pass / FAIL; Welch, false pass
    draws: int
    false_pass_at: str = "at the threshold"  # where the false rates are measured
    false_fail_at: str = "at the threshold"
    effect_unit: str = ""  # what the effect is counted in, when it is not the claim's own quantity
    sets: str = "seed sets"  # what one simulated draw is

    @property
    def can_pass(self) -> bool:
        """Whether the rule detects the effect that matters at least :data:`MIN_POWER` of the time."""
        return self.power >= MIN_POWER

    def text(self) -> str:
        """One line for the ledger: the rule and its measured figures."""
        where = (f"false pass {self.false_pass:.1%}, false FAIL {self.false_fail:.1%} {self.false_pass_at}"
                 if self.false_pass_at == self.false_fail_at else
                 f"false pass {self.false_pass:.1%} {self.false_pass_at}, false FAIL {self.false_fail:.1%} {self.false_fail_at}")
        unit = f" {self.effect_unit}" if self.effect_unit else ""
        return (f"{self.rule}; simulated ({self.draws:,} {self.sets} of {self.n} at the seeds' spread "
                f"{self.spread:.3g}): {where}, power {self.power:.0%} at {self.effect:g}{unit}")


def _seed_sets(rng: np.random.Generator, mean: float, spread: float, shape: tuple[int, ...], heavy: bool) -> np.ndarray:
    if heavy:  # standardised t(3): unit variance
        return mean + spread * rng.standard_t(3, size=shape) / math.sqrt(3.0)
    return mean + spread * rng.standard_normal(shape)


def interval_instrument(n: int, spread: float, threshold: float, relation: str, effect: float,
                        draws: int = DRAWS, seed: int = 0) -> Instrument:
    """Size and power of :func:`seed_interval` for ``n`` seeds whose values spread by ``spread`` (a standard
    deviation): the verdicts of ``draws`` simulated seed sets with their mean on the threshold, and with
    their mean at ``effect`` (a value on the claim's side)."""
    _check_relation(relation)
    if n < 2 or not spread > 0:
        raise ValueError(f"n={n}, spread={spread!r} is not allowed: the rule needs n >= 2 seeds and a spread > 0")
    if (relation == "le" and effect > threshold) or (relation == "ge" and effect < threshold):
        raise ValueError(f"effect={effect!r} is not allowed: it must be on the claim's side of {threshold!r} ({relation})")
    rng = np.random.default_rng(seed)

    def shares(mean: float, heavy: bool) -> dict[str, float]:
        code = _interval(_seed_sets(rng, mean, spread, (draws, n), heavy), threshold, relation, LEVEL)[3]
        return {"pass": float(np.mean(code == 1)), "FAIL": float(np.mean(code == -1))}

    null, power, heavy = shares(threshold, False), shares(effect, False)["pass"], shares(threshold, True)
    return Instrument("t-interval", f"{LEVEL:.0%} t-interval over {n} seeds", n, float(spread), float(threshold), float(effect),
                      null["pass"], null["FAIL"], power, max(heavy["pass"], heavy["FAIL"]), draws)


def welch_instrument(n: int, spread: float, effect: float, comparisons: int, draws: int = DRAWS,
                     seed: int = 0) -> Instrument:
    """Size and power of :func:`welch_all_greater` with ``n`` seeds per method and ``comparisons`` other
    methods, seed values spreading by ``spread``. False pass: at the least favourable null (the first other
    method has the same mean as a, the rest are far below: then the rule is one Welch test); power: the share of passes when a's
    mean exceeds every other's by ``effect``; false FAIL: 1 − power (a p above α where the effect is there) where
    the power is at least :data:`MIN_POWER`, else 0 (below it a p above α reads inconclusive, not FAIL)."""
    if n < 2 or not spread > 0 or comparisons < 1:
        raise ValueError(f"n={n}, spread={spread!r}, comparisons={comparisons} is not allowed: need n >= 2, "
                         "spread > 0 and at least one comparison")
    if not effect > 0:
        raise ValueError(f"effect={effect!r} is not allowed: must be > 0 (how far a's mean exceeds the others')")
    rng = np.random.default_rng(seed)

    def passes(offsets: list[float], heavy: bool) -> float:
        a = _seed_sets(rng, 0.0, spread, (draws, n), heavy)
        p = np.max([_welch_p(a, _seed_sets(rng, o, spread, (draws, n), heavy)) for o in offsets], axis=0)
        return float(np.mean(p <= ALPHA))

    null_offsets = [0.0] + [-1e3 * spread] * (comparisons - 1)
    false_pass, power = passes(null_offsets, False), passes([-effect] * comparisons, False)
    heavy = passes(null_offsets, True)
    return Instrument("Welch", f"one-sided Welch t-tests over {n} seeds per method, the largest p ≤ {ALPHA:g}", n,
                      float(spread), ALPHA, float(effect), false_pass, 1 - power if power >= MIN_POWER else 0.0, power,
                      heavy, draws,
                      false_pass_at="at equal means", false_fail_at=f"at a difference of {effect:g}")


def pooled_spread(groups: list) -> float:
    """The pooled within-group standard deviation of several groups of seed values (NaN without any group of
    two or more)."""
    groups = [np.asarray(g, dtype=float) for g in groups if len(g) >= 2]
    if not groups:
        return float("nan")
    dof = sum(len(g) - 1 for g in groups)
    return float(math.sqrt(sum((len(g) - 1) * g.var(ddof=1) for g in groups) / dof))


# ---------------------------------------------------------------------------------------------------------
# A trend over noise levels (02/03: "matching improves / accuracy decreases as the noise grows")


EXACT_LIMIT = 50_000  # the most arrangements of the levels over the runs :func:`_spearman` enumerates


def arrangements(x: np.ndarray) -> int:
    """How many distinct ways the levels ``x`` (ties included) can be laid over len(x) runs: n! / ∏ kᵢ!."""
    _, counts = np.unique(np.asarray(x), return_counts=True)
    return math.factorial(len(x)) // math.prod(math.factorial(int(k)) for k in counts)


def level_arrangements(x: np.ndarray) -> np.ndarray:
    """Every distinct arrangement of the levels ``x`` over the runs (arrangements × n), the observed one among them."""
    values, counts = np.unique(np.asarray(x, dtype=float), return_counts=True)
    rows: list[np.ndarray] = []

    def place(row: np.ndarray, free: tuple[int, ...], level: int) -> None:
        if level == len(values) - 1:
            row = row.copy()
            row[list(free)] = values[level]
            rows.append(row)
            return
        for chosen in itertools.combinations(free, int(counts[level])):
            taken = row.copy()
            taken[list(chosen)] = values[level]
            place(taken, tuple(i for i in free if i not in chosen), level + 1)

    place(np.empty(len(x)), tuple(range(len(x))), 0)
    return np.array(rows)


def _spearman(x: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spearman ρ between ``x`` (n) and each row of ``ys`` (rows × n) (average ranks for ties), and the one-sided
    p-values of "y falls as x grows" and of "y rises". Where the runs are few (at most :data:`EXACT_LIMIT`
    arrangements of the levels over them) the p-values are exact: the share of all arrangements whose ρ is at
    least as far that way, ties included (2 levels × 3 seeds: 20 arrangements, so no p below 1/20). Beyond it,
    the t approximation with n − 2 degrees of freedom, as :func:`scipy.stats.spearmanr` computes it."""
    rx = stats.rankdata(x)
    ry = stats.rankdata(ys, axis=1)
    rx, ry = rx - rx.mean(), ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.sqrt((ry**2).sum(axis=1) * (rx**2).sum())
        rho = np.clip((ry @ rx) / scale, -1.0, 1.0)
        if arrangements(x) <= EXACT_LIMIT:
            every = stats.rankdata(level_arrangements(x), axis=1)
            every = every - every.mean(axis=1, keepdims=True)
            null = (ry @ every.T) / scale[:, None]  # rows × arrangements
            slack = 1e-9  # the observed arrangement counts as at least as far
            return rho, (null <= rho[:, None] + slack).mean(axis=1), (null >= rho[:, None] - slack).mean(axis=1)
        dof = len(x) - 2
        t = rho * np.sqrt((dof / ((rho + 1.0) * (1.0 - rho))).clip(0))
    return rho, stats.t.cdf(t, dof), stats.t.sf(t, dof)


@dataclass(frozen=True)
class TrendReading:
    """:func:`trend_decrease` on one claim: Spearman ρ, the one-sided p of a fall and of a rise."""

    rho: float
    p_fall: float
    p_rise: float
    n: int


def trend_decrease(levels, values) -> TrendReading:
    """Whether ``values`` fall as ``levels`` grow (one value per run; several runs per level): Spearman ρ
    and its one-sided p-values both ways (NaN with fewer than 3 runs or 2 levels). The claim passes when
    the p of a fall is at most :data:`ALPHA`; a rise with p ≤ α fails it; in between it fails only where
    the rule has the power to see the fall that matters (:func:`trend_instrument`)."""
    x, y = np.asarray(levels, dtype=float).ravel(), np.asarray(values, dtype=float).ravel()
    if len(x) != len(y):
        raise ValueError(f"levels ({len(x)}) and values ({len(y)}) are not allowed to differ in length")
    if len(x) < 3 or len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return TrendReading(float("nan"), float("nan"), float("nan"), len(x))
    rho, fall, rise = (float(v[0]) for v in _spearman(x, y[None, :]))
    return TrendReading(rho, fall, rise, len(x))


def level_spread(levels, values) -> float:
    """The pooled spread of ``values`` over the runs (seeds) of each level: the spread a trend is measured in."""
    x, y = np.asarray(levels, dtype=float), np.asarray(values, dtype=float)
    return pooled_spread([y[x == v] for v in np.unique(x)])


def trend_instrument(levels, spread: float, effect: float = 1.0, draws: int = DRAWS, seed: int = 0) -> Instrument:
    """Size and power of :func:`trend_decrease` at these runs' ``levels`` (one entry per run) with values
    spreading by ``spread`` within a level: false pass, the share of passes with no trend; power, the share
    of passes when the mean falls by ``effect`` spreads from one level to the next; false FAIL, the share of
    FAILs then, as the rule decides them: a significant rise, or neither a fall nor a rise where the power is
    at least :data:`MIN_POWER` (below it "neither" reads inconclusive, so a true fall fails only by a rise)."""
    x = np.asarray(levels, dtype=float).ravel()
    if len(x) < 3 or len(np.unique(x)) < 2 or not spread > 0 or not effect > 0:
        raise ValueError(f"{len(x)} runs over {len(np.unique(x))} levels, spread={spread!r}, effect={effect!r} is not "
                         "allowed: the rule needs at least 3 runs over 2 levels, a spread > 0 and an effect > 0")
    rng = np.random.default_rng(seed)
    step = np.searchsorted(np.unique(x), x).astype(float)  # 0, 1, 2, … by level

    def shares(fall: float, heavy: bool) -> tuple[float, float]:
        """The shares of a significant fall (a pass) and of a significant rise."""
        ys = _seed_sets(rng, 0.0, spread, (draws, len(x)), heavy) - fall * spread * step
        _, p_fall, p_rise = _spearman(x, ys)
        return float(np.mean(p_fall <= ALPHA)), float(np.mean(p_rise <= ALPHA))

    false_pass, (power, rise), heavy = shares(0.0, False)[0], shares(effect, False), shares(0.0, True)[0]
    false_fail = 1 - power if power >= MIN_POWER else rise  # below MIN_POWER only a significant rise fails it
    n_levels = len(np.unique(x))
    return Instrument("Spearman", f"one-sided Spearman test over {len(x)} runs at {n_levels} levels: a fall with p ≤ "
                      f"{ALPHA:g} passes, a rise with p ≤ {ALPHA:g} fails whatever the power, neither fails only with "
                      f"power ≥ {MIN_POWER:.0%}",
                      len(x), float(spread), ALPHA, float(effect), false_pass, false_fail, power, heavy, draws,
                      false_pass_at="with no trend", false_fail_at=f"at a fall of {effect:g} spread per level",
                      effect_unit="spread per level", sets="sets of runs")


# ---------------------------------------------------------------------------------------------------------
# A share of a reference (02/03: "the trade-off is moderate": a readout keeps ≥ 90 % of plain InfoNCE's accuracy)


def _share_interval(a: np.ndarray, b: np.ndarray, share: float, level: float) -> tuple[np.ndarray, ...]:
    """For each row of a (rows × n) and b (rows × m): mean(a) − share·mean(b) with its Welch–Satterthwaite
    t-interval, and the codes 1 (interval above 0), -1 (below), 0 (contains 0)."""
    n, m = a.shape[1], b.shape[1]
    va, vb = a.var(axis=1, ddof=1) / n, share**2 * b.var(axis=1, ddof=1) / m
    diff = a.mean(axis=1) - share * b.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = np.where(va + vb > 0, (va + vb) ** 2 / (va**2 / (n - 1) + vb**2 / (m - 1)), np.inf)
    half = stats.t.ppf((1 + level) / 2, dof) * np.sqrt(va + vb)
    low, high = diff - half, diff + half
    return diff, low, high, np.where(low >= 0, 1, np.where(high < 0, -1, 0))


def share_interval(a, b, share: float, level: float = LEVEL) -> SeedVerdict:
    """Whether the mean of ``a`` is at least ``share`` times the mean of ``b`` (seeds of two methods): pass
    when the 95 % Welch interval of mean(a) − share·mean(b) lies above 0, FAIL when below, inconclusive when
    it contains 0 (or either has fewer than 2 seeds). The verdict's ``mean`` is the ratio of the means."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("a and b are not allowed to hold NaN or infinite values: every seed's value must be finite")
    ratio = float(a.mean() / b.mean()) if len(a) and len(b) else float("nan")
    if len(a) < 2 or len(b) < 2:
        return SeedVerdict(ratio, float("nan"), float("nan"), min(len(a), len(b)), "inconclusive",
                           f"{len(a)} and {len(b)} seeds: no interval (the rule needs at least 2 of each)")
    _, low, high, code = (float(v[0]) for v in _share_interval(a[None, :], b[None, :], share, level))
    verdict = {1: "pass", -1: "FAIL", 0: "inconclusive"}[int(code)]
    reason = "" if verdict != "inconclusive" else \
        f"the {level:.0%} interval of mean − {share:g} × reference, [{low:.3g}, {high:.3g}], contains 0"
    return SeedVerdict(ratio, low, high, min(len(a), len(b)), verdict, reason)


def share_instrument(a, b, share: float, effect: float = 1.0, draws: int = DRAWS, seed: int = 0) -> Instrument:
    """Size and power of :func:`share_interval` at the seeds, means and spreads of ``a`` and ``b``: false pass
    and false FAIL with mean(a) exactly ``share`` × mean(b); power, the share of passes when it is ``effect``
    × mean(b) (1: nothing lost)."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    sa, sb = (float(np.std(v, ddof=1)) if len(v) >= 2 else 0.0 for v in (a, b))
    if len(a) < 2 or len(b) < 2 or not (sa > 0 or sb > 0) or not effect > share:
        raise ValueError(f"{len(a)} and {len(b)} seeds, effect={effect!r} is not allowed: the rule needs 2 seeds of "
                         f"each, some spread, and an effect above the share {share:g}")
    rng = np.random.default_rng(seed)
    mb = float(b.mean())

    def codes(ratio: float, heavy: bool) -> np.ndarray:
        sim_a = _seed_sets(rng, ratio * mb, sa, (draws, len(a)), heavy)
        sim_b = _seed_sets(rng, mb, sb, (draws, len(b)), heavy)
        return _share_interval(sim_a, sim_b, share, LEVEL)[3]

    null, power, heavy = codes(share, False), float(np.mean(codes(effect, False) == 1)), codes(share, True)
    spread = pooled_spread([a, b])
    return Instrument("share interval", f"{LEVEL:.0%} Welch interval of mean − {share:g} × reference, {len(a)} and {len(b)} "
                      "seeds", min(len(a), len(b)), spread, share, float(effect), float(np.mean(null == 1)),
                      float(np.mean(null == -1)), power, float(max(np.mean(heavy == 1), np.mean(heavy == -1))), draws,
                      false_pass_at=f"at a ratio of {share:g}", false_fail_at=f"at a ratio of {share:g}",
                      effect_unit="× the reference")
