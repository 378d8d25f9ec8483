"""A long run saves the runs of its shorter budgets on the way, identical to training them alone."""

import json

import numpy as np
import torch

from nine.config import make_config
from nine.experiments.sweep import run_sweep
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
    monkeypatch.setattr("nine.store.store.RESULTS_DIR", tmp_path / "none")
    monkeypatch.setattr("nine.store.store.RUNS_DIR", tmp_path / "none")
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
    monkeypatch.setattr("nine.store.store.RESULTS_DIR", store)
    monkeypatch.setattr("nine.store.store.RUNS_DIR", tmp_path / "none")
    first = execute(_cfg(2), store)
    before = (first / "manifest.json").read_text()
    run_sweep([_cfg(4)], store, snapshots=(2,))
    assert "bit-identical to this run's after 2 epochs" in capsys.readouterr().out
    assert (first / "manifest.json").read_text() == before
    assert find_run(_cfg(4)) is not None


def test_same_views_differ_from_two_views(tmp_path, monkeypatch):
    monkeypatch.setattr("nine.store.store.RESULTS_DIR", tmp_path / "none")
    monkeypatch.setattr("nine.store.store.RUNS_DIR", tmp_path / "none")
    two = execute(_cfg(2), tmp_path / "a")
    same = execute(_cfg(2).replace(views="same"), tmp_path / "a")
    assert two.name == run_hash(_cfg(2)) != same.name
    assert not _same_weights(two, same)
    # one view through both branches: the held-out InfoNCE is higher (no view disagreement to lose)
    assert load_run(same).metrics["infonce_test"] > load_run(two).metrics["infonce_test"]
