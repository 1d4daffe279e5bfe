"""How stable each claim case's outcome is across disjoint seed sets.

    python -m hw1.stability                 # the ci suite on 3 disjoint seed sets (--seed 0, 1000,
                                            # 2000), then figures/STABILITY.md + stability.json
    python -m hw1.stability --tables-only   # rebuild the table from the runs already made

Each set runs `pytest claims/ --seed OFFSET --figures-dir .stability/<scale>/seed-OFFSET` (the run
cache shares every run already trained; offsets 1000 apart keep the sets disjoint even at 4x the
largest base count). A case is *stable* when every set gives it the same outcome; a fragile case
is marked in figures/INDEX.md with its split, never given one verdict silently.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from . import report
from .stats import format_p

ROOT = Path(__file__).resolve().parent.parent
OFFSETS = (0, 1000, 2000)


def run_dir(scale: str, offset: int) -> Path:
    return ROOT / ".stability" / scale / f"seed-{offset}"


def run_set(scale: str, offset: int, workers: str) -> float:
    """Run the claims on one seed set (its outcomes land in its records). -> wall seconds."""
    out = run_dir(scale, offset)
    cmd = [sys.executable, "-m", "pytest", "claims/", "-q", "-n", workers, "--scale", scale,
           "--seed", str(offset), "--figures-dir", str(out), "-p", "no:cacheprovider"]
    start = time.time()
    # The exit code is not the point: a ledger difference at offset 0 still files its record.
    subprocess.run(cmd, cwd=ROOT, check=False)
    return time.time() - start


def stability_table(scale: str, offsets=OFFSETS) -> dict:
    """{'offsets', 'cases': {case label: {'sets': [{offset, status, p, seeds}], 'stable'}}}."""
    cases: dict[str, dict] = {}
    for off in offsets:
        for r in report.load_records(run_dir(scale, off)):
            if r.get("scale") != scale or r.get("seed_offset", 0) != off or not r.get("verdict"):
                continue
            v = r["verdict"]
            cases.setdefault(report.case_label(r), {"sets": []})["sets"].append(
                {"offset": off, "status": v["status"], "p": v.get("p_value"),
                 "p_opposite": v.get("p_opposite"), "seeds": len(r.get("seeds", []))})
    for c in cases.values():
        c["stable"] = len(c["sets"]) == len(offsets) and len({s["status"] for s in c["sets"]}) == 1
    return {"scale": scale, "offsets": list(offsets), "cases": dict(sorted(cases.items()))}


def _fmt_p(p) -> str:
    return format_p(p)


def markdown(table: dict, seconds: dict | None = None) -> str:
    offs = table["offsets"]
    cases = table["cases"]
    stable = sum(c["stable"] for c in cases.values())
    lines = ["# Stability of the outcomes across disjoint seed sets", "",
             f"Scale `{table['scale']}`, seed offsets {', '.join(map(str, offs))} (`--seed N` shifts "
             f"every seed by N; the sets share no seed). Regenerate with `python -m hw1.stability`.",
             "", f"**{stable}/{len(cases)} cases give the same outcome in every set.** A case whose "
             "outcome differs between sets is *fragile*: it is marked in INDEX.md with its split.", "",
             "Why a case can be fragile without anything being wrong: each set tests both directions, "
             "each at α = 0.05 spent over the stages. A case whose true effect sits at the design's "
             "detection limit is decided in some sets and not in others, and even a case with no effect "
             "at all has up to 2α = 10% chance per set of a decided outcome, so it gives the same "
             "outcome in 3 sets with probability ≥ (1 − 2α)³ ≈ 73%. More seeds move the limit; they "
             "cannot remove it. A fragile case's split is a finding about its effect size at this "
             "scale, so it is reported, not tuned away.", ""]
    if seconds:
        lines += ["Wall time per set (with the run cache as it was: a set whose runs are cached only "
                  "measures): " + ", ".join(f"seed +{o}: {s:.0f} s" for o, s in seconds.items()), ""]
    lines += ["| case | " + " | ".join(f"seed +{o}: outcome (seeds, p, opposite p)" for o in offs) + " | stable |",
              "|---|" + "---|" * len(offs) + "---|"]
    for label, c in cases.items():
        by = {s["offset"]: s for s in c["sets"]}
        cells = [f"{by[o]['status']} ({by[o]['seeds']}, p = {_fmt_p(by[o]['p'])}, opposite "
                 f"{_fmt_p(by[o].get('p_opposite'))})" if o in by else "not run" for o in offs]
        lines.append(f"| `{label}` | " + " | ".join(cells) + f" | {'yes' if c['stable'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def write(table: dict, figures: Path, seconds: dict | None = None) -> None:
    report.write_json(figures / "stability.json", {**table, "seconds": seconds or {}})
    (figures / "STABILITY.md").write_text(markdown(table, seconds))
    if (figures / "records").is_dir():
        report.write_index(figures)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw1.stability", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="ci")
    ap.add_argument("--offsets", default=",".join(map(str, OFFSETS)),
                    help="comma-separated seed offsets, one per set (default 0,1000,2000)")
    ap.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers per run")
    ap.add_argument("--figures", default=str(ROOT / "figures"), help="where the table goes")
    ap.add_argument("--tables-only", action="store_true", help="do not run; tabulate existing runs")
    args = ap.parse_args(argv)
    offsets = tuple(int(o) for o in args.offsets.split(","))
    seconds = {}
    if args.tables_only:  # keep the wall times the runs were measured with
        old = report._load_json(Path(args.figures) / "stability.json") or {}
        seconds = {int(k): v for k, v in (old.get("seconds") or {}).items() if int(k) in offsets}
    else:
        for off in offsets:
            seconds[off] = round(run_set(args.scale, off, args.workers), 1)
    table = stability_table(args.scale, offsets)
    if not table["cases"]:
        print(f"no records under {ROOT / '.stability' / args.scale}; run without --tables-only first")
        return 2
    write(table, Path(args.figures), seconds)
    print(markdown(table, seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
