"""An old figure JSON (one written before figures named their kind) upgrades and then redraws as
the figure it was drawn as.

Each old file here is today's JSON of a small draw with what the old writers did not write taken
out; what they wrote is read off the committed old files (figures/paper/*.json before the upgrade):
a panels figure kept only its "structure" and per panel "title", "text" and the series' "label",
"x", "y", "lo", "hi", "notes"; a trajectories figure its "structure", "projections", "loss" and
"labels"; a contour its "structure", "coords" and "values"; the overview everything but its kind;
a ladder its "figure" (the structure) and "rows"; multiverse.json and departures.json their data
with the structure alone as "figure". The redraw of the upgraded file has the original's axes,
titles, axis labels and scales, and legend entries.
"""

import json

import matplotlib.figure
import pytest
import test_plots
from test_plots import DRAWERS

from hw1 import plots, plots_legacy
from hw1.plots_grids import STRUCTURE, draw_outcome_grid


def _drop(d: dict, *keys) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def _old_panels(d):
    panels = [
        {
            **{k: p[k] for k in ("title", "text")},
            "series": [_drop(s, "style") for s in p["series"]],
        }
        for p in d["panels"]
    ]
    return {"structure": d["structure"], "panels": panels}


OLD = {  # today's JSON -> what the old writer wrote of it
    "panels": _old_panels,
    "trajectories": lambda d: _drop(d, "kind", "suptitle", "note_every"),
    "contour": lambda d: {k: d[k] for k in ("structure", "coords", "values")},
    "overview": lambda d: _drop(d, "kind"),
    "ladder": lambda d: {k: d[k] for k in ("figure", "rows")},
}


def _multiverse(png):
    from hw1 import multiverse

    variants = [
        {"name": n, "family": "fit", "item": f"fit.lr=*{k}", "set": "", "claims": ["c"], "ran": True}
        for n, k in (("fit.lr-x3", 3), ("fit.lr-x1over3", "1/3"))
    ]
    variants = [{**v, "seconds": 1.0, "failure": ""} for v in variants]
    case = {"claim": "c", "default": "reproduced", "same": 1, "n": 2, "flips": ["fit.lr-x3"]}
    cases = [
        {**case, "label": "c [a]", "outcomes": {"fit.lr-x3": "contradicted", "fit.lr-x1over3": "reproduced"}},
        {**case, "label": "c [b]", "outcomes": {"fit.lr-x3": "not run"}, "same": 0, "n": 0},
    ]
    data = {"date": "today", "scale": "ci", "variants": variants, "cases": cases}
    multiverse.write(png.parent, data, estimate=10.0)  # multiverse.png, .json and MULTIVERSE.md
    for ext in (".png", ".json"):
        (png.parent / f"multiverse{ext}").rename(png.with_suffix(ext))
    return {k: multiverse.heatmap(data)[k] for k in STRUCTURE}


def _departures(png):
    from hw1 import departures_report

    cell = {"text": "", "outcome": "reproduced", "flip": False, "flipped_to": "", "measured": True}
    cells = {("a", "f"): {**cell, "flip": True, "flipped_to": "contradicted"}, ("b", "g"): cell}
    fig = departures_report.heatmap(["a", "b"], ["f", "g"], cells)
    data = {
        "kind": "outcome-grid",
        "grid": "g",
        "date": "today",
        "figure": fig,
        "cells": [{"case": c, "field": f, **v} for (c, f), v in cells.items()],
        "variants": [],
        "coverage": {"decisive": [0, 0], "all": [1, 2]},
    }
    png.with_suffix(".json").write_text(json.dumps(data, indent=1))
    return draw_outcome_grid(png, fig)


def _ladder(png):
    """test_plots' ladder in the colours every old ladder was drawn in (the upgrade's default)."""
    from hw1.departures_report import COLOURS

    mine, test_plots.COLOURS = test_plots.COLOURS, COLOURS
    try:
        return DRAWERS["ladder"](png)
    finally:
        test_plots.COLOURS = mine


def _old_grid(d):
    return {**_drop(d, "kind"), "figure": {k: d["figure"][k] for k in STRUCTURE}}


DRAWN = {
    **{k: (DRAWERS[k], OLD[k]) for k in OLD},
    "ladder": (_ladder, OLD["ladder"]),
    "outcome-grid (multiverse)": (_multiverse, _old_grid),
    "outcome-grid (departures)": (_departures, _old_grid),
}


def test_every_kind_has_an_old_file_here():
    assert {k.split()[0] for k in DRAWN} == set(plots.KINDS) == set(plots_legacy.FILL)


def _looks(fig) -> dict:
    """What a reader sees of a figure: its axes, titles, labels, scales and legend entries."""
    legends = [ax.get_legend() for ax in fig.axes] + list(fig.legends)
    return {
        "suptitle": fig._suptitle.get_text() if fig._suptitle else "",
        "axes": [
            (ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale(), ax.get_yscale())
            for ax in fig.axes
        ],
        "ticks": [[t.get_text() for t in ax.get_yticklabels()] for ax in fig.axes],
        "legends": [
            (lg.get_title().get_text(), [t.get_text() for t in lg.get_texts()]) for lg in legends if lg
        ],
    }


@pytest.fixture
def seen(monkeypatch):
    """The looks of every figure saved from now on, in order."""
    looks = []
    save = matplotlib.figure.Figure.savefig

    def savefig(fig, *a, **kw):
        looks.append(_looks(fig))
        return save(fig, *a, **kw)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    return looks


@pytest.mark.parametrize("name", DRAWN)
def test_an_old_figure_json_upgrades_and_redraws_as_it_was_drawn(name, tmp_path, seen):
    draw, old = DRAWN[name]
    png = tmp_path / "fig.png"
    structure = draw(png)
    path = png.with_suffix(".json")
    today = json.loads(path.read_text())
    legacy = old(today)
    path.write_text(json.dumps(legacy))
    with pytest.raises(plots.NotAFigure):
        plots.redraw(path)

    assert plots.main(["upgrade", str(tmp_path)]) == 0
    new = json.loads(path.read_text())
    assert new["kind"] == today["kind"] and new["upgraded_from"] == plots_legacy.LEGACY
    _assert_keeps(legacy, new)
    assert plots.redraw(path, tmp_path / "again.png") == structure
    assert seen[-1] == seen[0]


def _assert_keeps(old, new):
    """Every key of old is in new with its value, at every depth (an upgrade only adds)."""
    if isinstance(old, dict):
        assert isinstance(new, dict) and set(old) <= set(new)
        for k in old:
            _assert_keeps(old[k], new[k])
    elif isinstance(old, list):
        assert isinstance(new, list) and len(old) == len(new)
        for a, b in zip(old, new):
            _assert_keeps(a, b)
    else:
        assert old == new


def _legacy_panels(tmp_path):
    DRAWERS["panels"](tmp_path / "p.png")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_old_panels(json.loads(path.read_text()))))
    return path


def test_the_styles_the_old_files_lost_are_inferred_where_the_data_tell(tmp_path):
    new = plots_legacy.upgraded(json.loads(_legacy_panels(tmp_path).read_text()))
    styles = [[s["style"] for s in p["series"]] for p in new["panels"]]
    assert styles == [["line", "line", "line"], ["points"], []]  # "dashed", "truth": no trace left
    x = [3.0, 1.0, 2.0]
    assert plots_legacy._style({"label": "runs", "x": x, "notes": None}) == "points"
    assert plots_legacy._style({"label": "ground truth sin(x)", "x": sorted(x)}) == "truth"


def test_an_upgrade_is_idempotent_and_skips_what_has_a_kind(tmp_path, capsys):
    path = _legacy_panels(tmp_path)
    assert plots.main(["upgrade", str(path)]) == 0
    once = path.read_text()
    assert plots.main(["upgrade", str(path)]) == 0
    assert path.read_text() == once
    assert "skipped" in capsys.readouterr().out.splitlines()[-2]


def test_a_json_that_is_no_figure_is_never_touched(tmp_path, capsys):
    files = {
        "records/case.json": {"claim": "x", "figures": ["a"], "structure": {"looks": "like one"}},
        "environment.json": {"python": "3", "torch": "2"},
        "v/variant.json": {"name": "v", "kind": "one", "set": ["a=1"]},
        "stability.json": {"scale": "ci", "cases": {}},
        "broken.json": "not json",
    }
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(data if isinstance(data, str) else json.dumps(data))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.json")}
    assert plots.main(["upgrade", str(tmp_path)]) == 0
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.json")} == before
    out = capsys.readouterr().out
    assert out.count("not a figure: ") == 4 and "skipped: " in out  # the record: its folder says


def test_a_figure_whose_kind_cannot_be_inferred_is_listed_and_left_as_it_is(tmp_path, capsys):
    path = tmp_path / "odd.json"
    path.write_text('{"structure": {"panels": []}, "surface": [1, 2]}')
    assert plots.main(["upgrade", str(tmp_path)]) == 1
    assert path.read_text() == '{"structure": {"panels": []}, "surface": [1, 2]}'
    assert "cannot infer its kind" in capsys.readouterr().err
