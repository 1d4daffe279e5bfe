"""A claims run with a cold run cache vs the same run warm, and the time per claim at `ci` scale.

The runs are subprocesses of pytest with a fresh temporary HW1_RUN_CACHE and --figures-dir, so the
project's cache and committed report are not touched. The warm run must retrain nothing: the set of
entries (names and modification times) is compared before and after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import spread

ROOT = Path(__file__).resolve().parent.parent


def _entries(folder: Path) -> dict[str, int]:
    if not folder.is_dir():
        return {}
    return {
        p.name: (p / "meta.json").stat().st_mtime_ns
        for p in folder.iterdir()
        if p.is_dir() and p.name[0] != "."
    }


def _pytest(args: list[str], cache: Path, figures: Path) -> tuple[float, int, str]:
    # one torch thread, as each CI xdist worker has: on 2 shared cores, 2 threads make these small
    # trainings several times slower (thread synchronisation on every tiny operation)
    env = {**os.environ, "HW1_RUN_CACHE": str(cache), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("HW1_NO_CACHE", None)
    opts = ["-p", "no:randomly", "-q", "--device", "cpu", "--figures-dir", str(figures)]
    cmd = [sys.executable, "-m", "pytest", *args, *opts]
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return time.perf_counter() - t, done.returncode, last


def bench_cold_warm(args: list[str], repeats: int = 2) -> dict:
    """Cold and warm wall seconds of `pytest args` (fresh cache per repeat) and their ratio."""
    cold, warm, ratios, retrained, outcome = [], [], [], 0, ""
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="hw1-bench-") as tmp:
            cache, figures = Path(tmp) / "runs", Path(tmp) / "figures"
            c, rc1, outcome = _pytest(args, cache, figures)
            before = _entries(cache)
            w, rc2, _ = _pytest(args, cache, figures)
            after = _entries(cache)
            retrained += sum(after.get(k) != v for k, v in before.items()) + len(set(after) - set(before))
            outcome += f" (exit codes {rc1}, {rc2})" if rc1 or rc2 else ""
            cold, warm, ratios = cold + [c], warm + [w], ratios + [c / w]
            print(
                f"  cold {c:6.1f} s, warm {w:5.1f} s, {len(before)} entries, ratio {c / w:.1f}x", flush=True
            )
    row = {"command": "pytest " + " ".join(args), "cold_s": spread(cold), "warm_s": spread(warm)}
    return {
        **row,
        "ratio": spread(ratios),
        "entries": len(before),
        "retrained_when_warm": retrained,
        "outcome": outcome,
    }


def claim_times(records: Path = ROOT / "figures" / "records") -> dict:
    """Per-claim wall seconds from the harness's record files (figures/records/*.json)."""
    rows = []
    for f in sorted(records.glob("*.json")) if records.is_dir() else []:
        r = json.loads(f.read_text())
        row = {k: r.get(k, default) for k, default in (("claim", None), ("case", ""), ("scale", None))}
        row.update(
            seconds=float(r.get("seconds", 0.0)),
            train_seconds=r.get("train_seconds"),
            seeds=len(r.get("seeds", [])),
        )
        status = (r.get("verdict") or {}).get("status", "no verdict")
        rows.append({**row, "stop": r.get("stop", ""), "verdict": status})
    rows.sort(key=lambda r: -r["seconds"])
    folder = str(records.relative_to(ROOT)) if records.is_relative_to(ROOT) else str(records)
    return {"folder": folder, "rows": rows, "total_s": sum(r["seconds"] for r in rows)}
