"""The bookkeeping of one notebook page in one object, so that a notebook reads as the experiment.

    page = Page("02_gaussian_matching", parameters, publish, profile)
    page.figure(fig, "fig_embedding", "gaussian-embedding", runs=[run.hash])
    page.number("ks_max", max(m["ks"]))
    page.check("gaussian-mnist-clean-match-prior", statement, how, measured=..., expected=..., relation="le")
    page.claims()         # the page's claims as a table
    page.save()           # the claim rows, when publishing

A figure is glued under its name (for ``{glue:figure}``) with its caption note under ``<name>_note``,
and, when ``publish``, exported as a citable figure (:func:`nine.book.plots.export_figure`).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from nine.book.claims import Claim, HTMLTable, Ledger
from nine.book.plots import export_figure, figure_note


class Page:
    """One notebook's figures, glued numbers and claims; ``publish`` writes the citable copies."""

    def __init__(self, notebook: str, parameters: dict[str, Any], publish: bool, profile: str) -> None:
        self.notebook, self.parameters, self.publish = notebook, dict(parameters), publish
        self.ledger = Ledger(notebook, profile)

    def figure(self, fig: Figure, name: str, label: str, runs: list[str] = (), details: dict | None = None) -> None:
        """Glue ``fig`` as ``name`` and its caption note as ``name + "_note"``; export it under the
        stable ``label`` when publishing (drawn from the runs ``runs``); close it."""
        from IPython.display import Markdown
        from myst_nb import glue

        glue(name, fig, display=False)
        glue(f"{name}_note", Markdown(figure_note(label, self.notebook, self.parameters)), display=False)
        if self.publish:
            export_figure(fig, label, self.notebook, self.parameters, list(runs), details)
        plt.close(fig)

    def number(self, name: str, value: Any) -> Any:
        """Glue ``value`` as ``name`` for ``{glue:text}`` in the prose, and return it."""
        from myst_nb import glue

        glue(name, value, display=False)
        return value

    def markdown(self, name: str, text: str) -> None:
        """Glue MyST ``text`` as ``name`` for ``{glue:md}`` with format myst."""
        from IPython.display import Markdown
        from myst_nb import glue

        glue(name, Markdown(text), display=False)

    def check(self, id: str, statement: str, check: str, measured: float, expected: float,
              tolerance: float = 0.0, relation: str = "approx", inconclusive: str = "") -> Claim:
        """A row of the claims ledger (see :meth:`nine.book.claims.Ledger.check`)."""
        return self.ledger.check(id, statement, check, measured, expected, tolerance, relation, inconclusive)

    def explain(self, id: str, reason: str) -> Claim:
        """The one-line reason the claim ``id`` fails, shown under its verdict here and in the ledger
        (see :meth:`nine.book.claims.Ledger.explain`)."""
        return self.ledger.explain(id, reason)

    def claims(self, ids: list[str] | None = None) -> HTMLTable:
        """The page's claims ``ids`` (all when None) as an HTML table."""
        return self.ledger.table(ids)

    def save(self) -> None:
        """Write the page's claim rows (``book/claims/<notebook>.json``) when publishing."""
        if self.publish:
            self.ledger.save()
