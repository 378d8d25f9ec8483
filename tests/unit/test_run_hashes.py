"""Every committed run and generator keeps its hash across releases: the hash covers the run format,
not the package version."""

import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

import nine
from nine.config import config_from_dict, make_config
from nine.experiments.classifier import ClassifierConfig
from nine.experiments.generative import GenConfig
from nine.store.paths import RESULTS_DIR
from nine.store.runs import RUN_FORMAT, read_config, run_hash

RUNS = sorted(p.parent for p in Path(RESULTS_DIR).glob("*/config.json") if re.fullmatch("[0-9a-f]{12}", p.parent.name))
STORED = sorted(p.parent for p in (Path(RESULTS_DIR) / "generative").glob("*/config.json") if not p.parent.name.startswith("."))


def test_there_are_committed_runs_to_check():
    assert len(RUNS) > 250 and len(STORED) > 10


def test_every_committed_run_hashes_to_its_folder():
    wrong = [p.name for p in RUNS if run_hash(config_from_dict(read_config(p))) != p.name]
    assert wrong == []


def test_every_committed_generator_and_classifier_hashes_to_its_folder():
    wrong = []
    for p in STORED:
        fields = json.loads((p / "config.json").read_text())
        cfg = ClassifierConfig(**fields) if p.name.startswith("classifier-") else GenConfig(**fields)
        wrong += [p.name] if cfg.key != p.name else []
    assert wrong == []


def test_a_release_does_not_change_a_hash(monkeypatch):
    cfg = make_config("cpu", d=16, sigma=0.5)
    gen = GenConfig(**json.loads((STORED[0] / "config.json").read_text())) if STORED else None
    before = run_hash(cfg), gen.key if gen else None
    monkeypatch.setattr(nine, "__version__", "9.9.9")
    assert (run_hash(cfg), gen.key if gen else None) == before
    assert nine.__version__ != RUN_FORMAT


def test_the_run_format_changes_every_hash(monkeypatch):
    cfg = make_config("cpu", d=16, sigma=0.5)
    before = run_hash(cfg)
    monkeypatch.setattr("nine.store.runs.RUN_FORMAT", "2")
    assert run_hash(cfg) != before


@pytest.mark.parametrize("field", ["sigma", "epochs", "seed", "continues"])
def test_every_computing_field_changes_the_hash(field):
    cfg = make_config("cpu", d=16)
    other = {"sigma": 0.31, "epochs": 61, "seed": 1, "continues": "0" * 12}[field]
    assert run_hash(cfg.replace(**{field: other})) != run_hash(cfg)
    assert asdict(cfg) != asdict(cfg.replace(**{field: other}))
