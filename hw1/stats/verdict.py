"""The Verdict of a claim: its four outcomes, the rule that decides them, and their words.

Every test (`hw1.stats.tests`) computes two one-sided p-values from the same data: ``p`` for the
claimed direction and ``p_opposite`` for the opposite one. Decision rule (``decide``) at level
``alpha``, four outcomes:

* "reproduced"   -- the claimed direction is significant: p < alpha, effect pointing the claimed way;
* "contradicted" -- the opposite direction is significant at the same alpha: p_opposite < alpha;
* "not shown"    -- neither is significant, though the design could have shown the claim: the
  verdict says how many seeds the observed effect would need (``seeds_needed``);
* "inconclusive" -- the design could not decide: the smallest p-value the test can attain with this
  many units exceeds alpha (e.g. 1 seed and 3 conditions: 1/3! > 0.05; computed from the design,
  not from ties in the observed data) and the opposite is not significant either, or the p-value is
  undefined (nan).

A false "reproduced" and a false "contradicted" each happen with probability <= alpha under the null
(``tests/test_outcomes.py`` calibrates both on null data).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

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


def _designs(v: Verdict) -> tuple[tuple, ...]:
    """v's designs, one per futility_z part (() where it has none)."""
    n = len(futility_z(v)[0])
    return tuple(v.designs[:n]) + ((),) * (n - len(v.designs))
