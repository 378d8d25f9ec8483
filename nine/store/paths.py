"""Where runs live: the project root, ``results/`` (committed runs) and ``runs/`` (everything else)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("NINE_ROOT", Path(__file__).resolve().parents[2]))
RESULTS_DIR = ROOT / "results"
RUNS_DIR = Path(os.environ.get("NINE_RUNS_DIR", ROOT / "runs"))


def shown(path: Path) -> str:
    """A path relative to the project root when it lies inside it (as printed in the book), else as given."""
    try:
        return str(Path(path).resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return str(path)
