"""The bookkeeping of one notebook page in one object, so that a notebook reads as the experiment.

    page = Page.of("02_gaussian_matching", globals(), epochs=cfg.epochs)   # parameters read from the notebook
    page.figure(fig, "fig_embedding", "gaussian-embedding", runs=[run.hash])
    page.number("ks_max", max(m["ks"]))
    page.number("best_kl", kl, source=Source("matching-gaussian.csv", "kl_knn", {"d": 16, "noise": 1.0}))
    page.check("gaussian-mnist-clean-match-prior", statement, how, measured=..., expected=..., relation="le")
    page.claims()         # the page's claims as a table
    page.save()           # the claim rows, when publishing

A figure is glued under its name (for ``{glue:figure}``) with its caption note under ``<name>_note``,
and, when ``publish``, exported as a citable figure (:func:`nine.book.plots.export_figure`). A number
read from a table the page publishes names its :class:`Source`; publishing checks it against that table
and writes where it comes from to ``book/numbers/<notebook>.json`` (the book's checks read it again).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from nine.book.claims import Claim, HTMLTable, Ledger
from nine.book.plots import check_legend_size, export_figure, figure_note

# parameters that say how a page runs, not what it computes: never part of the command that regenerates it
RUN_CONTROLS = ("publish", "data_dir", "sweep_training", "continued_training")
# the recipe of a page's committed runs: named in a command only where it differs from the page's default
RECIPE = ("numerics", "tau_lr")


REDUCTIONS = ("value", "mean", "median", "min", "max")


@dataclass(frozen=True)
class Source:
    """Where a number in a page's prose comes from: ``column`` of the table ``table`` (a CSV the page publishes
    in results/), over the rows where each column named in ``where`` has the given value, reduced by
    ``reduce`` (one of :data:`REDUCTIONS`; "value" needs exactly one row)."""

    table: str
    column: str
    where: dict = field(default_factory=dict)
    reduce: str = "mean"

    def __post_init__(self) -> None:
        plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in self.where.items()}  # as JSON writes it
        object.__setattr__(self, "where", plain)
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"reduce={self.reduce!r} is not allowed: must be one of {', '.join(REDUCTIONS)}")

    def read(self, results: Path) -> float:
        """The number, read again from ``results/<table>``."""
        import pandas as pd

        frame = pd.read_csv(Path(results) / self.table)
        for column, value in {**self.where, self.column: None}.items():
            if column not in frame.columns:
                raise ValueError(f"{self.table} has no column {column!r} (its columns: {', '.join(frame.columns)})")
            if value is not None:
                frame = frame[frame[column] == value]
        values = frame[self.column]
        if len(values) == 0 or (self.reduce == "value" and len(values) != 1):
            raise ValueError(f"{self.table}: {len(values)} rows where {self.where}; {self.reduce} needs "
                             + ("exactly one" if self.reduce == "value" else "at least one"))
        return float(values.iloc[0] if self.reduce == "value" else getattr(values, self.reduce)())


def check_source(name: str, value: float, source: Source, results: Path, rtol: float = 1e-8) -> None:
    """Raise ValueError naming the number when ``value`` is not what ``source`` reads from ``results``
    (the tables are written with 10 significant digits)."""
    read = source.read(results)
    if not np.isclose(value, read, rtol=rtol, atol=0.0, equal_nan=True):
        raise ValueError(f"the number {name} = {value!r} is not its source's {read!r} ({source})")


@dataclass
class CaptionedTable:
    """A table shown as the book's styled table with its caption in a paragraph under it: a ``<caption>`` would
    scroll away with a table wider than the page."""

    data: Any
    caption: str
    claim_index: bool = False  # the index holds claim ids: each links to its row in the page's claims table

    def _repr_html_(self) -> str:
        import html

        from nine.book.numbers import styled

        table = styled(self.data)
        if self.claim_index:
            table = table.format_index(lambda id: f'<a href="#claim-{id}"><code>{html.escape(id)}</code></a>', axis=0)
        return f'{table.to_html()}<p class="table-caption">{html.escape(self.caption)}</p>'


class Page:
    """One notebook's figures, glued numbers and claims; ``publish`` writes the citable copies."""

    @classmethod
    def of(cls, notebook: str, namespace: dict[str, Any], **resolved: Any) -> Page:
        """The page of ``notebook`` with its parameters read from ``namespace`` (the notebook's globals after
        its parameter cell): every parameter of the parameter cell, in its order, except :data:`RUN_CONTROLS`
        and the :data:`RECIPE` parameters left at their defaults, with ``resolved`` values for those the page
        works out itself (``epochs=None`` → the profile's number). So a figure's "Regenerate:" command names
        every value that made it, and no notebook lists them by hand."""
        from nine.book.rerun import notebook_defaults

        defaults = notebook_defaults(notebook)  # reads the notebook's parameter cell: once
        unknown = sorted(set(resolved) - set(defaults))
        if unknown:
            raise ValueError(f"resolved parameter {unknown[0]!r} is not a parameter of {notebook}")
        parameters = {}
        for name, default in defaults.items():
            value = resolved.get(name, namespace[name])
            if name in RUN_CONTROLS or (name in RECIPE and value == default):
                continue
            parameters[name] = list(value) if isinstance(value, tuple) else value
        return cls(notebook, parameters, namespace["publish"], namespace["profile"])

    def __init__(self, notebook: str, parameters: dict[str, Any], publish: bool, profile: str) -> None:
        self.notebook, self.parameters, self.publish = notebook, dict(parameters), publish
        self.ledger = Ledger(notebook, profile)
        self.instruments: dict[str, Any] = {}  # claim id → its rule's Instrument (nine.eval.seed_rules)
        self.sources: dict[str, tuple[float, Source]] = {}  # glued number → (its value, the table it is read from)

    def figure(self, fig: Figure, name: str, label: str, runs: list[str] = (), details: dict | None = None) -> None:
        """Glue ``fig`` as ``name`` and its caption note as ``name + "_note"``; export it under the
        stable ``label`` when publishing (drawn from the runs ``runs``); close it. A legend too small to read
        in the book is refused (:func:`nine.book.plots.check_legend_size`)."""
        from IPython.display import Markdown
        from myst_nb import glue

        check_legend_size(fig, name)
        glue(name, fig, display=False)
        glue(f"{name}_note", Markdown(figure_note(label, self.notebook, self.parameters)), display=False)
        if self.publish:
            export_figure(fig, label, self.notebook, self.parameters, list(runs), details)
        plt.close(fig)

    def number(self, name: str, value: Any, source: Source | None = None) -> None:
        """Glue ``value`` as ``name`` for ``{glue:text}`` in the prose. ``source``: the published table it is
        read from, checked when the page is saved. Returns nothing, so that a cell ending with it prints
        nothing into the page."""
        from myst_nb import glue

        glue(name, value, display=False)
        if source is not None:
            self.sources[name] = (float(value), source)

    def markdown(self, name: str, text: str) -> None:
        """Glue MyST ``text`` as ``name`` for ``{glue:md}`` with format myst."""
        from IPython.display import Markdown
        from myst_nb import glue

        glue(name, Markdown(text), display=False)

    def check(self, id: str, statement: str, check: str, measured: float, expected: float,
              tolerance: float = 0.0, relation: str = "approx", inconclusive: str = "", rule: str = "") -> Claim:
        """A row of the claims ledger (see :meth:`nine.book.claims.Ledger.check`); ``rule``: how its verdict is
        reached when no simulated instrument measures it (a numerical tolerance, a count, a bound in standard
        errors), shown as the row's rule."""
        claim = self.ledger.check(id, statement, check, measured, expected, tolerance, relation, inconclusive)
        return self.name_rule(id, rule) if rule else claim

    def check_seeds(self, id: str, statement: str, check: str, values, threshold: float, relation: str,
                    effect: float, inconclusive: str = "") -> Claim:
        """A claim measured once per seed, decided by the interval rule (:func:`nine.eval.seed_rules.seed_interval`)
        and measured as an instrument at these seeds' number and spread, with its power at ``effect`` (the value
        on the claim's side that matters). The row shows the mean over seeds; it is inconclusive when the interval
        contains the threshold or with fewer than two seeds. Either verdict is a significant finding (its false
        rate is at most 2.5 %), so the power says how often the rule reaches one, not whether to trust it.
        ``inconclusive``: a reason that overrides."""
        from nine.eval.seed_rules import interval_instrument, seed_interval

        reading = seed_interval(values, threshold, relation)
        spread = float(np.std(values, ddof=1)) if reading.n >= 2 else 0.0
        instrument = interval_instrument(reading.n, spread, threshold, relation, effect) if spread > 0 else None
        claim = self.check(id, statement, check, reading.mean, threshold, relation=relation,
                           inconclusive=inconclusive or reading.reason)
        return self._with_rule(id, instrument) or claim

    def check_welch(self, id: str, statement: str, check: str, a, others: list, effect: float,
                    inconclusive: str = "") -> Claim:
        """A claim that one method's per-seed values exceed each other method's, decided by
        :func:`nine.eval.seed_rules.welch_all_greater` (measured: the largest one-sided p, ≤ α) and measured as an
        instrument at these seeds (pooled spread) with its power at a difference of ``effect``. A p above α
        fails the claim only where that power is at least :data:`~nine.eval.seed_rules.MIN_POWER`; below it the
        claim is inconclusive (the rule could not have seen the effect)."""
        from nine.eval.seed_rules import ALPHA, MIN_POWER, pooled_spread, welch_all_greater, welch_instrument

        p = welch_all_greater(a, others)
        spread, n = pooled_spread([a, *others]), min(len(a), *(len(o) for o in others))
        instrument = welch_instrument(n, spread, effect, len(others)) if n >= 2 and spread > 0 else None
        reason = inconclusive
        if not reason and instrument is None:
            reason = "fewer than 2 seeds per method, or no spread: no test"
        elif not reason and not instrument.can_pass:
            reason = (f"the rule's power at a difference of {effect:g} is {instrument.power:.0%} at this seed spread "
                      f"(below {MIN_POWER:.0%}): it cannot tell")
        claim = self.check(id, statement, check, p, ALPHA, relation="le", inconclusive=reason)
        return self._with_rule(id, instrument) or claim

    def check_trend(self, id: str, statement: str, check: str, levels, values, effect: float = 1.0,
                    inconclusive: str = "") -> Claim:
        """A claim that ``values`` (one per run) fall as the noise ``levels`` grow, decided by
        :func:`nine.eval.seed_rules.trend_decrease` (measured: the one-sided p of a fall, ≤ α) and measured as
        an instrument at these runs' levels and within-level spread, with its power at a fall of ``effect``
        spreads per level. A significant rise fails the claim; no significant trend either way fails it only
        where that power is at least :data:`~nine.eval.seed_rules.MIN_POWER`, else it is inconclusive."""
        from nine.eval.seed_rules import ALPHA, MIN_POWER, level_spread, trend_decrease, trend_instrument

        reading = trend_decrease(levels, values)
        spread = level_spread(levels, values) if reading.n >= 3 else float("nan")
        instrument = (trend_instrument(levels, spread, effect)
                      if not inconclusive and np.isfinite(reading.p_fall) and spread > 0 else None)
        reason = inconclusive
        if not reason and instrument is None:
            reason = "fewer than 3 runs over 2 levels, or no spread within a level: no test"
        elif not reason and reading.p_fall > ALPHA and reading.p_rise > ALPHA and not instrument.can_pass:
            reason = (f"no significant trend either way (p of a fall {reading.p_fall:.2f}, of a rise {reading.p_rise:.2f}), "
                      f"and the rule's power at a fall of {effect:g} spread per level is {instrument.power:.0%} here "
                      f"(below {MIN_POWER:.0%}): it cannot tell")
        claim = self.check(id, statement, check, reading.p_fall, ALPHA, relation="le", inconclusive=reason)
        if instrument is None:
            return self.name_rule(id, f"one-sided Spearman test over the runs, p ≤ {ALPHA:g}: not run here, so not measured")
        if claim.verdict == "FAIL":
            self.explain(id, f"the values rise with the noise instead (ρ = {reading.rho:.2f}, p of a rise {reading.p_rise:.3f})"
                         if reading.p_rise <= ALPHA else
                         f"no significant fall (p {reading.p_fall:.2f}) where the rule would see a fall of {effect:g} "
                         f"spread per level {instrument.power:.0%} of the time")
        return self._with_rule(id, instrument) or claim

    def check_share(self, id: str, statement: str, check: str, values, reference, share: float,
                    effect: float = 1.0, premise: str = "", unmet: str = "") -> Claim:
        """A claim that the mean of ``values`` (seeds of one method) is at least ``share`` × the mean of
        ``reference`` (seeds of another), decided by :func:`nine.eval.seed_rules.share_interval` and measured as
        an instrument at these seeds, with its power at a ratio of ``effect``. The row shows the ratio of means.
        ``premise``, ``unmet``: as in :meth:`nine.book.claims.Ledger.check`."""
        from nine.eval.seed_rules import share_instrument, share_interval

        reading = share_interval(values, reference, share)
        try:
            instrument = share_instrument(values, reference, share, effect)
        except ValueError:  # fewer than two seeds of either, or no spread: no simulation
            instrument = None
        claim = self.ledger.check(id, statement, check, reading.mean, share, relation="ge", inconclusive=reading.reason,
                                  premise=premise, unmet=unmet)
        return self._with_rule(id, instrument) or claim

    def name_rule(self, id: str, rule: str) -> Claim:
        """Name the rule of a claim that no simulated instrument decides (a timing, a one-seed comparison)."""
        return self.ledger.name_rule(id, rule)

    def _with_rule(self, id: str, instrument) -> Claim | None:
        if instrument is None:
            return None
        self.instruments[id] = instrument
        return self.ledger.name_rule(id, instrument.text())

    def instrument_table(self):
        """The page's seed rules as instruments: one row per claim decided by one, as a styled table whose
        caption says what each column measures (a line saying so when none is: with one seed no rule has an
        interval)."""
        import pandas as pd
        from IPython.display import Markdown

        if not self.instruments:
            return Markdown("No claim here is decided over two or more seeds, so no seed rule is measured.")
        draws = sorted({i.draws for i in self.instruments.values()})
        rows = [{"claim": id, "rule": i.name, "seeds": i.n,
                 "seed spread": i.spread, "threshold": i.threshold, "false pass": f"{i.false_pass:.1%}",
                 "false FAIL": f"{i.false_fail:.1%}", "either, heavy tails": f"{i.heavy_tailed_size:.1%}",
                 "effect that matters": f"{i.effect:g} {i.effect_unit}".strip(), "power there": f"{i.power:.0%}"}
                for id, i in self.instruments.items()]
        meaning = {
            "t-interval": "t-interval (nine.eval.seed_rules.seed_interval): pass when the 95% interval over the seeds "
                          "lies wholly on the claim's side of the threshold, FAIL when wholly on the other, inconclusive "
                          "otherwise; false pass and false FAIL are its verdicts when the true mean sits on the threshold "
                          "(each about 2.5% by construction).",
            "Welch": "Welch (welch_all_greater, comparisons of methods; the threshold is the p-value's): false pass with "
                     "equal means; false FAIL, how often the named difference fails: 1 − power where the power is at "
                     "least 50%, else 0 (a p above the threshold then reads inconclusive).",
            "Spearman": "Spearman (trend_decrease, a trend over noise levels; 'seeds' counts the runs, the spread is "
                        "within a level): false pass with no trend; power at a fall of the named number of spreads from "
                        "one level to the next; false FAIL, how often such a fall fails: by a significant rise, or by no "
                        "significant trend where the power is at least 50% (below it that reads inconclusive).",
            "share interval": "share interval (share_interval, a share of a reference's mean): the 95% Welch interval "
                              "of mean − share × reference; false pass and false FAIL at exactly the share; power at the "
                              "named ratio.",
        }
        names = [n for n in meaning if any(i.name == n for i in self.instruments.values())]
        caption = (
            f"Each rule run on {', '.join(f'{d:,}' for d in draws)} simulated sets of seed values, drawn normal at the "
            "seeds' own spread (standard deviation). " + " ".join(meaning[n] for n in names) +
            " Either, heavy tails: the larger false rate when the seeds are drawn from a t law with 3 degrees of freedom "
            "instead. Power there: how often the rule passes when the truth is the effect that matters.")
        return CaptionedTable(pd.DataFrame(rows).set_index("claim"), caption, claim_index=True)

    def explain(self, id: str, reason: str) -> Claim:
        """The one-line reason the claim ``id`` fails, shown under its verdict here and in the ledger
        (see :meth:`nine.book.claims.Ledger.explain`)."""
        return self.ledger.explain(id, reason)

    def claims(self, ids: list[str] | None = None) -> HTMLTable:
        """The page's claims ``ids`` (all when None) as an HTML table."""
        return self.ledger.table(ids)

    def save(self) -> None:
        """When publishing, write the page's claim rows (``book/claims/<notebook>.json``) and, after checking
        each against the table just published, its numbers' sources (``book/numbers/<notebook>.json``)."""
        if not self.publish:
            return
        from nine.book.rerun import publish_dir

        self.ledger.save()
        for name, (value, source) in self.sources.items():
            check_source(name, value, source, publish_dir("results"))
        record = publish_dir("numbers") / f"{self.notebook}.json"
        if not self.sources:  # none any more: a record left by an earlier version of the page would be stale
            record.unlink(missing_ok=True)
            return
        numbers = {name: {"value": value, **asdict(source)} for name, (value, source) in self.sources.items()}
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"notebook": self.notebook, "numbers": numbers}, indent=2, ensure_ascii=False) + "\n")
