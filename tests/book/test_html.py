"""Checks over the built book in _build/html (run after `jupyter-book build`)."""

import functools
import json
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from bs4 import BeautifulSoup

import nine
from nine.config import NUMERICS

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
PAGES = {
    "book/intro.html": [],
    "notebooks/01_theory.html": [
        "fig-capacity",
        "fig-gaussian-channel",
        "fig-uniform-channel",
        "fig-infonce-ceiling",
        "fig-any-prior",
        "fig-certificate-theory",
    ],
    "notebooks/02_gaussian_matching.html": [
        "fig-gaussian-embedding",
        "fig-gaussian-marginals",
        "fig-gaussian-infonce",
        "fig-gaussian-sweep-embeddings",
        "fig-gaussian-sweep-qq",
        "fig-gaussian-sweep-metrics",
        "fig-gaussian-tradeoff",
        "fig-gaussian-departure",
        "fig-gaussian-certificate",
        "fig-gaussian-tau",
    ],
    "notebooks/03_uniform_matching.html": [
        "fig-uniform-embedding",
        "fig-uniform-infonce",
        "fig-uniform-sweep-embeddings",
        "fig-uniform-sweep-qq",
        "fig-uniform-sweep-metrics",
        "fig-uniform-tradeoff",
        "fig-uniform-departure",
        "fig-uniform-certificate",
    ],
    "notebooks/08_budget.html": ["fig-budget-trajectories", "fig-budget-kl-vs-gap", "fig-budget-probe-collapse"],
    "notebooks/04_generative.html": ["fig-generative-samples"],
    "notebooks/05_disentanglement.html": [
        "fig-dsprites-views",
        "fig-dsprites-rotation-test",
        "fig-dsprites-traversals",
    ],
    "notebooks/06_outliers.html": [
        "fig-outlier-sets",
        "fig-outlier-score-histograms",
        "fig-outlier-auroc-vs-sigma",
    ],
    "notebooks/07_baselines.html": [
        "fig-baselines",
        "fig-baselines-adversarial-weights",
    ],
    "book/claims.html": [],
    "book/figures.html": [f"figure-{path.stem}" for path in sorted((ROOT / "book" / "figures").glob("*.json"))],
    "book/reproducing.html": [],
}
SIDECARS = [json.loads(path.read_text()) for path in sorted((ROOT / "book" / "figures").glob("*.json"))]


@pytest.fixture(scope="module")
def pages():
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML} has no built book: run `make book` first")
    return {name: BeautifulSoup((HTML / name).read_text(), "html.parser") for name in PAGES}


def gallery_entry(gallery, label):
    """The section of the gallery page that holds the entry of ``label`` (its target precedes the heading)."""
    anchor = gallery.find(id=f"figure-{label}")
    return anchor if anchor is None or anchor.name == "section" else anchor.find_parent("section")


@pytest.mark.parametrize("name", PAGES)
def test_every_figure_has_an_image(pages, name):
    if name == "book/figures.html":  # the gallery shows images under labelled headings, not numbered figures
        for label in PAGES[name]:
            img = gallery_entry(pages[name], label.removeprefix("figure-")).find("img")
            assert img is not None and (HTML / name).parent.joinpath(img["src"]).resolve().is_file(), label
        return
    figures = pages[name].find_all("figure")
    assert len(figures) >= len(PAGES[name])
    for figure in figures:
        img = figure.find("img")
        assert img is not None, f"{name}: <figure id={figure.get('id')}> has no <img>"
        assert (HTML / name).parent.joinpath(img["src"]).resolve().is_file(), f"{name}: {img['src']} missing"


@pytest.mark.parametrize("name", PAGES)
def test_expected_labels_exist(pages, name):
    ids = {tag.get("id") for tag in pages[name].find_all(id=True)}
    for label in PAGES[name]:
        assert label in ids, f"{name}: figure label {label} not found"


@pytest.mark.parametrize("name", PAGES)
def test_every_figure_image_has_descriptive_alt_text(pages, name):
    """A screen reader (or a broken image) gets a description, not a hashed file name."""
    for img in pages[name].select("figure img, img.align-default, section img"):
        alt = img.get("alt", "")
        assert len(alt) >= 20 and not alt.lower().endswith((".png", ".svg", ".pdf")), f"{name}: {img['src']} has alt={alt!r}"


def test_gallery_shows_each_figure_once_numbered_by_its_page(pages):
    gallery = pages["book/figures.html"]
    assert not gallery.select(".caption-number"), "gallery entries must not be numbered a second time"
    for sidecar in SIDECARS:
        entry = gallery_entry(gallery, sidecar["label"])
        assert entry is not None and entry.find("img") is not None, sidecar["label"]
        assert "Fig." in entry.get_text(), f"{sidecar['label']}: no page number"


# The width of a page's content column in a 1400-px browser window (sphinx-book-theme; measured on a
# headless-Chromium screenshot of the built book): figures wider than this are scaled down to it.
COLUMN_PX = 785


@pytest.mark.parametrize("name", [name for name in PAGES if name.startswith("notebooks/")])
def test_no_figure_is_shrunk_below_60_percent(pages, name):
    from PIL import Image

    for img in pages[name].select("figure img"):
        with Image.open((HTML / name).parent.joinpath(img["src"]).resolve()) as png:
            width = png.size[0]
        assert COLUMN_PX / width >= 0.6, f"{name}: {img.get('alt', img['src'])[:60]!r} is {width} px wide, shown at {COLUMN_PX / width:.0%}"


@pytest.mark.parametrize("name", PAGES)
def test_no_machine_paths(pages, name):
    text = pages[name].get_text()
    for prefix in ("/tmp/", "/work/", "/root/", "/home/"):
        assert prefix not in text, f"{name} shows a path of the machine that built it ({prefix}…)"


@pytest.mark.parametrize("name", PAGES)
def test_no_stderr_or_error_output(pages, name):
    assert not pages[name].select(".stderr, .output.error, .traceback"), f"{name} shows stderr or an error"


@pytest.mark.parametrize("name", PAGES)
def test_internal_links_resolve(pages, name):
    for a in pages[name].find_all("a", href=True):
        url = urlparse(a["href"])
        if url.scheme or url.netloc or not url.path:
            continue
        target = (HTML / name).parent.joinpath(url.path).resolve()
        assert target.is_file(), f"{name}: broken link {a['href']}"
        if url.fragment and target.suffix == ".html":
            assert url.fragment in anchors(target), f"{name}: link {a['href']} points to a missing anchor"


@functools.cache
def anchors(page: Path) -> frozenset[str]:
    """The ids of a built page (parsed once: the ledger alone is the target of hundreds of links)."""
    return frozenset(t.get("id") for t in BeautifulSoup(page.read_text(), "html.parser").find_all(id=True))


def test_citations_render(pages):
    intro = pages["book/intro.html"]
    assert "Butakov" in intro.get_text() and "Hjelm" in intro.get_text()
    assert not intro.find_all(string=lambda s: "{cite" in s)


def test_glued_numbers_are_rendered(pages):
    for name in PAGES:
        assert "{glue" not in pages[name].get_text(), name


@pytest.mark.parametrize("sidecar", SIDECARS, ids=[s["label"] for s in SIDECARS])
def test_every_citable_figure_leads_to_its_data_and_rerun_command(pages, sidecar):
    """Notebook figure → caption with label, gallery link and command → gallery entry → PNG, PDF, JSON."""
    label, page = sidecar["label"], f"notebooks/{sidecar['notebook']}.html"
    figure = pages[page].find(id=f"fig-{label}")
    assert figure is not None, f"{page} has no figure fig-{label}"
    caption = " ".join(figure.get_text(" ").split())
    # cited as the release the reader has (run hashes do not change with a release); the sidecar keeps the
    # version that drew the file, shown in its gallery entry
    assert f"Cite as nine {nine.__version__}, figure {label}" in caption, caption
    assert f"Regenerate: {sidecar['rerun']}" in caption, caption
    gallery_link = figure.find("a", href=lambda h: h and h.endswith(f"figures.html#figure-{label}"))
    assert gallery_link is not None, f"fig-{label} does not link to its gallery entry"
    entry = gallery_entry(pages["book/figures.html"], label)
    downloads = {a["href"].rsplit(".", 1)[-1] for a in entry.find_all("a", href=True) if "_downloads" in a["href"]}
    assert downloads == {"png", "pdf", "json"}, f"gallery entry {label} offers {downloads}"
    for run in sidecar["runs"]:
        assert (ROOT / "results" / run / "manifest.json").is_file(), f"figure {label} was drawn from run {run}, not in results/"


def test_download_buttons_serve_executed_notebooks():
    """The notebooks behind the download buttons are the executed ones, made readable outside the book:
    every glued value written into the text and every glued figure attached where its directive was."""
    served = sorted((HTML / "_sources" / "notebooks").glob("*.ipynb"))
    assert len(served) == len(list((ROOT / "notebooks").glob("*.ipynb")))
    for source in served:
        cells = json.loads(source.read_text())["cells"]
        assert any(c.get("outputs") for c in cells if c["cell_type"] == "code"), f"{source.name} has no outputs"
        markdown = [c for c in cells if c["cell_type"] == "markdown"]
        left = [line for c in markdown for line in "".join(c["source"]).splitlines()
                if "{glue:" in line or re.search(r"\{(ref|doc|numref|cite|cite:p|cite:t)\}`", line)]
        assert not left, f"{source.name} still shows MyST roles: {left[:2]}"
        figures = "".join("".join(c["source"]) for c in json.loads((ROOT / "notebooks" / source.name).read_text())["cells"]
                          if c["cell_type"] == "markdown").count("{glue:figure}")
        attached = sum(len(c.get("attachments", {})) for c in markdown)
        assert attached >= figures, f"{source.name}: {attached} figures attached of its {figures} glued figures"


def test_claims_page_agrees_with_the_notebook_pages(pages):
    """Every committed claim row appears on its notebook page with the same verdict, and vice versa."""
    committed = {}
    for path in sorted((ROOT / "book" / "claims").glob("*.json")):
        for row in json.loads(path.read_text())["claims"]:
            committed[row["id"]] = (row["notebook"], row.get("verdict", "pass" if row["passed"] else "FAIL"))
    assert committed, "book/claims/ holds no claims: run `make results`"
    shown = {}
    for name in PAGES:
        if name.startswith("notebooks/"):
            for row in pages[name].select("table.claims-ledger tr[id^=claim-]"):
                text = row.select_one(".claim-status").get_text(strip=True)  # the verdict, then its reason if any
                verdict = next(v for v in ("pass", "FAIL", "inconclusive") if text.startswith(v))
                shown.setdefault(row["id"][len("claim-"):], set()).add((Path(name).stem, verdict))
    for claim_id, (notebook, verdict) in committed.items():
        assert shown.get(claim_id) == {(notebook, verdict)}, f"claim {claim_id}: ledger {verdict}, page {shown.get(claim_id)}"
    assert set(shown) == set(committed), f"claims on pages but not in the ledger: {set(shown) - set(committed)}"
    ledger_rows = pages["book/claims.html"].select("table.claims-ledger tbody tr")
    assert len(ledger_rows) == len(committed)


def test_math_renders_offline_and_no_page_launches_elsewhere(pages):
    """MathJax is served from the book itself (no CDN), and no page offers Binder or Colab, which would
    need a public repository (and Colab cannot open the .md pages)."""
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").is_file()
    for name, page in pages.items():
        sources = [tag.get("src", "") for tag in page.find_all("script")]
        assert not any("mathjax" in src and urlparse(src).netloc for src in sources), name
        assert any(urlparse(src).path.endswith("mathjax/tex-chtml.js") for src in sources) or not page.select(".math"), name
        assert not page.select('a[href*="colab.research.google.com"], a[href*="mybinder.org"]'), name


def test_the_intro_opens_with_what_the_book_found(pages):
    """The first section after the title is the findings: computed sentences with numbers and links, then the
    verdict counts by kind whose totals equal the ledger's rows."""
    intro = pages["book/intro.html"]
    first = intro.select_one("main section section") or intro.select("section")[1]
    assert first.find(["h2"]).get_text(strip=True).startswith("What this companion found")
    items = first.select("ul.findings li")
    assert len(items) >= 4 and all(any(ch.isdigit() for ch in li.get_text()) for li in items[:4])
    assert all(li.find("a") for li in items) and "nan" not in first.get_text().lower().split()
    total = first.select_one("table.claims-glance tr.glance-total").find_all("td")[-1].get_text(strip=True)
    ledger = sum(len(json.loads(p.read_text())["claims"]) for p in (ROOT / "book" / "claims").glob("*.json"))
    assert int(total) == ledger
    line = first.select_one("p.glance-line")  # the counts in one sentence, above the findings
    assert line is not None and f"Verdicts of the {ledger} checks" in line.get_text()
    assert line.find_next("ul") is first.select_one("ul.findings")


NUMBER = re.compile(r"[-−]?\d[\d,]*(\.\d+)?(e[-+]?\d+)?")
TABLE_CLASSES = {"nine-table", "claims-ledger", "claims-glance"}


VARIABLE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")  # probe_acc, kl_knn, n_train: a name from the code


@pytest.mark.parametrize("name", PAGES)
def test_table_headers_are_words_not_variable_names(pages, name):
    """A column, index name or row label reads as words (nine.book.numbers.LABELS), not as the run table's
    variable name; source text set as code (a notebook parameter on the reproducing page) is exempt."""
    for table in pages[name].select(".cell_output table, table.claims-ledger, table.claims-glance"):
        for cell in table.find_all("th"):
            if cell.find("code"):
                continue
            words = [w.strip("(),:") for w in cell.get_text(" ", strip=True).split()]
            names = [w for w in words if VARIABLE.fullmatch(w) and w not in NUMERICS]  # an option's value as typed
            assert not names, f"{name}: header {' '.join(words)!r}"


def float_dumps(text: str) -> list[str]:
    """Numbers printed with six or more decimals and more than four significant digits ("4.324349", "0.500000"):
    a float dumped as it is, not a small value at its significant digits ("0.000999")."""
    return [m for m in re.findall(r"\d+\.\d{6,}", text) if len(m.replace(".", "").lstrip("0")) > 4]


def test_a_float_dump_is_told_from_a_small_number():
    assert float_dumps("4.324349 and 0.500000") == ["4.324349", "0.500000"]
    assert float_dumps("0.000999, −0.000236 and 0.0001234") == []


@pytest.mark.parametrize("name", PAGES)
def test_tables_print_numbers_one_way(pages, name):
    """Every table a page shows goes through one format (nine.book.numbers): the book's table class, no
    nan, no trailing zeros (0.500000, 2429.0), no six-decimal float dumps, no cell cut short with "…"."""
    for table in pages[name].select(".cell_output table, table.claims-ledger, table.claims-glance"):
        assert TABLE_CLASSES & set(table.get("class", [])), f"{name}: a table without the book's format: {table.get_text(' ', strip=True)[:120]}"
        for cell in table.find_all(["td", "th"]):
            if cell.find("code"):  # source text, e.g. a parameter's default as written (`1.0`)
                continue
            text = cell.get_text(" ", strip=True)
            assert not re.search(r"\b(nan|NaN)\b|<NA>", text) and text != "None", f"{name}: {text!r}"
            assert not float_dumps(text), f"{name}: {text!r}"
            assert not text.endswith(("…", "...")), f"{name}: a cell cut short: {text!r}"
            if NUMBER.fullmatch(text) and "." in text and "e" not in text:
                assert not text.endswith("0"), f"{name}: trailing zero in {text!r}"


@pytest.mark.parametrize("name", PAGES)
def test_loading_runs_is_said_once_per_cell(pages, name):
    """A page that loads many committed runs says so in one line per cell, not one line per run."""
    for output in pages[name].select(".cell_output .output.stream"):
        said = re.findall(r"^loaded (\d+ )?finished runs?\b", output.get_text(), re.M)
        assert len(said) <= 1, f"{name}: {output.get_text()[:300]}"


@pytest.mark.parametrize("name", PAGES)
def test_no_script_is_declared_twice(pages, name):
    """An inline script twice on a page stops the browser ("Identifier 'THEBE_JS_URL' has already been declared")."""
    bodies = [s.get_text() for s in pages[name].find_all("script") if not s.get("src") and s.get_text().strip()]
    sources = [s["src"] for s in pages[name].find_all("script", src=True)]
    assert len(bodies) == len(set(bodies)) and len(sources) == len(set(sources)), name


@pytest.mark.parametrize("name", PAGES)
def test_no_raw_tex_or_myst_role_in_the_text(pages, name):
    """What a reader sees outside formulas and code has no TeX source (\\text, \\mathcal) and no MyST role
    left unrendered ({ref}, {numref}, {glue:md})."""
    page = BeautifulSoup(str(pages[name].find("main") or pages[name]), "html.parser")
    for tag in page.select("script, style, .math, mjx-container, code, pre, .highlight, .cell_input"):
        tag.decompose()
    text = " ".join(page.get_text(" ").split())
    tex = re.search(r"\\(text|mathcal|mathbb|frac|sigma|varepsilon|operatorname)\b", text)
    role = re.search(r"\{(ref|doc|numref|eq|glue:\w+|cite(:\w+)?)\}", text)
    assert tex is None, f"{name}: raw TeX …{text[max(tex.start() - 60, 0):tex.end() + 40]}…" if tex else ""
    assert role is None, f"{name}: raw MyST role …{text[max(role.start() - 60, 0):role.end() + 40]}…" if role else ""


@pytest.mark.parametrize("sidecar", SIDECARS, ids=[s["label"] for s in SIDECARS])
def test_every_figure_sidecar_holds_what_it_plots(sidecar):
    """A citer can replot a figure from its JSON: every panel's series with labels and values (or, for a
    series too large to copy, its size); figures that are image grids have no panels to list."""
    assert "plotted" in sidecar, f"{sidecar['label']}: no plotted data (republish its page)"
    for panel in sidecar["plotted"]:
        assert panel["series"] and {"xlabel", "ylabel", "title"} <= set(panel)
        for series in panel["series"]:
            assert series["points"] > 0 and ("x" not in series or len(series["x"]) == len(series["y"]) == series.get("kept", series["points"]))


NUMBER_RECORDS = sorted((ROOT / "book" / "numbers").glob("*.json"))
def glued_values(notebook: str) -> dict:
    """What the executed page glued, by name (MyST-NB's record beside the built book)."""
    return json.loads((HTML.parent / "jupyter_execute" / "notebooks" / f"{notebook}.glue.json").read_text())


def notebook_prose(notebook: str) -> str:
    """The Markdown cells of a page's notebook, as written."""
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    return "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


GLUE_RTOL = 1e-8  # a glued number against its published record (see the check below)
GLUE_ROLE = re.compile(r"\{glue:text\}`([A-Za-z_][A-Za-z0-9_]*)(?::([^`]*))?`")


def test_pages_name_where_their_prose_numbers_come_from():
    """The generative and baselines pages declare the table behind the prose numbers they read from one."""
    assert {path.stem for path in NUMBER_RECORDS} >= {"04_generative", "07_baselines"}


@pytest.mark.parametrize("record", NUMBER_RECORDS, ids=[path.stem for path in NUMBER_RECORDS])
def test_a_glued_number_is_what_its_table_says_and_what_the_page_shows(pages, record):
    """Prose ← table: each number a page reads from a table it publishes is, recomputed from results/, the value
    glued into the executed page, and the built page shows it as the prose's role formats it."""
    from myst_nb.core.variables import format_plain_text

    from nine.book.page import Source, check_source

    numbers = json.loads(record.read_text())["numbers"]
    notebook = record.stem
    glued, prose = glued_values(notebook), notebook_prose(notebook)
    roles = {}
    for name, spec in GLUE_ROLE.findall(prose):
        roles.setdefault(name, []).append(spec)
    text = " ".join(pages[f"notebooks/{notebook}.html"].get_text(" ").split())
    for name, entry in numbers.items():
        value = entry.pop("value")
        check_source(name, value, Source(**entry), ROOT / "results")  # the table says it
        plain = glued[name]["data"]["text/plain"]
        # what a page shows is read from committed results (04's FIDs from stored evaluations): the same bits on every
        # CPU; 1e-8 is the ten significant digits the tables keep
        assert float(plain) == pytest.approx(value, rel=GLUE_RTOL), f"{notebook}: {name} glued as {plain}, recorded {value}"
        assert name in roles, f"{notebook}: {name} has a source but no {{glue:text}} role uses it"
        for spec in roles[name]:
            shown = format_plain_text(plain, spec)
            assert shown in text, f"{notebook}: {name} should read {shown!r} on the page"


GLUED_NAME = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z_][A-Za-z0-9_]*)|```\{glue(?::\w+)?\}\s+([A-Za-z_][A-Za-z0-9_]*)")


@pytest.mark.parametrize("notebook", sorted(path.stem for path in (ROOT / "notebooks").glob("*.ipynb")))
def test_every_glued_value_is_shown_by_its_page(notebook):
    """A value glued but never shown is a number the page computes for no reader (and that no check sees)."""
    glued, prose = glued_values(notebook), notebook_prose(notebook)
    shown = {role or figure for role, figure in GLUED_NAME.findall(prose)}
    assert sorted(set(glued) - shown) == [], f"{notebook}: glued but not shown"
