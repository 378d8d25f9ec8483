"""Where published artifacts go, and rerunning a notebook with new parameters.

Published artifacts (``publish=True``) are the citable figures (``book/figures/``), the claim rows
(``book/claims/``) and the result tables (``results/``). A rerun with new parameters must never
overwrite them, so :func:`rerun` sets ``NINE_PUBLISH_DIR`` and everything goes below that folder.

    python -m nine rerun 02_gaussian_matching -p sigma 0.5 -p d 2
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from nine.config import parse_value
from nine.store.paths import ROOT, RUNS_DIR

PUBLISHED = {"figures": ("book", "figures"), "claims": ("book", "claims"), "numbers": ("book", "numbers"), "results": ("results",)}


def publish_dir(kind: str) -> Path:
    """Where published artifacts of ``kind`` (figures, claims, numbers, results) are written: the book's own
    folders, or ``$NINE_PUBLISH_DIR/<kind>`` when that is set (reruns; made when missing)."""
    if kind not in PUBLISHED:
        raise ValueError(f"kind={kind!r} is not allowed: must be one of {', '.join(PUBLISHED)}")
    override = os.environ.get("NINE_PUBLISH_DIR")
    if not override:
        return ROOT.joinpath(*PUBLISHED[kind])
    folder = Path(override) / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def notebooks() -> dict[str, Path]:
    """The book's notebooks by name (file stem)."""
    return {path.stem: path for path in sorted((ROOT / "notebooks").glob("*.ipynb"))}


def rerun_command(notebook: str, parameters: dict[str, Any]) -> str:
    """The shell command that reruns ``notebook`` with ``parameters`` (see :func:`rerun`).

    Values are written as the command line reads them back (:func:`nine.config.parse_value`): a string
    bare unless it would read as something else (``'None'``, ``'0.3'``), everything else as its literal.
    """

    def shown(value: Any) -> str:
        text = value if isinstance(value, str) and parse_value(value) == value else repr(value)
        return shlex.quote(text)

    options = " ".join(f"-p {name} {shown(value)}" for name, value in parameters.items())
    return f"python -m nine rerun {notebook} {options}".rstrip()


def notebook_defaults(notebook: str) -> dict[str, Any]:
    """The default value of each parameter of ``notebook``, as its parameter cell writes it."""
    import ast

    import papermill as pm

    return {name: ast.literal_eval(spec["default"]) for name, spec in pm.inspect_notebook(str(notebooks()[notebook])).items()}


def _check_parameters(notebook: str, parameters: dict[str, Any]) -> None:
    import papermill as pm

    known = pm.inspect_notebook(str(notebooks()[notebook]))
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"parameter {unknown[0]!r} is not allowed for {notebook}: its parameters are "
                         f"{', '.join(known)}")
    for name, value in parameters.items():
        spec = known[name]
        kind = spec["inferred_type_name"].split(" ")[0].split("[")[0]
        allowed = _TYPES.get(kind, (object,))
        if value is None and spec["default"] == "None":
            continue
        if not isinstance(value, allowed) or (isinstance(value, bool) and allowed is not bool and bool not in allowed):
            raise ValueError(f"parameter {name}={_short(value)} is not allowed for {notebook}: it must be of type {kind}"
                             + (" or None" if spec["default"] == "None" else "") + f" ({spec['help']})")
    if "publish" in parameters:
        raise ValueError("parameter 'publish' is not allowed for a rerun: a rerun always writes its figures "
                         "and tables into its own folder")


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list, tuple)}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + " … " + text[-15:]


def rerun_folder(notebook: str, parameters: dict[str, Any]) -> Path:
    """``runs/<notebook>-<hash of the parameters>/``: one folder per notebook and parameter set."""
    key = hashlib.sha256(json.dumps([notebook, parameters], sort_keys=True, default=str).encode()).hexdigest()[:10]
    return RUNS_DIR / f"{notebook}-{key}"


class LocalKernelManager(AsyncKernelManager):
    """A kernel reached through local socket files rather than TCP ports: nothing listens on the
    network, and the kernel has no unencrypted-TCP warning to print."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(transport="ipc", **kwargs)


def rerun(notebook: str, parameters: dict[str, Any]) -> Path:
    """Execute ``notebook`` with ``parameters`` into its :func:`rerun_folder` and return the folder.

    The executed notebook is ``<folder>/<notebook>.ipynb`` (``<notebook>.failed.ipynb`` when it stops); figures, claim rows and tables go to
    ``<folder>/figures``, ``claims`` and ``results``; new training runs go to ``runs/``. A folder that
    already holds a finished rerun is returned as it is (delete it to run again); the book's own
    published artifacts are never touched.
    """
    import papermill as pm

    if notebook not in notebooks():
        raise ValueError(f"notebook={notebook!r} is not allowed: must be one of {', '.join(notebooks())}")
    _check_parameters(notebook, parameters)
    folder = rerun_folder(notebook, parameters)
    executed = folder / f"{notebook}.ipynb"
    if executed.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{notebook}.partial.ipynb"
    previous = os.environ.get("NINE_PUBLISH_DIR")
    os.environ["NINE_PUBLISH_DIR"] = str(folder)
    try:
        pm.execute_notebook(str(notebooks()[notebook]), str(partial), parameters={**parameters, "publish": True},
                            cwd=str(notebooks()[notebook].parent), progress_bar=False,
                            stdout_file=sys.stdout,  # what the notebook prints (its plan, training progress) as it runs
                            kernel_manager_class="nine.book.rerun.LocalKernelManager")
    except BaseException:
        if partial.is_file():  # kept under a visible name, for reading where it stopped
            partial.replace(folder / f"{notebook}.failed.ipynb")
        raise
    finally:
        if previous is None:
            del os.environ["NINE_PUBLISH_DIR"]
        else:
            os.environ["NINE_PUBLISH_DIR"] = previous
    partial.replace(executed)
    return folder
