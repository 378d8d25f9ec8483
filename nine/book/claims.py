"""The claims ledger: each claim of the paper that a notebook checks, with its measured value.

A notebook opens a :class:`Ledger`, calls :meth:`Ledger.check` once per claim, shows the rows of a
section with :meth:`Ledger.table`, and (when published) saves them to ``book/claims/<notebook>.json``.
``book/claims.md`` renders every saved row, linking each to the table row (``#claim-<id>``) of the
notebook that checks it. A failing claim is recorded and shown as failing, never dropped.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nine
from nine.book.numbers import fmt
from nine.book.rerun import publish_dir
from nine.store.provenance import git

RELATIONS = {
    "approx": "|measured − expected| ≤ tolerance",
    "le": "measured ≤ expected + tolerance",
    "ge": "measured ≥ expected − tolerance",
}


@dataclass(frozen=True)
class Claim:
    """One checked claim. ``relation`` says how measured is compared with expected (see RELATIONS)."""

    id: str
    statement: str
    check: str
    measured: float
    expected: float
    tolerance: float
    relation: str
    notebook: str
    profile: str
    inconclusive: str = ""  # why the check cannot decide (its positive control fails, nothing to test): no verdict
    reason: str = ""  # for a FAIL: what the page found limits it, one line under the verdict
    rule: str = ""  # the decision rule as an instrument: its name and its measured size and power (nine.eval.seed_rules)
    premise: str = ""  # the id of a claim this one presupposes (a price of matching presupposes a match)

    @property
    def passed(self) -> bool:
        """True only for a conclusive check whose measured value meets the criterion."""
        if self.inconclusive or not math.isfinite(self.measured):
            return False
        if self.relation == "approx":
            return abs(self.measured - self.expected) <= self.tolerance
        if self.relation == "le":
            return self.measured <= self.expected + self.tolerance
        return self.measured >= self.expected - self.tolerance

    @property
    def criterion(self) -> str:
        symbol = {"approx": "≈", "le": "≤", "ge": "≥"}[self.relation]
        digits = self._digits()
        return f"{symbol} {fmt(self.expected, digits)}" + (f" ± {fmt(self.tolerance)}" if self.tolerance else "")

    @property
    def measured_text(self) -> str:
        """The measured value as the ledger prints it: a dash when nothing could be measured."""
        return fmt(self.measured, self._digits())

    def _digits(self) -> int:
        """As many significant digits (3 to 6) as it takes for the measured value and the threshold to print
        differently: 0.04285 against 0.04278 reads "0.04285" and "≤ 0.04278", never "0.0428" and "≤ 0.0428"."""
        bound = self.expected + {"approx": 0.0, "le": self.tolerance, "ge": -self.tolerance}[self.relation]
        for digits in range(3, 7):
            if fmt(self.measured, digits) != fmt(bound, digits) or self.measured == bound:
                return digits
        return 6

    @property
    def verdict(self) -> str:
        """"pass", "FAIL" or "inconclusive" (the check could not tell; ``inconclusive`` says why)."""
        return "inconclusive" if self.inconclusive else ("pass" if self.passed else "FAIL")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "verdict": self.verdict}


class Ledger:
    """The claims one notebook checks."""

    def __init__(self, notebook: str, profile: str) -> None:
        self.notebook, self.profile = notebook, profile
        self.claims: dict[str, Claim] = {}

    def check(
        self,
        id: str,
        statement: str,
        check: str,
        measured: float,
        expected: float,
        tolerance: float = 0.0,
        relation: str = "approx",
        inconclusive: str = "",
        premise: str = "",
        unmet: str = "",
    ) -> Claim:
        """Record a claim (replacing an earlier row with the same id) and return it. ``inconclusive``:
        the reason the check cannot decide here (e.g. its positive control failed); the row then shows
        the measured value but neither pass nor FAIL. ``premise``: the id of a claim already on the ledger that
        this one presupposes; unless that claim passes, this one is inconclusive, whatever it measures, with
        ``unmet`` (what was measured where the premise failed) after the reason."""
        if relation not in RELATIONS:
            raise ValueError(f"relation={relation!r} is not allowed: must be one of {', '.join(RELATIONS)}")
        if not id.replace("-", "").isalnum():
            raise ValueError(f"id={id!r} is not allowed: use letters, digits and '-' only")
        if tolerance < 0:
            raise ValueError(f"tolerance={tolerance!r} is not allowed: must be >= 0")
        if premise:
            if premise not in self.claims:
                raise ValueError(f"premise={premise!r} is not allowed: record that claim on the ledger first")
            before = self.claims[premise]
            if before.verdict != "pass" and not inconclusive:
                inconclusive = f"its premise {premise} is not a pass ({before.verdict})" + (f": {unmet}" if unmet else "")
        claim = Claim(id, statement, check, float(measured), float(expected), float(tolerance), relation,
                      self.notebook, self.profile, inconclusive, premise=premise)
        self.claims[id] = claim
        return claim

    def name_rule(self, id: str, rule: str) -> Claim:
        """Attach to the claim ``id`` its decision rule with the rule's measured size and power, and return it."""
        return self._amend(id, rule=rule)

    def explain(self, id: str, reason: str) -> Claim:
        """Attach to the claim ``id`` the one-line reason it fails (shown under a FAIL verdict) and return it; a
        second reason (the rule's own, then what limits the runs) is joined to the first."""
        before = self.claims[id].reason
        return self._amend(id, reason=f"{before}; {reason}" if before and reason not in before else reason)

    def _amend(self, id: str, **fields: str) -> Claim:
        from dataclasses import replace

        self.claims[id] = replace(self.claims[id], **fields)
        return self.claims[id]

    def table(self, ids: list[str] | None = None) -> HTMLTable:
        """The rows ``ids`` (all when None) as an HTML table whose rows are anchors ``claim-<id>``."""
        return HTMLTable(render_rows([self.claims[i] for i in (ids or list(self.claims))], link=None))

    def save(self, folder: Path | None = None) -> Path:
        """Write every row to ``<folder>/<notebook>.json`` (default ``book/claims``, or the rerun folder's)."""
        folder = Path(folder) if folder is not None else publish_dir("claims")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.notebook}.json"
        record = {
            "notebook": self.notebook,
            "profile": self.profile,
            "nine_version": nine.__version__,
            "git_commit": git("rev-parse", "HEAD"),
            "date": datetime.now(timezone.utc).date().isoformat(),
            "claims": [c.to_dict() for c in self.claims.values()],
        }
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        tmp.replace(path)
        return path


class HTMLTable(str):
    """A string of HTML that Jupyter displays as HTML."""

    def _repr_html_(self) -> str:
        return str(self)


def load_claims(folder: Path) -> list[Claim]:
    """Every claim saved in ``folder/*.json``, ordered by notebook."""
    fields = Claim.__dataclass_fields__
    claims = []
    for path in sorted(Path(folder).glob("*.json")):
        for row in json.loads(path.read_text())["claims"]:
            claims.append(Claim(**{k: v for k, v in row.items() if k in fields}))
    return claims


def render_rows(claims: list[Claim], link: str | None, page_column: bool = True) -> str:
    """An HTML table of claims. ``link``: URL prefix of the notebook pages (None: rows are the anchors);
    ``page_column``: with a link, a first column naming each row's page (off for a table of one page)."""
    columns = ("claim", "how it is checked", "measured", "criterion", "status")
    page_column = page_column and link is not None
    head = "".join(f"<th>{h}</th>" for h in (("page",) if page_column else ()) + columns)
    rows = []
    for c in claims:
        status = c.verdict
        colour = {"pass": "#1a7f37", "FAIL": "#cf222e", "inconclusive": "#6e7781"}[status]
        name = html.escape(c.statement)
        if c.inconclusive:
            status = f"{status}<br><small>{html.escape(c.inconclusive)}</small>"
        elif c.reason and c.verdict == "FAIL":
            status = f'{status}<br><small style="color:#57606a;font-weight:normal">{html.escape(c.reason)}</small>'
        page = ""
        if link is not None:
            name = f'<a href="{link}{c.notebook}.html#claim-{c.id}">{name}</a>'
            if page_column:
                page = f'<td data-label="page"><a href="{link}{c.notebook}.html">{html.escape(c.notebook)}</a></td>'
        anchor = "" if link is not None else f' id="claim-{c.id}"'
        rule = f'<br><small class="claim-rule">rule: {html.escape(c.rule)}</small>' if c.rule else ""
        rows.append(
            f'<tr{anchor}>{page}<td data-label="claim">{name}<br><code>{c.id}</code></td>'
            f'<td data-label="how it is checked">{html.escape(c.check)}{rule}</td>'
            f'<td data-label="measured">{html.escape(c.measured_text)}</td>'
            f'<td data-label="criterion">{html.escape(c.criterion)}</td>'
            f'<td data-label="status" class="claim-status" style="color:{colour};font-weight:bold">{status}</td></tr>'
        )
    return f'<table class="claims-ledger"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
