"""What the statistics decide, as a digest: the same digest means the same decisions.

A record decided by other statistics must be decided again; a digest of the deciding source would
also change on a move or a rename that decides nothing differently. This digest is taken over the
decisions themselves: every test of `hw1.stats`, their conjunction and the staged design, run on a
fixed battery of seeded data that reaches each outcome, its effects and intervals, the stages'
levels, futility and the words a reader gets. Floats are rounded to 8 significant digits, so the
few ulps two CPUs may differ by do not count.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from . import stats

_PLAN = stats.StagePlan(multipliers=(1, 2, 4), spend=(0.5, 0.75, 1.0))


def _clean(v):
    if isinstance(v, float):
        return f"{v:.8g}" if math.isfinite(v) else str(v)
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in sorted(v.items())}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        return _clean(v.item())
    return v


def _verdicts(shift: float, n: int, seed: int) -> list[stats.Verdict]:
    """Every test on data whose effect is `shift` (0: null; < 0: the opposite way)."""
    rng = np.random.default_rng(seed)
    levels = np.linspace(0.0, 1.0, 4)
    trend = rng.normal(size=(n, 4)) - shift * levels  # (seeds, conditions), decreasing when shift > 0
    a, b = rng.normal(size=n), rng.normal(size=n) + shift
    x = rng.normal(size=2 * n)
    hits = int(rng.binomial(2 * n, min(max(0.5 + shift / 4, 0.0), 1.0)))
    parts = [
        stats.trend_test(trend, direction="decreasing", claim="loss vs depth"),
        stats.trend_test(-trend, direction="increasing", alpha=0.025),
        stats.paired_test(a, b, alternative="less", claim="a < b"),
        stats.one_sample_test(b - a, alternative="greater", null=0.0),
        stats.correlation_test(x, x * shift + rng.normal(size=2 * n), alternative="greater"),
        stats.proportion_test(hits, 2 * n, p0=0.5, alternative="greater"),
    ]
    return parts + [stats.all_of(parts[:3], claim="all parts")]


def _staged(shift: float, base: int) -> stats.Staged:
    def measure(seeds, alpha):
        rng = np.random.default_rng(len(seeds))
        data = rng.normal(size=(len(seeds), 3)) - shift * np.arange(3)
        return stats.trend_test(data, direction="decreasing", alpha=alpha), None

    return stats.staged(measure, base, _PLAN)


def decisions() -> list:
    """The battery's decisions, as JSON-ready values."""
    out = []
    for shift in (0.0, 0.4, 1.5, -1.5):
        for n, seed in ((5, 0), (12, 1), (40, 2)):
            out += [v.to_dict() for v in _verdicts(shift, n, seed)]
        s = _staged(shift, 4)
        out.append({"verdict": s.verdict.to_dict(), **s.to_dict()})
    out.append(stats.inconclusive("no finite value", test="not run").to_dict())
    return _clean(out)


def decision_fingerprint() -> str:
    """16 hex digits over `decisions()`."""
    return hashlib.sha256(json.dumps(decisions(), sort_keys=True).encode()).hexdigest()[:16]
