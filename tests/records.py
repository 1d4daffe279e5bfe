"""Synthetic verdicts and claim records for the tests: one home for the filler fields, so that a
test names only what it is about."""

from __future__ import annotations

from hw1 import stats
from hw1.records import ClaimRecord


def verdict(**kw) -> stats.Verdict:
    """A 'not shown' Page's-trend verdict over 6 seeds; any field may be given."""
    v = dict(
        status="not shown",
        test="Page's L trend test",
        statistic=1.0,
        p_value=0.45,
        alpha=0.05,
        effect_name="mean Kendall tau",
        effect=-0.06,
        ci_low=-0.133,
        ci_high=0.0,
        n=6,
        detail="d",
        p_opposite=0.58,
    )
    return stats.Verdict(**{**v, **kw})


def record(**kw) -> ClaimRecord:
    """A ci record of sensitivity [mnist] with `verdict()`; any field may be given."""
    r = dict(
        claim="sensitivity",
        case="mnist",
        section="s",
        statement="Larger batches, lower sensitivity.",
        scale="ci",
        seeds=[0, 1, 2, 3, 4, 5],
        verdict=verdict(),
        expected="not shown",
    )
    return ClaimRecord(**{**r, **kw})
