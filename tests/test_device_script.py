"""The prepared device script (benchmarks/gpu_paper.sh) and its timing table."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from records import record, verdict

from benchmarks import timing

ROOT = Path(__file__).resolve().parents[1]


def _record(folder: Path, claim: str, case: str, status: str, seconds: float, seeds: int) -> None:
    record(
        claim=claim,
        case=case,
        verdict=verdict(status=status),
        seeds=list(range(seeds)),
        seconds=seconds,
        train_seconds=seconds * 2,
    ).save(folder)


def test_the_timing_table_lists_every_case_slowest_first(tmp_path):
    _record(tmp_path, "cnn-depth", "", "not shown", 12.5, 20)
    _record(tmp_path, "sharpness", "fit-keskar", "contradicted", 80.0, 6)
    (tmp_path / "environment.json").write_text(
        json.dumps(
            {
                "scale": "paper",
                "device": "cuda",
                "torch": "2.14.1",
                "numerics": {"cpu": "some CPU", "accelerator": "NVIDIA H200"},
            }
        )
    )
    text = timing.table(tmp_path, wall=300)
    assert "paper scale, 2 claim cases" in text and "NVIDIA H200" in text and "300 s (5.0 min)" in text
    body = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert body[0].startswith("| sharpness | fit-keskar | contradicted | 6 | 80.0 | 160 |")
    assert body[1].startswith("| cnn-depth |  | not shown | 20 | 12.5 | 25 |")


def test_the_timing_table_refuses_a_folder_without_records(tmp_path):
    with pytest.raises(SystemExit, match="no records/ folder"):
        timing.main([str(tmp_path)])


def test_the_device_script_runs_end_to_end_at_smoke_scale(tmp_path):
    # what a GPU machine runs at paper scale, here at smoke scale on the CPU: every claim, its
    # figures and records in the output folder, and the timing table
    out = tmp_path / "out"
    env = {**os.environ, "HW1_RUN_CACHE": str(tmp_path / "runs"), "HW1_DEVICE_OUT": str(out)}
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_paper.sh"), "smoke", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = (out / "timing.md").read_text()
    assert "smoke scale, 21 claim cases" in table and "Wall time of the whole run" in table, table
    assert (out / "INDEX.md").exists() and (out / "run.log").exists()


def _script(tmp_path, *args, budget=None):
    out = tmp_path / "out"
    env = {**os.environ, "HW1_RUN_CACHE": str(tmp_path / "runs"), "HW1_DEVICE_OUT": str(out)}
    env.pop("HW1_BUDGET_S", None)
    if budget is not None:
        env["HW1_BUDGET_S"] = str(budget)
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_paper.sh"), "smoke", "1", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return run, out


def test_the_device_script_runs_a_part_and_says_so(tmp_path):
    run, out = _script(tmp_path, "--claim", "dnn-depth")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = (out / "timing.md").read_text()
    assert "smoke scale, 1 claim cases" in table and "| dnn-depth |" in table
    assert "pytest arguments: --claim dnn-depth" in table and "CUDA graphs: off" in table


def test_a_budget_stops_the_run_and_the_timing_says_what_finished(tmp_path):
    run, out = _script(tmp_path, "--claim", "dnn-depth", budget=1)  # pytest is still starting
    assert run.returncode == 124, run.stdout[-3000:] + run.stderr[-3000:]
    assert "No claim case finished" in (out / "timing.md").read_text()
