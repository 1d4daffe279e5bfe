"""The verdict ledger (claims/__snapshots__/<scale>/) cannot be wiped by accident.

Updating one claim's entries touches only those entries; deselected claims and other scales are
never reported as unused; and every ledger file belongs to a claim case that exists.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEDGER = ROOT / "claims" / "__snapshots__"


def _snapshot_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def _copy_project(tmp: Path) -> Path:
    """The harness and the claims in a scratch folder, so the real ledger is never written."""
    for name in ("conftest.py", "pytest.ini"):
        shutil.copy(ROOT / name, tmp / name)
    shutil.copytree(ROOT / "claims", tmp / "claims", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp


def _pytest(cwd: Path, *args, env_extra=None):
    env = {**os.environ, "HW1_RUN_CACHE": str(cwd / "runs"), **(env_extra or {})}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "claims/",
            "-p",
            "no:xdist",
            "-q",
            "--figures-dir",
            str(cwd / "fig"),
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_updating_one_claim_touches_only_its_entries(tmp_path):
    proj = _copy_project(tmp_path)
    before = _snapshot_files(proj / "claims" / "__snapshots__")
    # Make the one selected entry stale, so the update has something to rewrite.
    mine = next(k for k in before if k.startswith("smoke/") and "test_gradient_norm" in k)
    (proj / "claims" / "__snapshots__" / mine).write_text("{}\n")
    res = _pytest(proj, "--scale", "smoke", "--claim", "gradient-norm", "--snapshot-update")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    after = _snapshot_files(proj / "claims" / "__snapshots__")
    assert set(after) == set(before), "an update deleted or added ledger files"
    changed = [k for k in before if before[k] != after[k]]
    assert changed == [], changed  # the stale entry was rewritten back to what it was
    assert "snapshots unused" not in res.stdout and "deleted" not in res.stdout.lower()


def test_a_one_claim_run_reports_no_unused_entries(tmp_path):
    proj = _copy_project(tmp_path)
    res = _pytest(proj, "--scale", "smoke", "--claim", "dnn-depth")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "snapshots unused" not in res.stdout and "snapshot unused" not in res.stdout


def test_every_ledger_entry_belongs_to_a_claim_case():
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "claims/", "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    cases = {line.split("::")[-1] for line in res.stdout.splitlines() if "::" in line}
    for path in LEDGER.rglob("*.json"):
        assert path.stem in cases, f"{path} belongs to no claim case: remove it or restore its test"
    for scale in ("smoke", "ci"):
        named = {p.stem for p in (LEDGER / scale).rglob("*.json")}
        assert named == cases, f"{scale} ledger: missing {sorted(cases - named)}"


# ---------------------------------------------------------------- what a machine cannot change

# Labels of trajectories-diverge's figure, as an Intel Xeon and an AMD EPYC machine wrote them at
# the default seeds (the cross-CPU digest experiment): the same runs, a few ulps apart after 2000 epochs.
INTEL = ["seed 0 (final loss 0.019)", "seed 1 (final loss 0.00011)", "seed 2 (final loss 0.00053)"]
AMD = ["seed 0 (final loss 0.019)", "seed 1 (final loss 0.00013)", "seed 2 (final loss 0.00049)"]


def _structure(series, title="Parameter trajectories of 8 runs, hidden layer 4 (210 params)"):
    return {
        "suptitle": title,
        "panels": [
            {
                "title": "PCA",
                "xlabel": "PCA component 1",
                "ylabel": "loss",
                "xscale": "linear",
                "yscale": "log",
                "series": list(series),
            }
        ],
    }


def test_the_ledger_entry_is_the_same_for_runs_of_another_cpu():
    from hw1 import ledger

    a = ledger.entry("trajectories-diverge", "", "not shown", "sign test", {"f": _structure(INTEL)})
    b = ledger.entry("trajectories-diverge", "", "not shown", "sign test", {"f": _structure(AMD)})
    assert a == b
    assert a["figures"]["f"]["panels"][0]["series"] == ["seed # (final loss #)"]
    # a case that stopped at another stage: twice the seeds, as many series, another count in the title
    c = ledger.entry(
        "trajectories-diverge",
        "",
        "not shown",
        "sign test",
        {"f": _structure(INTEL * 2, "Parameter trajectories of 16 runs, hidden layer 4 (210 params)")},
    )
    assert c == a
    assert "seeds_used" not in a


def test_the_ledger_entry_still_changes_with_the_outcome_and_the_structure():
    from hw1 import ledger

    base = ledger.entry("c", "", "not shown", "t", {"f": _structure(INTEL)})
    assert ledger.entry("c", "", "contradicted", "t", {"f": _structure(INTEL)}) != base
    assert ledger.entry("c", "", "not shown", "another test", {"f": _structure(INTEL)}) != base
    other = _structure(INTEL)
    other["panels"][0]["ylabel"] = "accuracy"
    assert ledger.entry("c", "", "not shown", "t", {"f": other}) != base
    assert ledger.entry("c", "", "not shown", "t", {"f": _structure(["mean over points"])}) != base


def test_a_fragile_case_pins_its_split_and_nothing_outside_it():
    from hw1 import ledger

    table = {
        "cases": {
            "c": {
                "stable": False,
                "sets": [{"status": "not shown"}, {"status": "contradicted"}, {"status": "not shown"}],
            },
            "d": {"stable": True, "sets": [{"status": "reproduced"}] * 3},
        }
    }
    split = ledger.fragile_split(table, "c")
    assert split == {"not shown", "contradicted"}
    assert ledger.fragile_split(table, "d") is None and ledger.fragile_split(table, "e") is None
    within = {ledger.pinned_outcome(s, split) for s in ("not shown", "contradicted")}
    assert within == {"fragile: contradicted | not shown"}
    assert ledger.pinned_outcome("reproduced", split) == "reproduced"  # outside: the ledger differs


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def test_no_ledger_file_holds_a_measured_number():
    import json
    import re

    for path in LEDGER.rglob("*.json"):
        entry = json.loads(path.read_text())
        assert set(entry) == {"claim", "case", "verdict", "test", "figures"}, path
        digits = [s for s in _strings(entry["figures"]) if re.search(r"\d", s)]
        assert not digits, f"{path}: numbers in the figures' structure: {digits[:3]}"
        # the test's name holds only the claim's stated thresholds (config), never a measurement
        assert "p =" not in entry["test"] and "seeds" not in entry["test"], path


PERTURB = '''
"""Every trained tensor, and every cached measurement, off by a relative 1e-6, as on another CPU."""
import torch

from hw1 import cache

_split = cache._split


def _perturbed(result, seeds):
    g = torch.Generator().manual_seed(12345)
    return [{n: v * (1 + 1e-6 * torch.randn(v.shape, generator=g, dtype=v.dtype)) if v.is_floating_point()
             else v for n, v in part.items()} for part in _split(result, seeds)]


cache._split = _perturbed
'''


def test_a_run_whose_trained_numbers_differ_slightly_passes_the_ledger(tmp_path):
    """Runs of another machine (here: every trained number moved by a relative 1e-6) pass the
    committed ledger; the same run with one outcome changed in its ledger entry fails."""
    proj = _copy_project(tmp_path)
    (proj / "perturb_runs.py").write_text(PERTURB)
    env = {"PYTHONPATH": os.pathsep.join([str(proj), os.environ.get("PYTHONPATH", "")])}
    claim = ("--claim", "trajectories-diverge", "--claim", "error-surface")
    res = _pytest(proj, "--scale", "smoke", *claim, "-p", "perturb_runs", env_extra=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = (proj / "fig" / "trajectories-diverge-model.json").read_text()
    assert data  # the figure was drawn from the perturbed runs
    # the check is live: an entry that pins another outcome fails the same run
    entry = proj / "claims" / "__snapshots__" / "smoke" / "test_optimization"
    entry = entry / "test_trajectories_diverge.json"
    entry.write_text(entry.read_text().replace('"verdict": "inconclusive"', '"verdict": "not shown"'))
    res = _pytest(proj, "--scale", "smoke", *claim, "-p", "perturb_runs", env_extra=env)
    assert res.returncode == 1 and "1 failed" in res.stdout, res.stdout[-3000:]


def _filer(expected: str, split):
    """The harness's ClaimFiler for a case expected to end in `expected`, strict, ledger on."""
    from types import SimpleNamespace

    from claims import harness

    record = SimpleNamespace(claim="cnn-depth", case="", expected=expected)
    return harness, harness.ClaimFiler(
        record, ROOT, None, None, offset=0, strict=True, measured=True, split=split
    )


def test_another_outcome_within_a_fragile_split_is_listed_not_failed_and_outside_it_fails():
    import pytest

    from hw1 import stats

    split = frozenset({"not shown", "contradicted"})
    verdict = stats.inconclusive("x")
    mod, filer = _filer("not shown", split)
    within = stats.Verdict(**{**verdict.__dict__, "status": "contradicted"})
    with pytest.raises(mod.ClaimNotReproduced, match="fragile case"):  # the strict xfail holds
        filer._assert_outcome(within)
    outside = stats.Verdict(**{**verdict.__dict__, "status": "inconclusive"})
    with pytest.raises(mod.OutcomeChanged):
        filer._assert_outcome(outside)
    mod, stable = _filer("not shown", None)  # a stable case: any other outcome fails the run
    with pytest.raises(mod.OutcomeChanged):
        stable._assert_outcome(within)


def test_the_heaviest_claim_cases_start_on_different_workers():
    """xdist's load scheduler gives each worker a first chunk of 2 consecutive items: the order
    deals the heaviest cases over those chunks so that two of them never queue on one worker."""
    mod, _ = _filer("not shown", None)
    order = mod.first_chunks(list(range(21)), 2)
    assert sorted(order) == list(range(21))
    assert order[:2] == [0, 3] and order[2:4] == [1, 2]  # worker 0: heaviest + 4th; worker 1: 2nd + 3rd
    assert mod.first_chunks(list(range(21)), 1) == list(range(21))
