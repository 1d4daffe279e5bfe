"""The run cache: keys follow exactly what determines a run; one entry per seed, each trained once;
bad entries are never trusted; training seconds survive a warm load.

Each test gets an empty cache folder (HW1_RUN_CACHE) and counts calls of `compute`.
"""

import json
import multiprocessing as mp
import os
import pickle
import shutil
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hw1 import cache
from hw1.cache import CacheWarning

SPEC = {
    "what": "fit",
    "target": "sinc",
    "arch": {"kind": "dnn", "widths": [14, 14, 8]},
    "lr": 1e-3,
    "epochs": 2000,
    "n_points": 256,
}
SEEDS = [0, 1, 2, 3]


class Counter:
    """A compute(seeds) that logs the seeds of each call and returns fresh rows, one per seed."""

    def __init__(self, value: float = 1.0, sleep: float = 0.0):
        self.calls, self.value, self.sleep = [], value, sleep

    def __call__(self, seeds):
        self.calls.append(list(seeds))
        time.sleep(self.sleep)
        k = len(seeds)
        return {
            "param.w": torch.full((k, 3, 4), self.value) + torch.tensor(seeds).view(k, 1, 1),
            "hist.loss": torch.linspace(1, 0, 5).repeat(k, 1),
        }


def _entry(run_cache: Path, seed: int = 0, spec=SPEC) -> Path:
    return run_cache / cache.run_key({**spec, "seed": seed}, "cpu")


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "change",
    [
        {"lr": 1e-2},
        {"epochs": 2001},
        {"seed": 1},
        {"seed": None},
        {"target": "sincos"},
        {"arch": {"kind": "dnn", "widths": [14, 14, 9]}},
        {"n_points": 255},
        {"extra": None},
    ],
)
def test_key_changes_with_the_spec(change):
    assert cache.run_key({**SPEC, "seed": 0, **change}, "cpu") != cache.run_key({**SPEC, "seed": 0}, "cpu")


def test_key_changes_with_device_class_torch_and_dtype(monkeypatch):
    base = cache.run_key(SPEC, "cpu")
    assert cache.run_key(SPEC, "cuda") != base
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    assert cache.run_key(SPEC, "cpu") != base
    monkeypatch.undo()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert cache.run_key(SPEC, "cpu") != base
    finally:
        torch.set_default_dtype(old)
    assert cache.run_key(SPEC, "cpu") == base


def test_key_ignores_what_does_not_determine_the_run():
    shuffled = dict(reversed(list(SPEC.items())))
    shuffled["arch"] = {"widths": [14, 14, 8], "kind": "dnn"}
    assert cache.run_key(shuffled, "cpu") == cache.run_key(SPEC, "cpu")
    same_values = {**SPEC, "epochs": np.int64(2000), "lr": np.float64(1e-3), "widths": (14, 8)}
    assert cache.run_key(same_values, torch.device("cpu")) == cache.run_key(
        {**SPEC, "widths": [14, 8]}, "cpu"
    )
    assert cache.run_key(SPEC, "cuda:0") == cache.run_key(SPEC, "cuda:1")  # a device class, not a card


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """A copy of hw1's modules that the cache hashes instead of the real ones."""
    folder = tmp_path / "src"
    shutil.copytree(cache.SOURCE_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "extra.py").write_text("SCALE = 1\n")
    monkeypatch.setattr(cache, "SOURCE_DIR", folder)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_key_follows_the_code_of_the_training_path(sources):
    base = cache.run_key(SPEC, "cpu")
    _edit(sources / "train.py", "return ((out - y) ** 2).mean()", "return ((out - y) ** 2).sum()")
    assert cache.run_key(SPEC, "cpu") != base


@pytest.mark.parametrize("module", ["models", "data"])
def test_key_follows_every_core_module(sources, module):
    base = cache.run_key(SPEC, "cpu")
    with open(sources / f"{module}.py", "a") as f:
        f.write("\nNEW_CONSTANT = 3\n")
    assert cache.run_key(SPEC, "cpu") != base


def test_key_ignores_comments_docstrings_and_unnamed_modules(sources):
    base, named = cache.run_key(SPEC, "cpu"), cache.run_key(SPEC, "cpu", modules=("extra",))
    assert named != base
    _edit(sources / "train.py", '"""One training loop', '"""(reworded) One training loop')
    _edit(sources / "train.py", "def mse_loss(", "# a new comment\n\n\ndef mse_loss(")
    with open(sources / "stats.py", "a") as f:  # not on the training path, not named
        f.write("\nUNRELATED = 1\n")
    assert cache.run_key(SPEC, "cpu") == base
    (sources / "extra.py").write_text("SCALE = 2\n")
    assert cache.run_key(SPEC, "cpu") == base
    assert cache.run_key(SPEC, "cpu", modules=("extra",)) != named


def test_key_refuses_unknown_modules_and_unstable_values():
    with pytest.raises(ValueError, match="names no file"):
        cache.run_key(SPEC, "cpu", modules=("no_such_module",))
    with pytest.raises(TypeError, match="no stable JSON form"):
        cache.run_key({**SPEC, "build": lambda: None}, "cpu")


@dataclass(frozen=True)
class Setting:
    epochs: int = 10
    widths: tuple[int, ...] = (4, 4)
    seeds: int = field(default=8, metadata={cache.NOT_IN_KEY: True})


@dataclass(frozen=True)
class OtherSetting:
    epochs: int = 10
    widths: tuple[int, ...] = (4, 4)


def test_key_holds_a_dataclass_by_class_and_fields_less_those_not_in_key():
    def key(value):
        return cache.run_key({"cfg": value}, "cpu")

    base = key(Setting())
    assert key(replace(Setting(), epochs=11)) != base and key(replace(Setting(), widths=(4, 5))) != base
    assert key(OtherSetting()) != base  # same fields, another class
    assert key(replace(Setting(), seeds=16)) == base  # declared NOT_IN_KEY: how many seeds to ask for


# ---------------------------------------------------------------- storing and loading


def _get(seeds=SEEDS, compute=None, spec=SPEC):
    return cache.cached_seeds(spec, seeds, "cpu", compute or Counter())


def test_second_call_loads_the_same_cpu_tensors(run_cache):
    compute = Counter()
    first, second = _get(compute=compute), _get(compute=compute)
    assert compute.calls == [SEEDS] and cache.STATS == {"hits": 4, "misses": 4, "corrupt": 0}
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert first["param.w"].shape == (4, 3, 4) and first["param.w"][:, 0, 0].tolist() == [1, 2, 3, 4]
    assert sorted(p.name for p in run_cache.iterdir() if p.is_dir()) == sorted(
        _entry(run_cache, s).name for s in SEEDS
    )


def test_each_seed_is_trained_once_and_new_seeds_together(run_cache):
    compute = Counter()
    _get([0, 1], compute)
    got = _get([0, 1, 2, 3], compute)
    assert compute.calls == [[0, 1], [2, 3]]  # 0 and 1 loaded; 2 and 3 trained in one call
    assert got["param.w"][:, 0, 0].tolist() == [1, 2, 3, 4]
    again = _get([3, 0], compute)  # any subset, any order: loaded, in the order asked
    assert compute.calls == [[0, 1], [2, 3]] and again["param.w"][:, 0, 0].tolist() == [4, 1]


@pytest.mark.parametrize("bad", [{"w": torch.zeros(3, 2)}, {"w": torch.tensor(1.0)}])
def test_compute_must_return_one_row_per_seed(run_cache, bad):
    with pytest.raises(ValueError, match=r"one row per seed \(first dimension 2"):
        _get([0, 1], lambda seeds: bad)
    assert not [p for p in run_cache.iterdir() if p.is_dir()]  # nothing stored


def test_seeds_are_distinct_and_kept_out_of_the_spec(run_cache):
    with pytest.raises(ValueError, match="distinct"):
        _get([0, 0])
    with pytest.raises(ValueError, match="excludes the seeds"):
        _get([0], spec={**SPEC, "seeds": [0]})


def test_a_view_is_stored_without_its_base(run_cache):
    big = torch.zeros(1_000_000)
    _get([0], lambda seeds: {"w": big[:10].view(1, 10)})
    assert (_entry(run_cache) / "tensors.pt").stat().st_size < 10_000


def test_an_exception_in_compute_stores_nothing(run_cache):
    def broken(seeds):
        raise KeyboardInterrupt  # the user stops the run mid-training

    with pytest.raises(KeyboardInterrupt):
        _get(compute=broken)
    assert not _entry(run_cache).exists() and not list(run_cache.glob(".*"))
    compute = Counter()
    _get(compute=compute)
    assert compute.calls == [SEEDS]


def test_a_write_interrupted_before_the_rename_is_never_loaded(run_cache):
    _get(compute=Counter(value=7.0))
    entry = _entry(run_cache, 2)
    leftover = run_cache / f".{entry.name}.crashed"
    entry.rename(leftover)  # a complete-looking folder that was never renamed into place
    compute = Counter(value=1.0)
    got = _get(compute=compute)
    assert compute.calls == [[2]] and got["param.w"][:, 0, 0].tolist() == [7, 8, 3, 10]
    assert not leftover.exists()


def _flip_bytes(entry: Path) -> None:
    raw = bytearray((entry / "tensors.pt").read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 8):
        raw[i] ^= 0xFF
    (entry / "tensors.pt").write_bytes(bytes(raw))


def _truncate(entry: Path) -> None:
    raw = (entry / "tensors.pt").read_bytes()
    (entry / "tensors.pt").write_bytes(raw[: len(raw) // 3])


def _break_meta(entry: Path) -> None:
    (entry / "meta.json").write_text('{"sha256": "ab')


def _drop_meta(entry: Path) -> None:  # half-written: the tensors but no metadata
    (entry / "meta.json").unlink()


def _wrong_key(entry: Path) -> None:  # an entry copied into another key's folder
    meta = json.loads((entry / "meta.json").read_text())
    meta["key"] = "0" * 24
    (entry / "meta.json").write_text(json.dumps(meta))


def _not_tensors(entry: Path) -> None:  # a valid checksum over something that is not named tensors
    torch.save([1, 2, 3], entry / "tensors.pt")
    meta = json.loads((entry / "meta.json").read_text())
    meta["sha256"] = cache._sha(entry / "tensors.pt")
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage", [_flip_bytes, _truncate, _break_meta, _drop_meta, _wrong_key, _not_tensors]
)
def test_a_corrupted_entry_is_discarded_reported_and_retrained(run_cache, damage):
    _get(compute=Counter(value=7.0))
    damage(_entry(run_cache, 1))
    compute = Counter(value=1.0)
    with pytest.warns(CacheWarning, match="unusable"):
        got = _get(compute=compute)
    assert compute.calls == [[1]] and cache.STATS["corrupt"] == 1
    assert got["param.w"][:, 0, 0].tolist() == [7, 2, 9, 10]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        again = _get(compute=compute)  # the retrained entry is sound
    assert compute.calls == [[1]] and torch.equal(again["param.w"], got["param.w"])


class Payload:
    """Unpickling this creates the file `marker`: what an unsafe load of the cache would execute."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("form", ["pickle", "torch.save"])
def test_loading_never_executes_code_from_the_cache(run_cache, tmp_path, form):
    probe = tmp_path / "probe-marker"
    pickle.loads(pickle.dumps(Payload(probe))).close()
    assert probe.exists(), "the payload must be live, or this test proves nothing"
    _get([0])
    entry, marker = _entry(run_cache), tmp_path / "executed-marker"
    if form == "pickle":
        (entry / "tensors.pt").write_bytes(pickle.dumps({"param.w": Payload(marker)}))
    else:
        torch.save({"param.w": Payload(marker)}, entry / "tensors.pt")
    meta = json.loads((entry / "meta.json").read_text())
    meta["sha256"] = cache._sha(entry / "tensors.pt")  # the checksum passes: only the loader protects
    (entry / "meta.json").write_text(json.dumps(meta))
    compute = Counter()
    with pytest.warns(CacheWarning):
        _get([0], compute)
    assert not marker.exists() and compute.calls == [[0]]


def _worker(run_cache: str, log: str, seeds: list[int], barrier, results) -> None:
    """One process asking for some seeds of a shared group; compute() logs the seeds it trains."""
    os.environ["HW1_RUN_CACHE"] = run_cache
    torch.set_num_threads(1)

    def compute(todo):
        with open(log, "a") as f:
            f.write(" ".join(map(str, todo)) + "\n")
        time.sleep(0.5)
        return {"w": torch.tensor(todo, dtype=torch.float32).view(-1, 1)}

    barrier.wait()  # start together: all ask while the first one trains
    got = cache.cached_seeds({"what": "shared"}, seeds, "cpu", compute)
    results.put((seeds, got["w"].flatten().tolist()))


def test_processes_asking_for_overlapping_seeds_train_each_seed_once(run_cache, tmp_path):
    # fork: separate processes (own file descriptors, so the file lock really arbitrates) that
    # start in milliseconds because torch is already imported; spawn where fork is missing.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    log, asks = tmp_path / "log.txt", [[0, 1], [0, 1, 2, 3], [2, 3, 4], [4]]
    barrier, results = ctx.Barrier(len(asks)), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(run_cache), str(log), a, barrier, results)) for a in asks]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    trained = [int(s) for line in log.read_text().split("\n") for s in line.split()]
    assert sorted(trained) == [0, 1, 2, 3, 4]  # every seed trained exactly once
    assert all(values == [float(s) for s in seeds] for seeds, values in got)


def _hold(run_cache: Path, spec: dict, until):
    """Another holder of `spec`'s group lock (a thread with its own file descriptor: what another
    process training that group looks like), until `until()` is true (at most 10 s, so that a
    caller that waits instead of going on fails rather than hangs). -> the thread, holding."""
    import threading

    from filelock import FileLock

    taken = threading.Event()

    def hold():
        with FileLock(str(run_cache / f"{cache.run_key(spec, 'cpu')}.lock")):
            taken.set()
            deadline = time.monotonic() + 10
            while not until() and time.monotonic() < deadline:
                time.sleep(0.01)

    t = threading.Thread(target=hold)
    t.start()
    taken.wait(10)
    return t


def _group(name, order: list):
    """A compute(seeds) that logs its group's name in `order` when it trains."""

    def compute(seeds):
        order.append(name)
        return {"w": torch.tensor(seeds, dtype=torch.float32).view(-1, 1)}

    return compute


def test_each_free_trains_groups_nobody_holds_first_then_waits_for_the_held_one(run_cache):
    order = []
    holder = _hold(run_cache, {"what": "a"}, until=lambda: len(order) >= 2)  # a's trainer ends later

    def ask(name):
        return cache.cached_seeds({"what": name}, [0, 1], "cpu", _group(name, order))["w"]

    got = cache.each_free(["a", "b", "c"], ask)
    holder.join()
    assert order == ["b", "c", "a"]  # a was put off, not waited for while b and c could go
    assert list(got) == ["a", "b", "c"] and all(v.flatten().tolist() == [0.0, 1.0] for v in got.values())


def test_each_free_alone_keeps_the_order(run_cache):
    order = []
    got = cache.each_free([3, 1, 2], lambda k: cache.cached_seeds({"k": k}, [0], "cpu", _group(k, order)))
    assert order == [3, 1, 2] and list(got) == [3, 1, 2]
    with pytest.raises(ValueError, match="distinct"):
        cache.each_free([1, 1], lambda k: k)


def test_a_cached_call_inside_a_compute_waits_rather_than_aborting_it(run_cache):
    """each_free puts off only its own calls: a measurement (a compute) that loads runs another
    process is training waits for them instead of throwing its work away."""
    order, t0 = [], time.monotonic()
    holder = _hold(run_cache, {"what": "runs"}, until=lambda: time.monotonic() - t0 > 0.3)

    def measure(seeds):
        order.append("measure")
        run = cache.cached_seeds({"what": "runs"}, seeds, "cpu", _group("runs", order))
        return {"m": run["w"] * 2}

    got = cache.each_free(["m"], lambda _: cache.cached_seeds({"what": "measure"}, [0, 1], "cpu", measure))
    holder.join()
    assert order == ["measure", "runs"] and got["m"]["m"].flatten().tolist() == [0.0, 2.0]


def test_no_cache_bypasses_reading_and_writing(run_cache, monkeypatch):
    _get()
    monkeypatch.setenv("HW1_NO_CACHE", "1")
    compute = Counter()
    _get(compute=compute)
    _get(compute=compute, spec={**SPEC, "lr": 0.5})
    assert compute.calls == [SEEDS, SEEDS] and not _entry(run_cache, 0, {**SPEC, "lr": 0.5}).exists()
    monkeypatch.setenv("HW1_NO_CACHE", "0")
    assert cache.enabled()


def test_clear_removes_entries_and_nothing_else(run_cache):
    _get([0, 1])
    _get([0], spec={**SPEC, "lr": 0.5})
    (run_cache / "notes.txt").write_text("the user's own file")
    assert cache.clear() == 3
    assert [p.name for p in run_cache.iterdir()] == ["notes.txt"]
    (run_cache / "notes.txt").unlink()
    assert cache.clear() == 0


# ---------------------------------------------------------------- training seconds


def test_entries_keep_their_training_seconds_through_a_warm_load(run_cache):
    _get([0, 1], Counter(sleep=0.4))
    cold = cache.train_seconds()
    meta = json.loads((_entry(run_cache, 1) / "meta.json").read_text())
    assert 0.19 <= meta["seconds"] <= cold / 2 + 1e-9  # the group's time, shared by its two seeds
    cache.reset_train_seconds()
    _get([1, 0], Counter())  # warm: nothing trains, the cost stays what it was
    assert cache.train_seconds() == pytest.approx(cold)


def test_seconds_of_runs_loaded_inside_a_compute_count_once(run_cache):
    """A measurement that loads its runs costs their training plus its own time, cold or warm."""

    def measure(seeds):
        cache.cached_seeds({"what": "runs"}, seeds, "cpu", Counter(sleep=0.5))
        time.sleep(0.1)
        return {"m": torch.zeros(len(seeds))}

    cache.cached_seeds({"what": "measure"}, [0], "cpu", measure)
    cold = cache.train_seconds()
    assert 0.59 <= cold < 0.95  # 0.5 + 0.1, not 0.5 + (0.5 + 0.1): the runs inside count once
    shutil.rmtree(_entry(run_cache, 0, {"what": "measure"}))
    cache.reset_train_seconds()
    cache.cached_seeds({"what": "measure"}, [0], "cpu", measure)  # runs warm, the measure cold
    assert cache.train_seconds() == pytest.approx(cold, abs=0.15)


# ---------------------------------------------------------------- per_seed: keys from the arguments


@cache.per_seed
def _scaled(width, seeds, *, scale=2.0, device="cpu"):
    return {"w": torch.tensor([[float(width * scale + s)] for s in seeds])}


def test_per_seed_keys_on_every_argument_with_its_defaults(run_cache):
    base = _scaled.keys(3, [0, 1])
    assert base == _scaled.keys(3, [0, 1], scale=2.0, device="cpu")  # defaults are bound
    assert len(set(base.values())) == 2  # one entry per seed
    for other in (_scaled.keys(4, [0, 1]), _scaled.keys(3, [0, 1], scale=2.5)):
        assert not set(other.values()) & set(base.values())
    assert _scaled.keys(3, [1, 5])[1] == base[1]  # a seed's entry does not depend on the others
    assert _scaled.keys(3, [0], device="cuda:1")[0] != base[0]
    got = _scaled(3, [1, 0])
    assert got["w"].flatten().tolist() == [7.0, 6.0] and cache.STATS["misses"] == 2


def test_per_seed_keys_on_the_code_of_a_function_outside_hw1():
    spec_source = cache._source_digest(_scaled.uncached)
    assert spec_source == cache._code_digest(Path(__file__).read_bytes())


def test_per_seed_needs_seeds_and_device():
    with pytest.raises(TypeError, match="`seeds` and `device`"):
        cache.per_seed(lambda width, seeds: None)


def test_fit_runs_share_one_trained_ensemble(run_cache):
    from hw1.config import SMOKE
    from hw1.experiments import fit_runs

    cfg = replace(SMOKE.fit, epochs=3, n_points=16)
    first = fit_runs(cfg, "sinc", 2, 40, [0, 1])
    second = fit_runs(cfg, "sinc", 2, 40, [0, 1])
    assert cache.STATS["misses"] == 2 and cache.STATS["hits"] == 2
    assert all(torch.equal(first.params[n], second.params[n]) for n in first.params)
    assert torch.equal(first.history["loss"], second.history["loss"])
    assert torch.equal(first.final_loss, second.final_loss)


def test_a_module_edited_while_the_process_runs_stops_the_run(monkeypatch):
    """The old code is what runs: storing its runs under the edited code's key would hand them to
    every later process as the new code's runs (it happened: an edit mid-run stored batch runs
    evaluated every epoch under the key of the code that evaluates every few epochs)."""
    base = cache.run_key(SPEC, "cpu")
    monkeypatch.setitem(cache._AT_START, "train.py", "the digest of the code as it was loaded")
    with pytest.raises(cache.StaleCodeError, match=r"hw1/train.py changed on disk after this process"):
        cache.run_key(SPEC, "cpu")
    monkeypatch.undo()
    assert cache.run_key(SPEC, "cpu") == base


def test_the_start_digests_cover_the_training_path():
    assert {f"{m}.py" for m in cache.CORE_MODULES + ("generalization", "landscape", "api")} <= set(
        cache._AT_START
    )


def test_a_numeric_knob_set_in_the_environment_keys_runs_apart(monkeypatch):
    """MKL_CBWR or ATEN_CPU_CAPABILITY change the bits a CPU trains: runs made under one are never
    served under another, and with none set the key is the same as before the knobs existed."""
    from hw1 import cache

    for k in ("MKL_CBWR", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        monkeypatch.delenv(k, raising=False)
    plain = cache.run_key({"a": 1}, "cpu")
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    pinned = cache.run_key({"a": 1}, "cpu")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    assert len({plain, pinned, cache.run_key({"a": 1}, "cpu")}) == 3
    monkeypatch.setenv("MKL_CBWR", "")
    assert cache.run_key({"a": 1}, "cpu") == plain
