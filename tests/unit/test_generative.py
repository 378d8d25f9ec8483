"""Generators conditioned on embeddings: configs, mismatched conditions, the store, and the scores."""

import numpy as np
import pytest
import torch

from nine.config import ConfigError
from nine.experiments.classifier import Classifier, consistency, evaluate_images, frechet_distance
from nine.experiments.generative import (
    GenConfig,
    GeneratorMismatch,
    check_conditions,
    generate,
    get_or_train_generator,
    load_generator,
    sample_conditions,
    train_generator,
)
from nine.store import RunError


def test_config_validates_and_keys_differ_by_setting():
    cfg = GenConfig("cgan", "abc", "gaussian", 4)
    assert cfg.key.startswith("cgan-") and cfg.key != GenConfig("cgan", "abc", "gaussian", 4, seed=1).key
    with pytest.raises(ConfigError, match="kind='vae' is not allowed"):
        GenConfig("vae", "abc", "gaussian", 4)
    with pytest.raises(ConfigError, match="prior='cauchy' is not allowed"):
        GenConfig("cgan", "abc", "cauchy", 4)


def test_conditions_of_another_dimension_or_prior_are_refused():
    cfg = GenConfig("decoder", "abc", "uniform", 4)
    check_conditions(cfg, torch.zeros(3, 4), "uniform")
    with pytest.raises(GeneratorMismatch, match=r"conditions of shape \(3, 2\) are not allowed: .* d = 4 .* run abc"):
        check_conditions(cfg, torch.zeros(3, 2))
    with pytest.raises(GeneratorMismatch, match="prior='gaussian' is not allowed: the decoder was trained .* uniform prior"):
        check_conditions(cfg, torch.zeros(3, 4), "gaussian")
    assert sample_conditions("uniform", 100, 4).min() >= 0 and sample_conditions("gaussian", 10, 4).shape == (10, 4)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 2))
    b = rng.standard_normal((20000, 2)) * 2.0 + np.array([1.0, 0.0])
    # ‖μ‖² + tr(I + 4I − 2·2I) = 1 + 2
    assert frechet_distance(a, b) == pytest.approx(3.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("kind", ["cgan", "decoder"])
def test_generators_train_store_and_refuse_a_corrupt_file(kind, tmp_path, monkeypatch):
    torch.manual_seed(0)
    x = (torch.rand(64, 1, 28, 28) > 0.7).float()
    c = torch.randn(64, 3).numpy()
    cfg = GenConfig(kind, "abc", "gaussian", 3, epochs=2, batch_size=16)
    g, metrics = get_or_train_generator(cfg, c, x, tmp_path)
    assert len(metrics["history"]) == 2 and all(np.isfinite(r["loss"]) for r in metrics["history"])
    images = generate(g, cfg, sample_conditions("gaussian", 5, 3))
    assert images.shape == (5, 1, 28, 28) and 0 <= float(images.min()) and float(images.max()) <= 1
    monkeypatch.setenv("NINE_NO_TRAINING", "1")  # a stored generator still loads; a missing one is refused
    with pytest.raises(RunError, match="NINE_NO_TRAINING"):
        get_or_train_generator(GenConfig(kind, "abc", "gaussian", 3, epochs=3, batch_size=16), c, x, tmp_path)
    again, _ = get_or_train_generator(cfg, c, x, tmp_path)  # loaded, not retrained
    assert torch.equal(generate(again, cfg, sample_conditions("gaussian", 5, 3)), images)
    with open(tmp_path / cfg.key / "model.pt", "r+b") as f:
        f.write(b"xx")
    with pytest.raises(RunError, match="model.pt is corrupt"):
        load_generator(tmp_path / cfg.key)
    with pytest.raises(GeneratorMismatch):
        train_generator(cfg, c[:, :2], x)


def test_class_scores_count_what_the_classifier_says():
    model = Classifier().eval()
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.copy_(torch.arange(10.0))  # always class 9
    x = torch.rand(20, 1, 28, 28)
    scores = evaluate_images(model, x, x)
    assert scores["class_shares"][9] == 1.0 and scores["class_tv_to_uniform"] == pytest.approx(0.9)
    assert consistency(model, x, torch.full((20,), 9)) == 1.0 and consistency(model, x, torch.zeros(20, dtype=torch.long)) == 0.0


def test_the_evaluation_classifier_is_stored_like_a_run_and_never_trained_by_the_book(tmp_path, monkeypatch):
    from nine.experiments.classifier import ClassifierConfig, get_or_train_classifier
    from nine.store import paths
    from nine.store.artifacts import MODEL_FILES

    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "runs")
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    cfg = ClassifierConfig("mnist5k", 64, 1, 0)
    assert cfg.key.startswith("classifier-") and cfg.key != ClassifierConfig("mnist5k", 64, 2, 0).key
    monkeypatch.setenv("NINE_NO_TRAINING", "1")
    with pytest.raises(RunError, match=f"evaluation classifier {cfg.key} is not in results/generative"):
        get_or_train_classifier(cfg, x, y)
    monkeypatch.delenv("NINE_NO_TRAINING")
    trained = get_or_train_classifier(cfg, x, y)
    folder = tmp_path / "runs" / "generative" / cfg.key
    assert sorted(p.name for p in folder.iterdir()) == sorted(MODEL_FILES)
    loaded = get_or_train_classifier(cfg, x, y)  # the same weights, read back and verified
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(ValueError, match="n_train=64 is not allowed for 32 train digits"):
        get_or_train_classifier(cfg, x[:32], y[:32])
    (folder / "model.pt").write_bytes(b"corrupt")
    with pytest.raises(RunError, match="model.pt"):
        get_or_train_classifier(cfg, x, y)


def test_two_processes_asking_for_one_generator_train_it_once(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import sys, torch; from nine.experiments.generative import GenConfig, get_or_train_generator;"
            "torch.manual_seed(0); x = (torch.rand(64, 1, 28, 28) > 0.7).float(); c = torch.randn(64, 3).numpy();"
            "cfg = GenConfig('cgan', 'abc', 'gaussian', 3, epochs=60, batch_size=16);"
            "get_or_train_generator(cfg, c, x, sys.argv[1]); print('done', flush=True)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = lambda: subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,  # noqa: E731
                                     stderr=subprocess.STDOUT, text=True, env=env)
    first = start()
    assert "training cgan" in first.stdout.readline()
    second = start()
    out_second = second.communicate(timeout=300)[0]
    out_first = first.communicate(timeout=300)[0]
    assert first.returncode == 0 and second.returncode == 0, out_first + out_second
    assert "waiting for another process" in out_second and "training cgan" not in out_second
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("cgan-")]) == 1 and not list(tmp_path.glob(".partial-*"))
