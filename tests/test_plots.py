"""Every drawer's JSON redraws its PNG: drawn small into tmp_path, then redrawn from the JSON alone.

The check compares the two PNGs pixel for pixel (decoded, so PNG metadata cannot matter): the
same pixels mean the same axes, titles, labels, lines and legend entries, and a redraw that lost
any of them (a style, a scale, a legend title) would show. Both are drawn in the same process by
the same matplotlib, so identical input gives identical pixels. The structure the redraw returns
is compared as well, so a failure says which title or series went missing.
"""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from hw1 import plots
from hw1.plots import Panel, Series
from hw1.plots_grids import draw_ladder, draw_outcome_grid

COLOURS = {"reproduced": "#2ca02c", "contradicted": "#d62728", "not run": "#ffffff"}


def _panels(png):
    x = np.array([1.0, 10.0, 100.0])
    return plots.draw(
        png,
        [
            Panel(
                "loss",
                "size",
                "MSE",
                [
                    Series("train", x, [3.0, 2.0, np.nan], [2.5, 1.5, np.nan], [3.5, 2.5, np.nan]),
                    Series("test", x, [4.0, 3.0, 2.0], style="dashed"),
                    Series("truth", x, [1.0, 1.0, 1.0], style="truth"),
                ],
                xscale="log",
                yscale="log",
                text="median, IQR",
            ),
            Panel(
                "runs", "x", "y", [Series("runs", x, [1.0, 2.0, 3.0], style="points", notes=["a", "b", "c"])]
            ),
            Panel("empty", "x", "y", [], text="a note alone"),
        ],
        suptitle="a suptitle",
    )


def _trajectories(png):
    z = np.random.default_rng(0).normal(size=(3, 6, 2))
    loss = np.geomspace(1, 1e-3, 6)[None].repeat(3, 0)
    return plots.draw_trajectories(png, {"pca": z, "tsne": z[..., ::-1]}, loss, ["a", "b", "c"], "traj", 2)


def _contour(png):
    c = np.linspace(-1, 1, 9)
    return plots.draw_contour(png, c, 1e-3 + np.add.outer(c**2, c**2), "surface", "α", "β", "MSE", "sup")


def _overview(png):
    rows = [
        {"status": "reproduced", "d": 0.5, "low": 0.1, "high": 0.9},
        None,
        {"status": "x", "d": None, "low": None, "high": None},
    ]
    columns = {"ci": rows, "paper": [None, None, rows[0]]}
    return plots.draw_overview(png, ["a", "b", "c"], columns, ["s1", "s1", "s2"])


def _grid(png):
    grid = {
        "title": "grid",
        "x": "variant",
        "y": "case",
        "xlabel": "the variant",
        "ylabel": "the case",
        "columns": ["default", "v1"],
        "rows": ["a", "b"],
        "xticks": ["default", "v 1"],
        "cells": [["reproduced", "contradicted"], ["not run", "reproduced"]],
        "colours": COLOURS,
        "legend": {"not run": "not run (here)"},
        "blank": "not run",
        "marks": [[0, 1, "flip", "black"]],
        "row_notes": ["1/1", "—"],
        "divider": 0,
        "cell_width": 0.32,
        "lines": True,
        "legend_x": 1.1,
    }
    structure = draw_outcome_grid(png, grid)
    png.with_suffix(".json").write_text(json.dumps({"kind": "outcome-grid", "figure": grid}))
    return structure


def _ladder(png):
    point = {
        "fraction": 0.1,
        "effect": 0.3,
        "low": 0.1,
        "high": 0.5,
        "status": "reproduced",
        "effect_name": "d",
    }
    rows = [{"case": "a", "points": [point, {**point, "fraction": 0.4, "status": "contradicted"}]}]
    rows.append({"case": "b", "points": [point, {"fraction": 0.4, "status": "not run"}]})
    structure = draw_ladder(png, "fam", rows, COLOURS)
    data = {"kind": "ladder", "figure": structure, "family": "fam", "rows": rows, "colours": COLOURS}
    png.with_suffix(".json").write_text(json.dumps(data))
    return structure


DRAWERS = {
    "panels": _panels,
    "trajectories": _trajectories,
    "contour": _contour,
    "overview": _overview,
    "outcome-grid": _grid,
    "ladder": _ladder,
}


def test_every_kind_has_a_drawer_here():
    assert set(DRAWERS) == set(plots.KINDS)


@pytest.mark.parametrize("kind", DRAWERS)
def test_a_figure_redraws_from_its_json_alone(kind, tmp_path):
    first, again = tmp_path / "a" / "fig.png", tmp_path / "b" / "fig.png"
    structure = DRAWERS[kind](first)
    saved = first.with_suffix(".json").read_text()
    assert json.loads(saved)["kind"] == kind
    assert plots.redraw(first.with_suffix(".json"), again) == structure
    assert first.with_suffix(".json").read_text() == saved  # the redraw only reads
    a, b = mpimg.imread(first), mpimg.imread(again)
    assert a.shape == b.shape and np.array_equal(a, b)


def test_the_command_redraws_a_folder_and_skips_other_json(tmp_path, capsys):
    _contour(tmp_path / "sub" / "c.png")
    (tmp_path / "record.json").write_text('{"claim": "x"}')
    (tmp_path / "sub" / "c.png").unlink()
    assert plots.main(["redraw", str(tmp_path)]) == 0
    assert (tmp_path / "sub" / "c.png").exists() and "redrew" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text, says",
    [
        ('{"claim": "x"}', "not a figure JSON"),
        ('{"kind": "panels"}', "without what its drawer reads"),
        ("not json", "cannot be read as JSON"),
    ],
)
def test_a_json_that_is_not_a_figure_is_a_clear_error(tmp_path, capsys, text, says):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(plots.NotAFigure, match=says):
        plots.redraw(path)
    assert plots.main(["redraw", str(path)]) == 1
    assert says in capsys.readouterr().err


def test_the_departures_heatmap_marks_flips_and_cells_that_are_no_departure():
    from hw1 import departures_report

    grid = departures_report.heatmap(["a"], ["f", "g"], {("a", "f"): {"outcome": "reproduced", "flip": True}})
    assert grid["marks"] == [[0, 0, "flip", "black"], [0, 1, "·", "#bbbbbb"]]
    assert grid["cells"] == [["reproduced", "not run"]]
