"""The run store: where runs live, how a run is keyed (its hash), what is recorded beside it
(provenance), loading and training on demand, and recomputing a committed run."""

from nine.store.paths import RESULTS_DIR, RUNS_DIR
from nine.store.runs import Run, RunError, find_run, load_run, resolve_numerics, run_hash
from nine.store.store import announce, execute, get_or_train, get_or_train_all, summarise_code

__all__ = ["RESULTS_DIR", "RUNS_DIR", "Run", "announce", "RunError", "execute", "find_run", "get_or_train", "get_or_train_all",
           "load_run", "resolve_numerics", "run_hash", "summarise_code"]
