"""The multiverse (how robust each verdict is to reasonable choices): the dated grids fit the config,
the command resumes, a variant that fails to train is shown, MULTIVERSE.md / heatmap / JSON count k of
n right, the index links it."""

import json
import re
import subprocess
import types
from dataclasses import fields

import pytest
from records import record as report_record, verdict as report_verdict

from hw1 import config, multiverse, report
from hw1.config import CI, SMOKE
from hw1.multiverse import MULTIVERSE, MULTIVERSE_DATE
from hw1.overrides import OverrideError, apply_overrides
from hw1.records import ClaimRecord


def _record(claim: str, case: str = "", status: str | None = "reproduced", overrides=()) -> ClaimRecord:
    """A synthetic ci record (test_report's), or one that stopped before its verdict (status None)."""
    r = report_record(claim=claim, case=case, section="HW1-2", overrides=list(overrides), train_seconds=10.0)
    r.verdict = report_verdict(status=status) if status else None
    return r


# A small grid of real claim ids and fields (the suite's grid may name fields main adds later).
GRID = {
    "opt": {"claims": ("minimal-ratio", "error-surface"), "set": ("opt.lr=*3", "opt.n_points=*1/2")},
    "mnist": {"claims": ("dnn-depth",), "set": ("mnist.batch_size=*2",)},
}


def _has_field(item: str) -> bool:
    sec, _, name = item.partition("=")[0].partition(".")
    return name in {f.name for f in fields(getattr(CI, sec))}


# ------------------------------------------------------------------------------ the grid
@pytest.mark.parametrize("scale", [CI, SMOKE], ids=["ci", "smoke"])
def test_every_grid_item_is_one_setting_that_parses_against_the_config(scale):
    names = [v.name for v in multiverse.variants()]
    assert len(names) == len(set(names)) and len(names) >= 20
    for v in multiverse.variants():
        parts = multiverse.settings(v.item)  # one setting, or an optimizer and its own rate (grid 3)
        assert len(parts) == 1 or (len(parts) == 2 and parts[0].endswith(".optimizer=sgd")), v.item
        assert all(i.count("=") == 1 and "," not in i.partition("=")[0] for i in parts)
        assert set(v.claims) <= set(config.CLAIM_SETTINGS), v.family
        if not all(_has_field(i) for i in parts):  # a field main lacks: it must fail loudly
            with pytest.raises(OverrideError, match="has no field"):
                multiverse.validate([v], scale)
            continue
        item = multiverse.resolve(v.item, scale)
        assert apply_overrides(scale, multiverse.settings(item)).overrides == tuple(multiverse.settings(item))
        assert "*" not in item


def test_each_grid_file_is_dated_says_why_and_is_not_edited_after_seeing_outcomes():
    grids = multiverse.load_grids()
    assert [g["grid"] for g in grids] == [1, 2, 3]
    for g in grids:
        assert g["name"] == f"multiverse-{g['grid']}-{g['date'][:10]}"
        assert (multiverse.GRIDS_DIR / f"{g['name']}.json").is_file()
        assert g["written"] and g["why"] and isinstance(g["left out"], list)
        assert "not edited after seeing outcomes" in g["note"] and "new grid with a new date" in g["note"]
    assert MULTIVERSE_DATE.startswith("2026-12-01 (grid 1); 2026-12-01 16:15 UTC (grid 2")
    assert "17:02 UTC (grid 3" in MULTIVERSE_DATE
    assert set(MULTIVERSE) >= {"fit", "opt", "batch-size"}


# The merged grid and its date as hw1/config.py wrote them as literals, before the grids moved to
# data/grids/multiverse/ (captured once): the committed multiverse ran this grid.
_GRID_AS_WRITTEN = {
    "fit": (
        ("function-depth", "trajectories-diverge", "gradient-norm"),
        "fit.lr=*1/3, fit.lr=*3, fit.epochs=*1/2, fit.epochs=*2, fit.budget=*1/2, fit.optimizer=sgd, "
        "fit.optimizer=sgd & fit.lr=*10",
    ),
    "mnist": (
        ("dnn-depth",),
        "mnist.lr=*1/3, mnist.lr=*3, mnist.epochs=*1/2, mnist.epochs=*2, mnist.dnn_budget=*1/2, "
        "mnist.dnn_budget=*2, mnist.batch_size=*1/2, mnist.batch_size=*2, mnist.train_size=*1/2, "
        "mnist.optimizer=sgd, mnist.optimizer=sgd & mnist.lr=*10",
    ),
    "opt": (
        ("minimal-ratio", "error-surface"),
        "opt.lr=*1/3, opt.lr=*3, opt.mse_epochs=*1/2, opt.mse_epochs=*2, opt.ratio_budget=*1/2, "
        "opt.ratio_budget=*2, opt.n_points=*1/2, opt.optimizer=sgd, opt.optimizer=sgd & opt.lr=*10",
    ),
    "random-labels": (("random-labels",), "gen.rl_epochs=*1/2, gen.rl_widths=*1/2, gen.rl_train_size=*1/2"),
    "params-vs-generalization": (("params-vs-generalization",), "gen.pg_epochs=*1/2, gen.pg_train_size=*1/2"),
    "batch-size": (
        ("interpolation", "sensitivity", "sharpness"),
        "gen.lr=*1/3, gen.lr=*3, gen.optimizer=sgd, gen.bs_lr_scaling=sqrt, gen.optimizer=sgd & gen.lr=*10",
    ),
}
_DATE_AS_WRITTEN = (
    "2026-12-01 (grid 1); 2026-12-01 16:15 UTC (grid 2: the learning rate scaled with the batch size); "
    "2026-12-01 17:02 UTC (grid 3: SGD at its own learning rate)"
)


def test_the_loaded_grids_merge_to_the_grid_the_committed_multiverse_ran():
    as_written = {
        f: {"claims": c, "set": tuple(items.split(", "))} for f, (c, items) in _GRID_AS_WRITTEN.items()
    }
    assert MULTIVERSE == as_written and list(MULTIVERSE) == list(as_written)
    assert MULTIVERSE_DATE == _DATE_AS_WRITTEN
    committed = report.load_json(multiverse.ROOT / "figures" / "multiverse.json")
    if committed is None:
        pytest.skip("no committed multiverse.json")
    assert committed["date"] == MULTIVERSE_DATE
    ran = [(v["family"], v["item"], tuple(v["claims"])) for v in committed["variants"]]
    assert ran == [(v.family, v.item, v.claims) for v in multiverse.variants()]


def test_a_later_grid_adds_to_a_family_and_keeps_the_first_grids_items_in_place():
    first = multiverse.load_grids()[0]["families"]
    assert MULTIVERSE["batch-size"]["set"][:3] == first["batch-size"]["set"]
    assert MULTIVERSE["batch-size"]["set"][3:] == ("gen.bs_lr_scaling=sqrt", "gen.optimizer=sgd & gen.lr=*10")
    assert multiverse.merge_grids(first) == first
    with pytest.raises(ValueError, match="claims differ"):
        multiverse.merge_grids(first, {"fit": {"claims": ("dnn-depth",), "set": ("fit.lr=*2",)}})


def test_a_folder_without_grids_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no multiverse grid"):
        multiverse.load_grids(tmp_path)


def test_the_gpu_workflow_runs_every_family_with_exactly_its_claims():
    """.github/workflows/multiverse-gpu.yml: one job per family of the grid, each running the
    family's claims (default point and variants), and a tables job over all of them."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / ".github/workflows/multiverse-gpu.yml").read_text()
    jobs = re.findall(r"- family: ([\w-]+)\n\s+shard: [\w-]+\n\s+claims: ([^\n]+)", text)
    assert sorted(f for f, _ in jobs) == sorted(MULTIVERSE)
    for family, claims in jobs:
        assert re.findall(r"--claim ([\w-]+)", claims) == list(MULTIVERSE[family]["claims"]), family
    assert "python -m hw1.multiverse --scale paper -n auto --out out/ ${{ matrix.claims }}" in text
    assert "python -m hw1.multiverse --scale paper --tables-only --out merged/" in text


def test_relative_items_resolve_to_the_scales_values():
    assert multiverse.resolve("fit.lr=*3", CI) == "fit.lr=0.003"
    assert multiverse.resolve("fit.epochs=*1/2", CI) == f"fit.epochs={CI.fit.epochs // 2}"
    assert multiverse.resolve("gen.bs_widths=*1/2", CI) == "gen.bs_widths=32,32,32,32"
    assert multiverse.resolve("fit.targets=sinc", CI) == "fit.targets=sinc"
    with pytest.raises(multiverse.GridError):  # "all of MNIST" has no double
        multiverse.resolve("mnist.train_size=*2", config.PAPER)


def test_an_unknown_field_or_claim_fails_before_anything_runs(tmp_path, capsys):
    with pytest.raises(OverrideError, match="valid fields"):
        multiverse.validate(
            multiverse.variants({"f": {"claims": ("dnn-depth",), "set": ("mnist.nope=*2",)}}), CI
        )
    with pytest.raises(ValueError, match="unknown claim"):
        multiverse.validate(multiverse.variants({"f": {"claims": ("nope",), "set": ("mnist.lr=*2",)}}), CI)
    with pytest.raises(OverrideError, match="one SECTION.FIELD=VALUE"):
        multiverse.validate(multiverse.variants({"f": {"claims": ("dnn-depth",), "set": ("a=1=2",)}}), CI)


def test_the_whole_grid_costs_within_an_hour_at_ci():
    """The multiverse's budget, an hour on 2 cores at ci: the committed ci multiverse's measured wall
    times (variant.json) for the variants that ran, the estimate (from the suite's records) for any
    not run yet."""
    figures = multiverse.ROOT / "figures"
    ci = [r for r in report.load_records(figures) if r.scale == "ci" and not r.overrides]
    if not ci:
        pytest.skip("no committed ci records to estimate from")
    measured, todo = 0.0, []
    for v in multiverse.variants():
        done = report.load_json(multiverse.variant_dir(figures, v) / "variant.json") or {}
        if done.get("scale") == "ci" and done.get("seconds") is not None:
            measured += done["seconds"]
        else:
            todo.append(v)
    assert measured + multiverse.estimate_seconds(todo, ci, workers=2) <= 3600


# ------------------------------------------------------------------------------ running and resuming
def _fake_runner(calls, fail_at=None, outcome="reproduced"):
    """Stands in for subprocess.run: files one record per --claim with the --set item, as the harness would."""

    def run(cmd, cwd, stdout, stderr, check):
        sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
        item = multiverse.AND.join(sets)
        if item == fail_at:
            raise KeyboardInterrupt  # the multiverse is interrupted inside this variant
        calls.append(item)
        folder = cmd[cmd.index("--figures-dir") + 1]
        claims = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--claim"]
        status = None if outcome == "fail" else outcome
        for i, c in enumerate(claims):  # "fail": the first claim stops before its verdict
            _record(c, status=status if i == 0 else "reproduced", overrides=sets).save(folder)
        if status is None:
            stdout.write("E   hw1.train.NonFiniteLossError: the loss is nan at epoch 12\n")
        return types.SimpleNamespace(returncode=1 if status is None else 0)

    return run


def test_the_multiverse_resumes_where_it_was_interrupted(tmp_path):
    chosen = multiverse.variants(GRID)
    items = multiverse.validate(chosen, CI)
    calls = []
    with pytest.raises(KeyboardInterrupt):
        multiverse.run(tmp_path, chosen, items, "ci", 2, _fake_runner(calls, fail_at=items[chosen[1].name]))
    assert calls == [items[chosen[0].name]]
    assert not (multiverse.variant_dir(tmp_path, chosen[1]) / "variant.json").exists()
    ran = multiverse.run(tmp_path, chosen, items, "ci", 2, _fake_runner(calls))
    assert ran == [chosen[1].name, chosen[2].name]  # the finished variant is not run again
    assert multiverse.run(tmp_path, chosen, items, "ci", 2, _fake_runner(calls)) == []


def test_a_variant_with_records_missing_is_run_again(tmp_path):
    chosen = multiverse.variants(GRID)[:1]
    items = multiverse.validate(chosen, CI)
    multiverse.run(tmp_path, chosen, items, "ci", 2, _fake_runner([]))
    next((multiverse.variant_dir(tmp_path, chosen[0]) / "records").glob("*.json")).unlink()
    assert multiverse.run(tmp_path, chosen, items, "ci", 2, _fake_runner([])) == [chosen[0].name]


def test_a_pytest_that_did_not_run_to_its_end_stops_the_multiverse(tmp_path):
    v = multiverse.variants(GRID)[0]

    def usage_error(cmd, **kw):
        return types.SimpleNamespace(returncode=4)

    with pytest.raises(RuntimeError, match="exit code 4"):
        multiverse.run_variant(tmp_path, v, "opt.lr=0.003", "ci", 2, usage_error)
    assert not multiverse.is_complete(tmp_path, v, "opt.lr=0.003", "ci")


def test_the_command_runs_the_harness_with_the_variants_setting(tmp_path):
    v = multiverse.variants(GRID)[0]
    seen = []

    def spy(cmd, cwd, stdout, stderr, check):
        seen.append(cmd)
        return types.SimpleNamespace(returncode=0)

    multiverse.run_variant(tmp_path, v, "opt.lr=0.003", "smoke", 2, spy)
    cmd = " ".join(seen[0])
    assert "-m pytest claims/" in cmd and "--scale smoke" in cmd and "--set opt.lr=0.003" in cmd
    assert f"--figures-dir {tmp_path / 'multiverse' / 'opt.lr-x3'}" in cmd and "-n 2" in cmd
    assert "--claim minimal-ratio --claim error-surface" in cmd


def test_a_variant_of_two_settings_passes_both_and_resumes_on_both(tmp_path):
    """Grid 3's SGD arm changes the optimizer and its rate together: one variant, two --set items,
    complete only when its records carry both."""
    grid = {"opt": {"claims": ("minimal-ratio",), "set": ("opt.optimizer=sgd & opt.lr=*10",)}}
    (v,) = multiverse.variants(grid)
    assert v.name == "opt.optimizer-sgd+opt.lr-x10" and v.label == "opt.optimizer=sgd & opt.lr ×10"
    items = multiverse.validate([v], CI)
    assert items[v.name] == "opt.optimizer=sgd & opt.lr=0.01"
    calls = []
    assert multiverse.run(tmp_path, [v], items, "ci", 2, _fake_runner(calls)) == [v.name]
    assert calls == [items[v.name]] and multiverse.is_complete(tmp_path, v, items[v.name], "ci")
    assert not multiverse.is_complete(tmp_path, v, "opt.optimizer=sgd", "ci")
    assert multiverse.run(tmp_path, [v], items, "ci", 2, _fake_runner(calls)) == []
    recs = multiverse._records(multiverse.variant_dir(tmp_path, v), "ci", multiverse.settings(items[v.name]))
    assert [r.claim for r in recs] == ["minimal-ratio"]
    with pytest.raises(OverrideError, match="one SECTION.FIELD=VALUE"):
        multiverse.validate(
            multiverse.variants({"opt": {"claims": ("minimal-ratio",), "set": ("opt.lr & x",)}}), CI
        )


# ------------------------------------------------------------------------------ the table and its files
def _multiverse(tmp_path):
    """Default: both opt cases reproduced, dnn-depth not shown. opt.lr x3 fails to train
    minimal-ratio; opt.n_points x1/2 reproduces both; mnist.batch_size x2 is not run."""
    for r in (_record("minimal-ratio"), _record("error-surface"), _record("dnn-depth", status="not shown")):
        r.save(tmp_path)
    chosen = multiverse.variants(GRID)
    items = multiverse.validate(chosen, CI)
    multiverse.run(tmp_path, chosen[:1], items, "ci", 2, _fake_runner([], outcome="fail"))
    multiverse.run(tmp_path, chosen[1:2], items, "ci", 2, _fake_runner([]))
    return multiverse.table(tmp_path, "ci", chosen)


def test_k_of_n_counts_the_variants_that_ran_and_a_failure_is_shown_not_dropped(tmp_path):
    data = _multiverse(tmp_path)
    by = {c["label"]: c for c in data["cases"]}
    assert by["minimal-ratio"]["outcomes"] == {
        "opt.lr-x3": multiverse.FAILED,
        "opt.n_points-x1over2": "reproduced",
    }
    assert (by["minimal-ratio"]["same"], by["minimal-ratio"]["n"]) == (1, 2)
    assert by["minimal-ratio"]["flips"] == ["opt.lr-x3"]
    assert by["dnn-depth"]["n"] == 0  # its variant was not run
    failed = next(v for v in data["variants"] if v["name"] == "opt.lr-x3")
    assert "NonFiniteLossError" in failed["failure"]


def test_multiverse_md_heatmap_and_json_are_written(tmp_path):
    data = _multiverse(tmp_path)
    md = multiverse.write(tmp_path, data, estimate=1800.0).read_text()
    assert "descriptive" in md and "combines no p-values and makes no new test" in md
    assert "about 30 min" in md and "estimate" in md
    assert "| minimal-ratio | reproduced | 1 of 2 variants | `opt.lr-x3` (failed to train) |" in md
    assert "| error-surface | reproduced | 2 of 2 variants | — |" in md
    assert "NonFiniteLossError" in md
    saved = json.loads((tmp_path / "multiverse.json").read_text())
    by = {c["label"]: c for c in saved["cases"]}
    assert saved["date"] == MULTIVERSE_DATE and (by["minimal-ratio"]["same"], by["minimal-ratio"]["n"]) == (
        1,
        2,
    )
    assert saved["figure"]["columns"][0] == "default" and saved["figure"]["x"] == "variant"
    assert (tmp_path / "multiverse.png").read_bytes()[:4] == b"\x89PNG"


def test_the_index_gets_a_robust_column_linking_the_multiverse(tmp_path):
    for r in (_record("minimal-ratio"), _record("error-surface")):
        r.save(tmp_path)
    text = report.write_index(tmp_path).read_text()
    assert "| robust |" in text and "MULTIVERSE.md" not in text  # no link to a file not there
    row = next(ln for ln in text.splitlines() if ln.startswith("| [minimal-ratio]"))
    assert "| — |" in row  # no multiverse result yet
    _multiverse(tmp_path)
    multiverse.write(tmp_path, multiverse.table(tmp_path, "ci", multiverse.variants(GRID)))
    text = (tmp_path / "INDEX.md").read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("| [minimal-ratio]"))
    assert "[1/2](MULTIVERSE.md#per-case)" in row and "| [robust](MULTIVERSE.md) |" in text
    assert re.search(r"\| \[error-surface\].*\[2/2\]\(MULTIVERSE.md#per-case\)", text)


def test_the_command_refuses_a_grid_that_does_not_fit_the_config(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(multiverse, "MULTIVERSE", {"f": {"claims": ("dnn-depth",), "set": ("mnist.nope=1",)}})
    assert multiverse.main(["--out", str(tmp_path)]) == 2
    assert "mnist has no field 'nope'" in capsys.readouterr().err


def test_the_cli_help_runs():
    out = subprocess.run(
        ["python3", "-m", "hw1.multiverse", "--help"], capture_output=True, text=True, cwd=multiverse.ROOT
    )
    assert out.returncode == 0 and "--variants" in out.stdout and "--scale" in out.stdout
