"""Checks over the built book in _build/html (run after `jupyter-book build`)."""

from pathlib import Path

import pytest
from bs4 import BeautifulSoup

HTML = Path(__file__).resolve().parents[2] / "_build" / "html"
PAGES = {
    "book/intro.html": [],
    "notebooks/01_theory.html": ["fig-capacity"],
    "notebooks/02_gaussian_matching.html": [
        "fig-gaussian-embedding",
        "fig-gaussian-marginals",
        "fig-gaussian-infonce",
    ],
}


@pytest.fixture(scope="module")
def pages():
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML} has no built book: run `make book` first")
    return {name: BeautifulSoup((HTML / name).read_text(), "html.parser") for name in PAGES}


@pytest.mark.parametrize("name", PAGES)
def test_every_figure_has_an_image(pages, name):
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
def test_no_stderr_or_error_output(pages, name):
    assert not pages[name].select(".stderr, .output.error, .traceback"), f"{name} shows stderr or an error"


def test_citations_render(pages):
    intro = pages["book/intro.html"]
    assert "Butakov" in intro.get_text() and "Hjelm" in intro.get_text()
    assert not intro.find_all(string=lambda s: "{cite" in s)


def test_glued_numbers_are_rendered(pages):
    text = pages["notebooks/02_gaussian_matching.html"].get_text()
    assert "Mean KS statistic:" in text and "{glue" not in text
