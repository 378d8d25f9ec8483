"""The bookkeeping of one notebook page in one object, so that a notebook reads as the experiment.

    page = Page.of("02_gaussian_matching", globals(), epochs=cfg.epochs)   # parameters read from the notebook
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
from nine.book.plots import check_legend_size, export_figure, figure_note

# parameters that say how a page runs, not what it computes: never part of the command that regenerates it
RUN_CONTROLS = ("publish", "data_dir", "sweep_training", "continued_training")
# the recipe of a page's committed runs: named in a command only where it differs from the page's default
RECIPE = ("numerics", "tau_lr")


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
