"""Stored evaluations (nine.store.evaluations): computed once, read back exactly, keyed by everything they
follow from, never read stale or damaged; and every committed one is current and recomputes to itself."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from nine.store import evaluations, paths
from nine.store.evaluations import agree, difference, evaluation, recompute, same, stale, stored_records, tolerance
from nine.store.runs import Run

CALLS = []


@evaluation()
def spread_of(run, scale: float, values: tuple) -> dict:
    """A stand-in evaluation: counts its calls; returns floats JSON must keep exactly (and a NaN)."""
    CALLS.append((run.hash if run else None, scale))
    return {"third": scale / 3, "sum": 0.1 + 0.2, "nan": float("nan"), "values": np.asarray(values) * scale,
            "count": np.int64(len(values))}


@pytest.fixture
def stores(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "runs")
    CALLS.clear()
    return tmp_path


def fake_run(folder, files: str) -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"embeddings.npz": files}))
    return Run(folder, None, {}, {})


def test_computed_once_then_read_back_exactly(stores):
    run = fake_run(stores / "results" / "abc123", "digest-1")
    first = spread_of(run, 1.0, (1, 2))
    assert CALLS == [("abc123", 1.0)]
    (stored,) = (stores / "runs" / "evaluations").glob("spread_of-*.json")
    again = spread_of(run, 1.0, (1, 2))
    assert CALLS == [("abc123", 1.0)], "the stored value is read, not computed again"
    assert same(first, again) and again["third"] == 1 / 3 and again["sum"] == 0.1 + 0.2 and math.isnan(again["nan"])
    assert again["values"] == [1.0, 2.0] and again["count"] == 2
    assert list(again) == list(first) == ["third", "sum", "nan", "values", "count"], "keys keep their order"
    record = json.loads(stored.read_text())
    assert record["arguments"]["run"] == {"run": "abc123", "files": record["arguments"]["run"]["files"]}
    assert record["arguments"]["values"] == [1, 2] and "numpy" in " ".join(record["code"])
    # a committed copy is found first: moved into results/, it is read from there
    (stores / "results" / "evaluations").mkdir(parents=True)
    shutil.move(stored, stores / "results" / "evaluations" / stored.name)
    assert same(spread_of(run, 1.0, (1, 2)), first) and len(CALLS) == 1


def test_another_argument_or_retrained_run_is_computed_again(stores):
    run = fake_run(stores / "results" / "abc123", "digest-1")
    spread_of(run, 1.0, (1, 2))
    spread_of(run, 2.0, (1, 2))
    spread_of(run, 1.0, (1, 2, 3))
    assert len(CALLS) == 3
    retrained = fake_run(stores / "runs" / "abc123", "digest-2")  # the same hash, other files
    spread_of(retrained, 1.0, (1, 2))
    assert len(CALLS) == 4 and len(list((stores / "runs" / "evaluations").glob("*.json"))) == 4


def test_a_changed_code_fingerprint_is_another_key_and_reads_stale(stores, monkeypatch):
    run = fake_run(stores / "results" / "abc123", "digest-1")
    spread_of(run, 1.0, (1,))
    (path,) = (stores / "runs" / "evaluations").glob("*.json")
    record = json.loads(path.read_text())
    assert stale(record) == []
    record["code"]["version:numpy"] = "0.0"
    assert stale(record) == ["version:numpy"]
    record["code"][f"{__name__}.spread_of"] = "0" * 16
    assert f"{__name__}.spread_of" in stale(record)


def test_a_damaged_file_is_named_left_alone_and_computed_again(stores, capsys):
    run = fake_run(stores / "results" / "abc123", "digest-1")
    spread_of(run, 1.0, (1,))
    (path,) = (stores / "runs" / "evaluations").glob("*.json")
    committed = stores / "results" / "evaluations" / path.name
    committed.parent.mkdir(parents=True)
    record = json.loads(path.read_text())
    record["value"]["third"] = 0.5  # edited by hand: no longer its digest
    committed.write_text(json.dumps(record))
    path.unlink()
    value = spread_of(run, 1.0, (1,))
    assert value["third"] == 1 / 3 and len(CALLS) == 2
    assert f"evaluation file {committed} is damaged" in capsys.readouterr().err
    assert json.loads(committed.read_text())["value"]["third"] == 0.5, "the damaged file is not touched"
    committed.write_text("{ not json")
    path.unlink()
    spread_of(run, 1.0, (1,))
    assert "cannot be read" in capsys.readouterr().err and len(CALLS) == 3


def test_an_argument_without_a_stored_form_is_refused_in_one_line(stores):
    with pytest.raises(TypeError, match=r"^an evaluation argument of type object has no stored form"):
        spread_of(None, object(), ())


def test_every_committed_evaluation_is_current_and_one_of_each_recomputes_to_itself():
    """Stale files would make the book compute them again (slowly) at every build: publish the page again
    (`make results`) and delete the stale ones (`python -m nine evaluations` names them). A recomputation on
    another CPU class agrees to its tolerance, not bit for bit: the gap is printed, never required to be zero."""
    records = stored_records(paths.RESULTS_DIR / evaluations.FOLDER)
    assert records, "results/evaluations holds no evaluations"
    old = [f"{p.name}: {stale(r)}" for p, r in records if stale(r)]
    assert not old, f"stale evaluations in results/evaluations: {old[:5]}"
    first = {}
    for path, record in records:
        first.setdefault(record["function"], (path, record))
    for path, record in first.values():
        again = recompute(record)
        gap = difference(again, record["value"])
        print(f"{path.name}: {'bit-identical' if gap == 0 else f'largest relative difference {gap:.3g}'}")
        allowed = tolerance(record["function"])
        assert agree(again, record["value"], allowed), f"{path.name} recomputes {gap:.3g} away (allowed {allowed:g})"


def test_agreement_is_relative_and_exact_outside_numbers():
    assert difference({"a": 1.0, "b": [2.0, "x"]}, {"a": 1.0, "b": [2.0, "x"]}) == 0.0
    assert agree({"r2": 0.2302082721251594}, {"r2": 0.23020827212515943})  # the last bit, another CPU class
    assert not same({"r2": 0.2302082721251594}, {"r2": 0.23020827212515943})
    assert not agree({"r2": 0.2302}, {"r2": 0.2303})
    assert difference(1.0, 1.0 + 1e-10) == pytest.approx(1e-10, rel=1e-3)
    for a, b in [({"a": 1}, {"b": 1}), ({"a": 1, "b": 2}, {"b": 2, "a": 1}), ([1.0], [1.0, 2.0]), ("x", "y"),
                 (float("nan"), 1.0), (True, 1.0), (float("inf"), 1e308)]:
        assert difference(a, b) == math.inf, (a, b)
    assert difference(float("nan"), float("nan")) == 0.0


def test_a_damaged_or_foreign_file_is_named_not_a_traceback(tmp_path):
    folder = tmp_path / "evaluations"
    folder.mkdir()
    (folder / "a.json").write_text("[]")
    (folder / "b.json").write_text('{"function": "x"')
    (folder / "c.json").write_text('{"function": "x"}')
    records, damaged = stored_records(folder, damaged=True)
    assert records == [] and [p.name for p, _ in damaged] == ["a.json", "b.json", "c.json"]
    assert all(problem and "\n" not in problem for _, problem in damaged)


def test_adding_a_prior_stales_no_committed_evaluation(tmp_path, monkeypatch):
    """A fourth prior, added as the registry asks (a class in nine/priors.py, registered), changes the module's
    source but none of the code an existing evaluation names: every committed one stays current. The same
    change does stale a record keyed by the whole module (the check can fail)."""
    import sys

    import nine.priors as priors

    source = Path(priors.__file__).read_text() + '''

@register
class Logistic(Prior):
    name, title = "logistic", "Logistic(0, √3/π)ᵈ"
    marginal = stats.logistic(scale=math.sqrt(3) / math.pi)
    channel, level, symbol = "gaussian", "sigma", "σ"
    view = (-4.5, 4.5)
'''
    edited = tmp_path / "priors.py"
    edited.write_text(source)
    records = stored_records(paths.RESULTS_DIR / evaluations.FOLDER)
    evaluations.fingerprint.cache_clear()
    before = evaluations.source_of("nine.priors")
    monkeypatch.setattr(priors, "__file__", str(edited))
    monkeypatch.setitem(priors.PRIORS, "logistic", object())
    evaluations.fingerprint.cache_clear()
    try:
        assert [p.name for p, r in records if stale(r)] == []
        assert evaluations.source_of("nine.priors") != before  # what a whole-module key would have seen
        assert "logistic" in priors.PRIORS and sys.modules["nine.priors"].__file__ == str(edited)
    finally:
        evaluations.fingerprint.cache_clear()
