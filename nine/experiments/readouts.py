"""What a run's embedding tells a downstream reader, by three readouts: a linear probe and 5-NN (in every
run's metrics) and an MLP probe (one hidden layer, :data:`nine.eval.metrics.MLP_PROBE`), computed from the
stored embeddings and kept as an artifact beside the runs (``results/readouts/``), so that the book reads it
instead of refitting it.

A claim about accuracy is stated once per readout: a linear probe can lose what an MLP probe or 5-NN keep
(classes split into sub-clusters are not linearly separable).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from nine.eval.metrics import MLP_PROBE, mlp_probe_accuracy
from nine.store.artifacts import get_or_make
from nine.store.paths import RESULTS_DIR, RUNS_DIR
from nine.store.runs import RUN_FORMAT, read_json_object, write_json

READOUTS = {"probe_acc": "linear probe", "mlp_acc": "MLP probe", "knn_acc": "5-NN"}
FILES = ("readout.json", "manifest.json")


def readout_key(run_hash: str) -> str:
    text = json.dumps({"run": run_hash, "mlp_probe": MLP_PROBE, "nine_version": RUN_FORMAT}, sort_keys=True)
    return "readout-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def mlp_probe(run, store: Path | None = None) -> float:
    """The MLP-probe test accuracy of ``run`` (train embeddings → test embeddings): loaded from
    ``results/readouts`` (or the runs folder, or ``store``), else fitted and stored into ``store``."""
    target = Path(store) if store is not None else RUNS_DIR / "readouts"
    places = tuple(dict.fromkeys((RESULTS_DIR / "readouts", RUNS_DIR / "readouts", target)))

    def make(folder: Path) -> None:
        e = run.embeddings
        accuracy = mlp_probe_accuracy(e["z_train"], e["y_train"], e["z_test"], e["y_test"])
        write_json(folder / "readout.json", {"run": run.hash, "mlp_probe": MLP_PROBE, "mlp_acc": accuracy,
                                             "nine_version": RUN_FORMAT})

    folder, _ = get_or_make(readout_key(run.hash), places, target, FILES, make, "readout")
    return float(read_json_object(folder / "readout.json")["mlp_acc"])


def with_readouts(table, runs: dict, store: Path | None = None):
    """``table`` (one row per run, column ``run``) with the column ``mlp_acc`` beside ``probe_acc`` and ``knn_acc``."""
    return table.assign(mlp_acc=[mlp_probe(runs[r], store) for r in table["run"]])
