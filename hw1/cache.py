"""A run cache: train once, share between claims, xdist workers and pytest invocations.

Runs are cached one seed at a time. Decorate a function that trains `seeds` at once with
`per_seed`, and its key comes from the function's qualified name and every other argument (bound
with defaults applied, as joblib.Memory does): nothing is written by hand, so nothing can be left
out. A call with seeds [0..15] after one with [0..7] loads seeds 0-7 and trains only 8-15, all of
them in one call of the function (one vmapped ensemble). A seed's result must not depend on which
other seeds it is trained with (each member has its own init, minibatch order and Adam state; only
float rounding may differ between ensemble sizes).

A seed's entry is keyed by a hash of: the call's spec (function, arguments) plus that seed, the
code of the training path (the core modules, the function's own hw1 module, the hw1 modules of the
dataclasses passed as arguments, and any named by the caller), the device class (cpu / cuda), the
torch version and the default dtype. The code is hashed as its syntax tree without docstrings, so
editing a comment, a docstring or the layout keeps the entries; any change to what the code does
discards them. A config field declared with `field(metadata={NOT_IN_KEY: True})` (the number of
seeds a claim asks for, say) stays out of every key: such a field must not change what any seed
trains.

One process computes a group's missing seeds while the others asking for the same group (same
spec, any seeds) wait on the group's file lock; a process whose seeds are all stored loads them
without the lock. An entry is written into a temporary folder and renamed into place, so an
interrupted run leaves nothing that can be loaded (leftover temporary folders are removed by the
next holder of the lock). Loading uses JSON and `torch.load(weights_only=True)`, after a SHA-256
check of the tensor file: nothing from the cache folder is ever executed. An entry that fails to
load or verify is discarded, reported (a `CacheWarning`, counted in `STATS['corrupt']`) and
retrained.

Each entry records the seconds its training cost (its group's compute time over the group's
seeds); `train_seconds()` sums them over the entries this process was handed, loaded or trained,
so a test on cached runs can still say what they cost.

Where: `HW1_RUN_CACHE`, else `<HW1_CACHE_DIR or .cache>/runs`. `HW1_NO_CACHE=1` bypasses it.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import inspect
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from filelock import FileLock, Timeout

from . import data as _data
from .provenance import knobs

# The training path every run depends on; per_seed adds the function's own module and the modules
# of its dataclass arguments, callers may name more (`modules=`).
CORE_MODULES = ("train", "ensemble", "stopping", "graphs", "models", "data")
PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_DIR = PACKAGE_DIR  # where the modules named above live (tests point it elsewhere)
FORMAT = 3  # the layout of an entry; bumping it invalidates every entry
STATS = {"hits": 0, "misses": 0, "corrupt": 0}  # counted in seeds
NOT_IN_KEY = "not_in_run_key"  # dataclass field metadata: leave this field out of run keys
PRODUCERS: dict[str, Callable] = {}  # qualified name -> every per_seed function (the key tests walk it)

_KEY = re.compile(r"^[0-9a-f]{24}$")
_AST_DIGESTS: dict[bytes, str] = {}
_SECONDS = {"train": 0.0}
_OPEN: list[float] = []  # per compute() running in this process: seconds to add for nested cached calls
_NOWAIT: list[int] = []  # per `each_free` pass: the compute depth whose cached calls must not wait


class Busy(Exception):
    """Another process holds a run group's lock (raised only to `each_free`, which goes on)."""


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
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _code_digest(source: bytes) -> str:
    """Digest of what the code does: its syntax tree without docstrings, comments or layout."""
    if source not in _AST_DIGESTS:
        tree = _strip_docstrings(ast.parse(source))
        _AST_DIGESTS[source] = hashlib.sha256(ast.dump(tree).encode()).hexdigest()
    return _AST_DIGESTS[source]


class StaleCodeError(RuntimeError):
    """A module of the training path changed on disk after this process loaded its code."""


def _digests_at_start() -> dict[str, str]:
    """The digest of every hw1 module as its file was when this process first imported the cache
    (at the start of a run: before any training)."""
    out = {}
    for path in PACKAGE_DIR.glob("*.py"):
        try:
            out[path.name] = _code_digest(path.read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue
    return out


_AT_START = _digests_at_start()


def _module_digest(path: Path) -> str:
    """The digest a key names for the module at `path`: its file now, which must still be the code
    this process runs. A key is computed when a run is asked for, which can be long after the
    module was imported; had the file been edited in between, the running (old) code's runs would
    be stored under the new code's key, and a later process would load them as the new code's."""
    digest = _code_digest(path.read_bytes())
    start = _AT_START.get(path.name) if path.parent.resolve() == PACKAGE_DIR else None
    if start is not None and digest != start:
        raise StaleCodeError(
            f"run cache: hw1/{path.name} changed on disk after this process loaded it, so the code "
            f"that would train is not the code a cache key would name; nothing was trained or stored. "
            f"Start the run again (a new pytest or python process) to use the new code."
        )
    return digest


def code_version(modules: tuple[str, ...] = ()) -> str:
    """Hash of the code of the training path (core modules + `modules`): changing it invalidates.
    Raises StaleCodeError when one of them changed on disk since this process started."""
    h = hashlib.sha256()
    for name in sorted(set(CORE_MODULES) | set(modules)):
        path = SOURCE_DIR / f"{name}.py"
        if not path.is_file():
            raise ValueError(
                f"run cache: module {name!r} names no file {path}; pass hw1 module names "
                f"(e.g. modules=('landscape',))"
            )
        h.update(f"{name}:{_module_digest(path)};".encode())
    return h.hexdigest()[:16]


def _jsonable(value):
    """JSON form of the spec values json cannot write itself; anything else is refused."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # the class and every field (nested dataclasses too), less those declared NOT_IN_KEY
        return {
            "__class__": f"{type(value).__module__}.{type(value).__qualname__}",
            **{
                f.name: getattr(value, f.name)
                for f in dataclasses.fields(value)
                if not f.metadata.get(NOT_IN_KEY)
            },
        }
    if isinstance(value, (torch.device, torch.dtype, Path)):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        return value.item()
    raise TypeError(
        f"run cache: spec value {value!r} of type {type(value).__name__} has no stable "
        f"JSON form; put the numbers that define it in the spec instead"
    )


def _canonical(spec: dict) -> str:
    if not isinstance(spec, dict):
        raise TypeError(f"run cache: the spec must be a dict, got {type(spec).__name__}")
    return json.dumps(spec, sort_keys=True, default=_jsonable, allow_nan=True)


def run_key(spec: dict, device: torch.device | str, modules: tuple[str, ...] = ()) -> str:
    """Key of a run: its spec, the code version, the device class, the torch version and dtype,
    and any numeric knob set in the environment (`hw1.provenance.KNOBS`: MKL_CBWR, ...), which
    changes the bits a CPU trains; with none set the key is as it always was."""
    parts = {
        "spec": json.loads(_canonical(spec)),
        "code": code_version(modules),
        "device": torch.device(device).type,
        "torch": torch.__version__,
        "dtype": str(torch.get_default_dtype()),
        "format": FORMAT,
    }
    if set_knobs := knobs():
        parts["numerics"] = set_knobs
    blob = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _discard(entry: Path, why: str) -> None:
    STATS["corrupt"] += 1
    warnings.warn(
        f"run cache entry {entry.name} is unusable ({why}); discarding and retraining",
        CacheWarning,
        stacklevel=4,
    )
    shutil.rmtree(entry, ignore_errors=True)


def _load(entry: Path, discard: bool = True) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The entry's (tensors, meta), or None when anything about it is off (then it is discarded,
    unless `discard` is False: a reader without the lock only reports a miss)."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta.get("key") != entry.name:
            raise ValueError("wrong format or key in meta.json")
        if _sha(entry / "tensors.pt") != meta["sha256"]:
            raise ValueError("checksum mismatch")
        # weights_only: tensors and plain containers only, no code from the file is ever run
        got = torch.load(entry / "tensors.pt", weights_only=True, map_location="cpu")
        if not isinstance(got, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in got.items()
        ):
            raise ValueError("tensors.pt does not hold a dict of named tensors")
        return got, meta
    except Exception as e:  # any unreadable entry is discarded, never trusted
        if discard:
            _discard(entry, f"{type(e).__name__}: {e}")
        return None


def _write(path: Path, write: Callable[[object], None]) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _store(entry: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write the entry into a temporary folder, then rename it into place (atomic on one disk)."""
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    try:
        _write(tmp / "tensors.pt", lambda f: torch.save(tensors, f))
        meta = {
            "format": FORMAT,
            "key": entry.name,
            "sha256": _sha(tmp / "tensors.pt"),
            "torch": torch.__version__,
            **meta,
        }
        _write(tmp / "meta.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only left when the rename did not happen


def _own(v: torch.Tensor) -> torch.Tensor:
    """v as an owned, contiguous CPU tensor: a view would save (and keep) its whole storage."""
    v = v.detach().cpu()
    if v.untyped_storage().nbytes() != v.numel() * v.element_size() or not v.is_contiguous():
        v = v.clone(memory_format=torch.contiguous_format)
    return v


def _split(result, seeds: list[int]) -> list[dict[str, torch.Tensor]]:
    """compute(seeds)'s result, dim 0 = seeds, as one {name: (1, ...)} dict per seed."""
    if hasattr(result, "to_tensors"):  # an Ensemble
        result = result.to_tensors()
    if not isinstance(result, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in result.items()
    ):
        raise TypeError(
            "run cache: compute(seeds) must return a dict of str -> torch.Tensor (or an Ensemble)"
        )
    for name, v in result.items():
        if v.ndim == 0 or v.shape[0] != len(seeds):
            raise ValueError(
                f"run cache: compute(seeds) must return tensors with one row per seed "
                f"(first dimension {len(seeds)} for seeds {seeds}); {name!r} has shape "
                f"{tuple(v.shape)}. Put per-run values in rows, and constants in the "
                f"function's result hook instead"
            )
    return [{n: _own(v[i : i + 1]) for n, v in result.items()} for i in range(len(seeds))]


def _join(parts: list[dict[str, torch.Tensor]], seeds: list[int]) -> dict[str, torch.Tensor]:
    """The per-seed entries stacked back along dim 0, in the order of `seeds`."""
    names = set(parts[0])
    for s, p in zip(seeds, parts):
        if set(p) != names:
            raise ValueError(
                f"run cache: seed {s}'s entry holds {sorted(p)}, seed {seeds[0]}'s "
                f"{sorted(names)}; the runs of one spec must have the same tensors"
            )
    return {n: torch.cat([p[n] for p in parts]) for n in parts[0]}


def _seed_list(seeds) -> list[int]:
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"run cache: seeds must be a non-empty list of distinct integers, got {list(seeds)}")
    return out


# ---------------------------------------------------------------- training seconds


def train_seconds() -> float:
    """Seconds of training behind the entries handed out since `reset_train_seconds`, loaded or trained."""
    return _SECONDS["train"]


def reset_train_seconds() -> None:
    _SECONDS["train"] = 0.0


def _account(seconds: float, wall: float) -> None:
    """Count a cached call's training seconds once. Inside another compute (a measurement that
    loads its runs), they go into that compute's own cost, replacing the wall time the call took."""
    if _OPEN:
        _OPEN[-1] += seconds - wall
    else:
        _SECONDS["train"] += seconds


def _compute(compute: Callable, seeds: list[int]) -> tuple[list[dict], float]:
    """compute(seeds) timed. -> its result per seed, and the seconds each seed cost."""
    _OPEN.append(0.0)
    t0 = time.perf_counter()
    try:
        result = compute(list(seeds))
    finally:
        nested = _OPEN.pop()
    return _split(result, seeds), (time.perf_counter() - t0 + nested) / len(seeds)


# ---------------------------------------------------------------- per-seed cache


def _load_all(root: Path, keys: dict[int, str], discard: bool) -> dict[int, tuple[dict, float]]:
    """{seed: (tensors, seconds)} of the seeds whose entry is present and sound."""
    found = {}
    for s, key in keys.items():
        if (root / key).exists():
            got = _load(root / key, discard)
            if got is not None:
                found[s] = got[0], float(got[1].get("seconds", 0.0))
    return found


def _fill(root: Path, spec: dict, keys: dict[int, str], compute: Callable, found: dict) -> tuple[dict, int]:
    """Under the group's lock: load what is stored (beyond `found`), compute the missing seeds at
    once, store them. -> ({seed: (tensors, seconds)}, how many seeds were computed)."""
    for key in keys.values():
        for leftover in root.glob(f".{key}.*"):  # a writer of this key died: only we write it now
            shutil.rmtree(leftover, ignore_errors=True)
    found = {**found, **_load_all(root, {s: k for s, k in keys.items() if s not in found}, discard=True)}
    missing = [s for s in keys if s not in found]
    if missing:
        parts, each = _compute(compute, missing)
        for s, part in zip(missing, parts):
            _store(
                root / keys[s],
                part,
                {"spec": json.loads(_canonical(spec)), "seed": s, "seconds": each, "group_seeds": missing},
            )
            found[s] = part, each
    return found, len(missing)


def cached_seeds(
    spec: dict,
    seeds,
    device: torch.device | str,
    compute: Callable[[list[int]], dict],
    modules: tuple[str, ...] = (),
) -> dict[str, torch.Tensor]:
    """The tensors of the runs `spec` for `seeds`: each seed loaded, or computed with the other
    missing ones in one call `compute(missing)`, then stored one entry per seed.

    spec: JSON-able dict of everything that determines a run besides its seed, code and device.
    compute(seeds) -> {name: (len(seeds), ...)} tensors (or an Ensemble), row k for seeds[k].
    modules: hw1 modules besides the core whose code produces the runs (e.g. ("landscape",)).
    -> {name: (len(seeds), ...)} CPU tensors in the order of `seeds` (the same cold or warm).
    Prefer `per_seed`, which writes the spec from the function's arguments.
    """
    if "seed" in spec or "seeds" in spec:
        raise ValueError("run cache: the spec excludes the seeds; pass them as `seeds`")
    seeds, t0 = _seed_list(seeds), time.perf_counter()
    if not enabled():
        parts, each = _compute(compute, seeds)
        STATS["misses"] += len(seeds)
        _account(each * len(seeds), time.perf_counter() - t0)
        return _join(parts, seeds)
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    keys = {s: run_key({**spec, "seed": s}, device, modules) for s in seeds}
    found, computed = _load_all(root, keys, discard=False), 0  # entries appear by atomic rename: no lock
    if len(found) < len(seeds):
        # one lock per group: whoever asks for any seeds of this spec waits while one computes
        lock = FileLock(str(root / f"{run_key(spec, device, modules)}.lock"))
        try:  # inside an `each_free` pass (and not nested in a compute): never wait, let it go on
            lock.acquire(timeout=0 if _NOWAIT and _NOWAIT[-1] == len(_OPEN) else -1)
        except Timeout:
            raise Busy(spec.get("fn", spec)) from None
        try:
            found, computed = _fill(root, spec, keys, compute, found)
        finally:
            lock.release()
    STATS["hits"] += len(seeds) - computed
    STATS["misses"] += computed
    _account(sum(found[s][1] for s in seeds), time.perf_counter() - t0)
    return _join([found[s][0] for s in seeds], seeds)


def each_free(items, fn: Callable) -> dict:
    """{item: fn(item)} for distinct `items`, in their order, computed in a work-sharing order: a
    call whose run group another process is computing right now (its lock is held) is put off, and
    the calls after it go first; only when a whole pass finds every call left busy does this process
    wait, for the first of them. Two xdist workers asking for the same groups (two claims on the
    same runs) thus train different groups instead of one waiting for the other. Each group is
    still trained by one process with the seeds it was asked for, so the results are the same bits
    in any order; alone, the order is the items' own. fn(item) should make its cached calls before
    any work that is not cached (that work is redone when the call is put off)."""
    items = list(items)
    if len(set(items)) < len(items):
        raise ValueError(f"each_free: items must be distinct, got {items}")
    out: dict[int, object] = {}
    pending = list(range(len(items)))
    while pending:
        done = []
        for i in pending:
            _NOWAIT.append(len(_OPEN))
            try:
                out[i] = fn(items[i])
                done.append(i)
            except Busy:
                continue
            finally:
                _NOWAIT.pop()
        pending = [i for i in pending if i not in done]
        if pending and not done:  # every call left is busy: wait for the first, then try again
            i = pending.pop(0)
            out[i] = fn(items[i])
    return {items[i]: out[i] for i in range(len(items))}


def _modules_of(fn: Callable, args: dict) -> tuple[str, ...]:
    """The hw1 modules whose code a call depends on beyond the core: the function's own module and
    those defining the dataclasses passed to it (e.g. an architecture class)."""
    owners = [fn.__module__] + [
        type(v).__module__ for v in args.values() if dataclasses.is_dataclass(v) and not isinstance(v, type)
    ]
    # hw1.config's dataclasses are plain values (all in the key already): its code (overrides,
    # departures, the scales) trains nothing, so editing it must not discard runs.
    return tuple(sorted({m.split(".", 1)[1] for m in owners if m.startswith("hw1.")} - {"config"}))


def _source_digest(fn: Callable) -> str | None:
    """Digest of the file defining fn, for functions outside hw1 (whose modules are not hashed)."""
    if fn.__module__.startswith("hw1."):
        return None
    return _code_digest(Path(inspect.getsourcefile(fn)).read_bytes())


def per_seed(
    fn: Callable | None = None,
    *,
    modules: tuple[str, ...] = (),
    result: Callable[[dict, dict], object] | None = None,
):
    """Decorator: cache fn(..., seeds, ..., device) one entry per seed (`cached_seeds`).

    fn trains all the seeds it is given at once and returns {name: (len(seeds), ...)} tensors or
    an Ensemble. The key is fn's qualified name and every other argument, bound with its defaults
    (dataclasses by class and fields); `device` counts by its class (cpu / cuda) only.
    result(tensors, args) turns the cached tensors back into what the caller gets (e.g.
    `train.ensemble_of(loss)`); args are the bound arguments, seeds a list. Without it, the tensors.
    The decorated function has `.keys(*args, **kwargs)` -> {seed: entry key} (tests read it).

        @cache.per_seed(result=ensemble_of("mse"))
        def fit(arch, target, seeds, *, epochs=100, device="cpu"): ...
    """
    if fn is None:
        return functools.partial(per_seed, modules=modules, result=result)
    sig = inspect.signature(fn)
    if not {"seeds", "device"} <= set(sig.parameters):
        raise TypeError(f"per_seed: {fn.__qualname__} must take `seeds` and `device` arguments")
    name, source = f"{fn.__module__}.{fn.__qualname__}", _source_digest(fn)

    def bind(args, kwargs):
        """-> (spec, seeds, device, modules, bound arguments with seeds as a list)."""
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        rest = dict(bound.arguments)
        seeds, device = _seed_list(rest.pop("seeds")), rest.pop("device")
        bound.arguments["seeds"] = seeds
        spec = {"fn": name, "args": rest, **({"source": source} if source else {})}
        return spec, seeds, device, tuple(modules) + _modules_of(fn, rest), bound

    @functools.wraps(fn)
    def cached(*args, **kwargs):
        spec, seeds, device, mods, bound = bind(args, kwargs)

        def compute(missing: list[int]):
            call = inspect.BoundArguments(sig, {**bound.arguments, "seeds": missing})
            return fn(*call.args, **call.kwargs)

        tensors = cached_seeds(spec, seeds, device, compute, mods)
        return result(tensors, dict(bound.arguments)) if result else tensors

    def keys(*args, **kwargs) -> dict[int, str]:
        spec, seeds, device, mods, _ = bind(args, kwargs)
        return {s: run_key({**spec, "seed": s}, device, mods) for s in seeds}

    cached.keys, cached.uncached = keys, fn
    PRODUCERS[name] = cached
    return cached


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
