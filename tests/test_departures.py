"""The departures grid: one variant per departure of each case, only the fields the case reads, the
cap rule, resuming, and the names it refuses."""

from __future__ import annotations

import fnmatch
import json
import types

import pytest
from records import record, verdict

from hw1 import departures as D, departures_report as R, memory, report
from hw1.config import CI, REPORT, _flat, departures, settings_read

CASES = [
    ("function-depth", "sinc", 59.0),
    ("function-depth", "sincos", 23.0),
    ("cnn-depth", "", 700.0),
    ("dnn-depth", "", 2.0),
    ("minimal-ratio", "", 28.0),
    ("random-labels", "", 27.0),
    ("params-vs-generalization", "test-loss-rises", 68.0),
    ("params-vs-generalization", "train-loss-falls", 68.0),
    ("interpolation", "", 22.0),
    ("sensitivity", "fit", 94.0),
    ("sensitivity", "mnist", 205.0),
    ("sharpness", "fit-gaussian", 59.0),
    ("sharpness", "mnist-keskar", 76.0),
]


def _base():
    return [record(claim=c, case=k, train_seconds=t, seconds=10.0, verdict=verdict()) for c, k, t in CASES]


def test_each_case_lists_only_the_settings_of_its_own_task():
    fit = {d["field"] for d in departures(CI, "sensitivity", case="fit")}
    mnist = {d["field"] for d in departures(CI, "sensitivity", case="mnist")}
    assert fit and mnist
    assert not any(f.startswith("gen.bs_") for f in fit)
    assert not any(f.startswith("gen.fit_") for f in mnist)
    sharp = {d["field"] for d in departures(CI, "sharpness", case="mnist-gaussian")}
    assert "gen.sharp_points" in sharp and not any(f.startswith("gen.fit_") for f in sharp)


def test_one_variant_per_departure_of_each_case_setting_only_fields_it_reads():
    base = _base()
    grid = D.generate(base, cap=1e9)
    ones = [v for v in grid if v.kind == "one"]
    for claim, case, _ in CASES:
        label = report.case_label(claim, case)
        for d in departures(CI, claim, case=case):
            hits = [v for v in ones if label in v.cases and v.fields == [d["field"]]]
            assert len(hits) == 1, (label, d["field"])
    for v in grid:
        assert len(v.fields) == len(set(v.fields)) and v.set
        for label in v.cases:
            claim, case = next((c, k) for c, k, _ in CASES if report.case_label(c, k) == label)
            globs = settings_read(claim, case)
            assert all(any(fnmatch.fnmatch(f, g) for g in globs) for f in v.fields), (v.name, label)
    for v in ones:  # with no cap every one-setting variant runs at the report's value
        assert v.value == [_flat(REPORT)[f] for f in v.fields] and v.step == "the report's value"


def test_a_variant_over_the_cap_takes_the_largest_step_that_fits():
    base = _base()
    key = "gen.pg_train_size"
    cases = [D.Case("params-vs-generalization", k) for k in ("test-loss-rises", "train-loss-falls")]
    full = D.estimate_seconds({key: None}, cases, base)
    at4 = D.estimate_seconds({key: 4000}, cases, base)
    at16 = D.estimate_seconds({key: 16000}, cases, base)
    assert at4 < at16 < full
    pick = lambda cap: next(  # noqa: E731
        v for v in D.generate(base, cap=cap) if v.kind == "one" and v.fields == [key]
    )
    assert pick(full + 1).value == [None] and pick(full + 1).runnable
    v = pick((at16 + full) / 2)
    assert v.value == [16000] and v.runnable and v.step == "x16 (the report is x60)"
    assert pick((at4 + at16) / 2).value == [4000]
    none = pick(at4 / 2)  # no step fits: the first step, marked not runnable, its cost kept
    assert not none.runnable and none.full_estimate_s == pytest.approx(full, abs=0.1)


def test_mnist_families_get_an_all_departures_variant_and_a_data_ladder():
    grid = D.generate(_base(), cap=1e9)
    alls = {v.family for v in grid if v.kind == "all"}
    assert {"random-labels", "params-vs-generalization", "batch-size-mnist"} <= alls
    for v in (v for v in grid if v.kind == "all"):
        assert not any(fnmatch.fnmatch(f, "*size*") for f in v.fields)  # data stays at ci size
    rungs = {(v.family, v.extra["data_fraction"]) for v in grid if "data_fraction" in v.extra}
    assert ("random-labels", 2000 / 60000) in rungs and ("random-labels", 8000 / 60000) in rungs
    assert ("dnn-depth", 1.0) in rungs  # x16 of 4000 is capped at all of MNIST


def _grid(tmp_path, variants):
    return {"name": "departures-test", "date": "d", "scale": "ci", "cap_s": 1.0, "variants": variants}


def _fake_runner(calls):
    """Stands in for subprocess.run: files a record of every case the variant measures."""

    def run(cmd, cwd, stdout, stderr, check, timeout):
        folder = cmd[cmd.index("--figures-dir") + 1]
        calls.append(folder)
        claims = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--claim"]
        for c in claims:
            record(claim=c, case="", overrides=[cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]).save(
                folder
            )
        return types.SimpleNamespace(returncode=0)

    return run


def _variant(name="dnn-depth.epochs-20", item="mnist.epochs=20"):
    return D.Variant(
        name=name,
        family="dnn-depth",
        kind="one",
        cases=["dnn-depth"],
        claims=["dnn-depth"],
        select="test_dnn_depth",
        set=[item],
        fields=[item.split("=")[0]],
        value=[20],
        report=[20],
        step="the report's value",
        estimate_s=1.0,
        full_estimate_s=1.0,
        decisive="training",
    )


def test_a_finished_variant_is_skipped_and_a_changed_one_reruns(tmp_path):
    grid = _grid(tmp_path, [_variant()])
    calls = []
    assert D.run(tmp_path, grid, grid["variants"], runner=_fake_runner(calls)) == ["dnn-depth.epochs-20"]
    assert D.run(tmp_path, grid, grid["variants"], runner=_fake_runner(calls)) == []
    assert len(calls) == 1
    changed = _grid(tmp_path, [_variant(item="mnist.epochs=12")])  # same name, another grid's setting
    assert D.run(tmp_path, changed, changed["variants"], runner=_fake_runner(calls)) == [
        "dnn-depth.epochs-20"
    ]


def test_a_variant_decided_by_other_statistics_is_decided_again(tmp_path, monkeypatch):
    grid = _grid(tmp_path, [_variant()])
    calls = []
    D.run(tmp_path, grid, grid["variants"], runner=_fake_runner(calls))
    folder = D.variant_dir(tmp_path, grid, grid["variants"][0])
    first = report.load_json(folder / "variant.json")
    first = {k: v for k, v in first.items() if k != "trained_seconds"}  # a marker of before the field
    report.write_json(folder / "variant.json", {**first, "seconds": 1e5})  # as if training took long
    monkeypatch.setattr(D, "_decision", lambda: "another")
    assert D.run(tmp_path, grid, grid["variants"], runner=_fake_runner(calls)) == ["dnn-depth.epochs-20"]
    again = report.load_json(folder / "variant.json")
    assert again["decision"] == "another" and again["trained_seconds"] == 1e5  # its cost: the training run's


def test_a_variant_that_runs_out_of_its_budget_is_left_for_the_next_sitting(tmp_path):
    grid = _grid(tmp_path, [_variant()])

    def slow(cmd, cwd, stdout, stderr, check, timeout):
        import subprocess

        raise subprocess.TimeoutExpired(cmd, timeout)

    assert D.run(tmp_path, grid, grid["variants"], budget_s=100, runner=slow) == []
    assert not D.is_done(tmp_path, grid, grid["variants"][0])
    grid["variants"][0].estimate_s = 1e6  # estimated over what is left: not started at all
    calls = []
    assert D.run(tmp_path, grid, grid["variants"], budget_s=100, runner=_fake_runner(calls)) == []
    assert calls == []


def test_a_variant_over_the_cap_runs_only_when_asked(tmp_path):
    v = _variant()
    v.runnable = False
    grid = _grid(tmp_path, [v])
    calls = []
    assert D.run(tmp_path, grid, grid["variants"], runner=_fake_runner(calls)) == []
    assert D.run(tmp_path, grid, grid["variants"], runner=_fake_runner(calls), over_cap=True) == [v.name]
    assert D.main(["run", "--over-cap", "--out", str(tmp_path)]) == 2  # only with --only


def test_unknown_grid_or_variant_names_the_valid_ones_and_runs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(D, "GRIDS_DIR", tmp_path)
    (tmp_path / "departures-2026-01-01.json").write_text(
        json.dumps(_grid(tmp_path, [D.asdict(_variant())]) | {"name": "departures-2026-01-01"})
    )
    with pytest.raises(D.GridError, match="grids: departures-2026-01-01"):
        D.load_grid("nope")
    grid = D.load_grid()
    with pytest.raises(D.GridError, match="variants: dnn-depth.epochs-20"):
        D.choose(grid, ["nope"])
    assert D.main(["run", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert "variants: dnn-depth.epochs-20" in capsys.readouterr().err
    assert not (tmp_path / "departures").exists()


def test_a_written_grid_is_never_overwritten(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "GRIDS_DIR", tmp_path)
    path = D.write_grid(_base(), "2026-01-01 10:00 UTC")
    before = path.read_text()
    with pytest.raises(D.GridError, match="not edited"):
        D.write_grid(_base(), "2026-01-01 11:00 UTC")
    assert path.read_text() == before


def test_the_measurement_line_says_same_flip_or_cost(tmp_path):
    base = [record(claim="dnn-depth", case="", verdict=verdict(status="reproduced"))]
    for r in base:
        r.save(tmp_path)
    v_same, v_flip = _variant(), _variant(name="dnn-depth.test_size-none", item="mnist.test_size=none")
    v_dear = _variant(name="dnn-depth.train_size-none", item="mnist.train_size=none")
    v_dear.runnable, v_dear.full_estimate_s = False, 7200.0
    grid = _grid(tmp_path, [v_same, v_flip, v_dear])
    for v, status in ((v_same, "reproduced"), (v_flip, "not shown")):
        folder = D.variant_dir(tmp_path, grid, v)
        record(claim="dnn-depth", case="", verdict=verdict(status=status)).save(folder)
        marker = {"digest": v.digest(), "code": D._code(), "decision": D._decision(), "seconds": 3}
        report.write_json(folder / "variant.json", marker)
    m = R.measurements(tmp_path, grid)["dnn-depth"]
    assert m["mnist.epochs"]["text"] == "measured: same outcome at the report's value"
    assert m["mnist.test_size"]["text"] == "measured: → not shown at the report's value"
    assert m["mnist.test_size"]["flip"] and not m["mnist.epochs"]["flip"]
    assert m["mnist.train_size"]["text"] == "not measured: about 4.0 CPU-h"


def test_a_ladder_rung_that_flips_is_a_flip_of_its_departure(tmp_path):
    record(claim="dnn-depth", case="", verdict=verdict(status="reproduced")).save(tmp_path)
    v_one = _variant(name="dnn-depth.train_size-none", item="mnist.train_size=none")
    v_one.runnable, v_one.full_estimate_s = False, 7200.0  # the departure's own variant: not run
    rung = _variant(name="dnn-depth.train_size-16000", item="mnist.train_size=16000")
    rung.kind, rung.step = "ladder", "x16 (the report is x60)"
    grid = _grid(tmp_path, [v_one, rung])
    folder = D.variant_dir(tmp_path, grid, rung)
    record(claim="dnn-depth", case="", verdict=verdict(status="contradicted")).save(folder)
    marker = {"digest": rung.digest(), "code": D._code(), "decision": D._decision(), "seconds": 3}
    report.write_json(folder / "variant.json", marker)
    m = R.measurements(tmp_path, grid)["dnn-depth"]["mnist.train_size"]
    assert m["measured"] and m["flip"] and m["flipped_to"] == "contradicted"
    assert m["text"] == "measured: → contradicted at x16 (the report is x60) (ladder)"
    assert R.flips({"dnn-depth": {"mnist.train_size": m}}) == [
        ("dnn-depth", "mnist.train_size", "contradicted")
    ]


def test_the_allocator_setting_applies_on_glibc(monkeypatch):
    assert memory.pin_mmap_threshold() in (True, False)
    monkeypatch.setattr(memory.ctypes.util, "find_library", lambda name: None)
    assert memory.pin_mmap_threshold() is False


def test_coverage_counts_the_measured_departures_and_the_decisive_ones():
    recs = [
        types.SimpleNamespace(
            label="a", departures=[{"field": "x", "decisive": "data"}, {"field": "y", "decisive": ""}]
        ),
        types.SimpleNamespace(label="b", departures=[{"field": "x", "decisive": "data"}]),
    ]
    meas = {"a": {"x": {"measured": True}, "y": {"measured": True}}, "b": {"x": {"measured": False}}}
    assert R.coverage(recs, meas) == {"decisive": [1, 2], "all": [2, 3]}
