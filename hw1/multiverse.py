"""How robust is each verdict to reasonable choices? The multiverse of the dated grids in data/grids/multiverse/.

    python -m hw1.multiverse                          # every variant at ci scale, 2 workers each
    python -m hw1.multiverse --claim sharpness        # only the variants of these claims' families
    python -m hw1.multiverse --variants opt.lr-x3     # only these variants (name or --set item)
    python -m hw1.multiverse --tables-only            # rebuild MULTIVERSE.md from the runs made

Each variant is one `--set` item around the scale's own point, run as `pytest claims/ --scale S
--set ITEM --claim ... --figures-dir OUT/multiverse/<variant>`: the same staged seeds, the same
run cache. The default point is the suite's own run (OUT/records), never re-run. A variant whose
records are complete is not run again, so an interrupted multiverse resumes where it stopped.

The multiverse is descriptive: per case, the outcome under each variant and "same outcome in k of
n variants"; no p-values are combined and no new test is made. A case that stopped before its
verdict (e.g. a non-finite loss at x3 learning rate) is shown as "failed to train", not dropped.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from . import report
from .config import CLAIM_SETTINGS, get_scale
from .overrides import OverrideError, apply_overrides
from .stability import claims_command

ROOT = Path(__file__).resolve().parent.parent
GRIDS_DIR = ROOT / "data" / "grids" / "multiverse"  # one JSON file per dated grid
FAILED = "failed to train"  # the case stopped before its verdict (its record has none)
NOT_RUN = "not run"
COLOURS = {
    "reproduced": "#2ca02c",
    "not shown": "#ffbf3f",
    "contradicted": "#d62728",
    "inconclusive": "#a0a0a0",
    FAILED: "#5b2a86",
    NOT_RUN: "#ffffff",
}
# Settings whose "*k" makes a variant's training cost about k times the default's (the estimate).
_COST_SCALES = ("*epochs*", "*budget*", "*widths*", "*train_size*", "*n_points*")
_STARTUP_S = 25.0  # pytest, xdist, torch start-up per variant (a smoke variant of 2 claims: 31-37 s)


AND = " & "  # a variant that must change two settings together, e.g. an optimizer and its own rate


def settings(item: str) -> list[str]:
    """The --set items of a (grid or resolved) variant item: "a=1 & b=*2" -> ["a=1", "b=*2"]."""
    return item.split(AND)


# ------------------------------------------------------------------------------ the grids
def load_grids(folder: Path = GRIDS_DIR) -> list[dict]:
    """The dated grids, in the order they were written (their "grid" number). A grid file holds its
    date, a title, when it was written and why, what it left out ("left out") and its families:
    {family: {"claims": (...), "set": (item, ...)}}, claims and items as tuples here. A grid is not
    edited after seeing outcomes: a later change is a new file with a new date."""
    grids = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    if not grids:
        raise FileNotFoundError(f"no multiverse grid in {folder}: the grids are committed files")
    for g in grids:
        g["families"] = {
            f: {"claims": tuple(v["claims"]), "set": tuple(v["set"])} for f, v in g["families"].items()
        }
    return sorted(grids, key=lambda g: g["grid"])


def merge_grids(*grids: dict) -> dict:
    """One grid of several dated ones' families, in order: a family's variants are the union of its items."""
    out: dict[str, dict] = {}
    for grid in grids:
        for family, g in grid.items():
            if family in out and out[family]["claims"] != g["claims"]:
                raise ValueError(f"multiverse family {family!r}: its claims differ between grids")
            had = out.get(family, {"set": ()})["set"]
            out[family] = {"claims": g["claims"], "set": had + tuple(i for i in g["set"] if i not in had)}
    return out


def grids_date(grids: list[dict]) -> str:
    """The grids' dates, for tables and titles: "2026-12-01 (grid 1); 2026-12-01 16:15 UTC (grid 2:
    its title); ..."."""
    return "; ".join(
        f"{g['date']} (grid {g['grid']}{': ' + g['title'] if g['title'] else ''})" for g in grids
    )


GRIDS = load_grids()
MULTIVERSE = merge_grids(*(g["families"] for g in GRIDS))  # {family: {"claims", "set"}}
MULTIVERSE_DATE = grids_date(GRIDS)


class GridError(ValueError):
    """A grid item that does not apply at this scale (e.g. *2 on 'all of MNIST')."""


@dataclass(frozen=True)
class Variant:
    """One point of the multiverse: one --set item (maybe "*k", relative) for a family's claims."""

    family: str
    claims: tuple[str, ...]
    item: str  # as the grid writes it, e.g. "fit.lr=*1/3"; settings changed together: joined by AND

    @property
    def name(self) -> str:
        """The folder name: fit.lr=*1/3 -> fit.lr-x1over3; a & b -> a+b."""
        return self.item.replace(AND, "+").replace("=*", "-x").replace("=", "-").replace("/", "over")

    @property
    def label(self) -> str:
        """For tables and axes: fit.lr ×1/3, fit.optimizer=sgd."""
        return self.item.replace("=*", " ×")


def variants(grid: dict | None = None) -> list[Variant]:
    """Every variant of the grid (MULTIVERSE, the dated grids merged, by default), in the grid's order."""
    grid = MULTIVERSE if grid is None else grid
    return [Variant(fam, tuple(g["claims"]), item) for fam, g in grid.items() for item in g["set"]]


def _times(value, k: Fraction, key: str):
    """value times k: ints rounded (at least 1), tuples elementwise."""
    if isinstance(value, tuple):
        return tuple(_times(v, k, key) for v in value)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GridError(f"{key} is {value!r} at this scale: *{k} does not apply")
    return max(1, round(value * k)) if isinstance(value, int) else float(value * k)


def resolve(item: str, scale) -> str:
    """The absolute --set item of a grid item at `scale`: "fit.lr=*3" -> "fit.lr=0.003" at ci
    (each of the settings of "a & b", joined the same way).

    An unknown section or field raises OverrideError (listing the valid ones), a value of the wrong
    type too (the item is checked with apply_overrides)."""
    if AND in item:
        parts = [resolve(i, scale) for i in settings(item)]
        apply_overrides(scale, parts)
        return AND.join(parts)
    key, _, value = item.partition("=")
    if value.startswith("*"):
        sec, _, name = key.partition(".")
        if not hasattr(getattr(scale, sec, None), name):
            apply_overrides(scale, [f"{key}=0"])  # raises, saying which fields exist
        new = _times(getattr(getattr(scale, sec), name), Fraction(value[1:]), key)
        value = ",".join(map(repr, new)) if isinstance(new, tuple) else repr(new)
        item = f"{key}={value}"
    apply_overrides(scale, [item])
    return item


def validate(chosen: list[Variant], scale) -> dict[str, str]:
    """Each variant's absolute --set item at `scale` -> {name: item}. A variant whose settings are
    not each one SECTION.FIELD=VALUE (joined by " & " where two change together), or that names an
    unknown claim or field, raises; one that does not apply at this scale (GridError) is left out
    of the result, with a line on stderr."""
    out = {}
    for v in chosen:
        if any(i.count("=") != 1 for i in settings(v.item)):
            raise OverrideError(f"multiverse variant {v.item!r}: write one SECTION.FIELD=VALUE item")
        unknown = [c for c in v.claims if c not in CLAIM_SETTINGS]
        if unknown:
            raise ValueError(f"multiverse family {v.family!r}: unknown claim(s) {', '.join(unknown)}")
        try:
            out[v.name] = resolve(v.item, scale)
        except GridError as e:  # e.g. x2 of all of MNIST at paper scale: left out, said so
            print(
                f"multiverse: {v.item} does not apply at {scale.name} scale ({e}); left out", file=sys.stderr
            )
    return out


# ------------------------------------------------------------------------------ running
def variant_dir(out: Path, v: Variant) -> Path:
    return Path(out) / "multiverse" / v.name


def _records(folder: Path, scale: str, overrides: list[str]) -> list[report.ClaimRecord]:
    return [r for r in report.load_records(folder) if r.scale == scale and list(r.overrides) == overrides]


def is_complete(out: Path, v: Variant, item: str, scale: str) -> bool:
    """The variant ran to the end with this item at this scale, and every claim has its records."""
    folder = variant_dir(out, v)
    done = report.load_json(folder / "variant.json") or {}
    if (done.get("set"), done.get("scale"), tuple(done.get("claims", ()))) != (item, scale, v.claims):
        return False
    have = {r.claim for r in _records(folder, scale, settings(item))}
    return set(v.claims) <= have


def run_variant(out: Path, v: Variant, item: str, scale: str, workers: str, runner=subprocess.run) -> float:
    """Run one variant through the claims harness; mark it done when pytest ran to its end.
    -> wall seconds. `runner` is subprocess.run (tests pass a cheap stand-in)."""
    folder = variant_dir(out, v)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "variant.json").unlink(missing_ok=True)
    sets = [a for i in settings(item) for a in ("--set", i)]
    cmd = claims_command(scale, folder, workers, *sets, *(a for c in v.claims for a in ("--claim", c)))
    start = time.time()
    with open(folder / "pytest.log", "w") as log:
        rc = runner(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    seconds = time.time() - start
    if rc not in (0, 1):  # 0: passed or skipped, 1: some cases failed (a result, e.g. failed to train)
        raise RuntimeError(f"multiverse variant {v.item} stopped with pytest exit code {rc}; see {log.name}")
    marker = {"item": v.item, "set": item, "scale": scale, "claims": list(v.claims), "returncode": rc}
    report.write_json(folder / "variant.json", {**marker, "seconds": round(seconds, 1)})
    return seconds


def _failure(folder: Path) -> str:
    """The first error line of a variant's pytest log (e.g. NonFiniteLossError: ...), or ''."""
    try:
        lines = (folder / "pytest.log").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((ln[1:].strip() for ln in lines if re.match(r"^E\s+[\w.]*(Error|Exception)\b", ln)), "")


# ------------------------------------------------------------------------------ the table
def outcome(r: report.ClaimRecord | None) -> str:
    """A case's outcome in a variant: its verdict, FAILED without one, NOT_RUN without a record."""
    if r is None:
        return NOT_RUN
    return r.verdict.status if r.verdict else FAILED


def table(out: Path, scale: str, chosen: list[Variant]) -> dict:
    """Per case: the default point's outcome, each variant's, and "same in k of n" (variants with no
    record of the case are left out of n; a failed one counts, as a different outcome)."""
    default = _records(out, scale, [])
    if not default:
        raise FileNotFoundError(
            f"no {scale} records in {out}/records: run `pytest claims/ --scale {scale}` first"
        )
    rows, info = [], []
    for v in chosen:
        folder = variant_dir(out, v)
        done = report.load_json(folder / "variant.json") or {}
        recs = {r.label: r for r in _records(folder, scale, settings(done.get("set", "")))} if done else {}
        info.append(
            {
                "name": v.name,
                "family": v.family,
                "item": v.item,
                "set": done.get("set", ""),
                "claims": list(v.claims),
                "ran": bool(done),
                "seconds": done.get("seconds"),
                "failure": _failure(folder) if any(r.verdict is None for r in recs.values()) else "",
                "records": recs,
            }
        )
    for r in default:
        outcomes = {
            i["name"]: outcome(i["records"].get(r.label))
            for i in info
            if r.label in i["records"]  # a variant not run, or without this case's record, is not counted
        }
        if not any(r.claim in v.claims for v in chosen):
            continue
        flips = [n for n, o in outcomes.items() if o != r.status]
        rows.append(
            {
                "label": r.label,
                "claim": r.claim,
                "default": r.status,
                "outcomes": outcomes,
                "same": len(outcomes) - len(flips),
                "n": len(outcomes),
                "flips": flips,
            }
        )
    for i in info:
        del i["records"]
    return {"date": MULTIVERSE_DATE, "scale": scale, "variants": info, "cases": rows}


# ------------------------------------------------------------------------------ the estimate
def _claim_train_seconds(records: list[report.ClaimRecord], claim: str) -> float:
    """What training a claim's runs cost: its cases' distinct training times (cases with the same
    time read the same runs), summed."""
    return sum({round(r.train_seconds or 0.0, 1) for r in records if r.claim == claim})


def estimate_seconds(chosen: list[Variant], records: list[report.ClaimRecord], workers: int = 2) -> float:
    """Wall seconds of a cold multiverse, from the default point's records: per variant, its
    claims' training time (x k for a "*k" on a length or size setting) over `workers`, plus its
    cases' measuring time over `workers` and a start-up. An estimate: another learning rate or
    optimizer may stop the staged seeds at another stage."""
    total = 0.0
    for v in chosen:
        k = 1.0
        for item in settings(v.item):
            key, _, value = item.partition("=")
            if value.startswith("*") and any(fnmatch.fnmatch(key, g) for g in _COST_SCALES):
                k *= float(Fraction(value[1:]))
        train = sum(_claim_train_seconds(records, c) for c in v.claims)
        measure = sum(r.seconds for r in records if r.claim in v.claims)
        total += (train * k + measure) / workers + _STARTUP_S
    return total


# ------------------------------------------------------------------------------ writing
def heatmap(data: dict) -> dict:
    """The heatmap of cases x (default + variants), coloured by outcome: the spec that
    hw1.plots_grids.draw_outcome_grid draws (and multiverse.json keeps as its "figure")."""
    cols = ["default"] + [v["name"] for v in data["variants"]]
    rows = data["cases"]
    return {
        "title": (
            f"Multiverse ({data['scale']} scale, grids of {data['date']}): outcome per case and variant;\n"
            "right: same outcome as the default in k/n variants"
        ),
        "x": "variant",
        "y": "claim case",
        "xlabel": "variant: one choice changed from the default point (one --set item; & joins an optimizer "
        "and its rate)",
        "ylabel": "claim case",
        "columns": cols,
        "rows": [c["label"] for c in rows],
        "xticks": ["default"] + [v["item"].replace("=*", " ×") for v in data["variants"]],
        "cells": [[c["default"]] + [c["outcomes"].get(n, NOT_RUN) for n in cols[1:]] for c in rows],
        "colours": COLOURS,
        "legend": {NOT_RUN: "not run (or not in the\ncase's family)"},
        "blank": NOT_RUN,
        "marks": [],
        "row_notes": [f"{c['same']}/{c['n']}" if c["n"] else "—" for c in rows],  # same outcome in k of n
        "divider": 0,
        "cell_width": 0.32,
        "lines": True,
        "legend_x": 1.1,
    }


def markdown(data: dict, estimate: float | None) -> str:
    """MULTIVERSE.md: what it is (descriptive), the heatmap, per case k of n and the flips, the variants."""
    ran = [v for v in data["variants"] if v["ran"]]
    measured = sum(v["seconds"] or 0 for v in ran)
    est = f"about {estimate / 60:.0f} min" if estimate else "not available"
    lines = [
        "# Multiverse: how robust is each verdict to reasonable choices?",
        "",
        f"Grids of {data['date']} (`data/grids/multiverse/`; each written before any of its variants "
        f"ran, not edited after seeing outcomes), at `{data['scale']}` scale. Each variant changes one setting of the "
        "default point (the suite's own run) and re-runs the family's claims through the same harness: the "
        "same staged seeds, the same tests.",
        "",
        "**This table is descriptive.** It shows how often a case keeps its outcome when one choice changes; "
        "it combines no p-values and makes no new test. A case that stopped before its verdict (e.g. a "
        f"non-finite loss at a larger learning rate) is shown as *{FAILED}* and counts among the n. "
        "A variant can also train without reaching the state a claim is about (a net left far from a "
        "minimum): look at the variant's figures (`multiverse/<variant>/`) before reading a flip as "
        'evidence. What a run of the grid showed, read that way: the project README, "Robustness: the '
        'multiverse".',
        "",
        f"**Cost, measured:** {len(ran)} of {len(data['variants'])} variants ran, {measured:.0f} s "
        f"({measured / 60:.0f} min) of wall time: the sum of the variants' cold `pytest` runs on the "
        "machine that ran them (`benchmarks/README.md` dates the run and names the machine). "
        f"Estimated before running: {est} for the whole grid at `{data['scale']}` scale (the suite's "
        "training times in `figures/records/`, times k for a variant that scales a length or size by k, "
        "plus measuring and start-up; `hw1.multiverse.estimate_seconds`); another learning rate or "
        "optimizer can stop the staged seeds at another stage, or reach the batch-size runs' target "
        "loss later.",
        "",
        "![multiverse heatmap: claim cases x variants, coloured by outcome](multiverse.png)",
        "",
        "Data: [multiverse.json](multiverse.json).",
        "",
        "## Per case",
        "",
        "| case | default | same outcome in | flipped by |",
        "|---|---|---|---|",
    ]
    for c in data["cases"]:
        flips = ", ".join(f"`{n}` ({c['outcomes'][n]})" for n in c["flips"]) or "—"
        same = f"{c['same']} of {c['n']} variants" if c["n"] else "no variant run yet"
        lines.append(f"| {c['label']} | {c['default']} | {same} | {flips} |")
    lines += [
        "",
        "## Variants",
        "",
        "| variant | family | --set | claims | ran | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for v in data["variants"]:
        ran_cell = "yes" if v["ran"] else NOT_RUN
        if v["failure"]:
            ran_cell += f" ({FAILED}: `{v['failure'][:100]}`)"
        secs = f"{v['seconds']:.0f}" if v["seconds"] is not None else ""
        lines.append(
            f"| `{v['name']}` | {v['family']} | `{v['set'] or v['item']}` | {', '.join(v['claims'])} | "
            f"{ran_cell} | {secs} |"
        )
    return "\n".join(lines) + "\n"


def write(out: Path, data: dict, estimate: float | None = None) -> Path:
    """out/MULTIVERSE.md, multiverse.png and multiverse.json; then the index's robust column."""
    out = Path(out)
    from .plots_grids import draw_outcome_grid

    grid = heatmap(data)
    draw_outcome_grid(out / "multiverse.png", grid)
    data = {"kind": "outcome-grid", **data, "figure": grid, "estimate_seconds": estimate}
    report.write_json(out / "multiverse.json", data)
    path = out / "MULTIVERSE.md"
    path.write_text(markdown(data, estimate))
    if (out / "records").is_dir():
        report.write_index(out)
    return path


# ------------------------------------------------------------------------------ the command
def run(
    out: Path, chosen: list[Variant], items: dict, scale: str, workers, runner=subprocess.run
) -> list[str]:
    """Run every chosen variant not yet complete, in the grid's order. -> the names run now.
    Interrupted, it leaves the variants finished so far complete; the next call resumes there."""
    ran = []
    for i, v in enumerate(chosen, 1):
        if is_complete(out, v, items[v.name], scale):
            continue
        print(f"[multiverse {i}/{len(chosen)}] --set {items[v.name]} ({', '.join(v.claims)})", flush=True)
        seconds = run_variant(out, v, items[v.name], scale, workers, runner)
        print(f"[multiverse {i}/{len(chosen)}] {v.item}: {seconds:.0f} s", flush=True)
        ran.append(v.name)
    return ran


def choose(claims=(), picks=(), grid: dict | None = None) -> list[Variant]:
    """The grid's variants for these claims (all when none), or the ones picked by name or item."""
    every = variants(grid)
    chosen = [v for v in every if not claims or set(claims) & set(v.claims)]
    if picks:
        unknown = [p for p in picks if not any(p in (v.name, v.item) for v in every)]
        if unknown:
            raise ValueError(
                f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(v.name for v in every)}"
            )
        chosen = [v for v in chosen if v.name in picks or v.item in picks]
    return chosen


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw1.multiverse", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--claim", action="append", default=[], help="only the families of this claim (repeatable)"
    )
    ap.add_argument("--scale", default="ci")
    ap.add_argument("-n", "--workers", default="2", help="pytest-xdist workers per variant")
    ap.add_argument(
        "--variants", action="append", default=[], help="only this variant, by name or item (repeatable)"
    )
    ap.add_argument("--out", help="the figures folder of the default point (default: the scale's)")
    ap.add_argument("--tables-only", action="store_true", help="do not run; tabulate the variants run so far")
    args = ap.parse_args(argv)
    scale = get_scale(args.scale)
    out = Path(args.out) if args.out else ROOT / "figures" / ("" if args.scale == "ci" else args.scale)
    try:
        chosen = choose(args.claim, args.variants)
    except ValueError as e:
        print(f"python -m hw1.multiverse: {e}", file=sys.stderr)
        return 2
    try:  # an unknown field or claim fails here, before anything runs
        items = validate(chosen, scale)
    except ValueError as e:  # OverrideError too
        print(f"python -m hw1.multiverse: the grid does not fit the config: {e}", file=sys.stderr)
        return 2
    chosen = [v for v in chosen if v.name in items]
    default = _records(out, scale.name, [])
    if not default:
        print(
            f"no {scale.name} records in {out / 'records'}: run `pytest claims/ --scale {scale.name}` first"
        )
        return 2
    if not args.tables_only:
        run(out, chosen, items, scale.name, args.workers)
    ci = _records(ROOT / "figures", "ci", [])  # the estimate is of the ci grid, from the ci suite's times
    estimate = estimate_seconds(variants(), ci) if ci else None
    path = write(out, table(out, scale.name, chosen), estimate)
    print(f"multiverse: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
