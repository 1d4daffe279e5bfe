"""The verdict ledger (claims/__snapshots__/<scale>/) cannot be wiped by accident.

Updating one claim's entries touches only those entries; deselected claims and other scales are
never reported as unused; and every ledger file belongs to a claim case that exists.
"""
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
    import os

    env = {**os.environ, "HW1_RUN_CACHE": str(cwd / "runs"), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "pytest", "claims/", "-p", "no:xdist", "-q",
                           "--figures-dir", str(cwd / "fig"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


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
    res = subprocess.run([sys.executable, "-m", "pytest", "claims/", "--collect-only", "-q"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    cases = {line.split("::")[-1] for line in res.stdout.splitlines() if "::" in line}
    for path in LEDGER.rglob("*.json"):
        assert path.stem in cases, f"{path} belongs to no claim case: remove it or restore its test"
    for scale in ("smoke", "ci"):
        named = {p.stem for p in (LEDGER / scale).rglob("*.json")}
        assert named == cases, f"{scale} ledger: missing {sorted(cases - named)}"
