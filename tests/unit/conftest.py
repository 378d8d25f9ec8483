import os

import pytest
import torch

from nine.config import make_config


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
