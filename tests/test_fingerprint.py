"""The decision fingerprint changes when a decision changes, and only then."""

import subprocess
import sys

from hw1 import fingerprint, stats


def test_it_is_the_same_in_another_process():
    here = fingerprint.decision_fingerprint()
    code = "from hw1.fingerprint import decision_fingerprint as f; print(f())"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here


def test_the_battery_reaches_every_outcome_and_every_stop():
    got = fingerprint.decisions()
    assert {d.get("status") or d["verdict"]["status"] for d in got} == set(stats.OUTCOMES)
    assert {d["reason"] for d in got if "reason" in d} >= {stats.DECIDED, stats.FUTILITY, stats.LAST_STAGE}


def test_a_changed_decision_changes_it(monkeypatch):
    before = fingerprint.decision_fingerprint()
    real = stats.trend_test
    monkeypatch.setattr(stats, "trend_test", lambda data, **kw: real(data, **{**kw, "alpha": 0.1}))
    assert fingerprint.decision_fingerprint() != before
    monkeypatch.undo()
    monkeypatch.setattr(
        stats,
        "paired_test",
        lambda a, b, **kw: real(a[:, None] - b[:, None] * [0, 1], direction="decreasing"),
    )
    assert fingerprint.decision_fingerprint() != before


def test_a_change_of_wording_changes_it(monkeypatch):
    before = fingerprint.decision_fingerprint()
    real = stats.proportion_test
    monkeypatch.setattr(
        stats,
        "proportion_test",
        lambda *a, **kw: __import__("dataclasses").replace(real(*a, **kw), detail="x"),
    )
    assert fingerprint.decision_fingerprint() != before
