"""Book tooling: the page helper notebooks use, plots, the claims ledger, reruns, the figure gallery."""
