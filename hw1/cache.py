"""A run cache: train once, share between claims, xdist workers and pytest invocations.

An entry is keyed by a hash of everything that determines the run: its spec (architecture, data,
optimiser, epochs, seeds...), the source of the training path, and the device class. One process
trains while the others wait on a file lock; the entry is written into a temporary folder and
renamed into place, so an interrupted run leaves nothing half-written. Loading uses JSON and
`torch.load(weights_only=True)`: nothing from the cache folder is ever executed. An entry that
fails to load or verify is discarded, reported (a warning) and retrained.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch
from filelock import FileLock

from . import data as _data

# The training path every run depends on; a run made by other modules names them (`modules=`).
CORE_MODULES = ("train", "models", "data", "cache", "experiments")
STATS = {"hits": 0, "misses": 0, "corrupt": 0}


class CacheWarning(UserWarning):
    """A cache entry was unusable and has been discarded."""


def cache_dir() -> Path:
    return Path(os.environ.get("HW1_RUN_CACHE", _data.CACHE_DIR / "runs"))


def enabled() -> bool:
    return os.environ.get("HW1_NO_CACHE", "") in ("", "0")


def code_version(modules: tuple[str, ...] = ()) -> str:
    """Hash of the source of the training path (core modules + `modules`): editing it invalidates."""
    h = hashlib.sha256()
    for name in sorted(set(CORE_MODULES) | set(modules)):
        path = Path(__file__).parent / f"{name}.py"
        h.update(name.encode() + (path.read_bytes() if path.exists() else b""))
    return h.hexdigest()[:16]


def run_key(spec: dict, device: torch.device | str, modules: tuple[str, ...] = ()) -> str:
    """Key of a run: its spec, the code version and the device class (cpu / cuda)."""
    blob = json.dumps({"spec": spec, "code": code_version(modules), "device": torch.device(device).type},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(entry: Path) -> dict[str, torch.Tensor] | None:
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if _sha(entry / "tensors.pt") != meta["sha256"]:
            raise ValueError("checksum mismatch")
        return torch.load(entry / "tensors.pt", weights_only=True, map_location="cpu")
    except Exception as e:  # any unreadable entry is discarded, never trusted
        STATS["corrupt"] += 1
        warnings.warn(f"run cache entry {entry.name} is unusable ({e}); discarding and retraining",
                      CacheWarning, stacklevel=3)
        shutil.rmtree(entry, ignore_errors=True)
        return None


def _store(entry: Path, tensors: dict[str, torch.Tensor], spec: dict) -> None:
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    torch.save(tensors, tmp / "tensors.pt")
    meta = {"spec": spec, "sha256": _sha(tmp / "tensors.pt")}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    shutil.rmtree(entry, ignore_errors=True)
    os.replace(tmp, entry)


def cached(spec: dict, device: torch.device | str, compute: Callable[[], dict[str, torch.Tensor]],
           modules: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """The tensors of the run `spec`: loaded from the cache, or computed once (under a lock) and stored.

    modules: hw1 modules besides the core whose code produces the run (e.g. ("landscape",)).
    """
    if not enabled():
        STATS["misses"] += 1
        return compute()
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    key = run_key(spec, device, modules)
    entry = root / key
    with FileLock(str(root / f"{key}.lock")):
        if entry.is_dir():
            got = _load(entry)
            if got is not None:
                STATS["hits"] += 1
                return got
        STATS["misses"] += 1
        tensors = compute()
        _store(entry, tensors, spec)
        return tensors


def clear() -> int:
    """Delete every cache entry. -> number of entries removed."""
    root = cache_dir()
    n = sum(1 for p in root.iterdir() if p.is_dir()) if root.is_dir() else 0
    shutil.rmtree(root, ignore_errors=True)
    return n
