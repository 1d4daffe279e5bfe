"""The timing table of one claims run: every case's wall time, its training, its seeds and outcome,
read from the records the run wrote (`<figures dir>/records/*.json`) and its `environment.json`.

    python -m benchmarks.timing figures/paper --wall 540 > figures/paper/timing.md

`benchmarks/gpu_paper.sh` writes it after the paper suite; nothing here runs a claim.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hw1 import report


def rows(folder: Path) -> list[dict]:
    """Every case of a run's records, slowest first: claim, case, outcome, seeds, seconds, trained."""
    out = []
    for r in report.load_records(folder):
        row = dict(claim=r.claim, case=r.case, outcome=r.verdict.status if r.verdict else "no verdict")
        out.append({**row, "seeds": len(r.seeds), "seconds": r.seconds, "trained": r.train_seconds})
    return sorted(out, key=lambda r: -(r["seconds"] or 0))


def table(folder: Path, wall: float | None = None, notes: list[str] = ()) -> str:
    env = report.load_json(folder / "environment.json") or {}
    found = rows(folder)
    num = env.get("numerics", {})
    where = num.get("accelerator") or num.get("cpu") or "unknown machine"
    lines = [
        f"# Timing: {env.get('scale', '?')} scale, {len(found)} claim cases",
        "",
        f"Device `{env.get('device', '?')}` ({where}), torch {env.get('torch', '?')}.",
    ]
    knobs = num.get("knobs") or {}
    lines.append(
        "Knobs: " + (", ".join(f"{k}={v}" for k, v in knobs.items()) or "none (eager steps, float32)") + "."
    )
    if wall is not None:
        lines.append(f"Wall time of the whole run: {wall:.0f} s ({wall / 60:.1f} min).")
    lines += list(notes)
    total = sum(r["seconds"] or 0 for r in found)
    lines += [
        f"Sum of the cases' own wall times: {total:.0f} s (cases run side by side on the workers).",
        "",
        "| claim | case | outcome | seeds | seconds | trained (s) |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for r in found:
        sec = "" if r["seconds"] is None else f"{r['seconds']:.1f}"
        tr = "" if r["trained"] is None else f"{r['trained']:.0f}"
        lines.append(f"| {r['claim']} | {r['case']} | {r['outcome']} | {r['seeds']} | {sec} | {tr} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="the run's figures folder (--figures-dir)")
    ap.add_argument("--wall", type=float, default=None, help="the run's wall time in seconds")
    ap.add_argument("--note", action="append", default=[], help="a line to add under the header")
    a = ap.parse_args(argv)
    if not (a.folder / "records").is_dir():
        raise SystemExit(f"{a.folder}: no records/ folder; is it a claims run's --figures-dir?")
    print(table(a.folder, a.wall, a.note), end="")


if __name__ == "__main__":
    main()
