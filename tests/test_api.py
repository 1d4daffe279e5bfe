"""The public API: the README example runs; results say which loss is after the last update; and
every producer's cache key changes when any one of its arguments changes (structural: it walks
the arguments, and the fields of the config and architecture dataclasses passed in)."""

import contextlib
import inspect
import io
import re
import subprocess
import sys
import textwrap
from dataclasses import fields, is_dataclass, replace
from pathlib import Path

import pytest
import torch

import hw1
from hw1 import api, cache, experiments, generalization as G, landscape as L
from hw1.config import SMOKE
from hw1.train import evaluate

ROOT = Path(__file__).resolve().parent.parent


def example_code() -> str:
    """The example of hw1.api's docstring (the one the README shows)."""
    lines = api.__doc__.split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("from hw1 import"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("    ") and lines[i].strip())
    return textwrap.dedent("\n".join(lines[start:end])).strip() + "\n"


# ---------------------------------------------------------------- the example


def test_the_readme_example_runs_and_prints_the_final_mse_per_seed(run_cache):
    code = example_code()
    assert "epochs=2000" in code
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code.replace("epochs=2000", "epochs=30"), {})  # the same code, fewer epochs
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["seed 0", "seed 1", "seed 2", "seed 3"]
    assert all(re.fullmatch(r"seed \d: final MSE \d\.\d\de[-+]\d\d", line) for line in lines)
    assert cache.STATS["misses"] == 4


def test_the_readme_shows_the_example_of_the_api_docstring():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use the library", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert block == example_code()


def test_hw1_exports_the_api_and_imports_light():
    assert hw1.fit_target is api.fit_target and hw1.dnn is api.dnn
    with pytest.raises(AttributeError):
        _ = hw1.no_such_name
    probe = "import sys, hw1; print('torch' in sys.modules)"
    got = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "False"


# ---------------------------------------------------------------- which loss is which


def test_final_loss_is_measured_after_the_last_update(run_cache):
    net, seeds = api.dnn([6, 6]), [0, 1, 2]
    runs = api.fit_target(net, "sincos", seeds, n_points=32, epochs=5, lr=1e-2)
    from hw1.data import sample_target

    x, y = sample_target("sincos", 32)
    after = evaluate(net, runs.params, x, y, "mse")["loss"]
    torch.testing.assert_close(runs.final_loss, after)
    # history['loss'][:, -1] is the last epoch's loss before its (full-batch) update: another number
    assert not torch.allclose(runs.history["loss"][:, -1], runs.final_loss)
    warm = api.fit_target(net, "sincos", seeds, n_points=32, epochs=5, lr=1e-2)
    assert torch.equal(warm.final_loss, runs.final_loss) and cache.STATS["hits"] == 3


def test_fit_mnist_trains_cnns_and_dnns_and_reuses_the_train_evaluation(run_cache):
    kw = dict(train_size=64, test_size=32, epochs=1, batch_size=32)
    conv = api.fit_mnist(api.cnn([2], [8]), [0, 1], **kw)
    assert conv.final_loss.shape == (2,) and conv.history["test_acc"].shape == (2, 1)
    torch.testing.assert_close(conv.final_loss, conv.history["train_loss"][:, -1])
    dense = api.fit_mnist(api.dnn([16], n_in=784, n_out=10), [0], **kw)
    assert dense.final["acc"].shape == (1,) and 0 <= float(dense.final["acc"][0]) <= 1


# ---------------------------------------------------------------- keys: structural


class Captured(Exception):
    """Raised instead of training: carries {seed: entry key} of the first cached call."""


@pytest.fixture
def keys_of(monkeypatch):
    """keys_of(fn, *args) -> {seed: key} that fn's first cached call asks for; nothing trains."""

    def ask(spec, seeds, device, compute, modules=()):
        raise Captured(
            {s: cache.run_key({**spec, "seed": s}, device, modules) for s in cache._seed_list(seeds)}
        )

    monkeypatch.setattr(cache, "cached_seeds", ask)

    def keys(fn, *args):
        with pytest.raises(Captured) as got:
            fn(*args)
        return got.value.args[0]

    return keys


def variants(value):
    """(where, value') pairs, each value' differing from `value` in one place (one dataclass field,
    recursively; fields declared NOT_IN_KEY are left alone)."""
    if is_dataclass(value):
        for f in fields(value):
            if not f.metadata.get(cache.NOT_IN_KEY):
                for where, v in variants(getattr(value, f.name)):
                    yield f".{f.name}{where}", replace(value, **{f.name: v})
    elif isinstance(value, bool):
        yield "", not value
    elif isinstance(value, (int, float)):
        yield "", value * 2 + 1  # big enough to change a budget-fitted architecture
    elif isinstance(value, str):
        yield "", value + "x"
    elif value is None:
        yield "", 7
    elif isinstance(value, (tuple, list)):
        yield "", type(value)([*value, 5])
    else:
        raise TypeError(f"no variant of {value!r}")


SEEDS = [0, 1]
# name -> (function, arguments (seeds and device included), for a wrapper that takes a config but
# calls an API function with some of its fields: the config fields that make its runs)
PRODUCERS = {
    "fit_target": (api.fit_target, (api.dnn([3, 2]), "sinc", SEEDS), None),
    "fit_mnist": (api.fit_mnist, (api.cnn([2], [4]), SEEDS), None),
    "fit_runs": (
        experiments.fit_runs,
        (SMOKE.fit, "sinc", 2, 40, SEEDS, "cpu"),
        {"n_points", "epochs", "lr", "snapshot_every", "optimizer"},
    ),
    "mnist_runs": (
        experiments.mnist_runs,
        (SMOKE.mnist, "cnn", 2, SEEDS, "cpu"),
        {"train_size", "test_size", "epochs", "batch_size", "lr", "cnn_budget", "optimizer"},
    ),
    "random_label_runs": (G.random_label_runs, (SMOKE.gen, SEEDS, "cpu"), None),
    "size_runs": (G.size_runs, (SMOKE.gen, 16, SEEDS, "cpu"), None),
    "batch_runs": (G.batch_runs, (SMOKE.gen, "fit", 10, SEEDS, "cpu"), None),
    "batch_sensitivities": (G.batch_sensitivities, (SMOKE.gen, "fit", SEEDS, "cpu"), None),
    "batch_sharpnesses": (G.batch_sharpnesses, (SMOKE.gen, "fit", SEEDS, "cpu"), None),
    "ratio_runs": (L.ratio_runs, (SMOKE.opt, SEEDS, "cpu"), None),
}


def test_every_cached_function_of_hw1_is_checked_here():
    checked = {f"{fn.__module__}.{fn.__qualname__}" for fn, _, _ in PRODUCERS.values()}
    assert {name for name in cache.PRODUCERS if name.startswith("hw1.")} <= checked


@pytest.mark.parametrize("name", sorted(PRODUCERS))
def test_every_producer_key_changes_with_each_argument(keys_of, name):
    fn, args, run_fields = PRODUCERS[name]
    base = keys_of(fn, *args)
    assert len(set(base.values())) == len(SEEDS)  # one entry per seed
    for i, value in enumerate(args):
        if value is SEEDS:  # other seeds: other entries, the shared seed keeps its own
            other = keys_of(fn, *args[:i], [0, 2], *args[i + 1 :])
            assert other[0] == base[0] and other[2] not in base.values(), name
            continue
        for where, v in variants(value) if value != "cpu" else [("", "cuda")]:
            changed = keys_of(fn, *args[:i], v, *args[i + 1 :])
            makes_runs = not (is_dataclass(value) and run_fields is not None) or where[1:] in run_fields
            assert (changed[0] != base[0]) == makes_runs, f"{name}: argument {i}{where} -> {v!r}"


@pytest.mark.parametrize("name", ["fit_target", "fit_mnist"])
def test_api_keys_change_with_each_keyword_option(keys_of, name):
    fn, args, _ = PRODUCERS[name]
    base = keys_of(fn, *args)
    for p in inspect.signature(fn).parameters.values():
        if p.kind is not p.KEYWORD_ONLY or p.name == "device":
            continue
        for _, v in variants(p.default):
            option = {p.name: v}
            assert keys_of(lambda *a, o=option: fn(*a, **o), *args)[0] != base[0], f"{name}: {p.name}"
