"""The package's layers, read from its imports: a lower layer never imports a higher one.

priors → config → data → core → theory → eval → store → experiments → book → cli. ``core`` is the method
(models, critics, losses, objectives, training); nothing below ``cli`` imports ``cli``, and nothing
in the package imports ``book`` except ``book`` itself and ``cli``. Private names (``_x``) are not
imported across modules.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nine"
LAYERS = ("priors", "config", "data", "core", "theory", "eval", "store", "experiments", "book", "cli")


def layer_of(module: str) -> str | None:
    """'nine.core.train' → 'core'; 'nine' itself (its version) and '__main__' have no layer."""
    parts = module.split(".")
    if parts[0] != "nine" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in LAYERS else None


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every ``import``/``from … import`` of the package in ``path``, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nine"):
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.startswith("nine")]
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    loose = [module_name(p) for p in MODULES if layer_of(module_name(p)) is None
             and module_name(p) not in ("nine", "nine.__main__")]
    assert not loose, f"modules outside the layers {LAYERS}: {loose}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_a_higher_layer_or_a_private_name(path):
    here = layer_of(module_name(path))
    for module, names in imports(path):
        target = layer_of(module)
        if here is None or target is None:
            continue
        assert LAYERS.index(target) <= LAYERS.index(here), f"{module_name(path)} ({here}) imports {module} ({target})"
        if module_name(path).rsplit(".", 1)[0] != module.rsplit(".", 1)[0]:
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{module_name(path)} imports private {private} from {module}"


def test_the_layer_test_catches_an_upward_import(tmp_path):
    sample = tmp_path / "train.py"
    sample.write_text("def f():\n    from nine.book.plots import use_style\n")
    (module, _), = imports(sample)
    assert LAYERS.index(layer_of(module)) > LAYERS.index("core")
