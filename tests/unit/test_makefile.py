"""The two commands work from any environment: `make test VENV=$CONDA_PREFIX` (the README's conda route) runs
every stage with that environment's programs, by absolute paths, whatever folder a recipe changes into."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
@pytest.mark.parametrize("target", ["notebooks", "bench", "unit", "other-cpu", "reproduce"])
def test_an_absolute_venv_reaches_every_recipe_as_it_is(tmp_path, target):
    prefix = tmp_path / "conda-env"
    (prefix / "bin").mkdir(parents=True)
    (prefix / ".nine-installed").touch()  # an installed environment, newer than pyproject.toml: no install step
    shown = subprocess.run(["make", "-n", target, f"VENV={prefix}"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout
    commands = [line for line in shown.splitlines() if "/bin/" in line]
    assert commands and all(f"{prefix}/bin/" in line for line in commands), shown
    assert "../" not in shown and "//" not in shown.replace("://", "")
