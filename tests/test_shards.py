"""Merging sharded claims reports (hw1.shards): the merged index is the index of all the records
together, and shards that would make a misleading report are refused."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hw1 import report, shards, stats
from hw1.records import ClaimRecord

ROOT = Path(__file__).resolve().parent.parent


def _record(claim, case="", scale="paper", section="HW1-1 Deep vs shallow", shift=1.0):
    # a real verdict (Wilcoxon over 6 seeds) and one figure, in the format the harness writes
    rec = ClaimRecord(
        claim=claim,
        case=case,
        section=section,
        statement=f"{claim} holds.",
        scale=scale,
        seeds=list(range(6)),
        note=f"note of {claim}",
    )
    a = np.arange(6.0)
    rec.figures.append({"name": rec.key, "png": f"{rec.key}.png", "data": f"{rec.key}.json"})
    rec.conclude(stats.paired_test(a, a + shift, alternative="less", claim=claim))
    return rec


def _shard(root: Path, name: str, records, device="cuda", scale="paper") -> Path:
    d = root / name
    for rec in records:
        rec.save(d)
        (d / f"{rec.key}.png").write_bytes(b"\x89PNG fake " + rec.key.encode())
        report.write_json(d / f"{rec.key}.json", {"panels": [], "of": rec.key})
    report.write_json(
        d / "environment.json",
        {"scale": scale, "seed_offset": 0, "device": device, "python": "3.11.7", "cpus": 16},
    )
    return d


@pytest.fixture
def two_shards(tmp_path):
    a = [
        _record("function-depth", "sinc"),
        _record("function-depth", "sincos", shift=-1.0),
        _record("gradient-norm", section="HW1-2 Optimization"),
    ]
    b = [_record("random-labels", section="HW1-3 Generalization"), _record("cnn-depth")]
    return _shard(tmp_path, "shard-fit", a, "cuda:0"), _shard(tmp_path, "shard-rl", b, "cuda:1"), a + b


def test_merged_index_is_the_index_of_all_records_together(tmp_path, two_shards):
    a, b, recs = two_shards
    index = shards.merge([a, b], tmp_path / "merged")
    together = tmp_path / "together"
    for rec in recs:
        rec.save(together)
    for src in (a, b):  # the same figures and data beside them
        for f in src.glob("*.png"):
            shutil.copy(f, together)
        for f in src.glob("*.json"):
            if f.name != "environment.json":
                shutil.copy(f, together)
    shutil.copy(tmp_path / "merged" / "environment.json", together)
    assert index == tmp_path / "merged" / "INDEX.md"
    assert index.read_text() == report.write_index(together).read_text()
    assert "random-labels" in index.read_text() and "gradient-norm" in index.read_text()


def test_merge_copies_records_figures_and_data(tmp_path, two_shards):
    a, b, recs = two_shards
    out = tmp_path / "merged"
    shards.merge([a, b], out)
    for rec in recs:
        assert json.loads((out / "records" / f"{rec.key}.json").read_text()) == json.loads(
            (rec.save(tmp_path / "again")).read_text()
        )
        assert (out / f"{rec.key}.png").read_bytes() == b"\x89PNG fake " + rec.key.encode()
        assert json.loads((out / f"{rec.key}.json").read_text())["of"] == rec.key


def test_environments_are_combined_with_each_shards_device(tmp_path, two_shards):
    a, b, _ = two_shards
    env = json.loads((Path(shards.merge([a, b], tmp_path / "m").parent) / "environment.json").read_text())
    assert env["scale"] == "paper" and env["python"] == "3.11.7"  # what the shards agree on
    assert env["device"] == "cuda:0 + cuda:1"  # they differ: both named
    devices = [(s["shard"], s["device"]) for s in env["shards"]]
    assert devices == [("shard-fit", "cuda:0"), ("shard-rl", "cuda:1")]
    assert env["shards"][1]["cases"] == ["cnn-depth", "random-labels"]


def test_the_same_case_twice_with_the_same_result_is_merged_once(tmp_path):
    rec = _record("cnn-depth")
    a = _shard(tmp_path, "a", [rec])
    rec.started, rec.seconds = rec.started + 100, rec.seconds + 5  # a rerun: only its timing differs
    b = _shard(tmp_path, "b", [rec])
    index = shards.merge([a, b], tmp_path / "m")
    assert len(list((tmp_path / "m" / "records").glob("*.json"))) == 1
    assert index.read_text().count("### cnn-depth\n") == 1


def test_records_of_different_scales_are_refused(tmp_path):
    a = _shard(tmp_path, "a", [_record("cnn-depth")])
    b = _shard(tmp_path, "b", [_record("dnn-depth", scale="ci")], scale="ci")
    with pytest.raises(shards.ShardError, match=r"different scales.*ci: b; paper: a"):
        shards.merge([a, b], tmp_path / "m")
    assert not (tmp_path / "m").exists()  # nothing written


def test_conflicting_duplicate_cases_are_refused(tmp_path):
    a = _shard(tmp_path, "a", [_record("cnn-depth", shift=1.0)])
    b = _shard(tmp_path, "b", [_record("cnn-depth", shift=-1.0)])
    with pytest.raises(
        shards.ShardError,
        match=r"claim case cnn-depth is recorded by both .*a and .*b "
        r"with different verdict",
    ):
        shards.merge([a, b], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_two_different_files_of_one_name_are_refused(tmp_path):
    a = _shard(tmp_path, "a", [_record("cnn-depth")])
    b = _shard(tmp_path, "b", [_record("dnn-depth")])
    (b / "cnn-depth.png").write_bytes(b"another picture")
    with pytest.raises(shards.ShardError, match=r"two shards wrote cnn-depth.png"):
        shards.merge([a, b], tmp_path / "m")


def test_missing_shards_and_a_used_output_are_refused(tmp_path, two_shards):
    a, b, _ = two_shards
    with pytest.raises(shards.ShardError, match="does not exist"):
        shards.merge([a, tmp_path / "nope"], tmp_path / "m")
    with pytest.raises(shards.ShardError, match="no shard folders"):
        shards.merge([], tmp_path / "m")
    with pytest.raises(shards.ShardError, match="already holds claim records"):
        shards.merge([b], a)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(shards.ShardError, match="no shard holds a claim record"):
        shards.merge([empty], tmp_path / "m")


def test_command_line(tmp_path, two_shards, capsys):
    a, b, _ = two_shards
    assert shards.main(["merge", str(tmp_path / "m"), str(a), str(b)]) == 0
    assert "merged 2 shard(s), 5 claim case(s)" in capsys.readouterr().out
    assert shards.main(["merge", str(tmp_path / "m"), str(a)]) == 2
    assert "error: " in capsys.readouterr().err
    # the module entry point CI calls
    res = subprocess.run(
        [sys.executable, "-m", "hw1.shards", "merge", str(tmp_path / "m2"), str(a)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "m2" / "INDEX.md").is_file()


def test_the_gpu_workflow_shards_every_claim_once():
    # each claim in exactly one matrix job, so the merged report is complete and no case is run twice
    workflow = (ROOT / ".github" / "workflows" / "claims-gpu.yml").read_text()
    sharded = re.findall(r"--claim ([\w-]+)", workflow)
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "claims/", "--collect-only", "-q", "--claim", "no-such-claim"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    known = re.search(r"known claims: ([\w, -]+)", res.stderr + res.stdout)
    assert known, res.stderr
    assert sorted(sharded) == sorted(known[1].strip().split(", "))
    assert "python -m hw1.shards merge" in workflow


def test_merge_keeps_each_shards_cpu_and_the_index_names_them(tmp_path, two_shards):
    """Shards run on different CPUs: environment.json keeps each shard's numerics (CPU kind, BLAS), with
    no common entry, and the merged index says where each shard ran."""
    a, b, _ = two_shards
    for shard, cpu in ((a, "Intel(R) Xeon(R) Processor"), (b, "AMD EPYC 9B14")):
        env = json.loads((shard / "environment.json").read_text())
        env["numerics"] = {
            "cpu": cpu,
            "cpu_capability": "AVX512",
            "torch_blas": "mkl",
            "numpy_blas": "openblas",
            "torch": "2.14.1",
            "numpy": "2.4.6",
            "knobs": {},
        }
        report.write_json(shard / "environment.json", env)
    index = shards.merge([a, b], tmp_path / "merged")
    env = json.loads((tmp_path / "merged" / "environment.json").read_text())
    assert "numerics" not in env
    assert [s["numerics"]["cpu"] for s in env["shards"]] == ["Intel(R) Xeon(R) Processor", "AMD EPYC 9B14"]
    text = Path(index).read_text()
    assert "Shard `shard-fit` ran on: Intel(R) Xeon(R) Processor" in text and "AMD EPYC 9B14" in text
