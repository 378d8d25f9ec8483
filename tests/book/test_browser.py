"""The built book in a real browser: headless Chromium lays out every page at 1400 px and at a phone's
390 px, and the checks read what it measured (page overflow, display formulas that do not fit, script
errors in the console). Chromium is not a dependency of the package: where none is on PATH these
checks are skipped with that reason (``apt-get install chromium`` provides it), except under CI (``CI=true``,
set by ``.ci/run``, which installs it), where a missing Chromium fails them instead."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
WIDTHS = (1400, 390)
PNG = Path(__file__).resolve().parents[2] / "book" / "figures" / "gaussian-embedding.png"  # drawn wider than 50 px
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not IN_CI, reason="no Chromium on PATH (apt-get install chromium)")


@pytest.fixture(autouse=True)
def chromium_present():
    assert CHROMIUM is not None, "CI=true but no Chromium on PATH: .ci/run installs Debian's chromium"

# Loaded in one host page, each book page in an iframe of the width measured; after the page's scripts
# (MathJax) have run, the host writes what it measured into its own DOM, which Chromium dumps.
HOST = """<!doctype html><html><body><pre id="out">pending</pre><script>
const frames = FRAMES, results = [];
let pending = frames.length;
function measure(frame, page, width) {
  const doc = frame.contentDocument, win = frame.contentWindow, root = doc.documentElement;
  const formulas = [...doc.querySelectorAll('mjx-container[display="true"]')].map(m => ({
    text: m.textContent.slice(0, 80),
    wider: m.scrollWidth > m.clientWidth + 1 || m.getBoundingClientRect().right > root.clientWidth + 1,
    scrolls: ['auto', 'scroll'].includes(getComputedStyle(m).overflowX)}));
  const verdicts = [...doc.querySelectorAll('td.claim-status')];
  // result boxes that scroll sideways (a wide table) without showing it: a hidden scrollbar, or no shadow on
  // the side where more columns wait (overlay scrollbars, as on phones and macOS, show nothing until touched)
  const hiddenScrollers = [...doc.querySelectorAll('main .output, main table')].filter(el => {
    const style = getComputedStyle(el);
    if (!['auto', 'scroll'].includes(style.overflowX) || el.scrollWidth <= el.clientWidth + 1) return false;
    const shadow = style.backgroundImage.includes('gradient') && style.backgroundAttachment.includes('local');
    return style.scrollbarWidth === 'none' || !shadow;
  }).map(el => (el.className || el.tagName) + ': ' + el.textContent.trim().slice(0, 60));
  // boxes that scroll sideways with no line above them saying so (_static/nine.js), the outermost only
  const SCROLLERS = 'main .cell_output .output, main table.nine-table, main table.claims-glance, main table.table, main mjx-container[display="true"]';
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth + 1;
  const unhinted = [...doc.querySelectorAll(SCROLLERS)].filter(el => scrolls(el)
    && !(el.parentElement && el.parentElement.closest(SCROLLERS) && scrolls(el.parentElement.closest(SCROLLERS)))
    && !(el.previousElementSibling && el.previousElementSibling.classList.contains('scroll-hint')
         && el.previousElementSibling.getBoundingClientRect().height > 0))
    .map(el => (el.className || el.tagName) + ': ' + el.textContent.trim().slice(0, 60));
  // figure images shown narrower than they are drawn that are not a link to themselves (full resolution)
  const shrunkUnlinked = [...doc.querySelectorAll('main figure img')].filter(img =>
    img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width < img.naturalWidth - 1
    && !(img.closest('a') && img.closest('a').href === img.src)).map(img => img.src.split('/').pop());
  results.push({page, width, scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, formulas,
                verdicts: verdicts.length, hiddenScrollers, shrunkUnlinked, unhinted,
                hints: doc.querySelectorAll('p.scroll-hint').length,
                verdictsOffScreen: verdicts.filter(td => td.getBoundingClientRect().right > root.clientWidth + 1).length});
  if (--pending === 0) document.getElementById('out').textContent = JSON.stringify(results);
}
for (const [page, width] of frames) {
  const f = document.createElement('iframe');
  f.style.width = width + 'px'; f.style.height = '900px';
  f.onload = () => setTimeout(() => measure(f, page, width), 3000);
  f.src = page; document.body.appendChild(f);
}
</script></body></html>"""


def lay_out(pages: list[Path], folder: Path) -> tuple[list[dict], list[str]]:
    """Every page at every width of WIDTHS in headless Chromium: the measurements, and the console lines
    that report a script error."""
    frames = [[page.as_uri(), width] for page in pages for width in WIDTHS]
    host = folder / "host.html"
    host.write_text(HOST.replace("FRAMES", json.dumps(frames)))
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
         "--virtual-time-budget=60000", "--enable-logging=stderr", "--v=0", "--window-size=1600,1000",
         "--dump-dom", host.as_uri()], capture_output=True, text=True, timeout=300)
    found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1) != "pending", f"Chromium measured nothing (exit {done.returncode})"
    results = json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    errors = [line for line in done.stderr.splitlines() if ":CONSOLE" in line and re.search(r"Uncaught|Error\b", line)]
    return results, errors


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML} has no built book: run `make book` first")
    pages = sorted(HTML.glob("book/*.html")) + sorted(HTML.glob("notebooks/*.html"))
    results, errors = lay_out(pages, tmp_path_factory.mktemp("browser"))
    assert len(results) == len(pages) * len(WIDTHS) and len(pages) >= 12
    for width in WIDTHS:  # MathJax ran: the theory page's display formulas exist at both widths
        assert any(r["formulas"] for r in results if r["width"] == width and r["page"].endswith("01_theory.html"))
    return results, errors


def overflowing(results: list[dict], width: int) -> list[str]:
    return [f"{r['page']}: {r['scrollWidth']} px wide in {r['clientWidth']}" for r in results
            if r["width"] == width and r["scrollWidth"] > r["clientWidth"] + 1]


def cut_formulas(results: list[dict], width: int, may_scroll: bool) -> list[str]:
    return [f"{r['page']}: {f['text']}" for r in results if r["width"] == width for f in r["formulas"]
            if f["wider"] and not (may_scroll and f["scrolls"])]


def test_no_page_is_wider_than_the_screen(layout):
    results, _ = layout
    for width in WIDTHS:
        assert overflowing(results, width) == [], f"pages overflowing {width} px"


def test_every_display_formula_fits_the_column_at_1400_px(layout):
    assert cut_formulas(layout[0], 1400, may_scroll=False) == []


def test_a_display_formula_wider_than_a_phone_scrolls_in_its_own_box(layout):
    assert cut_formulas(layout[0], 390, may_scroll=True) == []


def test_every_claim_s_verdict_is_on_screen_on_a_phone(layout):
    """A claims table on a phone reads as cards (one cell a line), so no verdict lies beyond the right edge."""
    results = layout[0]
    assert any(r["verdicts"] for r in results if r["page"].endswith("claims.html"))
    assert [(r["page"], r["verdictsOffScreen"]) for r in results if r["width"] == 390 and r["verdictsOffScreen"]] == []


def hidden_scrollers(results: list[dict]) -> list[str]:
    return [f"{r['page']} at {r['width']} px: {box}" for r in results for box in r["hiddenScrollers"]]


def test_a_box_that_scrolls_sideways_shows_that_it_does(layout):
    """A wide table scrolls inside its cell; the reader must see that it does: a scrollbar that is not hidden,
    and a shadow on the side where more columns wait (``_static/nine.css``)."""
    assert hidden_scrollers(layout[0]) == []


def unhinted(results: list[dict]) -> list[str]:
    return [f"{r['page']} at {r['width']} px: {box}" for r in results for box in r["unhinted"]]


def test_a_box_that_scrolls_sideways_says_so_above_it(layout):
    """A shadow at the edge is easy to miss: a line above a wide table ("→ 4 more columns to the right: scroll
    the table sideways") or formula says that it scrolls (``_static/nine.js``); the tables of the matching
    pages' noise sweeps are wider than a phone."""
    assert unhinted(layout[0]) == []
    assert any(r["hints"] for r in layout[0] if r["width"] == 390 and r["page"].endswith("02_gaussian_matching.html"))


def shrunk_unlinked(results: list[dict]) -> list[str]:
    return [f"{r['page']} at {r['width']} px: {name}" for r in results for name in r["shrunkUnlinked"]]


def test_a_figure_shown_smaller_than_drawn_opens_at_full_resolution(layout):
    """On a phone a figure of several panels is about 340 px wide; its image links to itself (_static/nine.js)."""
    assert any(r["width"] == 390 and r["page"].endswith("02_gaussian_matching.html") for r in layout[0])
    assert shrunk_unlinked(layout[0]) == []


def test_no_script_error_in_the_console(layout):
    assert layout[1] == []


def test_the_checks_see_the_defects_they_guard_against(tmp_path):
    """A page that overflows, a formula that is cut and a script error are each reported."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!doctype html><html><body><div style="width:900px">wide</div>'
                   '<mjx-container display="true" style="display:block;width:100px;overflow:hidden">'
                   '<span style="display:inline-block;width:500px">x = y</span></mjx-container>'
                   f'<main><figure><img src="{PNG.as_uri()}" style="width:50px"></figure>'
                   '<div class="cell_output"><div class="output" style="overflow-x:auto;width:200px">'
                   '<table><tr><td style="white-space:nowrap">a table far wider than its box, cut</td></tr></table></div></div></main>'
                   "<script>let A = 1;</script><script>let A = 2;</script></body></html>")
    results, errors = lay_out([bad], tmp_path)
    assert overflowing(results, 390) and cut_formulas(results, 390, may_scroll=True)
    assert any("far wider" in line for line in hidden_scrollers(results))
    assert any("far wider" in line for line in unhinted(results))
    assert any("already been declared" in line for line in errors)
    assert any("gaussian-embedding.png" in line for line in shrunk_unlinked(results))
