"""Seed-level hypothesis tests that turn a report's claim into a Verdict.

One concept per module; every name is re-exported here, so callers write ``stats.trend_test``,
``stats.Verdict``, ``stats.staged``:

* `tests`   -- the statistical tests (Page's trend, Wilcoxon signed-rank paired and one-sample,
  Kendall's correlation, the exact binomial proportion), their combination `all_of`, and the
  bootstrap intervals of the effects;
* `verdict` -- the Verdict, its four outcomes, the rule that decides them (`decide`) and the words
  that report them;
* `design`  -- the staged design: `StagePlan`, `staged`, and the futility rule between stages.

`tests` builds on `verdict`, and `design` on both.
"""

# The underscored names are private helpers that the unit tests check directly; the redundant
# aliases mark them as re-exported.
from .design import (
    DECIDED,
    EXACT_UP_TO,
    FUTILITY,
    LAST_STAGE,
    NO_P,
    STOP_REASONS,
    Staged,
    StagePlan,
    _page_null as _page_null,
    binomial_power,
    conditional_power,
    conditional_power_z,
    critical_z,
    futility_powers,
    reachable,
    staged,
)
from .tests import (
    _batched_tau_b as _batched_tau_b,
    _page_exact as _page_exact,
    _page_moments as _page_moments,
    _row_tau as _row_tau,
    _signed_rank_exact as _signed_rank_exact,
    all_of,
    bootstrap_ci,
    correlation_test,
    one_sample_test,
    paired_test,
    proportion_test,
    trend_test,
)
from .verdict import (
    ALPHA,
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_SHOWN,
    OUTCOMES,
    POWER,
    REPRODUCED,
    Verdict,
    decide,
    format_p,
    futility_z,
    inconclusive,
    seeds_needed,
    z_score,
)

__all__ = [
    "ALPHA",
    "CONTRADICTED",
    "DECIDED",
    "EXACT_UP_TO",
    "FUTILITY",
    "INCONCLUSIVE",
    "LAST_STAGE",
    "NOT_SHOWN",
    "NO_P",
    "OUTCOMES",
    "POWER",
    "REPRODUCED",
    "STOP_REASONS",
    "StagePlan",
    "Staged",
    "Verdict",
    "all_of",
    "binomial_power",
    "bootstrap_ci",
    "conditional_power",
    "conditional_power_z",
    "correlation_test",
    "critical_z",
    "decide",
    "format_p",
    "futility_powers",
    "futility_z",
    "inconclusive",
    "one_sample_test",
    "paired_test",
    "proportion_test",
    "reachable",
    "seeds_needed",
    "staged",
    "trend_test",
    "z_score",
]
