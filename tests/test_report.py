"""The index and the terminal summary write what the records hold."""

import json
import math
import re

import numpy as np
from records import record as _record, verdict as _verdict

from hw1 import report, stats
from hw1.config import CI, SMOKE
from hw1.overrides import apply_overrides
from hw1.records import ClaimRecord, FigureFile


def test_an_interval_ending_at_zero_is_written_as_zero_not_nan():
    row = report._row(_record(), None, None, "CLAIMS.md")
    assert "[-0.133, 0]" in row and "nan" not in row
    missing = report._row(_record(verdict=_verdict(ci_high=math.nan)), None, None, "CLAIMS.md")
    assert "[-0.133, nan]" in missing


def test_one_p_value_formatter_everywhere():
    assert not hasattr(stats, "_fmt_p") and not hasattr(report, "_fmt_p")
    assert stats.format_p(0.00013) == "1.3e-04" and stats.format_p(0.0013) == "0.0013"
    assert stats.format_p(None) == stats.format_p(math.nan) == "—"


def test_a_fragile_case_within_its_split_is_marked_as_such_in_the_index():
    r = _record(verdict=_verdict(status="contradicted"), differs_from_ledger=True, within_fragile_split=True)
    row = report._row(r, None, None, "CLAIMS.md")
    assert "within this fragile case's split" in row and "differs from the expectation" not in row


def test_a_record_loads_as_the_dataclass_it_was_written_from(tmp_path):
    r = _record(
        figures=[FigureFile(name="f", png="f.png", data="f.json")],
        seed_sets=(0, 1000),
        verdict=_verdict(p_opposite=math.nan, z_parts=(1.5, -0.2)),
        reason=stats.FUTILITY,
    )
    path = r.save(tmp_path)
    json.loads(path.read_text())  # plain JSON
    (back,) = report.load_records(tmp_path)
    assert isinstance(back, ClaimRecord) and isinstance(back.verdict, stats.Verdict)
    assert back.figures == r.figures and back.seed_sets == (0, 1000) and back.reason == stats.FUTILITY
    assert math.isnan(back.verdict.p_opposite) and back.verdict.z_parts == (1.5, -0.2)
    assert back.to_dict() == r.to_dict()


def test_the_seeds_cell_reads_the_stop_reason_not_its_prose():
    r = _record(stages=[{"stage": 1}, {"stage": 2}], reason=stats.FUTILITY, stop="words that say otherwise")
    assert report._seeds(r) == "6 (stage 2, futility)"


def test_the_legend_describes_the_plan_of_the_run_that_made_the_records():
    ci = report.outcome_legend(CI.alpha, CI.stages)
    assert "3 stages" in ci and "2×, then 4×" in ci and "1/2, 1/4, 1/4" in ci
    assert "one stage" in report.outcome_legend(
        SMOKE.alpha, SMOKE.stages
    ) and "4×" not in report.outcome_legend(SMOKE.alpha, SMOKE.stages)
    two = apply_overrides(CI, ["stages.multipliers=1,3", "stages.spend=0.4,1", "alpha=0.1"])
    r = _record(config=two.to_dict())
    text = report.outcome_legend(*report._plan(r))
    assert "α = 0.1" in text and "2 stages" in text and "3×" in text and "2/5, 3/5" in text


def test_the_standardized_effect_points_the_claimed_way():
    v = _verdict(z_parts=(2.0, -1.0), n=4)  # two parts: the weakest one counts
    d, lo, hi = report.standardized_effect(v)
    assert (d, lo, hi) == (-0.5, (-1 - 1.96) / 2, (-1 + 1.96) / 2)
    assert all(math.isnan(x) for x in report.standardized_effect(stats.inconclusive("smoke")))


def test_the_index_opens_with_the_overview_in_the_reports_order(tmp_path):
    later = _record(claim="b", case="", section="HW1-1", order=1, verdict=_verdict(z_parts=(1.0,)))
    first = _record(claim="a", case="x", section="HW1-1", order=0, verdict=_verdict(z_parts=(3.0,)))
    other = _record(claim="c", case="", section="HW1-2", order=2, verdict=_verdict(z_parts=(-2.0,)))
    for r in (other, later, first):
        r.save(tmp_path)
    text = report.write_index(tmp_path).read_text()
    assert text.index("![overview") < text.index("| claim |")
    assert text.index("[a [x]](#a--x)") < text.index("[b](#b)") < text.index("[c](#c)")
    assert "CLAIMS.md#a" in text
    data = json.loads((tmp_path / "overview.json").read_text())
    assert data["labels"] == ["a [x]", "b", "c"]
    assert [row is None for row in data["columns"]["paper"]] == [True] * 3  # no paper records: "not run"
    assert data["columns"]["ci"][0]["d"] == 3.0 / math.sqrt(6)


def test_a_row_stays_narrow_whatever_the_statement():
    r = _record(statement="word " * 80, stages=[{"stage": 1}, {"stage": 2}], reason=stats.DECIDED)
    row = report._row(r, _record(verdict=_verdict(status="reproduced")), {"stable": False}, "CLAIMS.md")
    visible = re.sub(r"\[|\]\([^)]*\)", "", row)  # as rendered: no link syntax, no link targets
    assert len(visible) < 170 and "6 (decided)" in row and " …" in row


def _rows(index: str) -> dict[str, list[str]]:
    """Case label -> the cells of its row in an INDEX.md table."""
    rows = {}
    for line in index.splitlines():
        m = re.match(r"\| \[([^\]]+(?:\][^\]]*)?)\]\(#", line)
        if m and "| claim |" not in line:
            rows[m.group(1)] = [c.strip() for c in line.strip("|").split(" | ")]
    return rows


def _check_index(folder) -> None:
    """Every row's p is the one that decided its outcome, labelled; no secondary definition (the
    notes) carries a p-value or an outcome word."""
    text = (folder / "INDEX.md").read_text()
    head = next(line for line in text.splitlines() if line.startswith("| claim |"))
    column = [c.strip() for c in head.strip("|").split(" | ")].index("p that decided it")
    rows = _rows(text)
    records = report.load_records(folder)
    assert records and set(rows) == {r.label for r in records}
    for r in records:
        v, cell = r.verdict, rows[r.label][column]
        if v.status == stats.CONTRADICTED:
            parts = report.n_parts(v)
            assert cell.startswith(f"opposite {stats.format_p(v.p_opposite)}"), (r.label, cell)
            assert cell.endswith(f"(×{parts}, Bonferroni)") == (parts > 1), (r.label, cell)
        else:
            assert cell == stats.format_p(v.p_value), (r.label, cell)
    for line in text.splitlines():
        if line.startswith("- note:"):
            words = [w for w in (*stats.OUTCOMES, "p =", "p <", "opposite p") if w in line]
            assert not words, (words, line)


def test_every_p_in_the_index_is_the_one_that_decided_it(tmp_path):
    two = stats.all_of(
        [
            stats.paired_test(np.arange(1, 9.0), np.zeros(8), alternative="less"),
            stats.one_sample_test(np.array([1.0, -2, 3, -4, 5, -6, 7, 0.5]), alternative="greater"),
        ]
    )
    side = stats.trend_test(np.tile([3.0, 2.0, 1.0], (6, 1)), direction="decreasing")
    cases = {
        "a": _verdict(status="reproduced", p_value=0.001, p_opposite=1.0),
        "b": _verdict(status="contradicted", p_value=1.0, p_opposite=1.5e-33),
        "c": two,
        "d": _verdict(),
    }
    for i, (claim, v) in enumerate(cases.items()):
        _record(claim=claim, case="", order=i, verdict=v, note=f"beside it: {side.describe()}").save(tmp_path)
    report.write_index(tmp_path)
    assert two.status == stats.CONTRADICTED
    _check_index(tmp_path)


def test_the_committed_index_shows_the_deciding_p_and_describes_secondary_measures():
    _check_index(report.CATALOGUE.parent.parent / "figures")


def test_a_criterion_revised_after_data_is_in_the_details_with_the_records_it_predates():
    from hw1 import catalogue

    rev = catalogue.get("function-depth").revisions[0]
    ci = _record(claim="function-depth", case="sinc", started=rev.timestamp + 60)
    paper = _record(claim="function-depth", case="sinc", scale="paper", started=rev.timestamp - 60)
    lines = report._revisions(ci, paper)
    assert len(lines) == 1 and rev.date in lines[0] and rev.what in lines[0]
    assert "The paper record predates it" in lines[0]
    assert "predates" not in report._revisions(ci, None)[0]
    assert report._revisions(_record(), None) == []  # sensitivity: never revised
