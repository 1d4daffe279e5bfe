"""The index and the terminal summary write what the records hold (issue 16, fix 7; issue 15)."""
import math

from hw1 import report, stability, stats


def _record(**verdict) -> dict:
    v = {"status": "not shown", "test": "Page's L trend test", "p_value": 0.45, "p_opposite": 0.58,
         "effect_name": "mean Kendall tau", "effect": -0.06, "ci_low": -0.133, "ci_high": 0.0, **verdict}
    return {"claim": "sensitivity", "case": "mnist", "section": "s", "statement": "", "scale": "ci",
            "seeds": [0, 1, 2, 3, 4, 5], "figures": [], "verdict": v, "expected": "not shown"}


def test_an_interval_ending_at_zero_is_written_as_zero_not_nan():
    row = report._row(_record(), None, None)
    assert "[-0.133, 0]" in row and "nan" not in row
    missing = report._row(_record(ci_high=None), None, None)  # JSON's stand-in for nan
    assert "[-0.133, nan]" in missing


def test_one_p_value_formatter_everywhere():
    for p in (0.5, 0.045, 0.0013, 0.00013, 4.2e-5, 1.0):
        assert report._fmt_p(p) == stability._fmt_p(p) == stats.format_p(p)
    assert stats.format_p(0.00013) == "1.3e-04" and stats.format_p(0.0013) == "0.0013"
    assert report._fmt_p(None) == stability._fmt_p(None) == stats.format_p(math.nan) == "—"


def test_a_fragile_case_within_its_split_is_marked_as_such_in_the_index():
    r = {**_record(status="contradicted"), "differs_from_ledger": True, "within_fragile_split": True}
    row = report._row(r, None, None)
    assert "within this fragile case's split" in row and "differs from the expectation" not in row
