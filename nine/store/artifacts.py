"""Trained artifacts other than runs (generators, evaluation classifiers), kept the way runs are kept.

An artifact is a folder ``<store>/<key>/`` of named files and a ``manifest.json`` with their SHA-256.
:func:`get_or_make` finds it in the stores that may hold it (verified before use), or makes it under
the same per-key lock as a run (:func:`nine.store.store.exclusive`): it is built in a hidden
``.partial-<key>`` folder and renamed into place only when complete, so a second process asking for the
same artifact waits and then loads the first one's, and an interrupted one is never mistaken for a
finished one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from nine.store import paths
from nine.store.runs import RunError, sha256, verify, write_json
from nine.store.store import exclusive

MODEL_FILES = ("config.json", "metrics.json", "model.pt", "provenance.json", "manifest.json")  # a stored network
GENERATIVE = "generative"  # the sub-folder of results/ and runs/ that holds generators and classifiers


def model_target(store: Path | None) -> Path:
    """Where a generative artifact is made: ``store``, else ``runs/generative``."""
    return Path(store) if store is not None else paths.RUNS_DIR / GENERATIVE


def model_places(store: Path | None) -> tuple[Path, ...]:
    """Where a generative artifact is looked for: ``results/generative``, ``runs/generative``, ``store``."""
    return tuple(dict.fromkeys((paths.RESULTS_DIR / GENERATIVE, paths.RUNS_DIR / GENERATIVE, model_target(store))))


def model_weights(folder: Path) -> dict:
    """The state dict of a stored network (its bytes verified by the caller)."""
    from nine.core.checkpoint import load_problem, load_tensors

    try:
        return load_tensors(folder / "model.pt")
    except Exception as err:  # noqa: BLE001 (verified bytes that still do not load)
        raise RunError(f"{folder / 'model.pt'} cannot be read ({load_problem(err)}); delete {folder} to train it "
                       "again") from err


def find_artifact(key: str, places: tuple[Path, ...], files: tuple[str, ...]) -> Path | None:
    """The verified folder of artifact ``key`` in the first of ``places`` that holds it, else None."""
    for place in places:
        folder = Path(place) / key
        if folder.is_dir():
            verify(folder, files)
            return folder
    return None


def get_or_make(key: str, places: tuple[Path, ...], target: Path, files: tuple[str, ...],
                make: Callable[[Path], None], what: str) -> tuple[Path, bool]:
    """The folder of artifact ``key``: found in ``places`` (verified), or made into ``target`` by
    ``make(folder)`` (which writes every file of ``files`` but the manifest). Returns (folder, made now).

    Raises :class:`RunError` when it is missing and ``NINE_NO_TRAINING`` is set, or when ``target``
    cannot be written (nothing already stored is touched)."""
    found = find_artifact(key, places, files)
    if found is not None:
        return found, False
    if os.environ.get("NINE_NO_TRAINING"):
        where = " or ".join(dict.fromkeys(f"{Path(p).parent.name}/{Path(p).name}" for p in places))
        raise RunError(f"{what} {key} is not in {where} and NINE_NO_TRAINING "
                       "is set (the book build shows committed artifacts only)")
    target = Path(target)
    final, partial = target / key, target / f".partial-{key}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        with exclusive(target, key):
            if final.is_dir():  # made meanwhile by the process we waited for
                verify(final, files)
                return final, False
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            try:
                make(partial)
                write_json(partial / "manifest.json", {n: sha256(partial / n) for n in files if n != "manifest.json"})
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
            os.rename(partial, final)
    except OSError as err:
        raise RunError(f"cannot write {what} {key} to {target} ({err.strerror or err}); what is stored there is "
                       "untouched") from err
    return final, True
