"""The statistical tests: each turns a claim's measurements into a Verdict (`hw1.stats.verdict`).

Statistics are pure functions over numpy arrays whose first axis is the independent unit (seeds or
runs), e.g. ``(seeds, conditions)``, in the style of google-research/rliable. Every test is
one-sided (a claim has a direction), rank-based (robust to the odd diverging seed) and exact at the
sizes used here. The only randomness, the bootstrap, takes an explicit seed or numpy Generator.

Bootstrap intervals (percentile, resampling the first axis) describe the effect size; they never
enter the decision.
"""

from __future__ import annotations

import math
import warnings
from itertools import permutations

import numpy as np
from scipy import stats as sps

from .verdict import (
    _NAN,
    ALPHA,
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_SHOWN,
    REPRODUCED,
    Verdict,
    _design_note,
    _designs,
    _finish,
    _fmt,
    _p_clause,
    _prefix,
    _units,
    decide,
    format_p,
    futility_z,
    inconclusive,
    seeds_needed,
)


def _check_alternative(alternative: str) -> None:
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative must be 'less' or 'greater', got {alternative!r}")


def _standardized(stat: float, mean: float, var: float, sign: float = 1.0) -> float:
    """(stat - mean) / sd, times sign (+1: the claim is the upper tail); 0 when var is 0."""
    if not (math.isfinite(stat) and var > 0):
        return 0.0 if math.isfinite(stat) else _NAN
    return float(sign * (stat - mean) / math.sqrt(var))


def bootstrap_ci(
    data, statistic, *, level=0.95, n_resamples=2000, seed=0, vectorized=False
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(data)``.

    data: array, shape (n, ...); rows (seeds/runs) are resampled with replacement.
    statistic: array (n, ...) -> float; with ``vectorized=True`` instead one call maps
    (n_resamples, n, ...) -> (n_resamples,), which is much faster.
    Constant data gives (v, v); resamples whose statistic is nan are dropped.
    """
    data = np.asarray(data, dtype=float)
    if data.shape[0] == 0:
        return _NAN, _NAN
    value = float(statistic(data[None])[0] if vectorized else statistic(data))
    if not math.isfinite(value):
        return _NAN, _NAN
    if np.all(data == data[:1]):  # every resample is the data itself; skip summation noise
        return value, value
    idx = np.random.default_rng(seed).integers(0, data.shape[0], size=(n_resamples, data.shape[0]))
    if vectorized:
        boot = np.asarray(statistic(data[idx]), dtype=float)
    else:
        boot = np.array([statistic(data[i]) for i in idx], dtype=float)
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return _NAN, _NAN
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


# ----------------------------------------------------------------------------------------- trend
def _row_tau(x: np.ndarray) -> np.ndarray:
    """Kendall tau-b between column index and value, per row: (..., k) -> (...).

    A row with no strict order (all tied) gets 0: no evidence either way.
    """
    iu, ju = np.triu_indices(x.shape[-1], 1)
    sign = np.sign(x[..., ju] - x[..., iu])
    untied = np.count_nonzero(sign, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = sign.sum(axis=-1) / np.sqrt(iu.size * untied)
    return np.where(untied > 0, tau, 0.0)


def _page_moments(m: int, k: int) -> tuple[float, float]:
    """Mean and variance of Page's L under the null, for m blocks of k conditions."""
    return m * k * (k + 1) ** 2 / 4, m * k**2 * (k + 1) * (k**2 - 1) / 144


def _page_exact(ranks: np.ndarray) -> float:
    """Upper-tail p of Page's L for (blocks, k) ranks, for the shapes scipy refuses (1 block or
    k = 2): exact by enumerating one block's k! orderings; normal approximation beyond k = 8."""
    m, k = ranks.shape
    weights = np.arange(1, k + 1)
    L = float((ranks * weights).sum())
    if k > 8:  # too many orderings to list; scipy's 'auto' switches at the same k
        mean, var = _page_moments(m, k)
        return float(sps.norm.sf((L - mean) / math.sqrt(var)))
    block = np.bincount([int(np.dot(weights, p)) for p in permutations(weights)])
    total = np.array([1.0])
    for _ in range(m):  # under the null, L is a sum of m independent blocks
        total = np.convolve(total, block / block.sum())
    return float(total[np.arange(total.size) >= L - 1e-9].sum())


def _page(oriented: np.ndarray) -> tuple[float, float]:
    """Page's L and its upper-tail p for (blocks, k) values claimed to increase along k."""
    n, k = oriented.shape
    ranks = sps.rankdata(oriented, axis=1)
    if n >= 2 and k >= 3:  # scipy: exact for small tables, normal approximation beyond
        res = sps.page_trend_test(ranks, ranked=True)
        return float(res.statistic), float(res.pvalue)
    return float((ranks * np.arange(1, k + 1)).sum()), _page_exact(ranks)


def trend_test(data, *, direction: str, alpha=ALPHA, seed=0, claim="", level=0.95) -> Verdict:
    """Page's L test that values move in ``direction`` along the conditions.

    data: (seeds, conditions), conditions in the claimed order; seeds are the blocks.
    direction: "increasing" or "decreasing", the claimed direction of the values.
    Effect: mean over seeds of Kendall tau(condition index, value), signed so that the claimed
    direction is positive, with a bootstrap interval over seeds.
    """
    if direction not in ("increasing", "decreasing"):
        raise ValueError(f"direction must be 'increasing' or 'decreasing', got {direction!r}")
    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[0] < 1 or data.shape[1] < 2:
        raise ValueError(f"need data of shape (seeds >= 1, conditions >= 2), got {data.shape}")
    n, k = data.shape
    test = f"Page's L trend test, one-sided ({direction})"
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        return inconclusive(
            f"{_prefix(claim)}{bad} of {data.size} values are nan/inf (failed "
            "or diverged runs?), so no trend test was run.",
            test=test,
            n=n,
        )
    # A decreasing claim is an increasing one with the conditions reversed.
    oriented = data if direction == "increasing" else data[:, ::-1]
    stat, p = _page(oriented)
    _, p_opp = _page(oriented[:, ::-1])  # the opposite claim: the conditions in reverse
    min_p = math.exp(-n * math.lgamma(k + 1))  # every seed in the claimed order: (1/k!)**n
    taus = _row_tau(oriented)
    effect = float(taus.mean())
    lo, hi = bootstrap_ci(taus, lambda t: t.mean(axis=-1), level=level, seed=seed, vectorized=True)
    toward = bool(effect > 0)
    status = decide(p, alpha=alpha, min_attainable_p=min_p, effect_in_direction=toward, p_opposite=p_opp)
    need, why = _finish(status, p, n, alpha)
    detail = (
        f"{_prefix(claim)}Across {_units(n, 'seed')}, values "
        f"{'rose' if direction == 'increasing' else 'fell'} along the {k} conditions in "
        f"{int((taus > 0).sum())}/{n} seeds (mean tau {_fmt(effect)} [{_fmt(lo)}, "
        f"{_fmt(hi)}]); Page's L = {_fmt(stat)}, {_p_clause(p, alpha)}, opposite "
        f"{_p_clause(p_opp, alpha)}."
        + _design_note(min_p, alpha, f"{_units(n, 'seed')} and {k} conditions")
        + why
    )
    z = _standardized(stat, *_page_moments(n, k))
    return Verdict(
        status=status,
        test=test,
        statistic=stat,
        p_value=p,
        alpha=alpha,
        effect_name="mean Kendall tau (condition order vs value)",
        effect=effect,
        ci_low=lo,
        ci_high=hi,
        n=n,
        detail=detail,
        p_opposite=p_opp,
        seeds_needed=need,
        z_parts=(z,),
        min_p=min_p,
        min_p_opposite=min_p,
        effect_in_direction=toward,
        designs=(("page", n, k),),
    )


# ----------------------------------------------------------------------------------- signed rank
def _signed_rank_exact(d: np.ndarray, alternative: str) -> tuple[float, float, float]:
    """Wilcoxon W+ of d and its exact one-sided p (then the opposite side's), zeros split ("zsplit").

    Equals scipy.stats.wilcoxon(d, zero_method="zsplit") with exact/permutation p, computed by
    dynamic programming over midrank sums: exact at any n and with ties, where scipy permutes 2**n
    signs (~0.3 s at n = 10) and goes asymptotic past n = 13. zsplit keeps zeros, half their rank
    on each side, so seeds where the conditions tie count against the claim, not dropped.
    """
    ranks2 = np.rint(2 * sps.rankdata(np.abs(d))).astype(int)  # midranks are multiples of 1/2
    zeros2 = int(ranks2[d == 0].sum()) // 2  # zeros hold ranks 1..z, so this is exact
    w_plus2 = int(ranks2[d > 0].sum()) + zeros2
    pmf = np.zeros(int(ranks2.sum()) + 1)
    pmf[zeros2] = 1.0
    for r in ranks2[d != 0]:  # each nonzero difference is + or - with probability 1/2
        pmf = 0.5 * (pmf + np.concatenate([np.zeros(r), pmf[:-r]]))
    upper, lower = float(min(pmf[w_plus2:].sum(), 1.0)), float(min(pmf[: w_plus2 + 1].sum(), 1.0))
    p, p_opp = (upper, lower) if alternative == "greater" else (lower, upper)
    return w_plus2 / 2, p, p_opp


def _signed_rank_z(d: np.ndarray, alternative: str) -> float:
    """The standardized W+ (zsplit: zeros hold half their rank on each side, a constant), signed
    so that the claimed side is positive."""
    r = sps.rankdata(np.abs(d))
    w_plus = r[d > 0].sum() + r[d == 0].sum() / 2
    return _standardized(
        float(w_plus),
        r.sum() / 2,
        float((r[d != 0] ** 2).sum() / 4),
        1.0 if alternative == "greater" else -1.0,
    )


def _signed_rank(d, *, alternative, alpha, seed, level, test, effect_name, shift, what, claim) -> Verdict:
    """Wilcoxon signed-rank test of d against 0; effect = median(d) + shift."""
    n = d.size
    if n == 0 or not np.all(np.isfinite(d)):
        return inconclusive(
            f"{_prefix(claim)}{n - int(np.isfinite(d).sum())} of {n} values "
            "are nan/inf (or there are none), so no test was run.",
            test=test,
            n=n,
        )
    stat, p, p_opp = _signed_rank_exact(d, alternative)
    min_p = 0.5**n  # every difference on the claimed side
    med = float(np.median(d))
    lo, hi = bootstrap_ci(d, lambda b: np.median(b, axis=-1), level=level, seed=seed, vectorized=True)
    on_side = d > 0 if alternative == "greater" else d < 0
    toward = bool(med > 0 if alternative == "greater" else med < 0)
    status = decide(p, alpha=alpha, min_attainable_p=min_p, p_opposite=p_opp, effect_in_direction=toward)
    need, why = _finish(status, p, n, alpha)
    detail = (
        f"{_prefix(claim)}Across {_units(n, 'seed')}, {what} in {int(on_side.sum())}/{n} "
        f"seeds ({effect_name} {_fmt(med + shift)} [{_fmt(lo + shift)}, "
        f"{_fmt(hi + shift)}]); Wilcoxon W+ = {_fmt(stat)}, {_p_clause(p, alpha)}, opposite "
        f"{_p_clause(p_opp, alpha)}." + _design_note(min_p, alpha, _units(n, "seed")) + why
    )
    return Verdict(
        status=status,
        test=test,
        statistic=stat,
        p_value=p,
        alpha=alpha,
        effect_name=effect_name,
        effect=med + shift,
        ci_low=lo + shift,
        ci_high=hi + shift,
        n=n,
        detail=detail,
        p_opposite=p_opp,
        seeds_needed=need,
        z_parts=(_signed_rank_z(d, alternative),),
        min_p=min_p,
        min_p_opposite=min_p,
        effect_in_direction=toward,
        designs=(("signed-rank", n),),
    )


def paired_test(
    a, b, *, alternative: str, alpha=ALPHA, seed=0, claim="", effect="median difference", level=0.95
) -> Verdict:
    """Wilcoxon signed-rank test that a < b ("less") or a > b ("greater").

    a, b: (n,) paired over seeds. Effect: median of a - b with a bootstrap interval over seeds.
    """
    _check_alternative(alternative)
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b must be paired, got shapes {a.shape} and {b.shape}")
    sign = "<" if alternative == "less" else ">"
    return _signed_rank(
        a - b,
        alternative=alternative,
        alpha=alpha,
        seed=seed,
        level=level,
        test=f"Wilcoxon signed-rank test, paired, one-sided (a {sign} b)",
        effect_name=effect,
        shift=0.0,
        what=f"a {sign} b",
        claim=claim,
    )


def one_sample_test(
    x, *, alternative: str, null: float = 0.0, alpha=ALPHA, seed=0, claim="", effect_name="median", level=0.95
) -> Verdict:
    """Wilcoxon signed-rank test that x > null ("greater") or x < null ("less").

    x: (n,) one value per seed. Effect: median of x with a bootstrap interval over seeds.
    """
    _check_alternative(alternative)
    x = np.asarray(x, dtype=float).ravel()
    sign = "<" if alternative == "less" else ">"
    test = f"Wilcoxon signed-rank test, one-sample, one-sided (x {sign} {null:g})"
    return _signed_rank(
        x - null,
        alternative=alternative,
        alpha=alpha,
        seed=seed,
        level=level,
        test=test,
        effect_name=effect_name,
        shift=float(null),
        what=f"the value was {sign} {null:g}",
        claim=claim,
    )


# ----------------------------------------------------------------------------------- association
def _batched_tau_b(pairs: np.ndarray, chunk: int = 250) -> np.ndarray:
    """Kendall tau-b per resample: (B, n, 2) -> (B,); nan where a variable is constant."""
    iu, ju = np.triu_indices(pairs.shape[1], 1)
    out = []
    for start in range(0, pairs.shape[0], chunk):  # chunks bound memory at chunk * n^2
        p = pairs[start : start + chunk]
        sx, sy = np.sign(p[:, ju, 0] - p[:, iu, 0]), np.sign(p[:, ju, 1] - p[:, iu, 1])
        with np.errstate(invalid="ignore", divide="ignore"):
            denom = np.sqrt(np.count_nonzero(sx, axis=1) * np.count_nonzero(sy, axis=1))
            out.append((sx * sy).sum(axis=1) / denom)
    return np.concatenate(out)


def correlation_test(x, y, *, alternative: str, alpha=ALPHA, seed=0, claim="", level=0.95) -> Verdict:
    """Kendall tau test of association between x and y over n independent runs.

    x, y: (n,). "greater" claims a positive association. Effect: tau-b with a bootstrap interval
    over (x, y) pairs. Min attainable p is the exact test's 1/n! (one perfect ordering), so with
    n <= 3 the claim is inconclusive at 0.05 (for n > 33 or ties scipy uses the normal tail).
    """
    _check_alternative(alternative)
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must be paired, got shapes {x.shape} and {y.shape}")
    n = x.size
    test = f"Kendall tau test, one-sided ({'positive' if alternative == 'greater' else 'negative'})"
    if n < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return inconclusive(
            f"{_prefix(claim)}need >= 2 runs with finite values, got {n} runs "
            "(some nan/inf?), so no test was run.",
            test=test,
            n=n,
        )
    opposite = "less" if alternative == "greater" else "greater"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns, then returns nan
        res = sps.kendalltau(x, y, alternative=alternative)
        p_opp = float(sps.kendalltau(x, y, alternative=opposite).pvalue)
    tau, p = float(res.statistic), float(res.pvalue)
    min_p = math.exp(-math.lgamma(n + 1))
    lo, hi = bootstrap_ci(np.stack([x, y], axis=1), _batched_tau_b, level=level, seed=seed, vectorized=True)
    toward = bool(tau > 0 if alternative == "greater" else tau < 0)
    status = decide(p, alpha=alpha, min_attainable_p=min_p, p_opposite=p_opp, effect_in_direction=toward)
    need, note = _finish(status, p, n, alpha)
    why = " (one variable is constant, so tau is undefined)" if not math.isfinite(tau) else ""
    detail = (
        f"{_prefix(claim)}Across {_units(n, 'independent run')}, Kendall tau between x and "
        f"y was {_fmt(tau)} [{_fmt(lo)}, {_fmt(hi)}]{why}; {_p_clause(p, alpha)}, opposite "
        f"{_p_clause(p_opp, alpha)}." + _design_note(min_p, alpha, _units(n, "run")) + note
    )
    z = _standardized(
        tau, 0.0, 2 * (2 * n + 5) / (9 * n * (n - 1)), 1.0 if alternative == "greater" else -1.0
    )
    return Verdict(
        status=status,
        test=test,
        statistic=tau,
        p_value=p,
        alpha=alpha,
        effect_name="Kendall tau-b",
        effect=tau,
        ci_low=lo,
        ci_high=hi,
        n=n,
        detail=detail,
        p_opposite=p_opp,
        seeds_needed=need,
        z_parts=(z,) if math.isfinite(z) else (),
        min_p=min_p,
        min_p_opposite=min_p,
        effect_in_direction=toward,
    )


def proportion_test(
    successes: int, n: int, *, p0: float, alternative: str, alpha=ALPHA, claim="", level=0.95
) -> Verdict:
    """Exact binomial test that the success rate is above ("greater") / below ("less") p0.

    Effect: the observed proportion with its Clopper-Pearson interval.
    """
    _check_alternative(alternative)
    sign = ">" if alternative == "greater" else "<"
    test = f"exact binomial test, one-sided (rate {sign} {p0:g})"
    if n <= 0:
        return inconclusive(f"{_prefix(claim)}no trials, so no test was run.", test=test, n=0)
    res = sps.binomtest(int(successes), int(n), p0, alternative=alternative)
    p_opp = float(
        sps.binomtest(
            int(successes), int(n), p0, alternative="less" if alternative == "greater" else "greater"
        ).pvalue
    )
    # Two-sided interval like the bootstrap ones (res's own would be one-sided, to 0 or 1).
    ci = sps.binomtest(int(successes), int(n), p0).proportion_ci(level, method="exact")
    rate, p = successes / n, float(res.pvalue)
    min_p = p0**n if alternative == "greater" else (1 - p0) ** n  # all trials on one side
    toward = bool(rate > p0 if alternative == "greater" else rate < p0)
    status = decide(p, alpha=alpha, min_attainable_p=min_p, p_opposite=p_opp, effect_in_direction=toward)
    need, why = _finish(status, p, n, alpha)
    detail = (
        f"{_prefix(claim)}{successes}/{n} successes (rate {_fmt(rate)} [{_fmt(ci.low)}, "
        f"{_fmt(ci.high)}]) against {p0:g}; {_p_clause(p, alpha)}, opposite "
        f"{_p_clause(p_opp, alpha)}." + _design_note(min_p, alpha, _units(n, "trial")) + why
    )
    z = _standardized(float(successes), n * p0, n * p0 * (1 - p0), 1.0 if alternative == "greater" else -1.0)
    min_p_opp = (1 - p0) ** n if alternative == "greater" else p0**n
    return Verdict(
        status=status,
        test=test,
        statistic=float(successes),
        p_value=p,
        alpha=alpha,
        effect_name="success rate",
        effect=float(rate),
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        n=int(n),
        detail=detail,
        p_opposite=p_opp,
        seeds_needed=need,
        z_parts=(z,),
        min_p=min_p,
        min_p_opposite=min_p_opp,
        effect_in_direction=toward,
        designs=(("binomial", int(successes), int(n), float(p0), 1 if alternative == "greater" else -1),),
    )


# ----------------------------------------------------------------------------------- combination
def _all_finite(f, values: list[float]) -> float:
    """f(values), or nan if any value is nan (unknown)."""
    return f(values) if values and all(math.isfinite(v) for v in values) else _NAN


def all_of(verdicts: list[Verdict], *, claim="") -> Verdict:
    """Combination of claim parts that must ALL hold, with the four outcomes kept consistent.

    reproduced   -- every part is (intersection-union test: p = max_i p_i is a level-alpha test
                    of the whole claim, with no multiplicity correction);
    contradicted -- the opposite of some part holds at alpha/m (the opposite of "all hold" is "some
                    part fails", a union of m alternatives, so it needs Bonferroni's correction:
                    p_opposite = min(1, m min_i p_opposite_i));
    inconclusive -- otherwise, if some part cannot be decided by this design;
    not shown    -- otherwise. seeds_needed is the largest over the parts not yet reproduced.
    Numbers are the largest-p part's (nan counts largest).
    """
    if not verdicts:
        return inconclusive(f"{_prefix(claim)}no parts to combine.", test="intersection-union of: nothing")
    m, alpha = len(verdicts), max(v.alpha for v in verdicts)
    statuses = [v.status for v in verdicts]
    opp = [v.p_opposite for v in verdicts if math.isfinite(v.p_opposite)]
    p_opp = min(1.0, m * min(opp)) if opp else _NAN
    if all(s == REPRODUCED for s in statuses):
        status = REPRODUCED
    elif math.isfinite(p_opp) and p_opp < alpha:
        status = CONTRADICTED
    elif INCONCLUSIVE in statuses:
        status = INCONCLUSIVE
    else:
        status = NOT_SHOWN
    worst = max(verdicts, key=lambda v: v.p_value if math.isfinite(v.p_value) else math.inf)
    need = (
        max(
            (seeds_needed(v.p_value, v.n, v.alpha) if math.isnan(v.seeds_needed) else v.seeds_needed)
            for v in verdicts
            if v.status != REPRODUCED
        )
        if status == NOT_SHOWN
        else _NAN
    )
    parts = " ".join(f"({i}) {v.summary()}." for i, v in enumerate(verdicts, 1))
    detail = (
        f"{_prefix(claim)}{statuses.count(REPRODUCED)}/{m} parts reproduced; the claim needs "
        f"all of them (its p is the largest part's), and is contradicted when some part's "
        f"opposite holds at alpha/{m} (opposite p = {format_p(p_opp)}). {parts}"
    )
    return Verdict(
        status=status,
        test="intersection-union of: " + "; ".join(v.test for v in verdicts),
        statistic=worst.statistic,
        p_value=worst.p_value,
        alpha=alpha,
        effect_name=worst.effect_name,
        effect=worst.effect,
        ci_low=worst.ci_low,
        ci_high=worst.ci_high,
        n=min(v.n for v in verdicts),
        detail=detail,
        p_opposite=p_opp,
        seeds_needed=need,
        z_parts=tuple(z for v in verdicts for z in futility_z(v)[0]),
        min_p=_all_finite(max, [v.min_p for v in verdicts]),  # every part must reach its level
        min_p_opposite=_all_finite(lambda ps: min(1.0, m * min(ps)), [v.min_p_opposite for v in verdicts]),
        effect_in_direction=status == REPRODUCED,  # "some part fails" needs no direction of effect
        designs=tuple(d for v in verdicts for d in _designs(v)),
    )
