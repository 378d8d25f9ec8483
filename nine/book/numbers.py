"""One number format for every table of the book.

    from nine.book.numbers import fmt, styled
    fmt(0.500000)        # "0.5"
    fmt(2429.0)          # "2,429"
    fmt(5.195844e-14)    # "5.2e-14"
    fmt(0.000999)        # "0.000999" (the smallest p-value of 1,000 simulated draws)
    fmt(4.2e-05)         # "4.2e-05"
    fmt(float("nan"))    # "—"
    styled(df)           # a pandas Styler: every number and index value through fmt, one CSS class

A number keeps ``digits`` significant digits and no trailing zeros; a whole number prints as one, and from 1,000
on with a thousands separator and no decimals; a value below 0.0001 in size prints in scientific notation; a missing or
undefined value prints as a dash, never as ``nan``. Text passes through unchanged, so a column of
"mean ± std" strings is left as it was made.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from nine.config import FIELDS

DASH = "—"
TABLE_CLASS = "nine-table"  # styled in _static/nine.css like the claims tables
PROSE_CHARS = 40  # a text column with a longer cell is prose: it wraps instead of widening the table


def fmt(value, digits: int = 3) -> str:
    """``value`` as the book prints a number (see the module's docstring); anything else as ``str``."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if not isinstance(value, numbers.Real):
        return DASH if _is_missing(value) else str(value)
    x = float(value)
    if math.isnan(x):
        return DASH
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e15:
        return fmt(int(x), digits)
    if abs(x) < 1e-4:
        mantissa, exponent = f"{x:.{max(digits - 2, 1)}e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
    if abs(x) >= 1000:  # whole units, or as many decimals as the digits leave
        decimals = max(digits - len(str(int(abs(x)))), 0)
        text = f"{x:,.{decimals}f}"
        return text.rstrip("0").rstrip(".") if decimals else text
    return f"{x:.{digits}g}"


def _is_missing(value) -> bool:
    """pandas' NA / NaT, without importing pandas for every number."""
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError, ImportError):
        return False


def mean_std(mean: float, std: float, digits: int = 2) -> str:
    """"mean ± std": the spread to ``digits`` significant digits and the mean to the same decimal place
    (0.0671 ± 0.0142 → "0.067 ± 0.014"), so no digit is shown that the spread makes noise of; the mean
    alone when the spread is not defined or zero. A spread below 0.0001 (or a mean of 100,000 or more) keeps
    :func:`fmt` for each."""
    if std is None or not math.isfinite(std) or std == 0 or not math.isfinite(mean):
        return fmt(mean)
    if abs(std) < 1e-4 or abs(mean) >= 1e5:
        return f"{fmt(mean)} ± {fmt(std, digits)}"
    decimals = digits - 1 - math.floor(math.log10(abs(std)))
    if math.floor(math.log10(abs(round(std, decimals)))) > math.floor(math.log10(abs(std))):  # 0.0996 → 0.10
        decimals -= 1
    if decimals > 0:
        return f"{mean:,.{decimals}f} ± {std:.{decimals}f}"
    return f"{round(mean, decimals):,.0f} ± {round(std, decimals):,.0f}"


def count(n: int, noun: str) -> str:
    """"1 seed", "3 seeds": a count with its noun in the right number (a regular plural)."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def permutation_floor(permutations: int = 200) -> float:
    """The smallest p-value a permutation test can give, 1/(permutations + 1): no permutation as extreme as the
    data. The runs' energy test has 200 permutations (:data:`nine.eval.metrics.DM_COLUMNS`)."""
    return 1 / (permutations + 1)


def at_floor(value, floor: float | None) -> bool:
    """Whether ``value`` is a p-value at its test's ``floor`` (so it says "at most this", not "this")."""
    return floor is not None and isinstance(value, numbers.Real) and value <= floor * (1 + 1e-9)


def over_seeds(values, floor: float | None = None) -> str:
    """A statistic over seeds in the book's format: "mean ± std"; the value alone for one seed or a value no
    seed changes (a capacity); "∞" when a seed's value is +∞ and none is negative (a head without noise has
    no capacity), else "—" where a value is infinite. ``floor``: the smallest value the statistic's test can
    give (:func:`permutation_floor`); every seed there reads "≤ floor on every seed"."""
    values = np.asarray(values, dtype=float)
    if len(values) and all(at_floor(v, floor) for v in values):
        return f"≤ {fmt(floor)}" + (" on every seed" if len(values) > 1 else "")
    if np.isinf(values).any():
        return "∞" if (values > 0).all() else "—"
    if len(values) == 1 or np.ptp(values) == 0:
        return fmt(values[0])
    return mean_std(values.mean(), values.std(ddof=1))


# What a table shows for a column of the run tables (a header, an index name or value is relabelled only
# when it is exactly one of these names): the book never prints a variable name where a reader needs a word.
LABELS = {
    "ks_max": "max KS", "ks_view_max": "max KS (views)", "ad_max": "max A²", "energy": "energy distance",
    "energy_p": "energy p (permutation)", "energy_ref": "energy to reference", "energy_ref_p": "energy p (reference)",
    "omnibus_p": "omnibus p", "omnibus_p_view": "omnibus p (views)", "gaussian_kl": "Gaussian-part KL",
    "excess_kurtosis_mean": "excess kurtosis", "excess_kurtosis_extreme": "excess kurtosis (extreme)",
    "skewness_mean": "skewness", "skewness_extreme": "skewness (extreme)", "eigenvalue_min": "smallest eigenvalue",
    "eigenvalue_max": "largest eigenvalue",
    "sw": "sliced W₁", "max_corr": "max |corr|", "kl_knn": "kNN KL", "probe_acc": "linear probe",
    "probe_train_acc": "linear probe (train)", "mlp_acc": "MLP probe", "knn_acc": "5-NN", "infonce_test": "InfoNCE (test)",
    "capacity": "capacity C", "gap": "C − InfoNCE", "reachable_gap": "min(C, log N) − InfoNCE",
    "certificate": "C − InfoNCE", "kl_low": "KL, low (leave-one-out)", "kl_high": "KL, high (resubstitution)",
    "kl_estimate": "KL estimate", "prior_kl": "a prior sample's KL", "looseness": "(C − InfoNCE) / KL",
    "n_train": "train images", "n_test": "test images", "wall_time_s": "training time (s)",
    "mi": "I(U; Y)", "kl": "KL", "gaussian_run": "Gaussian run", "fpr_at_95_tpr": "FPR at 95% TPR", "adv_weight": "adversary's weight",
    "gaussian": "Gaussian", "cgan": "cGAN",  # values of the prior and generator columns
}


def label(name):
    """The table label of a column name (:data:`LABELS`), also where the name begins a header ("kl_knn at 60"
    → "kNN KL at 60"); a run parameter's name with an underscore (``adv_head``) as code, the way it is typed;
    any other name as it is."""
    if not isinstance(name, str):
        return name
    if name in LABELS:
        return LABELS[name]
    first, space, rest = name.partition(" ")
    if "_" in first and first in LABELS:  # only a variable name: "capacity C" is a label already
        return LABELS[first] + space + rest
    if "_" in name and name in FIELDS:  # a parameter the reader types (`-p adv_head mlp`): set as code
        return f"<code>{name}</code>"
    return name


def styled(frame, digits: int = 3, columns: dict[str, int] | None = None, floors: dict[str, float] | None = None):
    """``frame`` (a DataFrame or Series) as a pandas Styler whose cells and index values all go through
    :func:`fmt` (``columns``: other significant digits for some columns), with the book's table class;
    column names, index names and index values that are run-table names read as their :data:`LABELS`.
    ``floors``: columns of p-values and their test's smallest value; a cell there reads "≤ floor"."""
    import pandas as pd

    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    frame = frame.rename(columns=label, index=label)
    frame.columns.names = [label(n) for n in frame.columns.names]
    frame.index.names = [label(n) for n in frame.index.names]
    columns = {label(k): v for k, v in (columns or {}).items()}
    styler = frame.style.format(lambda v: fmt(v, digits))
    for column, column_digits in columns.items():
        if column not in frame.columns:
            raise KeyError(f"columns: {column!r} is not a column of the table ({', '.join(map(str, frame.columns))})")
        styler = styler.format(lambda v, k=column_digits: fmt(v, k), subset=[column])
    for column, floor in {label(k): v for k, v in (floors or {}).items()}.items():
        if column not in frame.columns:
            raise KeyError(f"floors: {column!r} is not a column of the table ({', '.join(map(str, frame.columns))})")
        styler = styler.format(lambda v, f=floor: f"≤ {fmt(f, digits)}" if at_floor(v, f) else fmt(v, digits), subset=[column])
    styler = styler.format_index(lambda v: fmt(v, digits), axis=0).format_index(lambda v: fmt(v, digits), axis=1)
    prose = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, str) and len(v) > PROSE_CHARS).any()]
    if prose:  # a column of sentences wraps and reads from the left, whole (pandas' own HTML cuts it with "…")
        styler = styler.set_properties(subset=prose, **{"white-space": "normal", "text-align": "left", "min-width": "16em"})
    return styler.set_table_attributes(f'class="{TABLE_CLASS}"')
