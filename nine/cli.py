"""Command line.

    python -m nine train --profile cpu --sigma 0.5 --d 2 [--store results] [--retrain] [--no-resume]
    python -m nine reproduce [RUN_DIR] [--store DIR]   (default: the cheapest run in results/)
    python -m nine sweep gaussian uniform --profile cpu --store results --workers 2
    python -m nine budget --profile cpu --store results --workers 2   (the budget study's runs)
    python -m nine budget --continued --store results   (its long runs continued to 2,000 epochs)
    python -m nine rerun NOTEBOOK [-p NAME VALUE ...]   (executed notebook and figures in runs/NOTEBOOK-<hash>/)
    python -m nine gallery                               (rewrite book/figures.md from the figure sidecars)
    python -m nine downloads                             (executed notebooks behind the book's download buttons)
    python -m nine evaluations [--check]                 (the stored evaluations of results/; --check recomputes them)
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from nine.config import FIELDS, PROFILES, NineError, check_choice, first_line, make_config, parse_field, parse_value


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {' '.join(message.split())} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m nine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train (or load) one run and print its metrics")
    train.add_argument("--profile", default="cpu", choices=list(PROFILES))
    train.add_argument("--store", default=None, help="directory for a new run (default: runs/)")
    train.add_argument("--retrain", action="store_true", help="train afresh even if a finished run exists")
    train.add_argument("--no-resume", dest="resume", action="store_false", help="ignore a partial run's checkpoint")
    for name in FIELDS:
        if name != "profile":
            train.add_argument(f"--{name}", type=functools.partial(parse_field, name), default=argparse.SUPPRESS,
                               help="see nine.config.RunConfig")
    again = commands.add_parser("reproduce", help="retrain a committed run from scratch (a continued run: continue "
                                "the committed run it continues) and compare every metric")
    again.add_argument("run", nargs="?", default=None, help="run directory (default: cheapest in results/)")
    again.add_argument("--store", default="_build/reproduce", help="where the recomputed run goes")
    sweep = commands.add_parser("sweep", help="train every missing run of the matching notebooks' noise sweeps")
    sweep.add_argument("priors", nargs="+", help="gaussian, uniform and/or laplace (seed 0 of all of them first)")
    sweep.add_argument("--profile", default="cpu", choices=list(PROFILES))
    sweep.add_argument("--store", default=None, help="directory for new runs (default: runs/)")
    sweep.add_argument("--workers", type=int, default=1, help="runs trained at once, one thread each")
    _job_options(sweep)
    budget = commands.add_parser("budget", help="train every missing run of the budget study (d = 16)")
    budget.add_argument("--profile", default="cpu", choices=list(PROFILES))
    budget.add_argument("--store", default=None, help="directory for new runs (default: runs/)")
    budget.add_argument("--workers", type=int, default=1, help="runs trained at once, one thread each")
    _job_options(budget)
    budget.add_argument("--continued", action="store_true",
                        help="continue the finished long runs to 2,000 epochs (the registered prediction)")
    calibrate = commands.add_parser("calibrate", help="simulate the matching pages' decision rules (size, power, nulls)")
    calibrate.add_argument("priors", nargs="+", help="gaussian and/or uniform")
    calibrate.add_argument("--profile", default="cpu", choices=list(PROFILES))
    calibrate.add_argument("--store", default=None, help="directory for new simulations (default: runs/simulations)")
    again = commands.add_parser("rerun", help="execute a notebook with new parameters into its own folder")
    again.add_argument("notebook", help="e.g. 02_gaussian_matching")
    again.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    commands.add_parser("gallery", help="rewrite book/figures.md from the sidecars in book/figures/")
    commands.add_parser("downloads", help="serve the executed notebooks behind the built book's download buttons")
    evaluations = commands.add_parser("evaluations", help="list the evaluations stored in results/evaluations")
    evaluations.add_argument("--check", action="store_true", help="recompute each from its runs and compare")
    return parser


def _job_options(command: argparse.ArgumentParser) -> None:
    """--executor and its options (:mod:`nine.experiments.jobs`)."""
    from nine.experiments.jobs import EXECUTORS

    command.add_argument("--executor", default="pool", choices=EXECUTORS,
                         help="pool: processes here; local / slurm: one submitit job per run")
    command.add_argument("--slurm-partition", default=None, help="the SLURM partition (--executor slurm)")
    command.add_argument("--gpus-per-job", type=int, default=0,
                         help="GPUs each job asks for, 0 to 64 (--executor local or slurm)")
    command.add_argument("--dry-run", action="store_true",
                         help="print the job script and submit nothing (--executor slurm)")


def _jobs(args: dict) -> dict:
    """The executor options of the command line as :func:`nine.experiments.runner.run_sweep` takes them."""
    if args["executor"] == "pool":
        if args["dry_run"] or args["slurm_partition"] is not None or args["gpus_per_job"]:
            raise NineError("--dry-run, --slurm-partition and --gpus-per-job are not allowed with --executor pool: "
                            "they are options of --executor slurm (--gpus-per-job also of --executor local)")
        return {}
    from nine.experiments.jobs import check_job_options

    check_job_options(args["executor"], args["slurm_partition"], args["gpus_per_job"], args["dry_run"])
    return {"executor": args["executor"], "partition": args["slurm_partition"], "gpus_per_job": args["gpus_per_job"],
            "dry_run": args["dry_run"]}


def _rerun(notebook: str, pairs: list[list[str]]) -> int:
    from papermill.exceptions import PapermillExecutionError

    from nine.book.rerun import rerun, rerun_folder

    parameters = {name: parse_value(value) for name, value in pairs}
    try:
        folder = rerun(notebook, parameters)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except PapermillExecutionError as err:
        if err.ename in user_errors():  # a value the notebook's own validation refused: nothing was trained
            print(f"{err.ename}: {' '.join(str(err.evalue).split())}", file=sys.stderr)
            return 2
        print(f"error: {notebook} stopped at cell {err.exec_count}: {err.ename}: {err.evalue} (the notebook as far as "
              f"it ran: {rerun_folder(notebook, parameters) / (notebook + '.failed.ipynb')})", file=sys.stderr)
        return 1
    print(f"executed notebook: {folder / (notebook + '.ipynb')}")
    for path in sorted((folder / "figures").glob("*.png")):
        print(f"figure: {path}  (and {path.with_suffix('.pdf').name}, {path.with_suffix('.json').name})")
    for kind in ("claims", "results"):
        for path in sorted((folder / kind).glob("*")):
            print(f"{kind}: {path}")
    return 0


def user_errors() -> set[str]:
    """The names of the errors a user can cause (:class:`~nine.config.NineError` and its subclasses)."""
    import nine.book.rerun  # noqa: F401 (loads the modules that define them)
    import nine.store  # noqa: F401

    found, todo = set(), [NineError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo += cls.__subclasses__()
    return found


def _sweep(priors: list[str], profile: str, store: str | None, workers: int, jobs: dict) -> int:
    from nine.book.rerun import notebook_defaults
    from nine.experiments.runner import run_sweep
    from nine.experiments.sweep import RECIPE_PAGES, configs, grid_for

    cfgs = []
    for prior in priors:
        check_choice("prior", prior, tuple(RECIPE_PAGES))
        defaults = notebook_defaults(RECIPE_PAGES[prior])  # the runs the page shows: its numerics and τ rate
        cfgs += configs(grid_for(prior, profile), profile, numerics=defaults["numerics"], tau_lr=defaults["tau_lr"])
    run_sweep(list(dict.fromkeys(sorted(cfgs, key=lambda c: c.seed))), store, workers, **jobs)  # shared runs once
    return 0


def _calibrate(priors: list[str], profile: str, store: str | None) -> int:
    from nine.data.datasets import load_split
    from nine.experiments.calibration import calibrate
    from nine.experiments.sweep import grid_for

    for prior in priors:
        grid = grid_for(prior, profile)
        cfg = make_config(profile, prior=prior, d=max(grid.dims))
        split = load_split(cfg)
        n_train, n_test = len(split.y_train), len(split.y_test)
        print(f"{prior}: n = {n_test} test points, n_train = {n_train}, d in {list(grid.dims)}", flush=True)
        calibrate(prior, n_test, grid.dims, n_train, profile, store=Path(store) if store else None)
    return 0


def _reproduce(run: str | None, store: str) -> int:
    from nine.store import RunError, load_run
    from nine.store.reproduce import cheapest_committed_run, reproduce

    path = Path(run) if run else cheapest_committed_run()
    if not (path / "config.json").is_file():
        raise RunError(f"run={str(path)!r} is not allowed: it is not a run directory (it has no config.json)")
    committed = load_run(path)  # a damaged run is named before anything is trained
    if Path(store).resolve() == path.resolve().parent:
        raise RunError(f"store={store!r} is not allowed: it holds the run being checked, which the recomputation "
                       "would replace; recompute into another folder (default _build/reproduce)")
    parent = committed.config.continues
    how = (f"by continuing the committed run {parent} it continues to {committed.config.epochs} epochs" if parent
           else "from scratch")
    print(f"recomputing {path} {how} into {store}", flush=True)
    rows, spread_runs, (made, remade) = reproduce(path, Path(store))
    print(f"committed run made on: {made}\nrecomputed on:         {remade}")
    print("rules: " + (f"from the {spread_runs} committed seeds of this configuration: a value must lie in the "
                       "95 % prediction interval for one more seed (their mean ± t · s · √(1 + 1/n)); a "
                       "per-coordinate statistic is compared as a set (mean |difference| of the sorted values), within the "
                       "same prediction bound over the distances between the committed seeds' sets"
                       if spread_runs else "the fixed table of nine.store.reproduce (fewer than three committed "
                       "seeds of this configuration); per-coordinate statistics are compared as sets ([sorted i]: "
                       "the i-th smallest)"))
    width = max(len(r.metric) for r in rows)
    for r in rows:
        flag = "ok" if r.ok else "MISMATCH"
        measured = {"value": "|diff|", "seeds": "|recomputed − seeds' mean|", "set": "set distance"}[r.rule]
        print(f"  {r.metric:<{width}}  committed {r.committed:.6g}  recomputed {r.recomputed:.6g}"
              f"  {measured} {r.distance:.2g} <= {r.tolerance:.3g}  {flag}")
    identical = all(r.identical for r in rows)
    bad = [r.metric for r in rows if not r.ok]
    print(f"{len(rows)} metrics compared; bit-identical: {'yes' if identical else 'no'}; "
          f"{'all within tolerance' if not bad else 'MISMATCH in ' + ', '.join(bad)}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; an error a user can cause (:class:`~nine.config.NineError`) is printed as one
    line on stderr with exit status 2, never as a traceback."""
    try:
        return _main(argv)
    except NineError as err:
        print(f"{type(err).__name__}: {' '.join(str(err).split())}", file=sys.stderr)  # one line, whatever it quotes
        return 2
    except SystemExit as done:  # --help, or an argument the parser refused (its one line is printed)
        return done.code if isinstance(done.code, int) else 2


def _main(argv: list[str] | None) -> int:
    from nine.store.paths import check_store

    args = vars(build_parser().parse_args(argv))
    command, store = args.pop("command"), args.pop("store", None)
    check_store(store)
    if command == "reproduce":
        return _reproduce(args["run"], store)
    if command == "sweep":
        return _sweep(args["priors"], args["profile"], store, args["workers"], _jobs(args))
    if command == "budget":
        from nine.book.rerun import notebook_defaults
        from nine.experiments.budget import continue_all, train_all

        defaults = notebook_defaults("08_budget")  # the runs the page shows: its numerics and τ rate
        (continue_all if args["continued"] else train_all)(args["profile"], store, args["workers"], _jobs(args),
                                                           numerics=defaults["numerics"], tau_lr=defaults["tau_lr"])
        return 0
    if command == "calibrate":
        return _calibrate(args["priors"], args["profile"], store)
    if command == "rerun":
        return _rerun(args["notebook"], args["parameter"])
    if command == "gallery":
        from nine.book.gallery import write_gallery

        print(f"wrote {write_gallery()}")
        return 0
    if command == "downloads":
        from nine.book.gallery import serve_executed_notebooks

        served = serve_executed_notebooks()
        if not served:
            raise NineError("no built book in _build/html: build it first with `make book` (the download buttons "
                            "serve the notebooks it executed)")
        print(f"served {len(served)} executed notebooks for download")
        return 0
    if command == "evaluations":
        return _evaluations(args["check"])
    return _train(args, store)


def _evaluations(check: bool) -> int:
    """Count the stored evaluations by function, name the damaged ones (unreadable, or a value that no longer
    matches its digest) and the stale ones (computed by other code) and, with ``check``, recompute every current
    one and compare it with what is stored: bit-identical, within its tolerance (:func:`nine.store.evaluations.tolerance`:
    another CPU class rounds its kernels differently), or different."""
    from collections import Counter

    from nine.store.evaluations import difference, recompute, stale, stored_records, tolerance, value_digest
    from nine.store.paths import RESULTS_DIR, shown

    records, damaged = stored_records(damaged=True)
    for path, problem in damaged:
        print(f"damaged: {shown(path)} ({problem})")
    for function, n in Counter(r["function"] for _, r in records).items():
        print(f"{n:4d}  {function}")
    edited = [path for path, record in records if record["value_sha256"] != value_digest(record["value"])]
    for path in edited:
        print(f"damaged: {shown(path)} (its value does not match its recorded digest)")
    old = [(path, changed) for path, record in records if (changed := stale(record))]
    for path, changed in old:
        print(f"stale: {shown(path)} (changed since: {', '.join(changed)})")
    identical, close, wrong, largest = 0, 0, [], 0.0
    if check:
        current = [(path, record) for path, record in records if path not in edited and not stale(record)]
        for k, (path, record) in enumerate(current, 1):
            try:
                gap = difference(recompute(record), record["value"])
            except NineError as err:
                wrong.append(path)
                print(f"\ncannot recompute {shown(path)}: {first_line(err)}")
                continue
            if gap == 0.0:
                identical += 1
            elif gap <= tolerance(record["function"]):
                close += 1
                largest = max(largest, gap)
            else:
                wrong.append(path)
                print(f"\nDIFFERS: {shown(path)} (largest relative difference {gap:.3g}, allowed "
                      f"{tolerance(record['function']):g})")
            print(f"\rchecked {k}/{len(current)}", end="", flush=True)
        print()
    bad = len(damaged) + len(edited)
    print(f"{len(records) + len(damaged)} evaluations in {shown(RESULTS_DIR / 'evaluations')}; {bad} damaged; "
          f"{len(old)} stale"
          + (f"; recomputed: {identical} bit-identical, {close} within their tolerance (largest relative difference "
             f"{largest:.3g}), "
             f"{len(wrong)} differ or cannot be recomputed" if check else ""))
    return 1 if bad or old or wrong else 0


def _train(args: dict, store: str | None) -> int:
    from nine.core import distributed
    from nine.store import get_or_train

    profile, retrain, resume = args.pop("profile"), args.pop("retrain"), args.pop("resume")
    distributed.setup()
    # given fields override the profile's sizes; a field given as None means None (e.g. --n_train None: all digits)
    cfg = make_config(profile, **args).replace(**{k: v for k, v in args.items() if v is None})
    run = get_or_train(cfg, store, resume=resume, retrain=retrain)
    if not distributed.is_main():
        return 0
    print(f"run {run.hash} at {run.path}")
    for key in ("infonce_test", "capacity", "log_n", "ks_mean", "ks_critical_5pct", "linear_probe_acc", "knn_acc"):
        print(f"  {key:<18} {run.metrics[key]:.4f}")
    return 0
