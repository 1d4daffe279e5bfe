"""The staged design: seeds added in pre-stated stages with alpha spent across them (`StagePlan`,
`staged`) for cases that are not decided at the first, and the futility rule that stops a case the
last stage could not plausibly decide (conditional power, against the exact critical values of the
discrete tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import permutations

import numpy as np
from scipy import stats as sps

from .tests import _page_moments
from .verdict import _NAN, ALPHA, INCONCLUSIVE, Verdict, _designs, _fmt, futility_z, z_score


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
