"""A run cache: train once, share between claims, xdist workers and pytest invocations.

An entry is keyed by a hash of everything that determines the run: its spec (architecture, data,
optimiser, epochs, seeds...), the code of the training path (the core modules plus the modules
named by the caller), the device class (cpu / cuda), the torch version and the default dtype.
The code is hashed as its syntax tree without docstrings, so editing a comment, a docstring or the
layout keeps the entries; any change to what the code does discards them.

One process trains while the others wait on a per-key file lock. The entry is written into a
temporary folder and renamed into place, so an interrupted run leaves nothing that can be loaded
(leftover temporary folders are removed by the next holder of the lock). Loading uses JSON and
`torch.load(weights_only=True)`, after a SHA-256 check of the tensor file: nothing from the cache
folder is ever executed. An entry that fails to load or verify is discarded, reported (a
`CacheWarning`, counted in `STATS['corrupt']`) and retrained.

Where: `HW1_RUN_CACHE`, else `<HW1_CACHE_DIR or .cache>/runs`. `HW1_NO_CACHE=1` bypasses it.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch
from filelock import FileLock

from . import data as _data

# The training path every run depends on; a run made by other modules names them (`modules=`).
CORE_MODULES = ("train", "models", "data", "experiments")
SOURCE_DIR = Path(__file__).parent  # where the modules named above live (tests point it elsewhere)
FORMAT = 2  # the layout of an entry; bumping it invalidates every entry
STATS = {"hits": 0, "misses": 0, "corrupt": 0}

_KEY = re.compile(r"^[0-9a-f]{24}$")
_AST_DIGESTS: dict[bytes, str] = {}


class CacheWarning(UserWarning):
    """A cache entry was unusable and has been discarded."""


def cache_dir() -> Path:
    return Path(os.environ.get("HW1_RUN_CACHE", _data.CACHE_DIR / "runs"))


def enabled() -> bool:
    """False when HW1_NO_CACHE is set to anything but '', '0', 'false', 'no' or 'off'."""
    return os.environ.get("HW1_NO_CACHE", "").strip().lower() in ("", "0", "false", "no", "off")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _code_digest(source: bytes) -> str:
    """Digest of what the code does: its syntax tree without docstrings, comments or layout."""
    if source not in _AST_DIGESTS:
        tree = _strip_docstrings(ast.parse(source))
        _AST_DIGESTS[source] = hashlib.sha256(ast.dump(tree).encode()).hexdigest()
    return _AST_DIGESTS[source]


def code_version(modules: tuple[str, ...] = ()) -> str:
    """Hash of the code of the training path (core modules + `modules`): changing it invalidates."""
    h = hashlib.sha256()
    for name in sorted(set(CORE_MODULES) | set(modules)):
        path = SOURCE_DIR / f"{name}.py"
        if not path.is_file():
            raise ValueError(f"run cache: module {name!r} names no file {path}; pass hw1 module names "
                             f"(e.g. modules=('landscape',))")
        h.update(f"{name}:{_code_digest(path.read_bytes())};".encode())
    return h.hexdigest()[:16]


def _jsonable(value):
    """JSON form of the spec values json cannot write itself; anything else is refused."""
    if isinstance(value, (torch.device, torch.dtype, Path)):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        return value.item()
    raise TypeError(f"run cache: spec value {value!r} of type {type(value).__name__} has no stable "
                    f"JSON form; put the numbers that define it in the spec instead")


def _canonical(spec: dict) -> str:
    if not isinstance(spec, dict):
        raise TypeError(f"run cache: the spec must be a dict, got {type(spec).__name__}")
    return json.dumps(spec, sort_keys=True, default=_jsonable, allow_nan=True)


def run_key(spec: dict, device: torch.device | str, modules: tuple[str, ...] = ()) -> str:
    """Key of a run: its spec, the code version, the device class, the torch version and dtype."""
    blob = json.dumps({"spec": json.loads(_canonical(spec)), "code": code_version(modules),
                       "device": torch.device(device).type, "torch": torch.__version__,
                       "dtype": str(torch.get_default_dtype()), "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _discard(entry: Path, why: str) -> None:
    STATS["corrupt"] += 1
    warnings.warn(f"run cache entry {entry.name} is unusable ({why}); discarding and retraining",
                  CacheWarning, stacklevel=4)
    shutil.rmtree(entry, ignore_errors=True)


def _load(entry: Path) -> dict[str, torch.Tensor] | None:
    """The entry's tensors, or None (entry discarded) when anything about it is off."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta.get("key") != entry.name:
            raise ValueError("wrong format or key in meta.json")
        if _sha(entry / "tensors.pt") != meta["sha256"]:
            raise ValueError("checksum mismatch")
        # weights_only: tensors and plain containers only, no code from the file is ever run
        got = torch.load(entry / "tensors.pt", weights_only=True, map_location="cpu")
        if not isinstance(got, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in got.items()):
            raise ValueError("tensors.pt does not hold a dict of named tensors")
        return got
    except Exception as e:  # any unreadable entry is discarded, never trusted
        _discard(entry, f"{type(e).__name__}: {e}")
        return None


def _write(path: Path, write: Callable[[object], None]) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _store(entry: Path, tensors: dict[str, torch.Tensor], spec: dict) -> None:
    """Write the entry into a temporary folder, then rename it into place (atomic on one disk)."""
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    try:
        _write(tmp / "tensors.pt", lambda f: torch.save(tensors, f))
        meta = {"format": FORMAT, "key": entry.name, "sha256": _sha(tmp / "tensors.pt"),
                "spec": json.loads(_canonical(spec)), "torch": torch.__version__}
        _write(tmp / "meta.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only left when the rename did not happen


def _to_store(tensors) -> dict[str, torch.Tensor]:
    """compute()'s result as owned CPU tensors: the same thing a later load returns."""
    if not isinstance(tensors, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in tensors.items()):
        raise TypeError("run cache: compute() must return a dict of str -> torch.Tensor")
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu()
        # a view would save its whole storage: keep just the tensor's own elements
        if v.untyped_storage().nbytes() != v.numel() * v.element_size() or not v.is_contiguous():
            v = v.clone(memory_format=torch.contiguous_format)
        out[k] = v
    return out


def cached(spec: dict, device: torch.device | str, compute: Callable[[], dict[str, torch.Tensor]],
           modules: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """The tensors of the run `spec`: loaded from the cache, or computed once (under a lock) and stored.

    spec: JSON-able dict of everything that determines the run besides code and device.
    modules: hw1 modules besides the core whose code produces the run (e.g. ("landscape",)).
    -> dict of CPU tensors (the same on a cold and a warm call).
    """
    if not enabled():
        STATS["misses"] += 1
        return _to_store(compute())
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    key = run_key(spec, device, modules)
    entry = root / key
    with FileLock(str(root / f"{key}.lock")):
        for leftover in root.glob(f".{key}.*"):  # a writer of this key died: only we write it now
            shutil.rmtree(leftover, ignore_errors=True)
        if entry.exists():
            got = _load(entry)
            if got is not None:
                STATS["hits"] += 1
                return got
        STATS["misses"] += 1
        tensors = _to_store(compute())
        _store(entry, tensors, spec)
        return tensors


def clear() -> int:
    """Delete every cache entry (and its lock and leftovers), nothing else. -> entries removed."""
    root = cache_dir()
    if not root.is_dir():
        return 0
    n = 0
    for p in root.iterdir():
        name = p.name.lstrip(".").split(".")[0]
        if not _KEY.match(name):
            continue  # not ours: HW1_RUN_CACHE may point at a folder holding other things
        if p.is_dir():
            n += not p.name.startswith(".")
            shutil.rmtree(p, ignore_errors=True)
        elif p.name == f"{name}.lock":
            p.unlink(missing_ok=True)
    if not any(root.iterdir()):
        root.rmdir()
    return n
