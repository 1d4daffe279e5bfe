"""The run cache: keys follow exactly what determines a run; bad entries are never trusted; one trainer.

Each test gets an empty cache folder (HW1_RUN_CACHE) and counts calls of `compute`.
"""
import json
import multiprocessing as mp
import os
import pickle
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hw1 import cache
from hw1.cache import CacheWarning

SPEC = {"what": "fit", "target": "sinc", "arch": {"kind": "dnn", "widths": [14, 14, 8]}, "lr": 1e-3,
        "epochs": 2000, "seeds": [0, 1, 2, 3], "n_points": 256}


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty cache folder, the cache switched on and its counters at zero."""
    folder = tmp_path / "runs"
    monkeypatch.setenv("HW1_RUN_CACHE", str(folder))
    monkeypatch.delenv("HW1_NO_CACHE", raising=False)
    monkeypatch.setattr(cache, "STATS", {"hits": 0, "misses": 0, "corrupt": 0})
    return folder


class Counter:
    """A compute() that counts its calls and returns fresh tensors."""

    def __init__(self, value: float = 1.0):
        self.calls, self.value = 0, value

    def __call__(self):
        self.calls += 1
        return {"param.w": torch.full((3, 4), self.value), "hist.loss": torch.linspace(1, 0, 5)}


def _entry(root: Path, spec=SPEC) -> Path:
    return root / cache.run_key(spec, "cpu")


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize("change", [
    {"lr": 1e-2}, {"epochs": 2001}, {"seeds": [0, 1, 2, 4]}, {"seeds": [1, 0, 2, 3]},
    {"target": "sincos"}, {"arch": {"kind": "dnn", "widths": [14, 14, 9]}}, {"n_points": 255},
    {"extra": None},
])
def test_key_changes_with_the_spec(change):
    assert cache.run_key({**SPEC, **change}, "cpu") != cache.run_key(SPEC, "cpu")


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
    same_values = {**SPEC, "epochs": np.int64(2000), "lr": np.float64(1e-3), "seeds": (0, 1, 2, 3)}
    assert cache.run_key(same_values, torch.device("cpu")) == cache.run_key(SPEC, "cpu")
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


@pytest.mark.parametrize("module", ["models", "data", "experiments"])
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


# ---------------------------------------------------------------- storing and loading


def test_second_call_loads_the_same_cpu_tensors(root):
    compute = Counter()
    first = cache.cached(SPEC, "cpu", compute)
    second = cache.cached(SPEC, "cpu", compute)
    assert compute.calls == 1 and cache.STATS == {"hits": 1, "misses": 1, "corrupt": 0}
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [_entry(root).name]


def test_a_view_is_stored_without_its_base(root):
    big = torch.zeros(1_000_000)
    cache.cached(SPEC, "cpu", lambda: {"w": big[:10]})
    assert (_entry(root) / "tensors.pt").stat().st_size < 10_000


def test_an_exception_in_compute_stores_nothing(root):
    def broken():
        raise KeyboardInterrupt  # the user stops the run mid-training

    with pytest.raises(KeyboardInterrupt):
        cache.cached(SPEC, "cpu", broken)
    assert not _entry(root).exists() and not list(root.glob(".*"))
    compute = Counter()
    cache.cached(SPEC, "cpu", compute)
    assert compute.calls == 1


def test_a_write_interrupted_before_the_rename_is_never_loaded(root):
    cache.cached(SPEC, "cpu", Counter(value=7.0))
    entry = _entry(root)
    leftover = root / f".{entry.name}.crashed"
    entry.rename(leftover)  # a complete-looking folder that was never renamed into place
    compute = Counter(value=1.0)
    got = cache.cached(SPEC, "cpu", compute)
    assert compute.calls == 1 and torch.all(got["param.w"] == 1.0)
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


@pytest.mark.parametrize("damage", [_flip_bytes, _truncate, _break_meta, _drop_meta, _wrong_key, _not_tensors])
def test_a_corrupted_entry_is_discarded_reported_and_retrained(root, damage):
    cache.cached(SPEC, "cpu", Counter(value=7.0))
    damage(_entry(root))
    compute = Counter(value=1.0)
    with pytest.warns(CacheWarning, match="unusable"):
        got = cache.cached(SPEC, "cpu", compute)
    assert compute.calls == 1 and cache.STATS["corrupt"] == 1
    assert torch.all(got["param.w"] == 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        again = cache.cached(SPEC, "cpu", compute)  # the retrained entry is sound
    assert compute.calls == 1 and torch.equal(again["param.w"], got["param.w"])


class Payload:
    """Unpickling this creates the file `marker`: what an unsafe load of the cache would execute."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("form", ["pickle", "torch.save"])
def test_loading_never_executes_code_from_the_cache(root, tmp_path, form):
    probe = tmp_path / "probe-marker"
    pickle.loads(pickle.dumps(Payload(probe))).close()
    assert probe.exists(), "the payload must be live, or this test proves nothing"
    cache.cached(SPEC, "cpu", Counter())
    entry, marker = _entry(root), tmp_path / "executed-marker"
    if form == "pickle":
        (entry / "tensors.pt").write_bytes(pickle.dumps({"param.w": Payload(marker)}))
    else:
        torch.save({"param.w": Payload(marker)}, entry / "tensors.pt")
    meta = json.loads((entry / "meta.json").read_text())
    meta["sha256"] = cache._sha(entry / "tensors.pt")  # the checksum passes: only the loader protects
    (entry / "meta.json").write_text(json.dumps(meta))
    compute = Counter()
    with pytest.warns(CacheWarning):
        cache.cached(SPEC, "cpu", compute)
    assert not marker.exists() and compute.calls == 1


def _worker(root: str, count: str, barrier, results) -> None:
    """One process asking for the shared run; compute() logs itself in `count` and takes a second."""
    import time

    os.environ["HW1_RUN_CACHE"] = root
    torch.set_num_threads(1)

    def compute():
        with open(count, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1.0)
        return {"w": torch.arange(6.0)}

    barrier.wait()  # start together: all ask while the first one trains
    got = cache.cached({"what": "shared"}, "cpu", compute)
    results.put((got["w"].tolist(), cache.STATS["hits"]))


def test_processes_asking_for_the_same_run_train_it_once(root, tmp_path):
    # fork: separate processes (own file descriptors, so the file lock really arbitrates) that
    # start in milliseconds because torch is already imported; spawn where fork is missing.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    count, n = tmp_path / "count.txt", 3
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(root), str(count), barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    assert len(count.read_text().split()) == 1  # trained once
    assert all(values == got[0][0] for values, _ in got)  # everyone got the same tensors
    assert sorted(hits for _, hits in got) == [0] + [1] * (n - 1)  # one trainer, the rest hit


def test_no_cache_bypasses_reading_and_writing(root, monkeypatch):
    cache.cached(SPEC, "cpu", Counter())
    monkeypatch.setenv("HW1_NO_CACHE", "1")
    compute = Counter()
    cache.cached(SPEC, "cpu", compute)
    cache.cached({**SPEC, "lr": 0.5}, "cpu", compute)
    assert compute.calls == 2 and not _entry(root, {**SPEC, "lr": 0.5}).exists()
    monkeypatch.setenv("HW1_NO_CACHE", "0")
    assert cache.enabled()


def test_clear_removes_entries_and_nothing_else(root):
    cache.cached(SPEC, "cpu", Counter())
    cache.cached({**SPEC, "lr": 0.5}, "cpu", Counter())
    (root / "notes.txt").write_text("the user's own file")
    assert cache.clear() == 2
    assert [p.name for p in root.iterdir()] == ["notes.txt"]
    (root / "notes.txt").unlink()
    assert cache.clear() == 0


def test_fit_runs_share_one_trained_ensemble(root):
    from hw1.config import SMOKE
    from hw1.experiments import fit_runs

    cfg = replace(SMOKE.fit, epochs=3, n_points=16)
    first = fit_runs(cfg, "sinc", 2, 40, [0, 1])
    second = fit_runs(cfg, "sinc", 2, 40, [0, 1])
    assert cache.STATS["misses"] == 1 and cache.STATS["hits"] == 1
    assert all(torch.equal(first.params[n], second.params[n]) for n in first.params)
    assert torch.equal(first.history["loss"], second.history["loss"])
