"""Rerunning a notebook into its own folder, the published-artifact folders, the gallery, CITATION.cff."""

import json
from pathlib import Path

import pytest
import yaml

from nine.book import gallery
from nine.book import rerun as book
from nine.cli import main
from nine.config import NineError
from nine.store.paths import ROOT as PROJECT_ROOT

ROOT = Path(__file__).resolve().parents[2]


def test_publish_dir_defaults_to_the_book_and_follows_the_rerun_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("NINE_PUBLISH_DIR", raising=False)
    assert book.publish_dir("figures") == PROJECT_ROOT / "book" / "figures"
    monkeypatch.setenv("NINE_PUBLISH_DIR", str(tmp_path))
    assert book.publish_dir("results") == tmp_path / "results"
    with pytest.raises(ValueError, match="kind='plots' is not allowed"):
        book.publish_dir("plots")


def test_rerun_command_round_trips_through_the_cli_parser():
    from nine.cli import build_parser

    values = {"sigma": 0.5, "critic": "mlp", "epochs": None, "dims": [1, 2], "data_dir": "None"}
    command = book.rerun_command("02_gaussian_matching", values)
    assert command.startswith("python -m nine rerun 02_gaussian_matching -p sigma 0.5 -p critic mlp -p epochs None")
    import shlex

    args = build_parser().parse_args(shlex.split(command)[3:])
    from nine.config import parse_value

    assert {k: parse_value(v) for k, v in args.parameter} == values


def test_rerun_refuses_unknown_notebooks_and_parameters(capsys):
    assert main(["rerun", "99_nothing"]) == 2
    assert "notebook='99_nothing' is not allowed: must be one of 01_theory" in capsys.readouterr().err
    assert main(["rerun", "01_theory", "-p", "sigmaa", "0.3"]) == 2
    assert "parameter 'sigmaa' is not allowed for 01_theory: its parameters are profile" in capsys.readouterr().err
    assert main(["rerun", "01_theory", "-p", "publish", "False"]) == 2
    assert "parameter 'publish' is not allowed for a rerun" in capsys.readouterr().err


def test_rerun_writes_only_into_its_own_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("nine.book.rerun.RUNS_DIR", tmp_path)
    monkeypatch.setenv("NINE_RUNS_DIR", str(tmp_path / "runs"))  # the runs the notebook trains (its kernel reads it)
    published = {p: p.stat().st_mtime_ns for p in (ROOT / "book").rglob("*") if p.is_file()}
    assert main(["rerun", "01_theory", "-p", "profile", "smoke", "-p", "sigma_channel", "0.7"]) == 0
    out = capsys.readouterr().out
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("01_theory-")]
    assert f"executed notebook: {folder / '01_theory.ipynb'}" in out and "figure: " in out
    sidecar = json.loads((folder / "figures" / "capacity.json").read_text())
    assert sidecar["notebook_parameters"]["sigma_channel"] == 0.7 and sidecar["rerun"].startswith("python -m nine rerun")
    assert (folder / "claims" / "01_theory.json").is_file()
    assert {p: p.stat().st_mtime_ns for p in (ROOT / "book").rglob("*") if p.is_file()} == published
    before = (folder / "01_theory.ipynb").stat().st_mtime_ns
    assert main(["rerun", "01_theory", "-p", "profile", "smoke", "-p", "sigma_channel", "0.7"]) == 0  # found, not redone
    assert (folder / "01_theory.ipynb").stat().st_mtime_ns == before


def test_gallery_lists_every_sidecar_with_label_downloads_and_command():
    records = gallery.sidecars()
    text = gallery.gallery_markdown(records)
    for r in records:
        assert f"(figure-{r['label']})=" in text and f"{{download}}`PDF <figures/{r['label']}.pdf>`" in text
        # every published figure has alt text and a name on its page, and the gallery shows both
        assert len(r["page"].get("alt") or "") >= 20, f"{r['label']}: no :alt: in its {{glue:figure}} directive"
        assert f"{{numref}}`Fig. %s <{r['page']['name']}>`" in text and f":alt: {r['page']['alt']}" in text
    assert ":::{figure}" not in text  # the gallery does not number figures a second time
    orders = [(r["notebook"], r["page"]["order"]) for r in records]
    assert orders == sorted(orders), "figures are listed in the order of their pages"
    assert (ROOT / "book" / "figures.md").read_text() == text, "book/figures.md is stale: run `python -m nine gallery`"


def test_citation_file_is_valid_cff_with_the_paper_preferred():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    for key in ("message", "title", "version", "authors", "license"):
        assert cff[key], key
    from nine import __version__

    assert cff["version"] == __version__
    paper = cff["preferred-citation"]
    assert paper["type"] == "conference-paper" and paper["year"] == 2025
    assert paper["title"] == "Efficient Distribution Matching of Representations via Noise-Injected Deep InfoMax"
    assert [a["family-names"] for a in paper["authors"]][0] == "Butakov"


def test_download_notebooks_come_from_the_execution_cache(monkeypatch, tmp_path):
    """A page rendered from the cache has an output-less copy in jupyter_execute: the downloads must
    still carry the outputs, so they are merged from the cache itself."""
    import nbformat
    from jupyter_cache import get_cache

    monkeypatch.setattr(gallery, "ROOT", tmp_path)
    source = tmp_path / "notebooks" / "demo.ipynb"
    source.parent.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nbformat.write(notebook, source)
    executed = nbformat.from_dict(json.loads(json.dumps(notebook)))
    executed.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    executed.cells[0].execution_count = 1
    nbformat.write(executed, tmp_path / "executed.ipynb")
    get_cache(tmp_path / "_build" / ".jupyter_cache").cache_notebook_file(tmp_path / "executed.ipynb", uri=str(source))
    served = tmp_path / "_build" / "html" / "_sources" / "notebooks" / "demo.ipynb"
    served.parent.mkdir(parents=True)
    nbformat.write(notebook, served)  # the stripped copy Sphinx puts there
    assert gallery.serve_executed_notebooks() == [served]
    assert nbformat.read(served, 4).cells[0].outputs[0]["text"] == "42\n"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), source)  # not in the cache
    with pytest.raises(NineError, match="demo.ipynb has no executed copy"):
        gallery.serve_executed_notebooks()


def test_downloaded_notebooks_show_their_figures_and_values():
    """The notebook behind a download button shows glued figures as images with their captions, and
    glued numbers as numbers, as plain Jupyter and Colab display them (no MyST directives left)."""
    import nbformat

    from nine.book.gallery import readable

    prefix = "application/papermill.record/"
    glue_cell = nbformat.v4.new_code_cell("glue(...)")
    glue_cell.outputs = [
        nbformat.v4.new_output("display_data", data={f"{prefix}image/png": "iVBORw0KGgo=", f"{prefix}text/plain": "<Figure>"},
                               metadata={"scrapbook": {"name": "fig_a", "mime_prefix": prefix}}),
        nbformat.v4.new_output("display_data", data={f"{prefix}text/plain": "0.123456"},
                               metadata={"scrapbook": {"name": "ks", "mime_prefix": prefix}}),
    ]
    text = "```{glue:figure} fig_a\n:name: fig-a\n\nThe caption. {glue:md}`missing:myst`\n```\n\nKS is {glue:text}`ks:.3f`."
    nb = nbformat.v4.new_notebook(cells=[glue_cell, nbformat.v4.new_markdown_cell(text)])
    cell = readable(nb).cells[1]
    assert cell.source.startswith("![fig_a](attachment:fig_a.png)") and "The caption." in cell.source
    assert "KS is 0.123." in cell.source and "{glue:figure}" not in cell.source
    assert cell.attachments["fig_a.png"]["image/png"] == "iVBORw0KGgo="


def test_a_glued_markdown_block_is_written_out_in_the_downloaded_notebook():
    import nbformat

    from nine.book.gallery import readable

    prefix = "application/papermill.record/"
    glue_cell = nbformat.v4.new_code_cell("glue(...)")
    glue_cell.outputs = [nbformat.v4.new_output(
        "display_data", data={f"{prefix}text/markdown": "- first\n- second", f"{prefix}text/plain": "<Markdown>"},
        metadata={"scrapbook": {"name": "findings", "mime_prefix": prefix}})]
    text = "## Findings\n\n```{glue:md} findings\n:format: myst\n```\n\nAfter."
    nb = nbformat.v4.new_notebook(cells=[glue_cell, nbformat.v4.new_markdown_cell(text)])
    assert readable(nb).cells[1].source == "## Findings\n\n- first\n- second\n\nAfter."


def test_the_downloaded_notebook_shows_cross_references_and_citations_as_text():
    import nbformat

    from nine.book.gallery import readable

    text = ("See the {doc}`claims ledger <../book/claims>`, the {ref}`gallery entry <figure-capacity>`, "
            "{numref}`Fig. %s <fig-gaussian-sweep-embeddings>` and {cite:p}`butakov2025nine`; {ref}`rules-gaussian`.")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    assert readable(nb).cells[0].source == ("See the claims ledger, the gallery entry (capacity), "
                                            "Fig. gaussian-sweep-embeddings and [butakov2025nine]; rules-gaussian.")


def test_pages_are_executed_in_parallel_into_the_cache_the_build_reads(tmp_path):
    """nine.book.execute: the notebook pages of _toc.yml (an .md page only with a kernelspec and not forced to
    execute in the build), executed into
    _build/.jupyter_cache, where myst-nb's lookup (match_cache_notebook on the page as the build reads it)
    finds them with their outputs; a failing page is reported and counted."""
    import json

    import nbformat
    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook

    from nine.book.execute import CACHE, execute_pages, pages

    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: page\n- file: prose\n- file: ledger\n- file: broken\n")
    (tmp_path / "intro.md").write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n  name: python3\n"
        "  display_name: Python 3\n---\n# Intro\n\n```{code-cell} ipython3\nprint(6 * 7)\n```\n")
    (tmp_path / "prose.md").write_text("# Prose only\n\nNo code.\n")
    (tmp_path / "ledger.md").write_text("---\nmystnb:\n  execution_mode: force\nkernelspec:\n  name: python3\n---\n# Ledger\n")
    for name, source in (("page", "x = 2 ** 10\nprint(x)"), ("broken", "raise ValueError('page broken on purpose')")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)], metadata={"kernelspec": kernel})
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    assert [p.name for p in pages(tmp_path)] == ["intro.md", "page.ipynb", "broken.ipynb"]
    assert execute_pages(tmp_path) == 1  # the broken page
    cache = get_cache(str(tmp_path / CACHE))
    page = cache.match_cache_notebook(nbformat.read(tmp_path / "page.ipynb", as_version=4))
    assert "1024" in json.dumps(cache.get_cache_bundle(page.pk).nb.cells[0].outputs)
    intro = read_myst_markdown_notebook((tmp_path / "intro.md").read_text(), add_source_map=True, path=str(tmp_path / "intro.md"))
    assert "42" in json.dumps(cache.get_cache_bundle(cache.match_cache_notebook(intro).pk).nb.cells[0].outputs)


def test_a_page_reads_its_parameters_from_the_notebook():
    """Page.of: every parameter of the parameter cell in its order, without the run controls, the recipe
    (numerics, tau_lr) only where it differs from the page's default, values the page resolves itself."""
    import pytest

    from nine.book.page import Page
    from nine.book.rerun import notebook_defaults

    defaults = notebook_defaults("06_outliers")
    page = Page.of("06_outliers", {**defaults, "publish": False})
    assert list(page.parameters) == ["profile", "held_out", "sigma", "eps", "n_outliers"] and not page.publish
    changed = Page.of("06_outliers", {**defaults, "publish": True, "numerics": "fp32", "held_out": (3,)})
    assert changed.parameters["numerics"] == "fp32" and "tau_lr" not in changed.parameters
    assert changed.parameters["held_out"] == [3] and changed.publish
    assert Page.of("02_gaussian_matching", {**notebook_defaults("02_gaussian_matching"), "publish": False},
                   epochs=60).parameters["epochs"] == 60
    with pytest.raises(ValueError, match="'epoch' is not a parameter of 06_outliers"):
        Page.of("06_outliers", {**defaults, "publish": False}, epoch=3)


def test_every_committed_figure_records_the_parameters_its_page_derives():
    """The rerun command of each committed figure is the one Page.of derives from its notebook's parameter cell
    (with the values the page resolved itself), so pages and committed figures cannot drift apart."""
    import json

    from nine.book.page import Page
    from nine.book.rerun import notebook_defaults
    from nine.store.paths import ROOT

    sidecars = [json.loads(p.read_text()) for p in sorted((ROOT / "book" / "figures").glob("*.json"))]
    assert sidecars
    for sidecar in sidecars:
        defaults = notebook_defaults(sidecar["notebook"])
        recorded = sidecar["notebook_parameters"]
        resolved = {k: v for k, v in recorded.items() if defaults.get(k) is None and v is not None}
        namespace = {**defaults, **{k: v for k, v in recorded.items() if k not in resolved}, "publish": True}
        assert Page.of(sidecar["notebook"], namespace, **resolved).parameters == recorded, sidecar["label"]


def test_each_script_of_a_page_is_kept_once():
    from sphinx.builders.html._assets import _JavaScript

    from nine.book.sphinx_scripts import unique_scripts

    scripts = [_JavaScript("a.js"), _JavaScript(None, body="const X = 1"), _JavaScript("a.js"),
               _JavaScript("", body="const X = 1"), _JavaScript("", body="const Y = 2"), _JavaScript("b.js", async_="async")]
    kept = unique_scripts(scripts)
    # sphinx-thebe adds its inline script with filename None, the theme with "": the same script
    assert [(s.filename or "", s.attributes.get("body", "")) for s in kept] == [("a.js", ""), ("", "const X = 1"), ("", "const Y = 2"), ("b.js", "")]


def test_display_equations_fit_a_page_line_by_line():
    """A display equation is set line by line (gathered/aligned with \\\\): no rendered line of more than 120
    characters of TeX, which in MathJax is wider than the text column and is cut with a scroll bar (two
    equations side by side with \\qquad were)."""
    import json
    import re

    from nine.store.paths import ROOT

    texts = {p.name: "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "markdown")
             for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    texts.update({p.name: p.read_text() for p in sorted((ROOT / "book").glob("*.md"))})
    for name, text in texts.items():
        for block in re.findall(r"\$\$(.*?)\$\$", text, re.S):
            for line in (" ".join(re.sub(r"\\(begin|end)\{\w+\}", "", part).split()) for part in re.split(r"\\\\", block)):
                assert len(line) <= 120, f"{name}: a display equation line of {len(line)} characters: {line[:80]}…"


def test_the_ledger_has_a_section_per_page_with_claims():
    """book/claims.md gives every page with claims its own section (the page's title, in book order), so the
    ledger has a contents column and each section renders that page's rows."""
    import json
    import re

    from nine.book.rerun import notebooks
    from nine.store.paths import ROOT

    text = (ROOT / "book" / "claims.md").read_text()
    sections = re.findall(r'^## (.+)\n\n```\{code-cell\} ipython3\n:tags: \[remove-input\]\n\nledger\("(\w+)"\)\n```', text, re.M)
    with_claims = [name for name in notebooks() if (ROOT / "book" / "claims" / f"{name}.json").is_file()
                   and json.loads((ROOT / "book" / "claims" / f"{name}.json").read_text())["claims"]]
    titles = {name: "".join(json.loads(path.read_text())["cells"][0]["source"]).splitlines()[0].lstrip("# ").strip()
              for name, path in notebooks().items()}
    assert [name for _, name in sections] == with_claims
    assert all(title == titles[name] for title, name in sections)


# Numbers a page's prose may type: design constants and exact facts, each with what it is. A measured
# value in prose must be glued from the data; one typed here fails the check below.
TYPED_CONSTANTS = {
    "1.386": "2 log 2, the mutual information of the critic test (07)",
    "12.7": "t quantile 0.975 at one degree of freedom (08)",
    "1.25": "the FID ratio that 04 calls 'as good', fixed before looking",
    "1.5": "the FID ratio that 04 calls 'clearly worse', fixed before looking",
    "2.5": "the size in % of each side of a 95% interval rule (04)",
}


def _prose_numbers(text: str) -> list[str]:
    """Decimal numbers with two or more significant digits in MyST prose, outside math, code and glue roles
    (a one-digit decimal such as 0.1 or 0.05 is a setting)."""
    import re

    for pattern in (r"```.*?```", r"\$\$.*?\$\$", r"\$[^$\n]*\$", r"\{[a-z:]+\}`[^`]*`", r"`[^`]*`"):
        text = re.sub(pattern, "", text, flags=re.S)
    numbers = re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text)
    return [n for n in numbers if len(n.replace(".", "").lstrip("0").rstrip("0")) >= 2]


def test_no_measured_number_is_typed_in_a_page_s_prose():
    """Prose numbers of two or more significant digits are measurements, to be glued: none is typed
    unless it is one of the named constants above."""
    texts = {path.name: "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                                if c["cell_type"] == "markdown") for path in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    texts.update({path.name: path.read_text() for path in sorted((ROOT / "book").glob("*.md"))})
    typed = {name: [n for n in _prose_numbers(text) if n not in TYPED_CONSTANTS] for name, text in texts.items()}
    assert {name: numbers for name, numbers in typed.items() if numbers} == {}
    assert _prose_numbers("a KS of 0.073 ± 0.005, σ = 0.1, $x = 1.234$, `0.123`, {glue:text}`a:.3f`") == ["0.073"]


def test_every_notebook_is_valid_and_every_cell_has_an_id():
    """A cell without an id makes nbformat warn on stderr wherever a notebook is read (papermill, the
    reproducing page), and the strict book build fails on stderr in a cell's output."""
    import warnings

    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            notebook = nbformat.read(path, as_version=4)
            nbformat.validate(notebook)
        assert all(cell.get("id") for cell in notebook.cells), path.name


def test_a_number_names_the_table_it_is_read_from_and_publishing_checks_it(tmp_path, monkeypatch):
    """A page's prose number with a Source is checked against the table it publishes, and where it comes from is
    written beside the page's claims; a number its table does not say is refused, naming it."""
    import numpy as np
    import pandas as pd

    from nine.book.page import Page, Source, check_source

    monkeypatch.setenv("NINE_PUBLISH_DIR", str(tmp_path))
    (tmp_path / "results").mkdir()
    pd.DataFrame({"method": ["a", "a", "b"], "seed": [0, 1, 0], "kl": [1.0, 2.0, 5.0]}).to_csv(tmp_path / "results" / "t.csv", index=False)
    assert Source("t.csv", "kl", {"method": "a"}).read(tmp_path / "results") == 1.5
    assert Source("t.csv", "kl", {"method": "a"}, reduce="max").read(tmp_path / "results") == 2.0
    assert Source("t.csv", "kl", {"method": "b"}, reduce="value").read(tmp_path / "results") == 5.0
    assert Source("t.csv", "kl", {"seed": np.int64(1)}).where == {"seed": 1}  # numpy values stored as JSON writes them
    with pytest.raises(ValueError, match="reduce='sum' is not allowed: must be one of value, mean"):
        Source("t.csv", "kl", reduce="sum")
    with pytest.raises(ValueError, match="2 rows .* value needs exactly one"):
        Source("t.csv", "kl", {"method": "a"}, reduce="value").read(tmp_path / "results")
    with pytest.raises(ValueError, match="t.csv has no column 'nope'"):
        Source("t.csv", "nope").read(tmp_path / "results")
    with pytest.raises(ValueError, match=r"the number a_kl = 1.6 is not its source's 1.5"):
        check_source("a_kl", 1.6, Source("t.csv", "kl", {"method": "a"}), tmp_path / "results")

    page = Page("07_baselines", {}, publish=True, profile="cpu")
    page.number("a_kl", 1.5, source=Source("t.csv", "kl", {"method": "a"}))
    page.number("plain", 3.0)  # no source: not recorded
    page.save()
    record = json.loads((tmp_path / "numbers" / "07_baselines.json").read_text())
    assert record == {"notebook": "07_baselines", "numbers": {"a_kl": {"value": 1.5, "table": "t.csv", "column": "kl",
                                                                        "where": {"method": "a"}, "reduce": "mean"}}}
    page.number("b_kl", 4.0, source=Source("t.csv", "kl", {"method": "b"}))
    with pytest.raises(ValueError, match="the number b_kl = 4.0"):
        page.save()
    Page("07_baselines", {}, publish=True, profile="cpu").save()  # a page with no such number any more
    assert not (tmp_path / "numbers" / "07_baselines.json").exists()


def evidence_digest() -> dict[str, str]:
    """SHA-256 of every file of the committed evidence (results/ less the runs' folders, book/)."""
    import hashlib

    files = [p for p in (ROOT / "book").rglob("*") if p.is_file()]
    files += [p for p in (ROOT / "results").glob("*") if p.is_file()]
    files += [p for p in (ROOT / "results" / "evaluations").glob("*") if p.is_file()]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_a_rerun_of_a_matching_page_leaves_the_evidence_as_it_was(monkeypatch, tmp_path, capsys):
    """02 and 03 publish their table as results/matching-*.csv: a rerun (which publishes into its own folder)
    writes it there, and no file of results/ or book/ changes."""
    monkeypatch.setattr("nine.book.rerun.RUNS_DIR", tmp_path)
    monkeypatch.setenv("NINE_RUNS_DIR", str(tmp_path / "runs"))
    before = evidence_digest()
    assert main(["rerun", "03_uniform_matching", "-p", "profile", "smoke"]) == 0
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("03_uniform_matching-")]
    assert len((folder / "results" / "matching-uniform.csv").read_text().splitlines()) > 1
    assert evidence_digest() == before
