"""Regression tests: each one fails on a bug that was found, on a hand-made mutation
that the other unit tests did not catch, or on mutants of hw1.stats / hw1.cache that survived them
(tests/README.md)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from hw1 import stats
from hw1.generalization import keskar_sharpness
from hw1.landscape import hessian_eigenvalues
from hw1.models import Arch, dnn_arch
from hw1.train import Ensemble, TrainOptions, batch_order, init_params, train_ensemble


# ------------------------------------------------------------------------ Keskar sharpness
def _converged_linear_net():
    """nn.Linear(3, 1) at the exact least-squares minimum of noisy linear data (||grad L||^2 / L
    ~ 1e-12 after the cast to float32: a stationary point to float32 resolution)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([[0.5], [-1.0], [2.0]], dtype=torch.float64) + 0.3
    y = y + 0.1 * torch.randn(64, 1, generator=g, dtype=torch.float64)
    sol = torch.linalg.lstsq(torch.cat([x, torch.ones(64, 1, dtype=torch.float64)], 1), y).solution[:, 0]
    net = nn.Linear(3, 1)
    with torch.no_grad():
        net.weight.copy_(sol[:3][None])
        net.bias.copy_(sol[3:])
    return net, x.float(), y.float()


def test_keskar_sharpness_grows_with_the_box_at_a_converged_point():
    # A float32 objective gave 6.5e-7 for every eps here (L-BFGS-B stopped after two iterations);
    # the loss is quadratic, so its rise over the box grows as eps^2: x100, then x25.
    net, x, y = _converged_linear_net()
    k = [keskar_sharpness(net, x, y, "mse", eps=e, iters=20) for e in (1e-3, 1e-2, 5e-2)]
    assert k[0] > 1e-4
    assert k[1] > 50 * k[0] and k[2] > 15 * k[1]


# ------------------------------------------------------------- Hessian with integer labels
def test_hessian_eigenvalues_of_a_cross_entropy_model_match_autograd():
    arch, seeds = Arch("dnn", (3,), n_in=2, n_out=3), [0, 1]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 2, generator=g), torch.randint(0, 3, (12,), generator=g)
    ens = Ensemble(arch, seeds, init_params(arch, seeds), loss="ce")
    got = hessian_eigenvalues(ens, x, y)

    net = arch().double()
    shapes = {n: p.shape for n, p in net.named_parameters()}

    def loss(theta):
        parts = dict(zip(shapes, theta.split([s.numel() for s in shapes.values()])))
        params = {n: t.view(shapes[n]) for n, t in parts.items()}
        return nn.functional.cross_entropy(functional_call(net, params, (x.double(),)), y)

    for k in range(len(seeds)):
        theta = ens.flat()[k].double()
        ref = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, theta))
        torch.testing.assert_close(got[k], ref, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------- bootstrap level
def test_bootstrap_interval_has_the_width_of_the_level_asked_for():
    # The bootstrap distribution of a mean of n normal draws is ~ N(mean, s^2 / n): the central
    # interval at level L has half-width z_{(1+L)/2} s / sqrt(n) (1.96 at 0.95, 0.674 at 0.5).
    x = np.random.default_rng(3).normal(size=400)
    se = x.std() / np.sqrt(len(x))
    mean = lambda b: b.mean(axis=-1)  # noqa: E731
    width = {}
    for level, z in ((0.5, 0.6745), (0.95, 1.96), (0.99, 2.5758)):
        lo, hi = stats.bootstrap_ci(x, mean, level=level, n_resamples=4000, seed=1, vectorized=True)
        assert lo < x.mean() < hi
        width[level] = hi - lo
        assert width[level] == pytest.approx(2 * z * se, rel=0.1), level
    assert width[0.5] < width[0.95] < width[0.99]


def test_bootstrap_interval_matches_quantiles_of_resampled_medians():
    # An independent reference: the 2.5% and 97.5% quantiles of medians of many resamples (its own
    # generator), within the Monte-Carlo error of 4000 resamples.
    x = np.random.default_rng(5).exponential(size=300)
    rng = np.random.default_rng(99)
    ref = np.median(x[rng.integers(0, len(x), size=(20_000, len(x)))], axis=1)
    lo, hi = stats.bootstrap_ci(
        x, lambda b: np.median(b, axis=-1), level=0.95, n_resamples=4000, seed=0, vectorized=True
    )
    spread = np.quantile(ref, 0.975) - np.quantile(ref, 0.025)
    assert lo == pytest.approx(np.quantile(ref, 0.025), abs=0.05 * spread)
    assert hi == pytest.approx(np.quantile(ref, 0.975), abs=0.05 * spread)


# -------------------------------------------------------------------- seeded batch order
def test_batch_order_is_seeded_per_seed_and_epoch():
    order = lambda seed, epoch=0: torch.cat(batch_order(seed, 50, 8, epoch))  # noqa: E731
    assert torch.equal(order(3), order(3))
    assert not torch.equal(order(3), order(4))
    assert not torch.equal(order(3, 0), order(3, 1))
    assert torch.equal(order(3).sort().values, torch.arange(50))  # a permutation of all points
    assert [len(b) for b in batch_order(3, 50, 8, 0)] == [8] * 6 + [2]
    for full in (None, 50, 80):
        assert [b.tolist() for b in batch_order(3, 50, full, 0)] == [list(range(50))]


def test_each_member_follows_its_own_seeds_batch_order():
    # Members 0 and 1 start from the same parameters, so only their batch orders can tell them
    # apart; member 0 must be the one-member run of its own seed.
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, generator=g), torch.randn(40, 1, generator=g)
    arch = Arch("dnn", (6,), n_in=3)
    start = {n: p[[0, 0]] for n, p in init_params(arch, [7]).items()}
    opts = TrainOptions(epochs=2, lr=1e-2, batch_size=8)
    both = train_ensemble(arch, [3, 4], x, y, opts, params=start)
    alone = train_ensemble(arch, [3], x, y, opts, params={n: p[:1] for n, p in start.items()})
    assert not torch.allclose(both.flat()[0], both.flat()[1])
    torch.testing.assert_close(both.flat()[:1], alone.flat())


# ------------------------------------------------------------------ budget of tiny deep nets
@pytest.mark.parametrize("depth, budget", [(7, 239), (8, 200), (8, 270), (8, 275)])
def test_budgets_between_two_uniform_widths_are_met(depth, budget):
    # uniform widths jump past these budgets (depth 8: 261 parameters at w = 5, 273 at w = 6);
    # the builder widens the layers before the last by one instead of missing by up to 5%
    arch = dnn_arch(depth, budget)
    head = arch.widths[:-1]
    assert abs(arch.n_params - budget) / budget < 0.03
    assert max(head) - min(head) <= 1


def test_the_projects_architectures_are_unchanged():
    # the configs' nets (fit, ratio, MNIST DNNs, CNNs): a builder change must not move them
    assert [dnn_arch(3, b).widths for b in (40, 80, 160, 400, 1000)] == [
        (3, 3, 4),
        (6, 6, 3),
        (7, 7, 10),
        (14, 14, 10),
        (18, 18, 31),
    ]
    assert [dnn_arch(6, b).widths for b in (40, 1000)] == [(2, 2, 2, 2, 2, 3), (14, 14, 14, 14, 14, 8)]
    assert [dnn_arch(1, b).widths for b in (40, 200, 1000)] == [(13,), (66,), (333,)]
    assert [dnn_arch(d, 50_000, n_in=784, n_out=10).widths for d in (4, 8)] == [
        (51, 51, 51, 75),
        (44,) * 7 + (65,),
    ]
    from hw1.models import cnn_arch

    assert [cnn_arch(d, 20_000).widths for d in (1, 2, 4)] == [(10,), (40, 23), (28, 28, 28, 21)]
    assert cnn_arch(4, 90_000).widths == (52, 52, 52, 85)


# -------------------------------------------------------------- hw1.stats, found by mutation
def test_verdict_to_dict_is_json_ready_and_says_decided():
    v = stats.Verdict(
        status=stats.REPRODUCED,
        test="t",
        statistic=2.0,
        p_value=0.01,
        alpha=0.05,
        effect_name="e",
        effect=0.5,
        ci_low=float("nan"),
        ci_high=float("inf"),
        n=8,
        detail="d",
    )
    d = stats.Verdict.to_dict(v)
    assert d["statistic"] == 2.0 and d["p_value"] == 0.01 and d["effect"] == 0.5
    assert d["ci_low"] is None and d["ci_high"] is None and d["p_opposite"] is None
    assert d["decided"] is True and d["n"] == 8
    json.dumps(d, allow_nan=False)


def test_inconclusive_decides_nothing_and_estimates_nothing():
    v = stats.inconclusive("smoke scale")
    assert (v.status, v.test, v.n, v.effect_name, v.detail) == (
        stats.INCONCLUSIVE,
        "not run",
        0,
        "not estimated",
        "smoke scale",
    )
    assert not v.decided and all(np.isnan([v.statistic, v.p_value, v.effect, v.ci_low, v.ci_high]))
    assert stats.inconclusive("x", test="Page", n=3).n == 3


def _page_p_by_enumeration(ranks):
    """Upper-tail p of Page's L by listing every assignment of orderings to the blocks."""
    import itertools

    m, k = ranks.shape
    w = np.arange(1, k + 1)
    L = (ranks * w).sum()
    block = [int(np.dot(w, p)) for p in itertools.permutations(w)]
    sums = [sum(c) for c in itertools.product(block, repeat=m)]
    return np.mean(np.array(sums) >= L - 1e-9)


@pytest.mark.parametrize(
    "ranks",
    [
        [[1, 2, 3]],
        [[3, 2, 1]],
        [[1, 3, 2], [2, 1, 3]],
        [[1, 2]],
        [[2, 1], [1, 2]],
        [[2, 1, 3, 5, 4, 6, 8, 7]],
    ],
)
def test_page_p_of_small_tables_is_exact(ranks):
    ranks = np.array(ranks, dtype=float)
    assert stats._page_exact(ranks) == pytest.approx(_page_p_by_enumeration(ranks), abs=1e-12)


def test_page_p_beyond_eight_conditions_is_the_normal_approximation():
    import scipy.stats as sps

    rng = np.random.default_rng(0)
    for m in (1, 2, 3):
        ranks = np.array([rng.permutation(9) + 1 for _ in range(m)], dtype=float)
        L = (ranks * np.arange(1, 10)).sum()
        mean, var = m * 9 * 10**2 / 4, m * 81 * 10 * 80 / 144  # Page (1963)
        assert stats._page_exact(ranks) == pytest.approx(float(sps.norm.sf((L - mean) / np.sqrt(var))))


@pytest.mark.parametrize(
    "bad",
    [
        dict(multipliers=(), spend=()),
        dict(multipliers=(1, 2), spend=(1.0,)),
        dict(multipliers=(1, 1), spend=(0.5, 1.0)),
        dict(multipliers=(2, 1), spend=(0.5, 1.0)),
        dict(multipliers=(0, 2), spend=(0.5, 1.0)),
        dict(multipliers=(1, 2), spend=(0.5, 0.5)),
        dict(multipliers=(1, 2), spend=(0.0, 1.0)),
        dict(multipliers=(1, 2), spend=(0.5, 1.1)),
    ],
)
def test_stage_plans_that_break_the_rules_are_refused(bad):
    with pytest.raises(ValueError, match="StagePlan needs|multipliers must rise|spending must rise"):
        stats.StagePlan(**bad)


def test_stage_plans_that_keep_the_rules_are_accepted():
    plan = stats.StagePlan(multipliers=(1, 2, 4), spend=(0.5, 0.75, 1.0))
    assert plan.levels(0.05) == pytest.approx([0.025, 0.0125, 0.0125]) and plan.counts(3) == [3, 6, 12]
    stats.StagePlan(multipliers=(1,), spend=(1.0,))
    stats.StagePlan(multipliers=(1, 3), spend=(0.2, 0.9))


@pytest.mark.parametrize("alternative, sign", [("greater", ">"), ("less", "<")])
def test_one_sample_test_is_wilcoxon_against_the_null_value(alternative, sign):
    import scipy.stats as sps

    x = 1.0 + np.array([0.9, 1.4, 0.2, -0.3, 1.6, 0.35, 1.2, -0.55, 0.05, -1.5])  # no ties in |x - 1|
    v = stats.one_sample_test(x, alternative=alternative, null=1.0, claim="C")
    ref = sps.wilcoxon(x - 1.0, alternative=alternative, zero_method="zsplit", method="exact")
    assert v.p_value == pytest.approx(ref.pvalue)
    assert v.test == f"Wilcoxon signed-rank test, one-sample, one-sided (x {sign} 1)"
    assert (v.effect_name, v.effect, v.n, v.alpha) == ("median", pytest.approx(np.median(x)), 10, stats.ALPHA)
    lo, hi = stats.bootstrap_ci(
        x - 1.0, lambda b: np.median(b, axis=-1), level=0.95, n_resamples=2000, seed=0, vectorized=True
    )
    assert (v.ci_low, v.ci_high) == (pytest.approx(lo + 1.0), pytest.approx(hi + 1.0))
    on_side = int((x > 1).sum()) if alternative == "greater" else int((x < 1).sum())
    assert v.detail.startswith(f"C: Across 10 seeds, the value was {sign} 1 in {on_side}/10 seeds (median ")
    assert stats.one_sample_test(x, alternative=alternative, null=1.0, level=0.5).ci_low > v.ci_low


def test_one_sample_test_takes_lists_of_ints():
    assert stats.one_sample_test([1, 2, 3, 4, 5, 6], alternative="greater").status == stats.REPRODUCED


def test_staged_to_dict_names_its_stages_stop_and_seeds():
    plan = stats.StagePlan(multipliers=(1, 2), spend=(0.5, 1.0))
    got = stats.staged(
        lambda seeds, a: (stats.one_sample_test(np.ones(len(seeds)), alternative="greater", alpha=a), None),
        5,
        plan,
    )
    d = got.to_dict()
    assert set(d) == {"stages", "reason", "stop", "seeds_used"} and d["seeds_used"] == len(got.seeds)
    assert d["stop"] == got.stop and d["stages"] == got.stages and d["reason"] == got.reason


def test_small_p_values_are_written_in_scientific_notation():
    assert stats.format_p(3e-5) == "3.0e-05" and stats.format_p(0.0123) == "0.012"
    assert stats.format_p(np.nan) == "—"


def test_a_not_shown_signed_rank_test_says_how_many_seeds_it_would_need():
    v = stats.paired_test([1.0, 2, 3, 4, 5, 6], [0.5, 2.5, 2.4, 4.2, 4.1, 5.9], alternative="greater")
    assert v.status == stats.NOT_SHOWN and np.isfinite(v.seeds_needed) and "would need about" in v.detail
    bad = stats.one_sample_test([1.0, np.nan], alternative="greater")
    assert bad.status == stats.INCONCLUSIVE and bad.test.startswith("Wilcoxon signed-rank test, one-sample")


def test_all_of_nothing_says_so():
    v = stats.all_of([], claim="C")
    assert v.status == stats.INCONCLUSIVE and v.detail == "C: no parts to combine."


def test_conditional_power_is_zero_at_or_past_the_last_stage_and_without_a_p_value():
    assert stats.conditional_power(0.01, 10, 10, 0.05) == 0.0
    assert stats.conditional_power(0.01, 12, 10, 0.05) == 0.0
    assert stats.conditional_power(np.nan, 5, 10, 0.05) == 0.0
    assert 0 < stats.conditional_power(0.01, 5, 10, 0.05) < 1


@pytest.mark.parametrize("alternative, word", [("greater", "positive"), ("less", "negative")])
def test_correlation_test_names_its_side_and_uses_its_level_and_seed(alternative, word):
    x = np.arange(12.0)
    y = x * (1 if alternative == "greater" else -1) + np.random.default_rng(0).normal(0, 3, 12)
    v = stats.correlation_test(x, y, alternative=alternative)
    assert v.test == f"Kendall tau test, one-sided ({word})" and v.status == stats.REPRODUCED
    xy = np.stack([x, y], axis=1)
    for kw in (dict(level=0.5, seed=0), dict(level=0.95, seed=3)):
        got = stats.correlation_test(x, y, alternative=alternative, **kw)
        ref = stats.bootstrap_ci(xy, stats._batched_tau_b, vectorized=True, **kw)
        assert (got.ci_low, got.ci_high) == pytest.approx(ref)
    expected = stats.bootstrap_ci(xy, stats._batched_tau_b, vectorized=True)
    assert (v.ci_low, v.ci_high) == pytest.approx(expected)


def test_a_contradiction_needs_the_opposite_p_strictly_below_alpha():
    kw = dict(alpha=0.05, min_attainable_p=0.01, effect_in_direction=False)
    assert stats.decide(0.9, p_opposite=0.05, **kw) == stats.NOT_SHOWN
    assert stats.decide(0.9, p_opposite=0.0499, **kw) == stats.CONTRADICTED


@pytest.mark.parametrize("alternative, sign", [("greater", ">"), ("less", "<")])
def test_proportion_test_is_the_exact_binomial_test_against_p0(alternative, sign):
    import scipy.stats as sps

    v = stats.proportion_test(7, 20, p0=0.2, alternative=alternative)
    assert v.p_value == pytest.approx(sps.binomtest(7, 20, 0.2, alternative=alternative).pvalue)
    assert v.test == f"exact binomial test, one-sided (rate {sign} 0.2)"
    assert (v.statistic, v.effect, v.n) == (7.0, 0.35, 20)


def test_proportion_test_can_decide_when_every_trial_is_on_the_claimed_side():
    # min attainable p is p0^n (greater) or (1 - p0)^n (less): 0.5^10 ~ 0.001 decides
    assert stats.proportion_test(0, 10, p0=0.5, alternative="less").status == stats.REPRODUCED
    assert stats.proportion_test(10, 10, p0=0.5, alternative="greater").status == stats.REPRODUCED
    assert stats.proportion_test(0, 3, p0=0.5, alternative="less").status == stats.INCONCLUSIVE


def test_stages_are_numbered_from_one():
    plan = stats.StagePlan(multipliers=(1, 2), spend=(0.5, 1.0))

    def measure(seeds, a):
        return stats.one_sample_test(np.linspace(-1, 1.1, len(seeds)), alternative="greater", alpha=a), None

    got = stats.staged(measure, 4, plan)
    assert [s["stage"] for s in got.stages] == list(range(1, len(got.stages) + 1))


def test_a_trend_test_that_cannot_decide_says_why_in_seeds_and_conditions():
    v = stats.trend_test([[1.0, 2.0, 3.0]], direction="increasing")
    assert v.status == stats.INCONCLUSIVE
    assert "With 1 seed and 3 conditions the smallest attainable p" in v.detail
    two = stats.trend_test([[1.0, 2], [1, 3]], direction="increasing")
    assert "With 2 seeds and 2 conditions" in two.detail


# -------------------------------------------------------------- hw1.cache, found by mutation
# per_seed runs when a function is decorated, so these tests decorate inside the test: a function
# decorated at import would keep the decorator's code from before any change (or mutant).


def _width_run(width, seeds, *, scale=2.0, device="cpu"):
    return {"w": torch.tensor([[float(width * scale + s)] for s in seeds])}


def test_per_seed_keys_are_the_entries_it_writes_and_its_result_gets_the_bound_arguments(run_cache):
    from hw1 import cache

    seen = []
    f = cache.per_seed(_width_run, result=lambda tensors, args: seen.append(args) or tensors)
    got = f(3, range(2), scale=2.5)
    assert got["w"].flatten().tolist() == [7.5, 8.5]
    assert {p.name for p in run_cache.iterdir() if not p.name.endswith(".lock")} == set(
        f.keys(3, [0, 1], scale=2.5).values()
    )
    assert f.keys(3, [0, 1], scale=2.5) != f.keys(3, [0, 1])  # keyword arguments count
    assert seen == [{"width": 3, "seeds": [0, 1], "scale": 2.5, "device": "cpu"}]
    with_modules = cache.per_seed(modules=("landscape",))(_width_run)
    assert with_modules.keys(3, [0]) != f.keys(3, [0])


def test_per_seed_keys_on_the_source_of_functions_outside_hw1(monkeypatch):
    from hw1 import cache

    keys = []
    for digest in ("a", "b"):
        monkeypatch.setattr(cache, "_source_digest", lambda fn, d=digest: d)
        keys.append(cache.per_seed(_width_run).keys(3, [0]))
    assert keys[0] != keys[1]


def test_modules_of_a_call_are_its_own_and_its_dataclasses_less_config():
    from hw1 import cache
    from hw1.config import SMOKE

    assert cache._modules_of(_width_run, {"arch": Arch("dnn", (3,)), "cfg": SMOKE.fit, "n": 3}) == ("models",)
    assert cache._modules_of(hessian_eigenvalues, {"arch": Arch}) == ("landscape",)  # a class is no value


def _stored_entry(root):
    from hw1 import cache

    root.mkdir(parents=True, exist_ok=True)
    entry = root / cache.run_key({"what": "probe", "seed": 0}, "cpu")
    cache._store(entry, {"a": torch.ones(2)}, {})
    return entry


def test_an_entry_of_non_tensors_is_discarded_with_its_reason(run_cache):
    from hw1 import cache

    entry = _stored_entry(run_cache)
    torch.save({"a": 1}, entry / "tensors.pt")  # a dict of str -> int, with a matching checksum
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps({**meta, "sha256": cache._sha(entry / "tensors.pt")}))
    with pytest.warns(cache.CacheWarning, match="tensors.pt does not hold a dict of named tensors"):
        assert cache._load(entry) is None
    assert not entry.exists()


def test_load_discards_by_default_and_says_why(run_cache):
    from hw1 import cache

    entry = _stored_entry(run_cache)
    (entry / "tensors.pt").write_bytes(b"not a checkpoint")
    assert cache._load(entry, discard=False) is None and entry.exists()
    with pytest.warns(cache.CacheWarning, match=r"ValueError: checksum mismatch"):
        assert cache._load(entry) is None
    assert not entry.exists()
    with pytest.warns(cache.CacheWarning):
        cache._discard(entry, "already gone")  # a concurrent discard is no error


def test_store_writes_into_a_hidden_sibling_then_renames(run_cache, monkeypatch):
    # same folder: the rename is atomic; hidden ".<key>.": clear() finds a leftover by its name
    import os

    renames = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renames.append((Path(a), Path(b))) or real(a, b))
    entry = _stored_entry(run_cache)
    ((src, dst),) = renames
    assert dst == entry and src.parent == entry.parent and src.name.startswith(f".{entry.name}.")


def test_clear_removes_leftover_temporary_folders(run_cache):
    from hw1 import cache

    entry = _stored_entry(run_cache)
    leftover = run_cache / f".{entry.name}.x1y2"
    leftover.mkdir()
    assert cache.clear() == 1 and not run_cache.exists()


def test_run_keys_do_not_depend_on_dict_order_and_allow_nan():
    from hw1 import cache

    a = cache.run_key({"a": 1, "b": {"c": 2, "d": 3}}, "cpu")
    assert a == cache.run_key({"b": {"d": 3, "c": 2}, "a": 1}, "cpu")
    assert cache.run_key({"tol": float("nan")}, "cpu") != cache.run_key({"tol": 0.0}, "cpu")


def test_split_and_join_refuse_malformed_results_with_their_message():
    from hw1 import cache

    with pytest.raises(TypeError, match="must return a dict of str -> torch.Tensor"):
        cache._split({"a": 1}, [0])
    with pytest.raises(ValueError, match=r"seed 1's entry holds \['b'\], seed 0's \['a'\]"):
        cache._join([{"a": torch.ones(1)}, {"b": torch.ones(1)}], [0, 1])


def test_an_entry_without_seconds_loads_as_zero_seconds(run_cache):
    from hw1 import cache

    entry = _stored_entry(run_cache)
    ((got, seconds),) = cache._load_all(run_cache, {0: entry.name}, discard=False).values()
    assert seconds == 0.0 and torch.equal(got["a"], torch.ones(2))


def test_the_spec_may_not_hold_the_seed(run_cache):
    from hw1 import cache

    for bad in ({"seed": 0}, {"seeds": [0]}):
        with pytest.raises(ValueError, match="the spec excludes the seeds"):
            cache.cached_seeds(bad, [0], "cpu", lambda s: {"w": torch.ones(len(s), 1)})


def test_entries_of_a_producer_with_modules_are_under_its_keys(run_cache):
    from hw1 import cache

    f = cache.per_seed(modules=("landscape",))(_width_run)
    f(3, [0])
    assert (run_cache / f.keys(3, [0])[0]).is_dir()


def test_a_nested_call_with_the_cache_off_counts_its_seconds_once(run_cache, monkeypatch):
    from hw1 import cache

    monkeypatch.setenv("HW1_NO_CACHE", "1")
    cache.reset_train_seconds()

    def outer(seeds):
        inner = cache.cached_seeds({"what": "inner"}, seeds, "cpu", lambda s: {"w": torch.ones(len(s), 1)})
        return {"v": inner["w"] * 2}

    got = cache.cached_seeds({"what": "outer"}, [0, 1], "cpu", outer)
    assert got["v"].flatten().tolist() == [2.0, 2.0] and cache.train_seconds() >= 0


def test_one_sample_test_defaults_to_bootstrap_seed_zero_and_no_claim():
    x = 1.0 + np.random.default_rng(1).normal(0.3, 1, 40)
    v = stats.one_sample_test(x, alternative="greater", null=1.0)
    again = stats.one_sample_test(x, alternative="greater", null=1.0, seed=0)
    assert (v.ci_low, v.ci_high) == (again.ci_low, again.ci_high)
    assert v.ci_low != stats.one_sample_test(x, alternative="greater", null=1.0, seed=1).ci_low
    assert v.detail.startswith("Across 40 seeds, the value was > 1 in ")


def test_a_stage_plan_without_one_spend_per_stage_says_exactly_that():
    with pytest.raises(ValueError, match="^a StagePlan needs one spend fraction per stage$"):
        stats.StagePlan(multipliers=(1, 2), spend=(1.0,))
