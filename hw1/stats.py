"""Seed-level hypothesis tests that turn a report's claim into a Verdict.

Statistics are pure functions over numpy arrays whose first axis is the independent unit (seeds or
runs), e.g. ``(seeds, conditions)``, in the style of google-research/rliable. Every test is
one-sided (a claim has a direction), rank-based (robust to the odd diverging seed) and exact at the
sizes used here. The only randomness, the bootstrap, takes an explicit seed or numpy Generator.

Every test computes two one-sided p-values from the same data: ``p`` for the claimed direction
and ``p_opposite`` for the opposite one. Decision rule (``decide``) at level ``alpha``, four outcomes:

* "reproduced"   -- the claimed direction is significant: p < alpha, effect pointing the claimed way;
* "contradicted" -- the opposite direction is significant at the same alpha: p_opposite < alpha;
* "not shown"    -- neither is significant, though the design could have shown the claim: the
  verdict says how many seeds the observed effect would need (``seeds_needed``);
* "inconclusive" -- the design could not decide: the smallest p-value the test can attain with this
  many units exceeds alpha (e.g. 1 seed and 3 conditions: 1/3! > 0.05; computed from the design,
  not from ties in the observed data) and the opposite is not significant either, or the p-value is
  undefined (nan).

A false "reproduced" and a false "contradicted" each happen with probability <= alpha under the null
(``tests/test_outcomes.py`` calibrates both on null data). ``staged`` adds seeds in pre-stated stages
(alpha spent across them) for cases that are not decided at the first.

Bootstrap intervals (percentile, resampling the first axis) describe the effect size; they never
enter the decision.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from itertools import permutations

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
REPRODUCED, CONTRADICTED, NOT_SHOWN, INCONCLUSIVE = "reproduced", "contradicted", "not shown", "inconclusive"
OUTCOMES = (REPRODUCED, CONTRADICTED, NOT_SHOWN, INCONCLUSIVE)
POWER = 0.8  # the power at which "not shown" states the seeds an effect would need
_NAN = float("nan")


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Outcome of testing one claim: status, test, p, and the effect with its interval.

    Built by keyword only (13 fields in a row are easy to misplace); `from_dict` reads back what
    `to_dict` wrote."""

    status: str
    test: str
    statistic: float
    p_value: float
    alpha: float
    effect_name: str
    effect: float
    ci_low: float
    ci_high: float
    n: int
    detail: str
    p_opposite: float = _NAN  # one-sided p of the opposite direction (for "contradicted")
    seeds_needed: float = _NAN  # "not shown": seeds the observed effect would need for POWER
    # Standardized statistics, one per part of the claim, signed so that the claimed direction is
    # positive: what the futility rule extrapolates (never the decision). A discrete test's exact p
    # includes the probability of the observed value, so z from it is pulled toward 0; (S - E S) /
    # sd S is not. Empty: taken from p and p_opposite (`futility_z`).
    z_parts: tuple[float, ...] = ()
    # The smallest p this design can attain in the claimed / the opposite direction (a function of
    # the number of units and the test, never of the data): a stage where neither can reach its
    # level decides nothing, and `staged` passes its alpha on to the stages that can.
    min_p: float = _NAN
    min_p_opposite: float = _NAN
    # The level the opposite direction was tested at, where `staged` gave it its own (nan: alpha),
    # and whether the effect points the claimed way (what "contradicted" also needs; None: unknown).
    alpha_opposite: float = _NAN
    effect_in_direction: bool | None = None
    # Per part (aligned with futility_z), the null table the futility rule extrapolates exactly,
    # where the test is discrete and small: ("binomial", successes, trials, p0, +1 if the claim is
    # the upper tail), ("signed-rank", units) or ("page", units, conditions); () or none: normal.
    designs: tuple[tuple, ...] = ()

    @property
    def decided(self) -> bool:
        """True for 'reproduced' and 'contradicted': a direction is significant."""
        return self.status in (REPRODUCED, CONTRADICTED)

    def summary(self) -> str:
        """One line: status, test, statistic, p, effect [ci], n."""
        return (
            f"{self.status} | {self.test}: statistic = {_fmt(self.statistic)}, "
            f"p = {format_p(self.p_value)}, opposite p = {format_p(self.p_opposite)} "
            f"(alpha {_fmt(self.alpha)}) | {self.effect_name} = "
            f"{_fmt(self.effect)} [{_fmt(self.ci_low)}, {_fmt(self.ci_high)}] | n = {self.n}"
        )

    def with_opposite_level(self, alpha_opposite: float) -> "Verdict":
        """The verdict with its opposite direction decided at `alpha_opposite` instead of `alpha`.

        The claimed direction keeps the level it was measured at; only "contradicted" depends on
        the opposite's level (`decide`)."""
        if (
            not math.isfinite(alpha_opposite)
            or alpha_opposite == self.alpha
            or not math.isfinite(self.p_value)
        ):
            return self
        toward = self.status == REPRODUCED if self.effect_in_direction is None else self.effect_in_direction
        status = self.status
        if status != REPRODUCED:
            if math.isfinite(self.p_opposite) and self.p_opposite < alpha_opposite and not toward:
                status = CONTRADICTED
            elif status == CONTRADICTED:
                status = INCONCLUSIVE if self.min_p > self.alpha else NOT_SHOWN
        need = seeds_needed(self.p_value, self.n, self.alpha) if status == NOT_SHOWN else _NAN
        note = (
            f" The opposite direction has its own level at this stage, {_fmt(alpha_opposite)} "
            f"(the claim's is {_fmt(self.alpha)}): opposite {_p_clause(self.p_opposite, alpha_opposite)}."
        )
        return replace(
            self,
            status=status,
            seeds_needed=self.seeds_needed if status == self.status else need,
            alpha_opposite=alpha_opposite,
            detail=self.detail + note,
        )

    def describe(self) -> str:
        """The effect and its interval only, for a secondary definition reported beside a claim's
        test: it is measured on the seeds the primary test's stopping chose, at no adjusted level,
        so it gets no outcome word and no p-value."""
        return (
            f"{self.effect_name} = {_fmt(self.effect)} [{_fmt(self.ci_low)}, {_fmt(self.ci_high)}] "
            f"over {self.n} seeds (descriptive)"
        )

    def to_dict(self) -> dict:
        """JSON-serialisable dict; non-finite floats become None (JSON has no nan)."""

        def clean(v):
            if isinstance(v, float):
                return float(v) if math.isfinite(v) else None
            if isinstance(v, (tuple, list)):
                return [clean(x) for x in v]
            return v

        out = {k: clean(v) for k, v in asdict(self).items()}
        return {**out, "decided": self.decided}

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        """The Verdict `to_dict` wrote: None (JSON's nan) is nan again; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}

        def num(k, v):
            return _NAN if v is None and k not in ("status", "test", "effect_name", "detail") else v

        kw = {k: num(k, v) for k, v in d.items() if k in names}
        kw["z_parts"] = tuple(_NAN if z is None else z for z in kw.get("z_parts") or ())
        kw["designs"] = tuple(tuple(d) for d in kw.get("designs") or ())
        return cls(**kw)


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "nan"


def format_p(p, missing: str = "—") -> str:
    """The one way a p-value is written, in verdicts, records, the index and STABILITY.md:
    two significant digits (0.0013), scientific below 1e-3 (4.2e-05); `missing` for None / nan."""
    if not isinstance(p, (int, float)) or not math.isfinite(p):
        return missing
    return f"{p:.1e}" if p < 1e-3 else f"{p:.2g}"


def _p_clause(p: float, alpha: float) -> str:
    return f"p = {format_p(p)} {'<' if p < alpha else '>='} {_fmt(alpha)}"


def _units(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _prefix(claim: str) -> str:
    return f"{claim}: " if claim else ""


def _design_note(min_p: float, alpha: float, units: str) -> str:
    if min_p <= alpha:
        return ""
    return (
        f" With {units} the smallest attainable p is {format_p(min_p)} > {_fmt(alpha)}, "
        "so this design cannot decide the claim."
    )


def _check_alternative(alternative: str) -> None:
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative must be 'less' or 'greater', got {alternative!r}")


def decide(
    p_value: float,
    *,
    alpha: float,
    min_attainable_p: float,
    effect_in_direction: bool,
    p_opposite: float = _NAN,
) -> str:
    """One of the four OUTCOMES from the two one-sided p-values, by the rule in the module docstring."""
    if not math.isfinite(p_value):
        return INCONCLUSIVE
    if p_value < alpha and effect_in_direction and min_attainable_p <= alpha:
        return REPRODUCED
    if math.isfinite(p_opposite) and p_opposite < alpha and not effect_in_direction:
        return CONTRADICTED
    return INCONCLUSIVE if min_attainable_p > alpha else NOT_SHOWN


def z_score(p: float) -> float:
    """The one-sided p-value as a standard normal score (p = 0.05 -> 1.64; p > 0.5 -> negative)."""
    return float(sps.norm.isf(min(max(p, 1e-300), 1.0)))


def _standardized(stat: float, mean: float, var: float, sign: float = 1.0) -> float:
    """(stat - mean) / sd, times sign (+1: the claim is the upper tail); 0 when var is 0."""
    if not (math.isfinite(stat) and var > 0):
        return 0.0 if math.isfinite(stat) else _NAN
    return float(sign * (stat - mean) / math.sqrt(var))


def futility_z(v: "Verdict") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per part, the z-scores the futility rule extrapolates: (claimed direction, opposite).

    From the verdict's standardized statistics where it has them (the opposite of a one-sided
    standardized statistic is its negative), else from its p-values (z_score)."""
    if v.z_parts:
        return tuple(v.z_parts), tuple(-z for z in v.z_parts)
    return (z_score(v.p_value),), (z_score(v.p_opposite),)


def seeds_needed(p: float, n: int, alpha: float, power: float = POWER) -> float:
    """Seeds an effect like the observed one would need for `power` at level `alpha`.

    The z-score of a fixed effect grows like sqrt(n), so n' = n ((z_alpha + z_power) / z)^2; an
    effect pointing the other way (z <= 0) needs infinitely many.
    """
    z = z_score(p)
    if not math.isfinite(z) or z <= 0 or n <= 0:
        return math.inf
    return float(n * ((sps.norm.isf(alpha) + sps.norm.ppf(power)) / z) ** 2)


def _finish(status: str, p: float, n: int, alpha: float) -> tuple[float, str]:
    """(seeds_needed, sentence) for a 'not shown' outcome; nothing for the others."""
    if status != NOT_SHOWN:
        return _NAN, ""
    need = seeds_needed(p, n, alpha)
    if not math.isfinite(need):
        return need, (
            " Not shown: the data give no evidence for the claim (its p >= 0.5), so no "
            "number of seeds would show an effect like this one."
        )
    return need, (
        f" Not shown: neither direction is significant; an effect like the observed one "
        f"would need about {math.ceil(need)} seeds for {POWER:.0%} power at alpha "
        f"{_fmt(alpha)}."
    )


def inconclusive(reason: str, *, test: str = "not run", n: int = 0) -> Verdict:
    """A Verdict that decides nothing (e.g. smoke-scale runs); its numbers are nan."""
    return Verdict(
        status=INCONCLUSIVE,
        test=test,
        statistic=_NAN,
        p_value=_NAN,
        alpha=ALPHA,
        effect_name="not estimated",
        effect=_NAN,
        ci_low=_NAN,
        ci_high=_NAN,
        n=int(n),
        detail=reason,
    )


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


def _designs(v: Verdict) -> tuple[tuple, ...]:
    """v's designs, one per futility_z part (() where it has none)."""
    n = len(futility_z(v)[0])
    return tuple(v.designs[:n]) + ((),) * (n - len(v.designs))


# ----------------------------------------------------------------------------------- stages
@dataclass(frozen=True)
class StagePlan:
    """Seeds added in pre-stated stages, with alpha spent across them (part of a scale's config).

    multipliers: seeds at each stage as multiples of the claim's base count, e.g. (1, 2, 4); the
      seed sets are nested, so a later stage only trains the seeds it adds.
    spend: cumulative fraction of alpha spent by the end of each stage, e.g. (0.5, 0.75, 1.0).
      Stage k tests each direction at alpha * (spend_k - spend_{k-1}); by the union bound the whole
      procedure's chance of a false "reproduced" (and of a false "contradicted") is <= alpha,
      whatever the dependence between stages.
    futility: stop early when, extrapolating each part's current standardized statistic (the
      effect as observed), the chance of a significant result in either direction by the last
      stage is below this (`futility_powers`).
    futility_from: the first stage (1-based) at which futility may stop. Not the first: its few
      seeds estimate the effect so noisily that a real one often looks null, and stopping there cost
      10%, 15% and 25% of the power against no futility for claims of 1, 2 and 4 parts (README,
      "Seeds in stages"); from stage 2 on, 4%, 6% and 7%.
    """

    multipliers: tuple[int, ...] = (1,)
    spend: tuple[float, ...] = (1.0,)
    futility: float = 0.1
    futility_from: int = 2

    def __post_init__(self):
        if len(self.multipliers) != len(self.spend) or not self.multipliers:
            raise ValueError("a StagePlan needs one spend fraction per stage")
        if any(b <= a for a, b in zip(self.multipliers, self.multipliers[1:])) or self.multipliers[0] < 1:
            raise ValueError(f"stage multipliers must rise from >= 1, got {self.multipliers}")
        if any(b <= a for a, b in zip((0.0,) + self.spend, self.spend)) or self.spend[-1] > 1 + 1e-12:
            raise ValueError(f"alpha spending must rise to at most 1, got {self.spend}")

    def levels(self, alpha: float) -> list[float]:
        """The level each stage tests at (they sum to alpha * spend[-1] <= alpha)."""
        return [alpha * (b - a) for a, b in zip((0.0,) + self.spend, self.spend)]

    def counts(self, base: int) -> list[int]:
        return [base * m for m in self.multipliers]


def conditional_power(p: float, n: int, n_final: int, alpha_final: float) -> float:
    """Chance that the last stage (n_final units, level alpha_final) is significant in the
    direction of `p` if the effect is what it looks like now (z grows like sqrt(n))."""
    return conditional_power_z(z_score(p) if math.isfinite(p) else _NAN, n, n_final, alpha_final)


def conditional_power_z(
    z: float, n: int, n_final: int, alpha_final: float, critical: float | None = None
) -> float:
    """conditional_power from a z-score (a standardized statistic, positive = this direction).

    critical: the final test's critical value in standardized units (default: the normal one,
    z_alpha_final); a discrete test's exact one is larger."""
    if n >= n_final or not math.isfinite(z):
        return 0.0
    t = n / n_final
    c = sps.norm.isf(alpha_final) if critical is None else critical
    return float(sps.norm.sf((c - z / math.sqrt(t)) / math.sqrt(1 - t)))


EXACT_UP_TO = 200  # units up to which a signed-rank or Page table is listed for the futility rule


@lru_cache(maxsize=256)
def _signed_rank_null(n: int) -> np.ndarray:
    """P(W+ = w), w = 0 .. n(n+1)/2, for n untied ranks."""
    pmf = np.zeros(n * (n + 1) // 2 + 1)
    pmf[0] = 1.0
    for r in range(1, n + 1):
        pmf = 0.5 * (pmf + np.concatenate([np.zeros(r), pmf[:-r]]))
    return pmf


@lru_cache(maxsize=256)
def _page_null(n: int, k: int) -> np.ndarray:
    """P(L = l) for n blocks of k conditions (index l)."""
    weights = np.arange(1, k + 1)
    block = np.bincount([int(np.dot(weights, p)) for p in permutations(weights)]).astype(float)
    total = np.array([1.0])
    for _ in range(n):
        total = np.convolve(total, block / block.sum())
    return total


def critical_z(design: tuple, units: int, level: float) -> float | None:
    """The smallest standardized statistic whose exact upper-tail p is below `level`, for the
    signed-rank or Page table of `units` units (symmetric: the lower tail mirrors it); None where
    the normal critical value is used (another test, or a table too large to list)."""
    kind = design[0] if design else ""
    return _critical_z(kind, design[2] if kind == "page" else 0, units, level)


@lru_cache(maxsize=1024)
def _critical_z(kind: str, k: int, units: int, level: float) -> float | None:
    if kind == "signed-rank" and units <= EXACT_UP_TO:
        pmf = _signed_rank_null(units)
        mean, var = units * (units + 1) / 4, units * (units + 1) * (2 * units + 1) / 24
    elif kind == "page" and k <= 8 and units <= EXACT_UP_TO:
        pmf = _page_null(units, k)
        mean, var = _page_moments(units, k)
    else:
        return None
    upper = np.cumsum(pmf[::-1])[::-1]  # P(S >= s)
    hits = np.flatnonzero(upper < level)
    return (float(hits[0]) - mean) / math.sqrt(var) if hits.size else math.inf


def binomial_power(design: tuple, n: int, n_final: int, level: float, opposite: bool = False) -> float:
    """Exact conditional power of a binomial part: the chance that the final count (trials grown
    with the seeds, n -> n_final) is significant at `level` in the claimed direction (or the
    opposite), if the remaining trials succeed at the rate observed so far."""
    _, x, m, p0, sign = design
    total = round(m * n_final / n)
    if total <= m or m <= 0:
        return 0.0
    rest, rate, k = total - m, x / m, np.arange(total + 1)
    if (sign > 0) != opposite:  # this direction is the upper tail: significant when X >= c
        hits = k[sps.binom.sf(k - 1, total, p0) < level]
        return float(sps.binom.sf(hits[0] - x - 1, rest, rate)) if hits.size else 0.0
    hits = k[sps.binom.cdf(k, total, p0) < level]
    return float(sps.binom.cdf(hits[-1] - x, rest, rate)) if hits.size else 0.0


def _part_power(z: float, design: tuple, n: int, n_final: int, level: float, opposite: bool) -> float:
    if design and design[0] == "binomial":
        return binomial_power(design, n, n_final, level, opposite)
    units = round(design[1] * n_final / n) if design else 0
    return conditional_power_z(z, n, n_final, level, critical_z(design, units, level) if design else None)


def futility_powers(
    v: Verdict, n: int, n_final: int, alpha_final: float, alpha_final_opposite: float | None = None
) -> tuple[float, float]:
    """(claim, opposite): the chance that the last stage decides each way, at the effect observed.

    A claim of m parts is reproduced when every part is significant at the final level
    (intersection-union), so its chance is the smallest part's; it is contradicted when some
    part's opposite is significant at level / m (Bonferroni), so that chance is the largest part's
    at alpha_final / m. Each part's z is its own (`futility_z`): a standardized statistic, not a
    z taken from an exact discrete p, and not from the Bonferroni-adjusted p of the combination.
    A discrete part is extrapolated against its exact table (`Verdict.designs`): a binomial part
    exactly (`binomial_power`), a signed-rank or Page part with its exact critical value.
    """
    zc, zo = futility_z(v)
    m = max(len(zc), 1)
    b = alpha_final if alpha_final_opposite is None else alpha_final_opposite
    designs = _designs(v)
    return (
        min(_part_power(z, d, n, n_final, alpha_final, False) for z, d in zip(zc, designs)),
        max(_part_power(z, d, n, n_final, b / m, True) for z, d in zip(zo, designs)),
    )


# Why `staged` stopped, machine-readable (Staged.reason); Staged.stop says it in words.
DECIDED, FUTILITY, LAST_STAGE, NO_P = "decided", "futility", "last stage", "no p"
STOP_REASONS = (DECIDED, FUTILITY, LAST_STAGE, NO_P)


@dataclass
class Staged:
    """The outcome of the staged procedure: the last stage's verdict and what it ran on."""

    verdict: Verdict
    seeds: list[int]
    payload: object  # whatever measure() returned beside its verdict, at the last stage run
    stages: list[dict]  # per stage: n, alpha, status, p, p_opposite, conditional powers
    reason: str  # why it stopped: one of STOP_REASONS
    stop: str  # the same, in words, with the stage and its level

    def to_dict(self) -> dict:
        return {
            "stages": self.stages,
            "reason": self.reason,
            "stop": self.stop,
            "seeds_used": len(self.seeds),
        }


def reachable(v: Verdict, level: float, level_opposite: float) -> tuple[bool, bool]:
    """Whether the design could reach `level` in the claimed direction and `level_opposite` in the
    opposite one (an unknown min p: assume it could)."""
    return (
        not math.isfinite(v.min_p) or v.min_p <= level,
        not math.isfinite(v.min_p_opposite) or v.min_p_opposite <= level_opposite,
    )


def _pass_on(levels: list[float], k: int) -> None:
    """Stage k decides nothing in this direction: its level goes to the later stages, in
    proportion to theirs (the direction's levels still sum to what the plan spends)."""
    rest = sum(levels[k + 1 :])
    levels[k + 1 :] = [x + levels[k] * x / rest for x in levels[k + 1 :]]


def _where(k: int, counts: list[int], a: float, b: float) -> str:
    level = f"level {_fmt(a)}" if a == b else f"levels {_fmt(a)} (claim) / {_fmt(b)} (opposite)"
    return f"stage {k + 1} of {len(counts)} ({counts[k]} seeds, {level})"


def staged(measure, base: int, plan: StagePlan, *, alpha: float = ALPHA, seeds_for=None) -> Staged:
    """Decide a claim over seeds added in the plan's stages.

    measure(seeds, alpha) -> (Verdict, payload): measures one seed set and tests it at `alpha`.
    base: the claim's seed count at the first stage. seeds_for(n) -> the n seeds (default 0..n-1).
    Stops at the first stage with a decided outcome (reproduced / contradicted), when neither
    direction can plausibly become significant (futility), when the p-value is undefined, or at
    the last stage.

    Each direction has its own schedule of levels, both starting as the plan's. measure gets the
    claimed direction's level; the opposite is decided at its own (`Verdict.with_opposite_level`).
    A direction whose design cannot reach its level at a stage (e.g. a Wilcoxon test on 5 seeds:
    its smallest p, 1/32, exceeds 0.025) decides nothing there, so that direction's alpha goes to
    its later stages in proportion to their levels. This is fixed in advance: the smallest
    attainable p is a function of the number of units and the test, not of the data, so each
    direction's levels still sum to alpha and the union bound holds per direction.
    """
    seeds_for = seeds_for or (lambda n: list(range(n)))
    counts = plan.counts(base)
    levels = {"claim": list(plan.levels(alpha)), "opposite": list(plan.levels(alpha))}
    stages: list[dict] = []
    for k, n in enumerate(counts):
        seeds, a, b = seeds_for(n), levels["claim"][k], levels["opposite"][k]
        verdict, payload = measure(seeds, a)
        verdict = verdict.with_opposite_level(b)
        reach = reachable(verdict, a, b)
        if k < len(counts) - 1:
            for direction, can in zip(levels, reach):
                if not can:
                    _pass_on(levels[direction], k)
        cp = futility_powers(verdict, n, counts[-1], levels["claim"][-1], levels["opposite"][-1])
        stages.append(
            {
                "stage": k + 1,
                "seeds": n,
                "alpha": a,
                "alpha_opposite": b,
                "status": verdict.status,
                "p": verdict.p_value,
                "p_opposite": verdict.p_opposite,
                "power_claim": cp[0],
                "power_opposite": cp[1],
                "can_decide": any(reach),
                "can_decide_claim": reach[0],
                "can_decide_opposite": reach[1],
            }
        )
        where = _where(k, counts, a, b)
        if verdict.decided:
            reason, stop = DECIDED, f"decided at {where}"
        elif k == len(counts) - 1:
            reason, stop = LAST_STAGE, f"last stage: {where}"
        elif not math.isfinite(verdict.p_value):
            reason, stop = NO_P, f"no p-value at {where}: more seeds cannot help"
        elif k + 1 >= plan.futility_from and verdict.status != INCONCLUSIVE and max(cp) < plan.futility:
            reason, stop = (
                FUTILITY,
                (
                    f"futility at {where}: at the observed effect, {counts[-1]} seeds would reach "
                    f"significance with chance {_fmt(cp[0])} (claim) / {_fmt(cp[1])} (opposite) "
                    f"< {_fmt(plan.futility)}"
                ),
            )
        else:
            continue
        return Staged(verdict, seeds, payload, stages, reason, stop)
    raise AssertionError("unreachable: the last stage always stops")
