"""A long run saves the runs of its shorter budgets on the way, identical to training them alone."""

import json

import numpy as np
import torch

from nine.config import make_config
from nine.experiments.runner import run_sweep
from nine.store import execute, find_run, load_run, run_hash


def _cfg(epochs):
    return make_config("smoke", dataset="digits", n_train=128, n_test=64, batch_size=32, epochs=epochs, d=2,
                       checkpoint_every=2)


def _same_weights(a, b):
    sa = torch.load(a / "model.pt", weights_only=True)
    sb = torch.load(b / "model.pt", weights_only=True)
    return all(torch.equal(sa[part][k], sb[part][k]) for part in ("encoder", "critic") for k in sa[part])


def test_snapshot_is_the_run_trained_for_that_long(tmp_path, monkeypatch):
    alone, long = tmp_path / "alone", tmp_path / "long"
    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path / "none")
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "none")
    reference = execute(_cfg(3), alone)
    final = execute(_cfg(5), long, snapshots=(3, 5))
    snapshot = long / run_hash(_cfg(3))
    assert snapshot.is_dir() and final.name == run_hash(_cfg(5))
    assert _same_weights(reference, snapshot)
    assert not _same_weights(snapshot, final)  # training went on after the snapshot
    ref, snap = load_run(reference), load_run(snapshot)
    assert json.dumps(ref.metrics, sort_keys=True) == json.dumps(snap.metrics, sort_keys=True)
    untimed = lambda log: [{k: v for k, v in r.items() if k not in ("samples_per_s", "elapsed_s")} for r in log]  # noqa: E731
    assert untimed(ref.log) == untimed(snap.log)
    assert len(load_run(final).log) == 5 and len(snap.log) == 3
    for k in ("z_train", "z_test", "z_test_view"):
        np.testing.assert_array_equal(ref.embeddings[k], snap.embeddings[k])
    # the long run itself is unchanged by the snapshots it saved
    plain = execute(_cfg(5), tmp_path / "plain")
    assert _same_weights(plain, final)


def test_existing_snapshot_is_compared_not_rewritten(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", store)
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "none")
    first = execute(_cfg(2), store)
    before = (first / "manifest.json").read_text()
    run_sweep([_cfg(4)], store, snapshots=(2,))
    assert "bit-identical to this run's after 2 epochs" in capsys.readouterr().out
    assert (first / "manifest.json").read_text() == before
    assert find_run(_cfg(4)) is not None


def test_same_views_differ_from_two_views(tmp_path, monkeypatch):
    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path / "none")
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "none")
    two = execute(_cfg(2), tmp_path / "a")
    same = execute(_cfg(2).replace(views="same"), tmp_path / "a")
    assert two.name == run_hash(_cfg(2)) != same.name
    assert not _same_weights(two, same)
    # one view through both branches: the held-out InfoNCE is higher (no view disagreement to lose)
    assert load_run(same).metrics["infonce_test"] > load_run(two).metrics["infonce_test"]


def test_continued_run_starts_from_the_shorter_run(tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", store)
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "none")
    short = load_run(execute(_cfg(2), store))
    cont = _cfg(4).replace(continues=short.hash, numerics="channels_last")
    final = load_run(execute(cont, store, snapshots=(3,)))
    assert [r["epoch"] for r in final.log] == [1, 2, 3, 4]
    assert final.log[:2] == short.log  # the parent's log, then the new epochs
    assert not _same_weights(short.path, final.path)
    on_the_way = load_run(find_run(cont.replace(epochs=3)))
    assert [r["epoch"] for r in on_the_way.log] == [1, 2, 3]
    # trained again elsewhere, the continuation gives the same weights (it is deterministic)
    again = tmp_path / "again"
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", again)
    assert _same_weights(execute(cont, again), final.path)


def test_continuation_must_continue_a_shorter_run_of_its_config(tmp_path, monkeypatch):
    import pytest

    from nine.store import RunError
    from nine.store.store import continued_from

    store = tmp_path / "store"
    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", store)
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "none")
    short = load_run(execute(_cfg(2), store))
    with pytest.raises(RunError, match="differs in sigma"):
        continued_from(_cfg(4).replace(sigma=0.7, continues=short.hash))
    with pytest.raises(RunError, match="differs in epochs"):
        continued_from(_cfg(2).replace(continues=short.hash))
    with pytest.raises(RunError, match="no finished run with that hash"):
        continued_from(_cfg(4).replace(continues="0" * 12))
    with pytest.raises(ValueError, match="continues='xyz' is not allowed"):
        _cfg(4).replace(continues="xyz")


def test_a_snapshot_finished_meanwhile_by_another_process_is_kept(tmp_path, monkeypatch, capsys):
    """Two pages train at once: a sweep finishes the 3-epoch run while a long run is about to save it as its
    snapshot (after the long run looked for it). The long run goes on; the finished run is not touched."""
    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path / "none")
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "none")
    store = tmp_path / "runs"
    other = execute(_cfg(3), store)  # the other process's run, finished
    before = {p.name: p.stat().st_mtime_ns for p in other.iterdir()}
    monkeypatch.setattr("nine.store.store.find_run", lambda cfg, *args, **kwargs: None)  # it looked before that
    final = execute(_cfg(5), store, snapshots=(3, 5))
    assert final.name == run_hash(_cfg(5)) and load_run(final).metrics
    assert {p.name: p.stat().st_mtime_ns for p in other.iterdir()} == before
    assert "finished meanwhile by another process; kept" in capsys.readouterr().out
    assert not list(store.glob(".partial-*"))
