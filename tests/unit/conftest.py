import os
import tempfile

# Every test's runs, locks, evaluations and caches go to a folder of this test process, never into the
# repository's runs/ (set before nine is imported: nine.store.paths reads it once). A test that needs its own
# store still sets one; a process it starts inherits this one.
os.environ["NINE_RUNS_DIR"] = tempfile.mkdtemp(prefix="nine-test-runs-")

import pytest  # noqa: E402
import torch  # noqa: E402

from nine.config import make_config  # noqa: E402


@pytest.fixture
def tiny_cfg():
    """A run small enough for unit tests: sklearn's 8×8 digits, a few hundred images, 2 epochs."""
    return make_config("smoke", dataset="digits", n_train=128, n_test=64, batch_size=32, epochs=2, d=2)


# Tests run two at a time on two cores (pytest -n 2): every process they start (a notebook kernel, a sweep
# worker, a submitted job, torchrun) computes on one thread too, unless the caller's environment says otherwise.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
