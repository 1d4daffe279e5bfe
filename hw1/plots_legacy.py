"""Upgrading figure JSONs written before figures named their drawer, so that they redraw:

    python -m hw1.plots upgrade figures/paper figures/departures [more.json ...]

A JSON without a `"kind"` gets the kind its keys show and, in today's format, what its drawer reads,
taken from what the file holds (the old files kept the labels and scales only in their
`"structure"`). Every old key stays, with its value (keys are only added, also inside "figure"),
so what reads the old keys still reads them; the file is marked `"upgraded_from": "legacy"`.
A file that already has a kind is skipped, a JSON that is no figure (records/*.json,
environment.json, variant.json, stability.json, ...) is never written, and one that looks like a
figure but whose kind cannot be inferred is left as it is and listed (the command exits 1).

The kinds and the rules that infer them, on the old file's keys:

- panels: "structure" and "panels" (a list of panels, each with its "series").
- trajectories: "structure", "projections", "loss" and "labels".
- contour: "structure", "coords" and "values".
- overview: "structure", "labels" and "columns" (a dict: one list of rows per scale).
- ladder: "rows" and a "figure" with "panels" (the ladder's structure).
- outcome-grid: a "figure" with "columns" and "rows", and "cells" (departures.json) or "variants"
  and "cases" (multiverse.json).

What an old file does not hold, and so is filled with a default (a redraw of an upgraded file may
differ from its old PNG in these, and only in these):

- panels: each series' "style". The old files did not keep it. A series with notes, or whose x is
  not in order, is drawn as "points"; one labelled "ground truth ..." as "truth"; every other one
  as "line", so a "dashed" line comes back solid, and a "points" series whose x is in order comes
  back as a line.
- trajectories: "note_every" is 25, the value every old figure was drawn with (the old drawer's
  default, which no caller changed).
- overview: "groups" is None where the file predates it (no rules between the report's sections).
- ladder: "family" is read from the title ("<family>: the standardized effect ..."); "colours" are
  today's (hw1.departures_report.COLOURS).
- outcome-grid: the full spec (axis labels, tick labels, colours, legend, marks, row notes, sizes)
  is rebuilt from the file's data by today's spec builder (hw1.multiverse.heatmap or
  hw1.departures_report.heatmap); the old title, axes, columns and rows are kept as they were.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .records import write_json

LEGACY = "legacy"
TRAJECTORY_NOTE_EVERY = 25
UPGRADED, SKIPPED, NOT_A_FIGURE, FAILED = "upgraded", "skipped", "not a figure", "cannot infer its kind"


class CannotInfer(ValueError):
    """A JSON that looks like a figure (it has a "structure" or a "figure") that no rule matches."""


def infer_kind(data) -> str | None:
    """The kind of an old figure JSON, from its keys; None for a JSON that is no figure.
    Raises CannotInfer for one with a "structure" or a "figure" that no rule matches."""
    if not isinstance(data, dict) or ("structure" not in data and "figure" not in data):
        return None
    keys, figure = set(data), data.get("figure")
    if "structure" in data:
        if isinstance(data.get("panels"), list) and all(
            isinstance(p, dict) and "series" in p for p in data["panels"]
        ):
            return "panels"
        if {"projections", "loss", "labels"} <= keys:
            return "trajectories"
        if {"coords", "values"} <= keys:
            return "contour"
        if "labels" in keys and isinstance(data.get("columns"), dict):
            return "overview"
    if isinstance(figure, dict):
        if "panels" in figure and isinstance(data.get("rows"), list):
            return "ladder"
        if {"columns", "rows"} <= set(figure) and ("cells" in keys or {"variants", "cases"} <= keys):
            return "outcome-grid"
    raise CannotInfer(f"keys {sorted(keys)} match no figure kind")


def _style(series: dict) -> str:
    if series.get("notes"):
        return "points"
    if str(series.get("label", "")).startswith("ground truth"):
        return "truth"
    x = [v for v in series.get("x") or [] if v is not None]
    return "points" if any(b < a for a, b in zip(x, x[1:])) else "line"


def _panels(data: dict, path: Path) -> dict:
    structure = data["structure"]
    shapes = structure["panels"]
    if len(shapes) != len(data["panels"]):
        raise CannotInfer(f"{len(shapes)} panels in its structure but {len(data['panels'])} in its data")
    panels = []
    for shape, old in zip(shapes, data["panels"]):
        panel = {k: shape.get(k, "linear") for k in ("title", "xlabel", "ylabel", "xscale", "yscale")}
        panel["text"] = ""
        series = [{"lo": None, "hi": None, "notes": None, "style": _style(s), **s} for s in old["series"]]
        panels.append({**panel, **old, "series": series})
    return {"suptitle": structure.get("suptitle", ""), "panels": panels}


def _trajectories(data: dict, path: Path) -> dict:
    return {"suptitle": data["structure"].get("suptitle", ""), "note_every": TRAJECTORY_NOTE_EVERY}


def _contour(data: dict, path: Path) -> dict:
    shape = data["structure"]["panels"][0]
    labels = {k: shape[k] for k in ("title", "xlabel", "ylabel")}
    return {**labels, "label": shape["series"][0], "suptitle": data["structure"].get("suptitle", "")}


def _overview(data: dict, path: Path) -> dict:
    return {"groups": None}


def _ladder(data: dict, path: Path) -> dict:
    from .departures_report import COLOURS

    title = data["figure"].get("title", "")
    family = title.partition(": ")[0] if ": " in title else path.stem.removeprefix("departures-ladder-")
    return {"family": family, "colours": COLOURS}


def _outcome_grid(data: dict, path: Path) -> dict:
    old = data["figure"]
    if "cells" in data:
        from .departures_report import heatmap

        cells = {(c["case"], c["field"]): c for c in data["cells"]}
        spec = heatmap(old["rows"], old["columns"], cells)
    else:
        from .multiverse import heatmap

        spec = heatmap(data)
    return {"figure": {**spec, **old}}


# kind -> what its old file lacks, from what it has (keys already there win, except "figure")
FILL = {
    "panels": _panels,
    "trajectories": _trajectories,
    "contour": _contour,
    "overview": _overview,
    "ladder": _ladder,
    "outcome-grid": _outcome_grid,
}


def upgraded(data: dict, path: Path = Path("figure.json")) -> dict:
    """The old figure JSON data in today's format: its kind, the fields its drawer reads and every
    old key; None for a JSON that is no figure. Raises CannotInfer (no kind, or fields missing)."""
    kind = infer_kind(data)
    if kind is None:
        return None
    try:
        fill = FILL[kind](data, path)
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise CannotInfer(f"a {kind!r} figure without {e!r}") from None
    replaced = {k: fill.pop(k) for k in ("panels", "figure") if k in fill}  # old keys inside, kept
    return {"kind": kind, "upgraded_from": LEGACY, **fill, **data, **replaced}


def upgrade_file(path: Path) -> tuple[str, str]:
    """Upgrade one JSON in place. -> (status, why): UPGRADED (the kind), SKIPPED (why),
    NOT_A_FIGURE or FAILED (why; the file is left as it is)."""
    path = Path(path)
    if "records" in path.parts:
        return SKIPPED, "a records/ folder: claim records, never figures"
    try:
        text = path.read_text()
        data = json.loads(text)
    except (OSError, ValueError) as e:
        return NOT_A_FIGURE, f"cannot be read as JSON ({e})"
    if isinstance(data, dict) and "kind" in data and ("structure" in data or "figure" in data):
        return SKIPPED, f"already has its kind ({data['kind']!r})"
    try:
        new = upgraded(data, path)
    except CannotInfer as e:
        return FAILED, str(e)
    if new is None:
        return NOT_A_FIGURE, "neither a 'structure' nor a 'figure'"
    indent = 1 if "\n" in text.strip() else None  # as its writer wrote it: json.dumps or write_json
    write_json(path, new, indent=indent)
    return UPGRADED, new["kind"]


def upgrade(paths) -> list[tuple[Path, str, str]]:
    """Upgrade every JSON in paths (files, or folders searched recursively). -> (path, status, why)."""
    out = []
    for given in map(Path, paths):
        for path in sorted(given.rglob("*.json")) if given.is_dir() else [given]:
            out.append((path, *upgrade_file(path)))
    return out


def command(paths) -> int:
    """The `upgrade` command: a line per file and the counts. -> 1 if a kind could not be inferred."""
    results = upgrade(paths)
    counts: dict[str, int] = {}
    for path, status, why in results:
        counts[status] = counts.get(status, 0) + 1
        print(f"{status}: {path} ({why})", file=sys.stderr if status == FAILED else sys.stdout)
    print(", ".join(f"{n} {s}" for s, n in counts.items()) or "no JSON found")
    return 1 if counts.get(FAILED) else 0
