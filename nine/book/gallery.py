"""The gallery of citable figures (``book/figures.md``) and the executed notebooks behind the book's
download buttons.

    python -m nine gallery          (rewrites book/figures.md from the figures' sidecars)
    python -m nine downloads        (after a book build)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nine
from nine.book.rerun import rerun_command
from nine.config import NineError, first_line
from nine.store.paths import ROOT


def page_figures(notebook: str, folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """What a page says of each figure it publishes, by label: the ``{glue:figure}`` directive's
    ``:name:`` (its number on the page) and ``:alt:`` text, and its order on the page."""
    path = (folder or ROOT / "notebooks") / f"{notebook}.ipynb"
    if not path.is_file():
        return {}
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    labels = dict(re.findall(r'page\.figure\(\s*\w+,\s*"([^"]+)",\s*"([^"]+)"', code))  # glue name -> label
    out = {}
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        for match in re.finditer(r"```\{glue:figure\} (\S+)\n((?::[^\n]*\n)*)", "".join(cell["source"])):
            options = dict(re.findall(r":(\w+): ([^\n]*)", match.group(2)))
            if match.group(1) in labels:
                out[labels[match.group(1)]] = {"name": options.get("name"), "alt": options.get("alt"), "order": len(out)}
    return out


def sidecars(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every figure sidecar (``<label>.json``) in the book's figure folder, in the order of the pages
    and of the figures on each page, with what the page says of it (:func:`page_figures`)."""
    folder = folder or ROOT / "book" / "figures"
    records = [read_sidecar(path) for path in sorted(folder.glob("*.json"))]
    pages = {notebook: page_figures(notebook) for notebook in {r["notebook"] for r in records}}
    for r in records:
        r["page"] = pages[r["notebook"]].get(r["label"], {})
    return sorted(records, key=lambda r: (r["notebook"], r["page"].get("order", 999), r["label"]))


def read_sidecar(path: Path) -> dict[str, Any]:
    """A figure's sidecar; :class:`~nine.config.NineError` in one line naming it when it is not one."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or not {"notebook", "label"} <= set(record):
            raise ValueError("it has no notebook and label")
    except (OSError, ValueError) as err:
        raise NineError(f"figure sidecar {path} cannot be read ({first_line(err)}): publish its page again "
                        "(`make results`) or delete it") from err
    return record


def gallery_markdown(records: list[dict[str, Any]]) -> str:
    """The MyST source of ``book/figures.md``: each citable figure at full width, under its label,
    with its number on its page, its alt text, source, data and command. Gallery entries are images,
    not numbered figures, so a figure has one number in the book: the one its page gives it."""
    lines = [
        "# Citable figures",
        "",
        "Every figure that a notebook publishes, by its stable label, in the order of the pages. Each has a",
        "PNG and a PDF, and a JSON sidecar with the notebook, its parameters, the runs it was drawn from",
        "(in `results/`), the values each panel plots (lines and points, with their labels and axes), the git",
        "commit and the date. Cite a figure by its label and the version of `nine`,",
        f"e.g. *nine {nine.__version__}, figure `{records[0]['label'] if records else 'label'}`*. Click a figure for the",
        "full-resolution PNG. This page is written by `python -m nine gallery` from the sidecars.",
        "",
    ]
    notebook = None
    for r in records:
        if r["notebook"] != notebook:
            notebook = r["notebook"]
            lines += [f"## {notebook}", "", f"From {{doc}}`the {notebook} page <../notebooks/{notebook}>`.", ""]
        label, page = r["label"], r["page"]
        runs = ", ".join(f"`{h}`" for h in r["runs"]) or "none (computed in the notebook)"
        on_page = f"{{numref}}`Fig. %s <{page['name']}>` on its page" if page.get("name") else "on its page"
        alt = page.get("alt") or f"Figure {label} of the {notebook} page"
        lines += [
            f"(figure-{label})=",
            f"### `{label}`",
            "",
            f"{on_page} · {{download}}`PNG <figures/{label}.png>` · {{download}}`PDF <figures/{label}.pdf>` · "
            f"{{download}}`data (JSON) <figures/{label}.json>`",
            "",
            f":::{{image}} figures/{label}.png",
            f":alt: {alt}",
            ":width: 100%",
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
    path = path or ROOT / "book" / "figures.md"
    path.write_text(gallery_markdown(sidecars()))
    return path


def serve_executed_notebooks(build: Path | None = None) -> list[Path]:
    """Replace the stripped notebooks behind the book's download buttons (``_build/html/_sources``)
    by the executed ones the pages were rendered from, taken from the build's execution cache.

    The cache is the source because MyST-NB writes ``_build/jupyter_execute`` without outputs when a
    page comes from the cache rather than a fresh execution."""
    import nbformat
    from jupyter_cache import get_cache

    build = Path(build) if build is not None else ROOT / "_build"
    cache = get_cache(build / ".jupyter_cache")
    served = []
    for target in sorted((build / "html" / "_sources" / "notebooks").glob("*.ipynb")):
        source = ROOT / "notebooks" / target.name
        try:
            _, executed = cache.merge_match_into_file(source)
        except KeyError as err:
            raise NineError(f"{source.name} has no executed copy in {build / '.jupyter_cache'}: the book is not fully "
                            "built; build it with `make book`") from err
        nbformat.write(readable(executed), target)
        served.append(target)
    return served


GLUE_FIGURE = re.compile(r"```\{glue:figure\}\s+(\S+)\n(.*?)```", re.S)
GLUE_MD = re.compile(r"```\{glue:md\}\s+(\S+)\n(?::[^\n]*\n)*```")  # a glued Markdown block (lists, paragraphs)
GLUE_ROLE = re.compile(r"\{glue:(?:text|md)\}`([^`:]+)(?::([^`]*))?`")
# a cross-reference or citation of the book, which Jupyter would show as raw MyST: text <target> or target
BOOK_ROLE = re.compile(r"\{(ref|doc|numref|eq|cite:p|cite:t|cite)\}`([^`<]*?)\s*(?:<([^`>]+)>)?`")


def _plain_role(match: re.Match) -> str:
    """A book role as plain text: its own text (with the figure or section it names), a citation in brackets."""
    kind, text, target = match.group(1), match.group(2).strip(), match.group(3)
    if kind.startswith("cite"):
        return f"[{text}]"
    if kind == "numref":
        return text.replace("%s", target.removeprefix("fig-")) if target else text
    if not target:
        return text
    if kind == "ref" and target.startswith(("figure-", "fig-")):
        return f"{text} ({target.split('-', 1)[1]})"
    return text


def readable(nb):
    """An executed notebook as Jupyter and Colab show it: every ``{glue:figure}`` directive of the
    markdown becomes the figure itself (a cell attachment) with its caption, every ``{glue:text}``
    or ``{glue:md}`` role the value it stands for, and every cross-reference or citation role its text. The glued values are read from the notebook's own
    outputs, which MyST-NB displays but plain Jupyter does not."""
    glued: dict[str, dict] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            scrap = output.get("metadata", {}).get("scrapbook")
            if scrap:
                prefix = scrap["mime_prefix"]
                glued[scrap["name"]] = {k[len(prefix):]: v for k, v in output.get("data", {}).items() if k.startswith(prefix)}

    def value(match: re.Match) -> str:
        data = glued.get(match.group(1))
        if data is None:
            return match.group(0)
        if "text/markdown" in data:
            return str(data["text/markdown"]).strip()
        text = str(data.get("text/plain", "")).strip().strip("'")
        spec = match.group(2)
        if spec and spec != "myst":
            try:
                return format(float(text), spec)
            except ValueError:
                return text
        return text

    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        attachments = dict(cell.get("attachments", {}))

        def figure(match: re.Match) -> str:
            name, body = match.group(1), match.group(2)
            data = glued.get(name, {})
            caption = "\n".join(line for line in body.splitlines() if not line.startswith(":")).strip()
            if "image/png" not in data:
                return match.group(0)
            attachments[f"{name}.png"] = {"image/png": data["image/png"]}
            return f"![{name}](attachment:{name}.png)\n\n*{caption}*\n"

        def block(match: re.Match) -> str:
            data = glued.get(match.group(1), {})
            return str(data["text/markdown"]).strip() if "text/markdown" in data else match.group(0)

        text = GLUE_MD.sub(block, GLUE_FIGURE.sub(figure, cell.source))
        cell.source = BOOK_ROLE.sub(_plain_role, GLUE_ROLE.sub(value, text))
        if attachments:
            cell["attachments"] = attachments
    return nb
