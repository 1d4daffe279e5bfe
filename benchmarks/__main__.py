"""`python -m benchmarks [--device cpu|cuda] [--only ensemble,cache,evals,claims,paper] [--quick]`.

Measures, stores benchmarks/results/<cpu|cuda>.json and rewrites benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone

import torch

from .common import machine
from .report import HERE, write_readme

PARTS = ("ensemble", "cache", "evals", "claims", "paper")
PART_KEYS = {
    "ensemble": "ensemble",
    "cache": "cold_warm",
    "evals": "evals",
    "claims": "claim_times",
    "paper": "paper",
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (CI: 1 per xdist worker)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="K=8 only, fewer steps: a check that it runs")
    args = ap.parse_args(argv)
    parts = [p for p in args.only.split(",") if p]
    if unknown := set(parts) - set(PARTS):
        ap.error(f"unknown part(s) {sorted(unknown)}; choose from {PARTS}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    kind = device.type
    out = HERE / "results" / f"{kind}.json"
    res = json.loads(out.read_text()) if out.exists() else {}
    info = res.setdefault("part_info", {})  # each part's machine: a partial rerun may be elsewhere
    for part, key in PART_KEYS.items():
        if key in res and part not in info and "machine" in res:
            info[part] = {"machine": res["machine"], "when": res["when"]}
    here = {"machine": machine(device), "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    res.update({"kind": kind, **here})
    part_s = res.setdefault("part_s", {})
    clock = [time.perf_counter()]

    def lap(part: str) -> None:
        now = time.perf_counter()
        part_s[part] = now - clock[0]
        info[part] = here
        clock[0] = now

    if "ensemble" in parts:
        from .ensemble import bench_ensemble, profile_ensemble

        print("vmapped ensemble vs loop over K models", flush=True)
        res["ensemble"] = bench_ensemble(
            device,
            ks=(8,) if args.quick else (8, 32, 100),
            steps=10 if args.quick else 30,
            repeats=args.repeats,
        )
        res["profile"] = profile_ensemble(device)
        lap("ensemble")
    if "cache" in parts:
        from .claims_cache import bench_cold_warm

        print("claims run, cold vs warm run cache", flush=True)
        res["cold_warm"] = bench_cold_warm(
            ["claims/test_deep_vs_shallow.py", "--scale", "smoke", "-k", "function_depth or small_budget"],
            repeats=1 if args.quick else 2,
        )
        lap("cache")
    if "evals" in parts:
        from .evals import bench_eval_cadence

        print("batch-size runs: evaluating every epoch vs about 50 times a run", flush=True)
        res["evals"] = bench_eval_cadence(device, repeats=1 if args.quick else args.repeats)
        lap("evals")
    if "claims" in parts:
        from .claims_cache import claim_times

        res["claim_times"] = claim_times()
        lap("claims")
    if "paper" in parts:
        from .paper_cost import estimate_paper

        print("paper-scale cost from per-step times", flush=True)
        res["paper"] = estimate_paper(device, repeats=1 if args.quick else args.repeats)
        lap("paper")
    res["wall_s"] = sum(part_s.values())  # of the parts' latest runs
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out} and {write_readme()}")


if __name__ == "__main__":
    main()
