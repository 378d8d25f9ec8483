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
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nine.config import first_line
from nine.store import paths
from nine.store.runs import RUN_FORMAT, Run

FOLDER = "evaluations"
LIBRARIES = ("numpy", "scipy", "sklearn", "torch")  # whose version is part of every key
REGISTRY: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {}  # name → (undecorated function, its code)
TOLERANCES: dict[str, float] = {}  # name → the relative difference a recomputation on another CPU may show


# A recomputation is held to agree, not to be bit-identical: the float64 kernels of numpy, scipy and scikit-learn
# (BLAS, LAPACK, vectorised reductions) sum in another order on another CPU class and differ in the last bits
# (relative 1e-16 to 1e-12 measured; `python -m nine evaluations --check` prints the largest). RTOL leaves three
# orders of magnitude above that and sits far below any digit a page shows (four significant digits).
RTOL = 1e-9


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
def fingerprint(function_name: str, code: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 (16 hex digits) of the source of the function and of each piece of ``code`` it names, and the
    library versions. A piece is a module (``"nine.eval.metrics"``: its whole source), one object of a module
    (``"nine.eval.rules:omnibus"``: a function's or class's source, a constant's repr) or a registered prior
    (``"prior:gaussian"``: the source of its class and of the classes between it and :class:`nine.priors.Prior`,
    and the values of the module's constants it names)."""
    module_name, _, qualname = function_name.rpartition(".")
    function = getattr(importlib.import_module(module_name), qualname)
    function = getattr(function, "__wrapped__", function)
    sources = {function_name: inspect.getsource(function)}
    for name in code:
        sources[name] = source_of(name)
    digests = {name: hashlib.sha256(text.encode()).hexdigest()[:16] for name, text in sources.items()}
    versions = {lib: importlib.import_module(lib).__version__ for lib in LIBRARIES}
    return {**digests, **{f"version:{lib}": v for lib, v in versions.items()}, "format": RUN_FORMAT}


def source_of(name: str) -> str:
    """The text a piece of code named as in :func:`fingerprint` is keyed by."""
    if name.startswith("prior:"):
        import nine.priors
        from nine.priors import Prior, get

        classes = [c for c in type(get(name.partition(":")[2])).__mro__ if issubclass(c, Prior) and c is not Prior]
        text = "".join(inspect.getsource(c) for c in classes)
        constants = sorted({word for word in re.findall(r"\b[A-Z][A-Z0-9_]+\b", text) if hasattr(nine.priors, word)})
        return text + "".join(f"\n{word} = {getattr(nine.priors, word)!r}" for word in constants)  # e.g. LAPLACE_SCALE
    module, _, attribute = name.partition(":")
    if not attribute:
        return Path(importlib.import_module(module).__file__).read_text()
    value = inspect.unwrap(getattr(importlib.import_module(module), attribute))  # a cached function: its own code
    if inspect.isfunction(value) or inspect.isclass(value) or inspect.ismethod(value):
        return inspect.getsource(value)
    if callable(value):
        raise TypeError(f"{name} is neither a function, a class nor a constant: name the code it runs")
    return repr(value)  # a constant (a number, a string, a tuple of them)


def code_of(code: tuple[str, ...], arguments: dict[str, Any]) -> tuple[str, ...]:
    """``code`` with each ``{argument}`` filled in from the (described) arguments, e.g. ``"prior:{prior}"``."""
    return tuple(piece.format(**{k: v for k, v in arguments.items() if isinstance(v, str)}) for piece in code)


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
    write the same content). :class:`OSError` when it cannot be written; no partial file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
    try:
        partial.write_text(json.dumps(record, indent=1, allow_nan=True) + "\n")  # a value's keys keep their order
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise


def evaluation(*modules: str, rtol: float | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Store the function's value by its arguments and code: the function's own source and that of ``modules``,
    the code it runs that a change would alter the value of, named as narrowly as it is known (:func:`fingerprint`):
    a module (``"nine.eval.metrics"``: all of it), one object of a module (``"nine.experiments.calibration:null"``),
    or the prior an argument names (``"prior:{prior}"``), so that adding a prior stales no other prior's values.
    ``rtol``: how far a recomputation on another CPU class may move the value (default :data:`RTOL`, float64
    arithmetic; a value computed from float32 network outputs moves more)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        name = f"{function.__module__}.{function.__qualname__}"
        REGISTRY[name] = function, modules
        TOLERANCES[name] = RTOL if rtol is None else rtol
        signature = inspect.signature(function)

        @functools.wraps(function)
        def stored(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = {k: describe(v) for k, v in bound.arguments.items()}
            code = fingerprint(name, code_of(modules, arguments))
            key = hashlib.sha256(json.dumps({"function": name, "arguments": arguments, "code": code},
                                            sort_keys=True).encode()).hexdigest()[:16]
            filename = f"{function.__qualname__}-{key}.json"
            for folder in places():
                found, value = read(folder / filename, key)
                if found:
                    return value
            value = plain(function(*args, **kwargs))
            target = paths.RUNS_DIR / FOLDER / filename
            try:
                write(target, {"function": name, "key": key, "arguments": arguments, "code": code, "value": value,
                               "value_sha256": value_digest(value)})
            except OSError as err:  # a read-only or full runs folder: the value is still this call's answer
                print(f"evaluation {function.__qualname__} could not be stored in {paths.shown(target.parent)} "
                      f"({err.strerror or first_line(err)}): it is returned, and computed again next time",
                      file=sys.stderr)
            return value

        return stored

    return decorate


def stored_records(folder: Path | None = None, damaged: bool = False):
    """Every evaluation file of ``folder`` (default: ``results/evaluations``) with its record. A file that cannot
    be read as a record is left out; with ``damaged``, returns ``(records, [(path, problem), …])`` instead."""
    folder = folder or paths.RESULTS_DIR / FOLDER
    records, problems = [], []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict) or not {"function", "key", "arguments", "code", "value",
                                                    "value_sha256"} <= set(record):
                raise ValueError("not an evaluation record")
        except (OSError, ValueError) as err:
            problems.append((path, first_line(err)))
            continue
        records.append((path, record))
    return (records, problems) if damaged else records


def registered(name: str) -> tuple[Callable[..., Any], tuple[str, ...]]:
    """The undecorated function of evaluation ``name`` and the code it names (importing its module)."""
    importlib.import_module(name.rpartition(".")[0])
    return REGISTRY[name]


def stale(record: dict) -> list[str]:
    """What in the record's code fingerprint differs from the code of this checkout ([] when current)."""
    function = record["function"]
    try:
        current = fingerprint(function, code_of(registered(function)[1], record["arguments"]))
    except (ImportError, KeyError) as err:
        return [f"{function} cannot be found ({err})"]
    return [k for k in sorted(set(record["code"]) | set(current)) if record["code"].get(k) != current.get(k)]




def difference(a: Any, b: Any) -> float:
    """The largest relative difference |a − b| / max(|a|, |b|) over the numbers of two stored values of the same
    shape (0 where they are equal, NaN equal to NaN); ``inf`` where their structure, keys, strings or a NaN differ."""
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, int | float) and isinstance(b, int | float)):
        if isinstance(a, dict) and isinstance(b, dict):
            return max((difference(a[k], b[k]) for k in a), default=0.0) if list(a) == list(b) else math.inf
        if isinstance(a, list) and isinstance(b, list):
            return max((difference(x, y) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else math.inf
        return 0.0 if type(a) is type(b) and a == b else math.inf
    a, b = float(a), float(b)
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


def same(a: Any, b: Any) -> bool:
    """Equal values, bit for bit (NaN equal to NaN): what a recomputation on the machine class that stored
    the value gives."""
    return difference(a, b) == 0.0


def tolerance(name: str) -> float:
    """The relative difference a recomputation of evaluation ``name`` may show on another CPU class."""
    registered(name)
    return TOLERANCES[name]


def agree(a: Any, b: Any, rtol: float = RTOL) -> bool:
    """Equal up to ``rtol`` relative in every number (:data:`RTOL`), and equal in everything else."""
    return difference(a, b) <= rtol


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
