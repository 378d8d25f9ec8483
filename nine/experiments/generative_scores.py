"""The scores of a stored generator (classifier FID, class balance, consistency) and of the evaluation
classifier (test accuracy, the FID floor between two halves of the test digits), computed once and stored
(:mod:`nine.store.evaluations`): the generative page reads them instead of recomputing them at every build, so
it shows the same numbers on every CPU (float32 convolutions and ``scipy.linalg.sqrtm`` round differently on
another CPU class).

A generator or classifier is named by its key and the digest of its files (its ``manifest.json``), so a
retrained one with other weights is scored again, never read stale.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from nine.store.artifacts import MODEL_FILES, find_artifact, model_places, model_weights
from nine.store.evaluations import evaluation
from nine.store.runs import Run, RunError

# the generated images and the classifier's features are float32 convolutions: another CPU class moves the FIDs by
# up to 6e-8 relative (measured: an AMD EPYC with AVX2 against the Xeon with AMX that scored them first)
RTOL = 1e-6
SCORED = ("nine.experiments.classifier", "nine.experiments.generative:Generator",
          "nine.experiments.generative:generate", "nine.experiments.generative:sample_conditions",
          "nine.experiments.generative:conditions_of", "nine.experiments.generative:load_generator",
          "nine.eval.metrics:sample_prior", "nine.eval.support", "nine.data.datasets")


def files_of(key: str) -> str:
    """The digest (16 hex digits) of the files of the stored generator or classifier ``key``."""
    folder = _folder(key)
    return hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()[:16]


def _folder(key: str, files: str | None = None) -> Path:
    folder = find_artifact(key, model_places(None), MODEL_FILES)
    if folder is None:
        raise RunError(f"{key} is in no store (results/generative or the runs folder): train it first")
    if files is not None and hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()[:16] != files:
        raise RunError(f"{key} in {folder.parent} has other files than the ones it was scored with")
    return folder


def _classifier(key: str, files: str):
    from nine.experiments.classifier import Classifier

    model = Classifier()
    model.load_state_dict(model_weights(_folder(key, files)))
    return model.eval()


@evaluation(*SCORED, rtol=RTOL)
def classifier_scores(data: Run, classifier: str, classifier_files: str) -> dict[str, float]:
    """The evaluation classifier's accuracy on the test digits of ``data``'s split, and the classifier FID
    between the two halves of those test digits (the floor a perfect generator would reach)."""
    from nine.data import load_split
    from nine.experiments.classifier import classifier_accuracy, fid_reference

    split, model = load_split(data.config), _classifier(classifier, classifier_files)
    half = len(split.x_test) // 2
    return {"accuracy": classifier_accuracy(model, split.x_test, split.y_test),
            "fid_floor": fid_reference(model, split.x_test[:half], split.x_test[half:])}


@evaluation(*SCORED, rtol=RTOL)
def generator_scores(encoder: Run, data: Run, generator: str, generator_files: str, classifier: str,
                     classifier_files: str, seed: int) -> dict[str, float]:
    """The scores of the stored ``generator`` (conditioned on the embeddings of ``encoder``) against the test
    digits of ``data``'s split: digits generated from as many prior samples (seed ``seed + 1``) and from the test
    digits' own embeddings, the generator's noise of seed ``seed``; classifier FID of each, the class balance of
    the prior-sampled digits (total variation to ten equal shares) and the consistency of the data-conditioned
    ones (the share classified as the digit they were generated from)."""
    from nine.data import load_split
    from nine.experiments.classifier import consistency, evaluate_images
    from nine.experiments.generative import conditions_of, generate, load_generator, sample_conditions

    split, model = load_split(data.config), _classifier(classifier, classifier_files)
    cfg, g, _ = load_generator(_folder(generator, generator_files))
    _, c_test, prior = conditions_of(encoder)
    from_prior = generate(g, cfg, sample_conditions(prior, len(split.x_test), cfg.d, seed=seed + 1), seed=seed)
    from_data = generate(g, cfg, torch.as_tensor(c_test), seed=seed)
    prior_scores, data_scores = evaluate_images(model, from_prior, split.x_test), evaluate_images(model, from_data, split.x_test)
    return {"fid_prior": prior_scores["fid"], "fid_data": data_scores["fid"],
            "class_tv_prior": prior_scores["class_tv_to_uniform"],
            "consistency_data": consistency(model, from_data, split.y_test)}
