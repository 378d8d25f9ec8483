"""A fair budget of tuning for the adversarial baseline of the baselines page.

Deep InfoMax's prior term as first implemented (a discriminator on the raw encoder output, one
optimiser, no regularisation) matched its prior far worse than NINE. The literature's usual remedies
are tried at seed 0, for both priors, at d = 2 (to look at) and again at d = 16, where the page compares:
the encoder output normalised as NINE normalises it (so the adversary has only the shape left to match),
the R1 gradient penalty (Mescheder et al., 2018), and a faster discriminator (two time-scale updates,
Heusel et al., 2017). The best setting per prior at d = 16, chosen on the *train* embeddings (kNN KL to the
prior), is then trained on the seeds of the page and compared with NINE on the test digits: a setting
chosen at d = 2 need not be the best one at d = 16, and the comparison is with the best one.
"""

from __future__ import annotations

from nine.config import RunConfig, make_config

FIELDS = ("adv_head", "adv_gp", "adv_lr_ratio")
# The untuned baseline, then a four-times faster discriminator (TTUR) with and without the R1 penalty,
# on the squashed and on the normalised output.
SETTINGS = [("squash", 0.0, 1.0)] + [(head, gp, 4.0) for head in ("squash", "normalise") for gp in (0.0, 10.0)]
PRIORS = ("gaussian", "uniform")


def tuning_configs(prior: str, profile: str = "cpu", d: int = 2, seed: int = 0, **overrides) -> list[RunConfig]:
    """Every setting of :data:`SETTINGS` for ``prior`` (weight 1), the untuned one first (the smoke
    profile: the untuned and the last one)."""
    settings = SETTINGS if profile != "smoke" else [SETTINGS[0], SETTINGS[-1]]
    return [make_config(profile, head="adversarial", prior=prior, d=d, seed=seed, **dict(zip(FIELDS, values)), **overrides)
            for values in settings]


def setting(cfg: RunConfig) -> dict[str, object]:
    """The tuned fields of a run's config."""
    return {field: getattr(cfg, field) for field in FIELDS}


def selection_score(run) -> float:
    """What a setting is chosen by: the kNN KL of the run's *train* embeddings (standardised as the
    matching pages standardise every method) to as many samples of its prior; the test digits are
    left for the comparison."""
    from nine.eval.metrics import kl_knn, sample_prior
    from nine.eval.support import on_prior_support

    z = on_prior_support(run, run.config.prior)["z_train"]
    return kl_knn(z, sample_prior(run.config.prior, len(z), z.shape[1], seed=7))


def best_setting(prior: str, profile: str = "cpu", d: int = 2, **overrides) -> tuple[dict[str, object], list]:
    """The tuned fields of the setting with the lowest :func:`selection_score` at d, and every tuning run
    with its score (runs that are not trained yet raise :class:`nine.store.RunError` on loading)."""
    from nine.store import get_or_train_all

    configs = tuning_configs(prior, profile, d=d, **overrides)
    scored = [(selection_score(run), run) for run in get_or_train_all(configs, say_loaded=False)]
    best = min(scored, key=lambda pair: pair[0])[1]
    return setting(best.config), scored


def final_configs(prior: str, seeds, profile: str = "cpu", d: int = 16, **overrides) -> list[RunConfig]:
    """The setting of ``prior`` that is best at d (tuned at d itself), at the baselines page's seeds."""
    chosen, _ = best_setting(prior, profile, d=d, **overrides)
    return [make_config(profile, head="adversarial", prior=prior, d=d, seed=seed, **chosen, **overrides) for seed in seeds]


def train_all(profile: str = "cpu", store=None, workers: int = 1, seeds=(0, 1, 2), **overrides) -> None:
    """Train every missing tuning run (both priors, d = 2 and 16), then the best setting of each at d = 16."""
    from nine.experiments.runner import run_sweep

    for d in (2, 16):
        run_sweep([cfg for prior in PRIORS for cfg in tuning_configs(prior, profile, d=d, **overrides)], store, workers)
    run_sweep([cfg for prior in PRIORS for cfg in final_configs(prior, seeds, profile, **overrides)], store, workers)
