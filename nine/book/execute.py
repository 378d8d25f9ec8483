"""Execute the book's pages in parallel into the cache the book build reads (``make book``'s first step).

Jupyter Book (``execute_notebooks: cache``) executes the pages one after another; on two cores that leaves
one idle for most of the build. This runs the same pages, read the way the build reads them (the MyST
reader of myst-nb for the ``.md`` pages), through jupyter-cache's parallel executor into the build's cache,
``_build/.jupyter_cache``; the build then finds every page there and executes nothing. A page already
cached with its current code is not run again, as in the build itself.

    python -m nine.book.execute [--serial]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import yaml

from nine.store.paths import ROOT

CACHE = Path("_build") / ".jupyter_cache"  # jupyter-book's default execution cache, under the book's root
TIMEOUT_S = 1800  # _config.yml's execute.timeout
MYST_READER = {"name": "myst_nb_md", "type": "plugin"}  # how myst-nb reads (and caches) a MyST notebook


def pages(root: Path = ROOT) -> list[Path]:
    """The pages of ``_toc.yml`` the build takes from the cache: every ``.ipynb``, and each ``.md`` with a
    kernelspec unless its front matter has the build execute it anyway (``execution_mode: force``: pages
    computed from files the cache cannot see, such as the claims ledger)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    names = [toc["root"], *(entry["file"] for entry in toc.get("chapters", []))]
    found = []
    for name in names:
        notebook, markdown = root / f"{name}.ipynb", root / f"{name}.md"
        if notebook.is_file():
            found.append(notebook)
        elif markdown.is_file():
            front = markdown.read_text().split("\n---", 1)[0]
            if "\nkernelspec:" in front and "execution_mode: force" not in front:
                found.append(markdown)
    return found


def execute_pages(root: Path = ROOT, serial: bool = False) -> int:
    """Execute every page missing from the cache, one per CPU core at a time (``serial``: one at a time).
    A page that fails in parallel is run once more on its own. Returns the number of pages that failed
    (each named on stderr with its traceback)."""
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    cache = get_cache(str(root / CACHE))
    for page in pages(root):
        if page.suffix == ".md":
            cache.add_nb_to_project(str(page), read_data=MYST_READER)
        else:
            cache.add_nb_to_project(str(page))
    logger = logging.getLogger("nine.book.execute")
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler(sys.stdout))
    logger.setLevel(logging.INFO)
    executor = load_executor("local-serial" if serial else "local-parallel", cache=cache, logger=logger)
    started = time.perf_counter()
    result = executor.run_and_cache(timeout=TIMEOUT_S, allow_errors=False)
    succeeded, failed = list(result.succeeded), [*result.errored, *result.excepted]
    if failed and not serial:  # once more, alone: kernels started side by side can collide on a port
        again = load_executor("local-serial", cache=cache, logger=logger).run_and_cache(
            filter_uris=failed, timeout=TIMEOUT_S, allow_errors=False)
        succeeded, failed = succeeded + list(again.succeeded), [*again.errored, *again.excepted]
    for uri in failed:
        record = cache.get_project_record(uri)
        print(f"page {Path(uri).relative_to(root)} failed:\n{record.traceback or 'no traceback recorded'}", file=sys.stderr)
    print(f"{len(succeeded)} page(s) executed into {CACHE} in {time.perf_counter() - started:.0f} s"
          f"{f'; {len(failed)} failed' if failed else ''}")
    return len(failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serial", action="store_true", help="one page at a time (default: one per CPU core)")
    args = parser.parse_args(argv)
    return 1 if execute_pages(serial=args.serial) else 0


if __name__ == "__main__":
    sys.exit(main())
