"""What the book needs beyond the notebooks: where published artifacts go, rerunning a notebook with
new parameters, and the gallery of citable figures.

Published artifacts (``publish=True``) are the citable figures (``book/figures/``), the claim rows
(``book/claims/``) and the result tables (``results/``). A rerun with new parameters must never
overwrite them, so :func:`rerun` sets ``NINE_PUBLISH_DIR`` and everything goes below that folder.

    python -m nine rerun 02_gaussian_matching -p sigma 0.5 -p d 2
    python -m nine gallery          (rewrites book/figures.md from the figures' sidecars)
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path
from typing import Any

PUBLISHED = {"figures": ("book", "figures"), "claims": ("book", "claims"), "results": ("results",)}


def _root() -> Path:
    from nine.runs import ROOT

    return ROOT


def publish_dir(kind: str) -> Path:
    """Where published artifacts of ``kind`` (figures, claims, results) are written: the book's own
    folders, or ``$NINE_PUBLISH_DIR/<kind>`` when that is set (reruns)."""
    if kind not in PUBLISHED:
        raise ValueError(f"kind={kind!r} is not allowed: must be one of {', '.join(PUBLISHED)}")
    override = os.environ.get("NINE_PUBLISH_DIR")
    return Path(override) / kind if override else _root().joinpath(*PUBLISHED[kind])


def notebooks() -> dict[str, Path]:
    """The book's notebooks by name (file stem)."""
    return {path.stem: path for path in sorted((_root() / "notebooks").glob("*.ipynb"))}


def rerun_command(notebook: str, parameters: dict[str, Any]) -> str:
    """The shell command that reruns ``notebook`` with ``parameters`` (see :func:`rerun`).

    Values are written as the command line reads them back (:func:`nine.cli._value`): a string bare
    unless it would read as something else (``'None'``, ``'0.3'``), everything else as its literal.
    """
    from nine.cli import _value

    def shown(value: Any) -> str:
        text = value if isinstance(value, str) and _value(value) == value else repr(value)
        return shlex.quote(text)

    options = " ".join(f"-p {name} {shown(value)}" for name, value in parameters.items())
    return f"python -m nine rerun {notebook} {options}".rstrip()


def _check_parameters(notebook: str, parameters: dict[str, Any]) -> None:
    import papermill as pm

    known = pm.inspect_notebook(str(notebooks()[notebook]))
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"parameter {unknown[0]!r} is not allowed for {notebook}: its parameters are "
                         f"{', '.join(known)}")
    if "publish" in parameters:
        raise ValueError("parameter 'publish' is not allowed for a rerun: a rerun always writes its figures "
                         "and tables into its own folder")


def rerun_folder(notebook: str, parameters: dict[str, Any]) -> Path:
    """``runs/<notebook>-<hash of the parameters>/``: one folder per notebook and parameter set."""
    from nine.runs import RUNS_DIR

    key = hashlib.sha256(json.dumps([notebook, parameters], sort_keys=True, default=str).encode()).hexdigest()[:10]
    return RUNS_DIR / f"{notebook}-{key}"


def rerun(notebook: str, parameters: dict[str, Any]) -> Path:
    """Execute ``notebook`` with ``parameters`` into its :func:`rerun_folder` and return the folder.

    The executed notebook is ``<folder>/<notebook>.ipynb``; figures, claim rows and tables go to
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
                            cwd=str(notebooks()[notebook].parent), progress_bar=False)
    finally:
        if previous is None:
            del os.environ["NINE_PUBLISH_DIR"]
        else:
            os.environ["NINE_PUBLISH_DIR"] = previous
    partial.replace(executed)
    return folder


# ---------------------------------------------------------------------------------------------
# The gallery page


def sidecars(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every figure sidecar (``<label>.json``) in the book's figure folder, sorted by notebook and label."""
    folder = folder or _root() / "book" / "figures"
    records = [json.loads(path.read_text()) for path in folder.glob("*.json")]
    return sorted(records, key=lambda r: (r["notebook"], r["label"]))


def gallery_markdown(records: list[dict[str, Any]]) -> str:
    """The MyST source of ``book/figures.md``: each citable figure with its label, source, data and command."""
    from nine import __version__

    lines = [
        "# Citable figures",
        "",
        "Every figure that a notebook publishes, by its stable label. Each has a PNG and a PDF, and a JSON",
        "sidecar with the notebook, its parameters, the runs it was drawn from (in `results/`), the git",
        "commit and the date. Cite a figure by its label and the version of `nine`, e.g. *nine "
        f"{__version__}, figure `{records[0]['label'] if records else 'label'}`*. This page is written by "
        "`python -m nine gallery` from the sidecars.",
        "",
    ]
    notebook = None
    for r in records:
        if r["notebook"] != notebook:
            notebook = r["notebook"]
            lines += [f"## {notebook}", "", f"From [the {notebook} page](../notebooks/{notebook}.ipynb).", ""]
        label = r["label"]
        runs = ", ".join(f"`{h}`" for h in r["runs"]) or "none (computed in the notebook)"
        lines += [
            f":::{{figure}} figures/{label}.png",
            f":name: figure-{label}",
            ":width: 80%",
            "",
            f"`{label}` · {{download}}`PNG <figures/{label}.png>` · {{download}}`PDF <figures/{label}.pdf>` · "
            f"{{download}}`data (JSON) <figures/{label}.json>`",
            ":::",
            "",
            f"- runs: {runs}",
            f"- made by nine {r['nine_version']} at commit `{(r.get('git_commit') or 'unknown')[:12]}` on {r['date']}",
            f"- regenerate: `{rerun_command(notebook, r.get('notebook_parameters', {}))}`",
            "",
        ]
    return "\n".join(lines)


def write_gallery(path: Path | None = None) -> Path:
    """Rewrite ``book/figures.md`` from the sidecars."""
    path = path or _root() / "book" / "figures.md"
    path.write_text(gallery_markdown(sidecars()))
    return path


def serve_executed_notebooks(build: Path | None = None) -> list[Path]:
    """Replace the stripped notebooks behind the book's download buttons (``_build/html/_sources``)
    by the executed ones the pages were rendered from, taken from the build's execution cache.

    The cache is the source because MyST-NB writes ``_build/jupyter_execute`` without outputs when a
    page comes from the cache rather than a fresh execution."""
    import nbformat
    from jupyter_cache import get_cache

    build = Path(build) if build is not None else _root() / "_build"
    cache = get_cache(build / ".jupyter_cache")
    served = []
    for target in sorted((build / "html" / "_sources" / "notebooks").glob("*.ipynb")):
        source = _root() / "notebooks" / target.name
        try:
            _, executed = cache.merge_match_into_file(source)
        except KeyError as err:
            raise RuntimeError(f"{source.name} has no executed copy in {build / '.jupyter_cache'}: build the book first") from err
        nbformat.write(executed, target)
        served.append(target)
    return served
