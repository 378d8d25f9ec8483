"""The book's numbers on another CPU class (``make other-cpu``, a stage of ``make test``): OpenBLAS, ATen and
oneDNN are told to use older kernels (``OPENBLAS_CORETYPE=Sandybridge ATEN_CPU_CAPABILITY=default
ONEDNN_MAX_CPU_ISA=AVX2``), which sum in another order than the kernels of the machine that made the committed
numbers. A page executed in that class (04, whose classifier FIDs rest on float32 convolutions and are read from
stored evaluations) must show what the book publishes, within the tolerance of the book's checks, and the
bit-identity is reported, never required. The stage executes 04 in that class into ``$NINE_OTHER_CPU_PAGES``
first; the stored evaluations themselves are recomputed in that class by tests/unit/test_evaluations.py."""

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = Path(os.environ.get("NINE_OTHER_CPU_PAGES", ROOT / "_build" / "other-cpu"))
GLUE_RTOL = 1e-8  # as tests/book/test_html.py holds a glued number to its published record


def glued(notebook: Path) -> dict[str, float]:
    """The numbers an executed notebook glued (MyST-NB's ``glue`` marks its display data with the name and
    prefixes its MIME types)."""
    values = {}
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook", {})
            name = record.get("name")
            text = output.get("data", {}).get(record.get("mime_prefix", "") + "text/plain")
            if name and text is not None:
                try:
                    values[name] = float("".join(text))
                except ValueError:
                    continue
    return values


@pytest.mark.parametrize("record", sorted((ROOT / "book" / "numbers").glob("*.json")), ids=lambda p: p.stem)
def test_a_sourced_number_recomputed_in_another_class_is_the_published_one(record):
    executed = PAGES / f"{record.stem}.ipynb"
    if not executed.is_file():
        pytest.skip(f"{record.stem} is not executed in the other class (the stage executes the pages that compute "
                    "their sourced numbers at build time)")
    numbers = json.loads(record.read_text())["numbers"]
    values = glued(executed)
    assert set(numbers) <= set(values), f"{record.stem}: not glued in the other class: {set(numbers) - set(values)}"
    for name, entry in numbers.items():
        gap = abs(values[name] - entry["value"]) / max(abs(entry["value"]), 1e-300)
        print(f"{record.stem}: {name} {'bit-identical' if gap == 0 else f'relative difference {gap:.2g}'}")
        assert gap <= GLUE_RTOL, f"{record.stem}: {name} = {values[name]!r} in the other class, published {entry['value']!r}"


def test_the_stage_executed_a_page_in_the_other_class():
    assert (PAGES / "04_generative.ipynb").is_file(), f"no executed page in {PAGES}: run `make other-cpu`"
    assert os.environ.get("ONEDNN_MAX_CPU_ISA") and os.environ.get("OPENBLAS_CORETYPE"), "not run in another class"
