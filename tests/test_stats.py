"""Tests of hw1.stats: calibration under the null, power, the decision rule, properties."""

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from records import verdict
from scipy import stats as sps

from hw1 import stats as S

# Derandomized and without an example database: CI runs are reproducible and write nothing.
FAST = settings(max_examples=30, deadline=None, derandomize=True, database=None)
REPS = 400  # Monte-Carlo repetitions per calibration check


def _max_false_positives(reps=REPS, alpha=S.ALPHA):
    # A level-alpha test exceeds this count with probability <= 0.001.
    return sps.binom.ppf(0.999, reps, alpha)


# ----------------------------------------------------------------------------- calibration
@pytest.mark.parametrize("direction", ["increasing", "decreasing"])
def test_trend_test_is_calibrated_on_null_data(direction):
    rng = np.random.default_rng(123)
    hits = sum(
        S.trend_test(rng.normal(size=(8, 3)), direction=direction).status == S.REPRODUCED for _ in range(REPS)
    )
    assert hits <= _max_false_positives()


@pytest.mark.parametrize("alternative", ["less", "greater"])
def test_paired_test_is_calibrated_on_null_data(alternative):
    rng = np.random.default_rng(7)
    hits = sum(
        S.paired_test(*rng.normal(size=(2, 8)), alternative=alternative).status == S.REPRODUCED
        for _ in range(REPS)
    )
    assert hits <= _max_false_positives()


def test_paired_test_is_calibrated_with_ties_and_zeros():
    # Coarse metrics (e.g. accuracy on a small test set) give zero differences.
    rng = np.random.default_rng(8)
    hits = sum(
        S.paired_test(*rng.integers(0, 3, size=(2, 10)), alternative="greater").status == S.REPRODUCED
        for _ in range(REPS)
    )
    assert hits <= _max_false_positives()


def test_one_sample_test_is_calibrated_on_null_data():
    rng = np.random.default_rng(11)
    hits = sum(
        S.one_sample_test(rng.normal(0.3, 1.0, size=8), alternative="greater", null=0.3).status
        == S.REPRODUCED
        for _ in range(REPS)
    )
    assert hits <= _max_false_positives()


def test_correlation_test_is_calibrated_on_null_data():
    rng = np.random.default_rng(5)
    hits = sum(
        S.correlation_test(*rng.normal(size=(2, 10)), alternative="greater").status == S.REPRODUCED
        for _ in range(REPS)
    )
    assert hits <= _max_false_positives()


def test_proportion_test_is_calibrated_on_null_data():
    rng = np.random.default_rng(3)
    hits = sum(
        S.proportion_test(int(rng.binomial(20, 0.5)), 20, p0=0.5, alternative="greater").status
        == S.REPRODUCED
        for _ in range(REPS)
    )
    assert hits <= _max_false_positives()


# ----------------------------------------------------------------------------- power
def _trend(seed, n=8, k=3):
    rng = np.random.default_rng(seed)
    return np.arange(k) * 1.0 + rng.normal(0.0, 0.3, size=(n, k))


def test_trend_test_reproduces_a_clear_trend_in_both_directions():
    up = S.trend_test(_trend(0), direction="increasing")
    down = S.trend_test(-_trend(0), direction="decreasing")
    for v in (up, down):
        assert v.status == S.REPRODUCED and v.p_value < 0.001 and v.effect > 0.5
        assert v.ci_low <= v.effect <= v.ci_high and v.n == 8
    assert (up.statistic, up.p_value, up.effect) == (down.statistic, down.p_value, down.effect)


def test_trend_test_rejects_the_wrong_direction():
    v = S.trend_test(_trend(1), direction="decreasing")
    assert v.status == S.CONTRADICTED and v.effect < 0 and v.p_value > 0.5 and v.p_opposite < 0.001


def test_two_conditions_and_many_seeds_use_the_exact_sign_test():
    data = _trend(2, n=30, k=2)
    v = S.trend_test(data, direction="increasing")
    rises = int((data[:, 1] > data[:, 0]).sum())
    assert v.status == S.REPRODUCED and f"{rises}/30 seeds" in v.detail
    assert v.p_value == pytest.approx(sps.binom.sf(rises - 1, 30, 0.5))  # sign-test tail


def test_other_tests_have_power_on_clear_effects():
    rng = np.random.default_rng(4)
    a = rng.normal(size=10)
    assert S.paired_test(a, a + 1.0, alternative="less").status == S.REPRODUCED
    assert S.paired_test(a, a + 1.0, alternative="greater").status == S.CONTRADICTED
    assert S.one_sample_test(a + 3.0, alternative="greater").status == S.REPRODUCED
    assert S.one_sample_test(a + 3.0, alternative="less").status == S.CONTRADICTED
    x = np.arange(10.0)
    assert S.correlation_test(x, x + rng.normal(0, 0.5, 10), alternative="greater").status == S.REPRODUCED
    assert S.correlation_test(x, -x, alternative="greater").status == S.CONTRADICTED
    assert S.proportion_test(19, 20, p0=0.5, alternative="greater").status == S.REPRODUCED
    assert S.proportion_test(19, 20, p0=0.5, alternative="less").status == S.CONTRADICTED
    v = S.proportion_test(3, 10, p0=0.1, alternative="greater")
    ci = sps.binomtest(3, 10).proportion_ci(0.95, method="exact")  # two-sided Clopper-Pearson
    assert (v.effect, v.ci_low, v.ci_high) == pytest.approx((0.3, ci.low, ci.high))
    assert v.ci_high < 1


# ----------------------------------------------------------------------------- inconclusive
def test_one_seed_with_three_conditions_is_inconclusive():
    v = S.trend_test([[1.0, 2.0, 3.0]], direction="increasing")
    assert v.status == S.INCONCLUSIVE and not v.decided
    assert v.p_value == pytest.approx(1 / 6)  # the design's best possible p
    assert "cannot decide" in v.detail


def test_one_seed_with_four_conditions_can_decide():
    assert S.trend_test([[1.0, 2.0, 3.0, 4.0]], direction="increasing").status == S.REPRODUCED


def test_nan_data_is_inconclusive_with_a_clear_detail():
    data = _trend(0)
    data[2, 1] = np.nan
    v = S.trend_test(data, direction="increasing")
    assert v.status == S.INCONCLUSIVE and "nan" in v.detail and v.n == 8
    assert S.paired_test([1, np.nan, 3], [1, 2, 3], alternative="less").status == S.INCONCLUSIVE
    assert S.correlation_test([1, 2, np.inf], [1, 2, 3], alternative="less").status == S.INCONCLUSIVE


def test_too_few_units_are_inconclusive_even_when_perfect():
    x = np.arange(4.0)
    assert S.paired_test(x, x + 1, alternative="less").status == S.INCONCLUSIVE  # 0.5**4 > .05
    assert (
        S.paired_test(np.arange(5.0), np.arange(5.0) + 1, alternative="less").status == S.REPRODUCED
    )  # 0.5**5 < .05
    assert S.correlation_test(x[:3], x[:3], alternative="greater").status == S.INCONCLUSIVE
    assert S.proportion_test(4, 4, p0=0.5, alternative="greater").status == S.INCONCLUSIVE
    assert S.proportion_test(0, 0, p0=0.5, alternative="greater").status == S.INCONCLUSIVE


def test_constant_data_is_not_shown_not_an_error():
    assert S.trend_test(np.ones((8, 3)), direction="increasing").status == S.NOT_SHOWN
    assert S.paired_test(np.ones(8), np.ones(8), alternative="less").status == S.NOT_SHOWN
    v = S.correlation_test(np.ones(8), np.arange(8.0), alternative="greater")
    assert v.status == S.INCONCLUSIVE and "undefined" in v.detail


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        S.trend_test(np.ones((3, 3)), direction="up")
    with pytest.raises(ValueError):
        S.trend_test(np.ones((3, 1)), direction="increasing")
    with pytest.raises(ValueError):
        S.paired_test(np.ones(3), np.ones(4), alternative="less")
    with pytest.raises(ValueError):
        S.one_sample_test(np.ones(3), alternative="two-sided")


# ----------------------------------------------------------------------------- decision, Verdict
@pytest.mark.parametrize(
    "p, p_opp, min_p, in_dir, expected",
    [
        (0.01, 0.99, 0.001, True, S.REPRODUCED),
        (0.99, 0.01, 0.001, False, S.CONTRADICTED),
        (0.01, 0.99, 0.001, False, S.NOT_SHOWN),  # p small but the estimate points the other way
        (0.20, 0.80, 0.001, True, S.NOT_SHOWN),
        (0.80, 0.20, 0.001, False, S.NOT_SHOWN),
        (0.01, 0.99, 0.10, True, S.INCONCLUSIVE),
        (0.99, 0.01, 0.10, False, S.CONTRADICTED),  # the claim is out of reach, its opposite is not
        (float("nan"), 0.01, 0.001, True, S.INCONCLUSIVE),
    ],
)
def test_decide_rule(p, p_opp, min_p, in_dir, expected):
    assert (
        S.decide(p, alpha=0.05, min_attainable_p=min_p, effect_in_direction=in_dir, p_opposite=p_opp)
        == expected
    )


P_OPP = {S.REPRODUCED: 0.99, S.CONTRADICTED: 0.001, S.NOT_SHOWN: 0.5, S.INCONCLUSIVE: 0.5}


def _verdict(status, p):
    return verdict(status=status, test=f"test{p}", p_value=p, effect=p * 10, n=8, p_opposite=P_OPP[status])


@pytest.mark.parametrize("statuses", list(itertools.product(S.OUTCOMES, repeat=2)))
def test_all_of_logic_table(statuses):
    parts = [_verdict(s, p) for s, p in zip(statuses, (0.01, 0.02))]
    v = S.all_of(parts, claim="both parts")
    if all(s == S.REPRODUCED for s in statuses):
        assert v.status == S.REPRODUCED
    elif S.CONTRADICTED in statuses:  # 2 x 0.001 < 0.05: Bonferroni still rejects
        assert v.status == S.CONTRADICTED
    elif S.INCONCLUSIVE in statuses:
        assert v.status == S.INCONCLUSIVE
    else:
        assert v.status == S.NOT_SHOWN
    assert v.p_value == 0.02 and v.effect == pytest.approx(0.2)  # the max-p part's numbers
    assert v.test == "intersection-union of: test0.01; test0.02"
    assert all(p.summary() in v.detail for p in parts)


def test_all_of_edge_cases():
    assert S.all_of([]).status == S.INCONCLUSIVE
    nan_part = S.inconclusive("smoke scale")
    v = S.all_of([_verdict(S.REPRODUCED, 0.01), nan_part])
    assert v.status == S.INCONCLUSIVE and math.isnan(v.p_value)


def test_verdict_serialises_and_summarises():
    for v in (S.inconclusive("smoke scale", n=2), S.trend_test(_trend(0), direction="increasing")):
        d = v.to_dict()
        json.dumps(d, allow_nan=False)  # strict JSON: nan must have become None
        assert set(d) >= {"status", "test", "p_value", "effect", "ci_low", "n", "detail"}
        assert v.status in v.summary() and "p = " in v.summary() and "\n" not in v.summary()
    assert S.inconclusive("x").to_dict()["p_value"] is None
    assert S.trend_test(_trend(0), direction="increasing").decided


# ----------------------------------------------------------------------------- properties
finite_1d = hnp.arrays(
    np.float64, st.integers(1, 12), elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
)


@FAST
@given(finite_1d, st.integers(0, 2**32 - 1))
def test_bootstrap_ci_is_ordered_and_contains_the_estimate(x, seed):
    for stat in (np.mean, np.median):
        lo, hi = S.bootstrap_ci(x, stat, n_resamples=300, seed=seed)
        tol = 1e-9 * (1 + np.abs(x).max())
        assert lo <= hi and lo - tol <= stat(x) <= hi + tol


@FAST
@given(finite_1d, st.integers(0, 1000))
def test_bootstrap_ci_vectorized_matches_loop(x, seed):
    loop = S.bootstrap_ci(x, np.median, n_resamples=200, seed=seed)
    vec = S.bootstrap_ci(x, lambda b: np.median(b, axis=-1), n_resamples=200, seed=seed, vectorized=True)
    assert loop == pytest.approx(vec)


def test_bootstrap_ci_degenerate_and_seeded():
    assert S.bootstrap_ci(np.full((5, 2), 0.1), np.mean) == (0.1, 0.1)
    x = np.random.default_rng(0).normal(size=(9, 2))
    stat = lambda a: float(a[:, 0].mean() - a[:, 1].mean())  # noqa: E731  rows resampled jointly
    assert S.bootstrap_ci(x, stat, seed=1) == S.bootstrap_ci(x, stat, seed=1)
    assert S.bootstrap_ci(x, stat, seed=np.random.default_rng(1)) == S.bootstrap_ci(x, stat, seed=1)


small_int_table = hnp.arrays(
    np.float64, st.tuples(st.integers(1, 6), st.integers(2, 5)), elements=st.integers(-4, 4).map(float)
)


@FAST
@given(small_int_table, st.sampled_from(["increasing", "decreasing"]))
def test_trend_test_depends_only_on_within_seed_ranks(data, direction):
    base = S.trend_test(data, direction=direction)
    for transformed in (2.0 * data + 3.0, data**3 + data, np.exp(data)):
        v = S.trend_test(transformed, direction=direction)
        assert (v.status, v.statistic, v.effect, v.ci_low, v.ci_high) == (
            base.status,
            base.statistic,
            base.effect,
            base.ci_low,
            base.ci_high,
        )
        assert v.p_value == pytest.approx(base.p_value)


@FAST
@given(small_int_table)
def test_trend_directions_mirror_each_other(data):
    up = S.trend_test(data, direction="increasing")
    down = S.trend_test(-data, direction="decreasing")
    assert (up.status, up.statistic, up.effect) == (down.status, down.statistic, down.effect)


@FAST
@given(small_int_table)
def test_row_tau_matches_scipy_kendalltau(data):
    k = data.shape[1]
    for row, tau in zip(data, S._row_tau(data)):
        expected = sps.kendalltau(np.arange(k), row).statistic if np.ptp(row) else 0.0
        assert tau == pytest.approx(expected)


@FAST
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(2, 10), st.just(2)), elements=st.integers(-3, 3).map(float))
)
def test_batched_tau_b_matches_scipy(pairs):
    got = S._batched_tau_b(pairs[None])[0]
    if np.ptp(pairs[:, 0]) and np.ptp(pairs[:, 1]):
        assert got == pytest.approx(sps.kendalltau(pairs[:, 0], pairs[:, 1]).statistic)
    else:
        assert math.isnan(got)


@pytest.mark.parametrize("shape", [(2, 3), (3, 3), (4, 4), (3, 5)])
def test_page_enumeration_matches_scipy_exact(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        ranks = sps.rankdata(rng.normal(size=shape) + np.arange(shape[1]) * 0.3, axis=1)
        expected = sps.page_trend_test(ranks, ranked=True, method="exact").pvalue
        assert S._page_exact(ranks) == pytest.approx(expected)


@FAST
@given(
    hnp.arrays(np.float64, st.integers(1, 12), elements=st.integers(-3, 3).map(float)),
    st.integers(0, 3).map(float),
)
def test_paired_test_is_antisymmetric(a, shift):
    b = a[::-1] + shift
    less = S.paired_test(a, b, alternative="less")
    greater = S.paired_test(b, a, alternative="greater")
    assert less.status == greater.status
    assert less.effect == pytest.approx(-greater.effect)
    assert (math.isnan(less.p_value) and math.isnan(greater.p_value)) or less.p_value == pytest.approx(
        greater.p_value
    )


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(
    hnp.arrays(np.float64, st.integers(2, 7), elements=st.integers(-3, 3).map(float)),
    st.sampled_from(["less", "greater"]),
)
def test_signed_rank_matches_scipy_wilcoxon_zsplit(d, alternative):
    # scipy is exact (no ties) or exhaustively permutes (ties, zeros) at this size.
    ref = sps.wilcoxon(d, zero_method="zsplit", alternative=alternative)
    assert S._signed_rank_exact(d, alternative)[:2] == pytest.approx((ref.statistic, ref.pvalue))


# -------------------------------------- futility: each part's own z, a discrete test's exact table
CI_PLAN = S.StagePlan(multipliers=(1, 2, 4), spend=(0.5, 0.75, 1.0), futility=0.05)


def _part(p_claim: float, z: float, n: int = 5) -> S.Verdict:
    """A 'not shown' part with one-sided p for the claim and a standardized statistic z."""
    return verdict(p_value=p_claim, alpha=0.025, n=n, p_opposite=1 - p_claim, z_parts=(z,))


def test_futility_of_a_multi_part_claim_extrapolates_each_part_at_level_over_m():
    """cnn-depth at the default seeds: two parts, one leaning the opposite way (opposite p 0.22).
    The old rule took z from the Bonferroni-adjusted p (2 x 0.22) and stopped (chance 0.013); per
    part, at level / 2, the chance is about 0.14, so the case goes on."""
    lean = _part(0.78, -S.z_score(0.22))
    flat = _part(0.6, -S.z_score(0.4))
    v = S.all_of([lean, flat])
    assert v.z_parts == (lean.z_parts[0], flat.z_parts[0])
    claim_cp, opposite_cp = S.futility_powers(v, 5, 20, 0.0125)
    assert math.isclose(opposite_cp, S.conditional_power(0.22, 5, 20, 0.0125 / 2))
    assert 0.10 < opposite_cp < 0.20
    old = S.conditional_power(v.p_opposite, 5, 20, 0.0125)  # the combination's adjusted p
    assert old < 0.05 < opposite_cp
    assert claim_cp == min(S.conditional_power_z(z, 5, 20, 0.0125) for z in v.z_parts)

    stages = iter([v, v, v])
    r = S.staged(lambda seeds, alpha: (next(stages), None), 5, CI_PLAN)
    assert len(r.stages) > 1, r.stop  # stage 1 goes on (the old rule stopped it there)
    assert math.isclose(r.stages[0]["power_opposite"], opposite_cp)


def test_futility_of_a_discrete_test_uses_its_exact_table():
    """trajectories-diverge at stage 2: 5 of 8 pairs close, 16 of 32 seeds. The normal
    extrapolation of the standardized count gave 0.040 at the last level 0.0125; the exact binomial
    chance (the other 8 pairs succeed at 5/8, the total must reach the exact test's critical
    count) is 0.023. For 7 of 8 it is 0.933, not 0.858."""
    from scipy import stats as sps

    def brute(x, level):  # every outcome of the 8 pairs still to come
        return sum(
            sps.binom.pmf(y, 8, x / 8)
            for y in range(9)
            if sps.binomtest(x + y, 16, 0.5, alternative="greater").pvalue < level
        )

    for x, expected in ((5, 0.0233), (7, 0.9327)):
        v = S.proportion_test(x, 8, p0=0.5, alternative="greater")
        claim, _ = S.futility_powers(v, 16, 32, 0.0125)
        assert math.isclose(claim, brute(x, 0.0125)) and math.isclose(claim, expected, abs_tol=5e-4)
        assert not math.isclose(claim, S.conditional_power_z(v.z_parts[0], 16, 32, 0.0125), abs_tol=0.01)
    # the opposite direction is the lower tail: the same chance as a claim that the rate is low
    _, opposite = S.futility_powers(S.proportion_test(1, 8, p0=0.5, alternative="greater"), 16, 32, 0.0125)
    claim_low, _ = S.futility_powers(S.proportion_test(1, 8, p0=0.5, alternative="less"), 16, 32, 0.0125)
    assert math.isclose(opposite, claim_low) and math.isclose(opposite, 0.9327, abs_tol=5e-4)


def test_the_exact_critical_value_of_a_rank_test_is_its_exact_tests():
    from scipy import stats as sps

    z = S.critical_z(("signed-rank", 8), 12, 0.0125)
    n, mean, sd = 12, 12 * 13 / 4, math.sqrt(12 * 13 * 25 / 24)
    w = round(mean + z * sd)  # the smallest W+ the exact test calls significant at 0.0125
    pvals = {
        k: sps.wilcoxon(
            np.arange(1.0, n + 1) * _signs_for(k, n), alternative="greater", method="exact"
        ).pvalue
        for k in (w - 1, w)
    }
    assert pvals[w] < 0.0125 <= pvals[w - 1], pvals
    page = S.critical_z(("page", 4, 3), 4, 0.05)
    mean, var = S._page_moments(4, 3)
    L = round(mean + page * math.sqrt(var))
    tail = S._page_null(4, 3)[L:].sum(), S._page_null(4, 3)[L - 1 :].sum()
    assert tail[0] < 0.05 <= tail[1]
    assert S.critical_z(("signed-rank", 5), 5, 0.025) == math.inf  # 1/32 > 0.025: unreachable
    assert S.critical_z((), 5, 0.025) is None and S.critical_z(("signed-rank", 500), 500, 0.025) is None


def _signs_for(w: int, n: int) -> np.ndarray:
    """Signs of ranks 1..n whose positive ranks sum to w (greedy from the largest rank)."""
    signs, left = -np.ones(n), w
    for r in range(n, 0, -1):
        if r <= left:
            signs[r - 1], left = 1.0, left - r
    assert left == 0
    return signs


def test_standardized_statistics_match_their_null_moments():
    # Wilcoxon: W+ = 36 of n = 8 all positive: (36 - 18) / sqrt(8*9*17/24) = 2.52
    w = S.one_sample_test(np.arange(1.0, 9.0), alternative="greater")
    assert math.isclose(w.z_parts[0], 18 / math.sqrt(8 * 9 * 17 / 24))
    assert math.isclose(S.one_sample_test(np.arange(1.0, 9.0), alternative="less").z_parts[0], -w.z_parts[0])
    # Page's L: every one of 4 seeds in the claimed order over 3 conditions
    t = S.trend_test(np.tile(np.arange(3.0), (4, 1)), direction="increasing")
    mean, var = 4 * 3 * 16 / 4, 4 * 9 * 4 * 8 / 144
    assert math.isclose(t.z_parts[0], (t.statistic - mean) / math.sqrt(var))
    # Kendall: tau = 1 over 6 runs
    c = S.correlation_test(np.arange(6.0), np.arange(6.0), alternative="greater")
    assert math.isclose(c.z_parts[0], 3 * math.sqrt(30) / math.sqrt(2 * 17))
    # the record keeps them (JSON: no tuples, no nan)
    assert S.all_of([w, t]).to_dict()["z_parts"] == [w.z_parts[0], t.z_parts[0]]


# ------------------------------------------------------------------ stages that cannot decide (fix 6)
def test_a_stage_that_cannot_reach_its_level_passes_its_alpha_on():
    """params-vs-generalization's Wilcoxon on 5 seeds: its smallest p (1/32) exceeds the first
    level (0.025), so that alpha goes to stages 2 and 3 (0.025 each); levels still sum to alpha."""
    got = []

    def measure(seeds, alpha):
        got.append(alpha)
        x = np.random.default_rng(len(seeds)).normal(size=len(seeds))
        return S.one_sample_test(x, alternative="less", alpha=alpha), None

    r = S.staged(measure, 5, CI_PLAN)
    assert r.stages[0]["can_decide"] is False and r.stages[0]["status"] == S.INCONCLUSIVE
    assert got[0] == 0.025 and all(math.isclose(a, 0.025) for a in got[1:]), got
    assert sum(got) <= 0.05 + 1e-12 or len(got) < 3
    # a design that can decide at every stage keeps the plan's levels
    got.clear()
    S.staged(measure, 6, CI_PLAN)
    assert got == CI_PLAN.levels(0.05)[: len(got)]


def test_min_p_of_each_test_is_its_design_not_its_data():
    assert S.one_sample_test(np.ones(5), alternative="greater").min_p == 0.5**5
    b = S.proportion_test(10, 10, p0=0.9, alternative="greater")
    assert math.isclose(b.min_p, 0.9**10) and math.isclose(b.min_p_opposite, 0.1**10)
    assert S.reachable(b, 0.025, 0.025) == (False, True)  # 0.9**10 = 0.35: only the opposite can
    both = S.all_of([S.one_sample_test(np.ones(5), alternative="greater"), b])
    assert math.isclose(both.min_p, 0.9**10) and math.isclose(both.min_p_opposite, 2 * 0.1**10)
    assert S.reachable(S.one_sample_test(np.ones(5), alternative="greater"), 0.025, 0.025) == (False, False)


def test_staged_with_a_design_that_cannot_decide_at_stage_1_stays_calibrated():
    """Null data, Wilcoxon over 5, 10, 20 seeds: false 'reproduced' at most alpha (4000 runs)."""

    def run(rep):
        def measure(seeds, alpha):
            x = np.stack([np.random.default_rng([rep, s]).normal() for s in seeds])
            return S.one_sample_test(x, alternative="greater", alpha=alpha), None

        return S.staged(measure, 5, CI_PLAN).verdict.status

    reps = 4000
    rate = [run(rep) for rep in range(reps)].count(S.REPRODUCED) / reps
    assert rate <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / reps), rate


def test_a_secondary_definition_is_described_without_outcome_words():
    v = S.trend_test(np.tile([3.0, 2.0, 1.0], (6, 1)), direction="decreasing")
    text = v.describe()
    assert "mean Kendall tau" in text and "[" in text and "over 6 seeds" in text
    assert not any(w in text for w in (*S.OUTCOMES, "p ="))


def _pairs_and_travel(seeds, alpha, shift: float = 0.0, rep: int = 0):
    """trajectories-diverge's design: a binomial over disjoint pairs of seeds (3 in 4 pairs close,
    or null when shift = 0 and rep > 0) and a Wilcoxon part over the seeds, intersection-union."""
    n = len(seeds)
    if rep:
        rng = np.random.default_rng([rep, n])
        close = int(rng.binomial(n // 2, 0.5))
        x = np.array([np.random.default_rng([rep, 10_000 + s]).normal() for s in seeds])
    else:
        close, x = 3 * n // 8, np.linspace(-1.0, 2.0, n)
    parts = [
        S.proportion_test(close, n // 2, p0=0.5, alternative="greater", alpha=alpha),
        S.one_sample_test(x + shift, alternative="greater", alpha=alpha),
    ]
    return S.all_of(parts), None


def test_each_direction_passes_on_the_alpha_it_cannot_use():
    """trajectories-diverge at 8 seeds: the claim's smallest p is 1/16 (4 pairs) > 0.025, while
    its opposite can reach 0.025 (Bonferroni over two parts: 2/256). The claim's stage-1 alpha goes
    to its later stages (0.025 each); the opposite keeps the plan's 0.0125, 0.0125. Passing on only
    when both directions are stuck left the claim at 0.0125."""
    got = []

    def measure(seeds, alpha):
        got.append(alpha)
        return _pairs_and_travel(seeds, alpha)

    r = S.staged(measure, 8, CI_PLAN)
    first, second = r.stages[0], r.stages[1]
    assert (first["can_decide_claim"], first["can_decide_opposite"]) == (False, True)
    assert got[:2] == [0.025, 0.025] and all(math.isclose(a, 0.025) for a in got), got
    assert second["alpha_opposite"] == 0.0125 and "0.025 (claim) / 0.0125 (opposite)" in r.stop
    assert math.isclose(sum(s["alpha_opposite"] for s in r.stages), 0.05) or len(r.stages) < 3


def test_per_direction_levels_stay_calibrated_on_null_data():
    """The same design on null data (1000 runs): each direction's false outcome stays <= alpha."""
    reps = 1000
    out = [
        S.staged(lambda s, a, rep=rep: _pairs_and_travel(s, a, rep=rep), 8, CI_PLAN)
        for rep in range(1, reps + 1)
    ]
    statuses = [r.verdict.status for r in out]
    bound = 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / reps)
    assert statuses.count(S.REPRODUCED) / reps <= bound and statuses.count(S.CONTRADICTED) / reps <= bound


def test_futility_waits_for_the_plans_first_futility_stage():
    flat = _part(0.5, 0.0, n=6)  # no effect either way: futile wherever futility may stop
    r = S.staged(lambda seeds, alpha: (flat, None), 6, CI_PLAN)
    assert r.reason == S.FUTILITY and len(r.stages) == 2 and r.stages[0]["power_claim"] < 0.05
    early = S.StagePlan(multipliers=(1, 2, 4), spend=(0.5, 0.75, 1.0), futility=0.05, futility_from=1)
    assert len(S.staged(lambda seeds, alpha: (flat, None), 6, early).stages) == 1
