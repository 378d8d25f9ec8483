"""Where runs live: the project root, ``results/`` (committed runs) and ``runs/`` (everything else)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("NINE_ROOT", Path(__file__).resolve().parents[2]))
RESULTS_DIR = ROOT / "results"
RUNS_DIR = Path(os.environ.get("NINE_RUNS_DIR", ROOT / "runs"))


def check_store(store: Path | str | None) -> None:
    """Refuse a store named by an empty (or blank) string: as a path it is the working folder, and runs would be
    trained into it (None means the default, ``runs/``)."""
    if isinstance(store, str) and not store.strip():
        from nine.config import ConfigError

        raise ConfigError(f"store={store!r} is not allowed: name a folder (an empty name is the working folder); "
                          "leave --store out for the default, runs/")


def shown(path: Path) -> str:
    """A path relative to the project root when it lies inside it (as printed in the book), else as given."""
    try:
        return str(Path(path).resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return str(path)
