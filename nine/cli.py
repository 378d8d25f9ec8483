"""Command line: ``python -m nine train --profile cpu --sigma 0.5 --d 2 [--store results]``."""

from __future__ import annotations

import argparse
import ast
import sys
from typing import Any

from nine.config import FIELDS, PROFILES, ConfigError, make_config


def _value(text: str) -> Any:
    """'0.3' → 0.3, '16' → 16, 'None' → None, anything else stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train (or load) one run and print its metrics")
    train.add_argument("--profile", default="cpu", choices=list(PROFILES))
    train.add_argument("--store", default=None, help="directory for a new run (default: runs/)")
    for name in FIELDS:
        if name != "profile":
            train.add_argument(f"--{name}", type=_value, default=None, help="see nine.config.RunConfig")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    command, profile, store = args.pop("command"), args.pop("profile"), args.pop("store")
    if command == "train":
        from nine.runs import get_or_train

        try:
            cfg = make_config(profile, **args)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        run = get_or_train(cfg, store)
        print(f"run {run.hash} at {run.path}")
        for key in ("infonce_test", "capacity", "log_n", "ks_mean", "ks_critical_5pct", "linear_probe_acc", "knn_acc"):
            print(f"  {key:<18} {run.metrics[key]:.4f}")
    return 0
