"""Evaluations: values computed from finished runs, stored so that a page reads them instead of computing
them again at every build.

An evaluation is a function of runs and parameters only (no training, no global state), decorated with
:func:`evaluation`::

    @evaluation("nine.eval.disentanglement")
    def disentanglement_scores(run, rotated: bool, seed: int, n_fit: int) -> dict[str, float]: ...

Its result is stored as one JSON file, ``evaluations/<function>-<key>.json``, in ``results/`` (committed
beside the runs, written there by ``make results``) or in the runs folder (``runs/``, ``NINE_RUNS_DIR``).
The key hashes everything the value follows from: the function's name and source, its arguments (a run by
its hash and the SHA-256 of its files, an array by its bytes, a config by its fields), the source of the
modules it names and the versions of the numerical libraries. Change any of them and the value is computed
again, never read stale; a file whose value no longer matches its recorded digest is named, left as it is
and computed again. Each file also holds the arguments and the code fingerprint in readable form, so
``python -m nine evaluations --check`` can recompute any of them and compare.

A stored value is the computed value as JSON keeps it: floats round-trip exactly and keys keep their order,
so a page shows the same numbers in the same columns whether it computed or read them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nine.store import paths
from nine.store.runs import RUN_FORMAT, Run

FOLDER = "evaluations"
LIBRARIES = ("numpy", "scipy", "sklearn", "torch")  # whose version is part of every key
REGISTRY: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {}  # name → (undecorated function, its code)


def describe(value: Any) -> Any:
    """The JSON form of an argument as the key sees it: a run by its hash and the digest of its files, an
    array by the digest of its bytes, a dataclass by its fields; numbers, strings and containers as they are."""
    if isinstance(value, Run):
        manifest = value.path / "manifest.json"
        return {"run": value.hash, "files": hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]}
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {"array": hashlib.sha256(data.tobytes()).hexdigest()[:16], "shape": list(data.shape), "dtype": str(data.dtype)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **{k: describe(v) for k, v in dataclasses.asdict(value).items()}}
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [describe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"an evaluation argument of type {type(value).__name__} has no stored form: pass a run, an array, "
                    "a dataclass, a number, a string or a container of them")


def plain(value: Any) -> Any:
    """The value as JSON stores it (numpy scalars and arrays as numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"an evaluation returned a {type(value).__name__}: it must return numbers, strings, lists or dicts")


@functools.cache
def fingerprint(function_name: str, modules: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 (16 hex digits) of the source of the function and of each named module, and the library versions."""
    module_name, _, qualname = function_name.rpartition(".")
    function = getattr(importlib.import_module(module_name), qualname)
    function = getattr(function, "__wrapped__", function)
    sources = {function_name: inspect.getsource(function)}
    for name in modules:  # "package.module" (its whole source) or "package.module:name" (that object's source)
        module, _, attribute = name.partition(":")
        sources[name] = (inspect.getsource(getattr(importlib.import_module(module), attribute)) if attribute
                         else Path(importlib.import_module(module).__file__).read_text())
    code = {name: hashlib.sha256(text.encode()).hexdigest()[:16] for name, text in sources.items()}
    versions = {lib: importlib.import_module(lib).__version__ for lib in LIBRARIES}
    return {**code, **{f"version:{lib}": v for lib, v in versions.items()}, "format": RUN_FORMAT}


def value_digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def places() -> tuple[Path, ...]:
    return tuple(dict.fromkeys((paths.RESULTS_DIR / FOLDER, paths.RUNS_DIR / FOLDER)))


def read(path: Path, key: str) -> tuple[bool, Any]:
    """(True, value) when ``path`` holds the evaluation ``key`` intact; (False, None) when it is absent. A file
    that is damaged (unreadable, another key, a value that does not match its digest) is named on stderr and
    treated as absent; it is not touched."""
    if not path.is_file():
        return False, None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record["key"] == key and record["value_sha256"] == value_digest(record["value"]):
            return True, record["value"]
        problem = "its content does not match its key or digest"
    except (OSError, ValueError, KeyError, TypeError) as err:
        problem = f"it cannot be read ({err})"
    print(f"evaluation file {paths.shown(path)} is damaged ({problem}): computing it again", file=sys.stderr)
    return False, None


def write(path: Path, record: dict) -> None:
    """Write atomically: a reader sees the whole file or none (two processes computing the same evaluation
    write the same content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
    partial.write_text(json.dumps(record, indent=1, allow_nan=True) + "\n")  # a value's keys keep their order
    os.replace(partial, path)


def evaluation(*modules: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Store the function's value by its arguments and code: the function's own source and that of ``modules``,
    the code it runs that a change would alter the value of: a module (``"nine.eval.metrics"``: all of it) or
    one function or class of a module (``"nine.experiments.calibration:null"``)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        name = f"{function.__module__}.{function.__qualname__}"
        REGISTRY[name] = function, modules
        signature = inspect.signature(function)

        @functools.wraps(function)
        def stored(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = {k: describe(v) for k, v in bound.arguments.items()}
            code = fingerprint(name, modules)
            key = hashlib.sha256(json.dumps({"function": name, "arguments": arguments, "code": code},
                                            sort_keys=True).encode()).hexdigest()[:16]
            filename = f"{function.__qualname__}-{key}.json"
            for folder in places():
                found, value = read(folder / filename, key)
                if found:
                    return value
            value = plain(function(*args, **kwargs))
            write(paths.RUNS_DIR / FOLDER / filename, {"function": name, "key": key, "arguments": arguments,
                                                        "code": code, "value": value, "value_sha256": value_digest(value)})
            return value

        return stored

    return decorate


def stored_records(folder: Path | None = None) -> list[tuple[Path, dict]]:
    """Every evaluation file of ``folder`` (default: ``results/evaluations``) with its record."""
    folder = folder or paths.RESULTS_DIR / FOLDER
    return [(p, json.loads(p.read_text())) for p in sorted(folder.glob("*.json")) if not p.name.startswith(".")]


def registered(name: str) -> tuple[Callable[..., Any], tuple[str, ...]]:
    """The undecorated function of evaluation ``name`` and the code it names (importing its module)."""
    importlib.import_module(name.rpartition(".")[0])
    return REGISTRY[name]


def stale(record: dict) -> list[str]:
    """What in the record's code fingerprint differs from the code of this checkout ([] when current)."""
    function = record["function"]
    try:
        current = fingerprint(function, registered(function)[1])
    except (ImportError, KeyError) as err:
        return [f"{function} cannot be found ({err})"]
    return [k for k in sorted(set(record["code"]) | set(current)) if record["code"].get(k) != current.get(k)]


def same(a: Any, b: Any) -> bool:
    """Equal values, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def argument(described: Any) -> Any:
    """The argument a description stands for: a run is found by its hash (and must still have the files it
    was evaluated on); numbers, strings and containers are themselves."""
    from nine.store.runs import RunError, find_run_by_hash, load_run

    if isinstance(described, dict) and set(described) == {"run", "files"}:
        path = find_run_by_hash(described["run"])
        if path is None:
            raise RunError(f"run {described['run']} of a stored evaluation is in no store (results/ or the runs folder)")
        run = load_run(path)
        if describe(run) != described:
            raise RunError(f"run {described['run']} has other files than the stored evaluation was computed from")
        return run
    if isinstance(described, dict) and "array" in described:
        raise RunError("an evaluation of an array cannot be recomputed from its digest")
    if isinstance(described, list):
        return [argument(v) for v in described]
    return described


def recompute(record: dict) -> Any:
    """The value of a stored evaluation computed again from its runs and parameters (not stored)."""
    function = registered(record["function"])[0]
    return plain(function(**{k: argument(v) for k, v in record["arguments"].items()}))
