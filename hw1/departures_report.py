"""What the departures grid measured: DEPARTURES.md, its heatmap, the data-size ladders, and
each case's per-departure line for the index (`measurements`).

A departure is *measured* when a finished variant moved that one setting to the report's value
(or a stated step toward it) and the case has a record there; its outcome is compared with the
default run's. Descriptive, like the multiverse: no p-values are combined.
"""

from __future__ import annotations

import math
from pathlib import Path

from . import report
from .config import CI, _flat, _size
from .departures import Variant, is_done, load_grid, variant_dir
from .multiverse import COLOURS as _OUTCOME_COLOURS, NOT_RUN, outcome as _outcome

NOT_MEASURED = "not measured"
NOT_YET = "not run yet"
DEPARTURES_MD = report.DEPARTURES_MD
COLOURS = {**_OUTCOME_COLOURS, NOT_YET: "#dbe7f5", NOT_MEASURED: "#4d4d4d"}  # the multiverse's, and two


def _cpu_hours(v: Variant) -> str:
    return f"about {v.full_estimate_s * 2 / 3600:.1f} CPU-h"


def collect(out: Path, grid: dict) -> dict:
    """Per variant: ran or not, its wall seconds and its cases' records (label -> ClaimRecord)."""
    runs = {}
    for v in grid["variants"]:
        folder = variant_dir(out, grid, v)
        done = is_done(out, grid, v)
        marker = report.load_json(folder / "variant.json") or {}
        recs = {r.label: r for r in report.load_records(folder)} if done else {}
        seconds = marker.get("trained_seconds", marker.get("seconds"))  # the run that trained it
        runs[v.name] = {"done": done, "seconds": seconds, "records": recs}
    return runs


def measurements(out: Path, grid: dict | None = None, runs: dict | None = None) -> dict[str, dict]:
    """label -> {field: {"text", "outcome", "flip", "measured"}} for every departure of the grid's
    cases (the kind-"one" variants), with the default outcome from out/records."""
    try:
        grid = grid or load_grid()
    except ValueError:
        return {}
    runs = runs or collect(out, grid)
    default = {
        r.label: r.status for r in report.load_records(out) if r.scale == grid["scale"] and not r.overrides
    }
    res: dict[str, dict] = {}
    for v in grid["variants"]:
        if v.kind != "one":
            continue
        key = v.fields[0]
        at = "at the report's value" if v.step == "the report's value" else f"at {v.step}"
        for label in v.cases:
            rec = runs[v.name]["records"].get(label)
            if rec is None:
                cost = (
                    _cpu_hours(v)
                    if not v.runnable
                    else f"not run yet, estimated {v.estimate_s / 60:.0f} min on 2 cores"
                )
                text, outcome, flip = (
                    f"{NOT_MEASURED}: {cost}",
                    NOT_YET if v.runnable else NOT_MEASURED,
                    False,
                )
            else:
                outcome = _outcome(rec)
                flip = outcome != default.get(label)
                text = f"measured: → {outcome} {at}" if flip else f"measured: same outcome {at}"
            res.setdefault(label, {})[key] = {
                "text": text,
                "outcome": outcome,
                "flip": flip,
                "flipped_to": outcome if flip else "",
                "measured": rec is not None,
                "variant": v.name,
                "decisive": "",
            }
    _add_ladders(res, grid, runs, default)
    return res


def _add_ladders(res: dict, grid: dict, runs: dict, default: dict) -> None:
    """A data-size ladder's rungs move the same one field: a rung whose outcome differs from the
    default's is a flip of that departure too, named with its step; a departure whose own variant
    has not run is measured at its largest rung that has."""
    for v in grid["variants"]:
        if v.kind != "ladder":
            continue
        for label in v.cases:
            rec = runs[v.name]["records"].get(label)
            entry = res.get(label, {}).get(v.fields[0])
            if rec is None or entry is None:
                continue
            outcome = _outcome(rec)
            at = "at the report's value" if v.step == "the report's value" else f"at {v.step}"
            if not entry["measured"]:
                entry.update(
                    outcome=outcome, measured=True, variant=v.name, text=f"measured: same outcome {at}"
                )
            if outcome != default.get(label):
                same = entry["text"].startswith("measured: same outcome")
                rung = f"→ {outcome} {at} (ladder)"
                entry["text"] = (
                    f"measured: {rung}" if same and entry["variant"] == v.name else f"{entry['text']}; {rung}"
                )
                entry["flipped_to"] = entry["flipped_to"] or outcome
                entry["flip"] = True


def _shown(cell: dict) -> str:
    """A cell's colour: the outcome a flip went to, else the outcome measured."""
    return cell.get("flipped_to") or cell.get("outcome", NOT_RUN)


def heatmap(cases: list[str], fields: list[str], cells: dict) -> dict:
    """Cases x settings, coloured by the outcome with that setting moved: the spec that
    hw1.plots_grids.draw_outcome_grid draws (and departures.json keeps as its "figure")."""
    marks = []
    for y, c in enumerate(cases):
        for x, f in enumerate(fields):
            cell = cells.get((c, f))
            if cell is None:
                marks.append([y, x, "·", "#bbbbbb"])
            elif cell.get("flip"):
                marks.append([y, x, "flip", "black"])
            elif cell.get("outcome") == NOT_MEASURED:
                marks.append([y, x, "over\ncap", "white"])
    return {
        "title": "Departures measured one at a time: the case's outcome with that setting moved",
        "x": "setting",
        "y": "claim case",
        "xlabel": "setting moved to the report's value (or a stated step toward it), the rest at ci",
        "ylabel": "claim case",
        "columns": fields,
        "rows": cases,
        "xticks": fields,
        "cells": [[_shown(cells.get((c, f), {})) for f in fields] for c in cases],
        "colours": COLOURS,
        "legend": {
            NOT_RUN: "not a departure of the case (·)",
            NOT_YET: "not run yet (under the cap)",
            NOT_MEASURED: "not measured (over the cap\nat every step)",
        },
        "blank": NOT_RUN,
        "marks": marks,
        "row_notes": None,
        "divider": None,
        "cell_width": 0.42,
        "lines": False,
        "legend_x": 1.02,
    }


def ladder_data(out: Path, grid: dict, runs: dict) -> dict[str, list[dict]]:
    """family -> per case, the effect and its interval at each data size (ci x1, ladder rungs)."""
    default = {r.label: r for r in report.load_records(out) if r.scale == grid["scale"] and not r.overrides}
    fams: dict[str, list[dict]] = {}
    for v in grid["variants"]:
        if "data_fraction" not in v.extra:
            continue
        rows = fams.setdefault(v.family, [])
        for label in v.cases:
            row = next((r for r in rows if r["case"] == label), None)
            if row is None:
                base = default.get(label)
                key = v.fields[0]
                n0 = _size(_flat(CI)[key], key) / 60_000  # the default run's training set
                row = {"case": label, "points": []}
                if base is not None and base.verdict is not None:
                    row["points"].append(_point(base, n0, "ci ×1"))
                rows.append(row)
            rec = runs[v.name]["records"].get(label)
            if rec is not None:
                row["points"].append(_point(rec, v.extra["data_fraction"], v.step))
            else:
                why = "not runnable: " + _cpu_hours(v) if not v.runnable else NOT_RUN
                row["points"].append({"fraction": v.extra["data_fraction"], "status": why, "step": v.step})
    for rows in fams.values():
        for row in rows:
            row["points"].sort(key=lambda p: p["fraction"])
    return fams


def _point(r: report.ClaimRecord, fraction, step) -> dict:
    """One rung: the standardized effect z/√n of the overview (the claimed direction positive; a
    claim of several parts its weakest part), so rungs whose weakest part differs share a scale."""
    d, lo, hi = report.standardized_effect(r.verdict)
    finite = all(map(math.isfinite, (d, lo, hi)))
    return {
        "fraction": fraction,
        "step": step,
        "status": _outcome(r),
        "effect": d if finite else None,
        "low": lo if finite else None,
        "high": hi if finite else None,
        "effect_name": "standardized effect z/√n (claimed direction > 0)",
        "seeds": len(r.seeds),
    }


def coverage(records: list, meas: dict) -> dict:
    """How many of the cases' departures, and of their plausibly decisive (⚠) ones, have a
    measured outcome at the report's value or at a stated step toward it."""
    every = [(r.label, d) for r in records for d in r.departures]
    measured = [(c, d) for c, d in every if meas.get(c, {}).get(d["field"], {}).get("measured")]
    return {
        "decisive": [
            sum(1 for _, d in measured if d.get("decisive")),
            sum(1 for _, d in every if d.get("decisive")),
        ],
        "all": [len(measured), len(every)],
    }


def write_tables(out: Path, grid: dict | None = None) -> Path:
    """DEPARTURES.md, departures.png/.json and departures-ladder-<family>.png/.json in `out`; then
    the index (its departure lines read this)."""
    from .plots_grids import draw_ladder, draw_outcome_grid

    out = Path(out)
    grid = grid or load_grid()
    runs = collect(out, grid)
    meas = measurements(out, grid, runs)
    default = [r for r in report.load_records(out) if r.scale == grid["scale"] and not r.overrides]
    cases = [r.label for r in default if r.label in meas]
    fields = sorted({f for m in meas.values() for f in m})
    cells = {(c, f): meas[c][f] for c in cases for f in meas[c]}
    fig = heatmap(cases, fields, cells)
    draw_outcome_grid(out / "departures.png", fig)
    ladders = ladder_data(out, grid, runs)
    for fam, rows in ladders.items():
        png = out / f"departures-ladder-{fam}.png"
        structure = draw_ladder(png, fam, rows, COLOURS)
        spec = {"kind": "ladder", "figure": structure, "family": fam, "rows": rows, "colours": COLOURS}
        report.write_json(png.with_suffix(".json"), spec)
    variants = []
    for v in grid["variants"]:
        r = runs[v.name]
        variants.append(
            {
                "name": v.name,
                "kind": v.kind,
                "set": v.set,
                "step": v.step,
                "runnable": v.runnable,
                "estimate_s": v.estimate_s,
                "full_estimate_s": v.full_estimate_s,
                "seconds": r["seconds"] if r["done"] else None,
                "outcomes": {label: _outcome(r["records"].get(label)) for label in v.cases},
            }
        )
    data = {
        "kind": "outcome-grid",
        "grid": grid["name"],
        "date": grid["date"],
        "figure": fig,
        "cells": [{"case": c, "field": f, **cells[(c, f)]} for (c, f) in cells],
        "variants": variants,
        "coverage": coverage(default, meas),
    }
    report.write_json(out / "departures.json", data)
    path = out / DEPARTURES_MD
    path.write_text(markdown(grid, data, {r.label: r.status for r in default}, ladders))
    if (out / "records").is_dir():
        report.write_index(out)
    return path


def flips(meas: dict) -> list[tuple[str, str, str]]:
    """(case, field, outcome) of every measured departure that changed the case's outcome."""
    return [(c, f, m["flipped_to"]) for c, fs in meas.items() for f, m in fs.items() if m["flip"]]


def markdown(grid: dict, data: dict, default: dict, ladders: dict) -> str:
    vs = data["variants"]
    ran = [v for v in vs if v["seconds"] is not None]
    est_ran = sum(v["estimate_s"] for v in ran)
    wall = sum(v["seconds"] for v in ran)
    missing = [v for v in vs if v["seconds"] is None]
    meas = {}
    for c in data["cells"]:
        meas.setdefault(c["case"], {})[c["field"]] = c
    flipped = flips(meas)
    lines = [
        "# Departures from the report, measured one setting at a time",
        "",
        f"Grid `{grid['name']}`, written {grid['date']} before any of its variants ran "
        f"(`data/grids/{grid['name']}.json`, generated by `python -m hw1.departures write` from "
        "`hw1.config.departures`; not edited after). For every case of the `ci` suite and every setting "
        "in which it departs from the report, one variant sets that setting to the report's value, the "
        f"rest at `ci`. Where the estimated wall time is over {grid['cap_s'] / 60:.0f} min on 2 cores, "
        "the variant takes the largest step toward the report's value that fits (×4, ×16, ...; the "
        "value that ran is in the table). Per MNIST family one more variant sets all of its model and "
        "training departures to the report's values (data at ci size), and a data-size ladder trains "
        "on ×4 and ×16 of ci's training set. Every variant runs through the same harness as the suite: "
        "the same staged seeds and tests, one seed set. **Descriptive**: no p-values are combined.",
        "",
        f"**Cost, measured:** {len(ran)} of {len(vs)} variants ran, {wall:.0f} s ({wall / 60:.0f} min) of "
        f"wall time on 2 cores (estimated beforehand: {est_ran:.0f} s for those). Still missing: "
        f"{len(missing)} ({sum(1 for v in missing if not v['runnable'])} of them over the cap at every step).",
        "",
    ]
    if data.get("coverage"):
        (k, n), (ka, na) = data["coverage"]["decisive"], data["coverage"]["all"]
        lines += [
            f"**Measured:** {k} of the {n} ⚠ departures of the ci cases ({100 * k / max(n, 1):.0f}%) and {ka} of "
            f"all {na} have an outcome at the report's value or at a stated step toward it; each of the rest "
            "says in the index what it would cost.",
            "",
        ]
    if flipped:
        lines += ["**Flips** (the case's outcome changed when one departure moved toward the report):", ""]
        lines += [
            f"- {c}: `{f}` → {o} (default: {default.get(c)}); {meas[c][f]['text']}" for c, f, o in flipped
        ]
    else:
        lines += ["**Flips:** none among the departures measured so far."]
    lines += [
        "",
        "![departures heatmap: cases x settings, coloured by the outcome with that setting moved](departures.png)",
        "",
        "Data: [departures.json](departures.json).",
        "",
        "## Data-size ladders",
        "",
    ]
    for fam in ladders:
        lines += [
            f"![{fam}: effect against the fraction of the report's data](departures-ladder-{fam}.png)",
            "",
        ]
    lines += [
        "## Variants",
        "",
        "| variant | kind | --set | value that ran | estimated min | measured min | outcomes |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for v in vs:
        if v["seconds"] is not None:
            meas_min = f"{v['seconds'] / 60:.1f}"
        elif v["runnable"]:
            meas_min = NOT_RUN
        else:
            meas_min = f"over the cap: {v['full_estimate_s'] * 2 / 3600:.1f} CPU-h at the report's value"
        outs = "; ".join(
            f"{c}: {o}" + (" (flip)" if o not in (NOT_RUN, default.get(c)) else "")
            for c, o in v["outcomes"].items()
        )
        lines.append(
            f"| `{v['name']}` | {v['kind']} | `{' '.join(v['set'])}` | {v['step']} | "
            f"{v['estimate_s'] / 60:.1f} | {meas_min} | {outs} |"
        )
    if missing:
        lines += ["", "Still missing: " + ", ".join(f"`{v['name']}`" for v in missing) + "."]
    return "\n".join(lines) + "\n"
