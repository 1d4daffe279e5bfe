"""`python -m benchmarks [--device cpu|cuda] [--only ensemble,cache,evals,claims,paper] [--quick]`.

Measures, stores benchmarks/results/<cpu|cuda>.json and rewrites benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone

import torch

from .claims_cache import bench_cold_warm, claim_times
from .common import machine
from .ensemble import bench_ensemble, profile_ensemble
from .evals import bench_eval_cadence
from .paper_cost import estimate_paper
from .report import HERE, write_readme

CACHE_RUN = ["claims/test_deep_vs_shallow.py", "--scale", "smoke", "-k", "function_depth or small_budget"]


def _ensemble(device, a) -> dict:
    ks, steps = ((8,), 10) if a.quick else ((8, 32, 100), 30)
    return {"ensemble": bench_ensemble(device, ks, steps, a.repeats), "profile": profile_ensemble(device)}


# name -> (what it prints, the measurement: (device, args) -> the results' keys it fills)
PARTS = {
    "ensemble": ("vmapped ensemble vs loop over K models", _ensemble),
    "cache": (
        "claims run, cold vs warm run cache",
        lambda d, a: {"cold_warm": bench_cold_warm(CACHE_RUN, min(a.repeats, 2))},
    ),
    "evals": (
        "batch-size runs: evaluating every epoch vs about 50 times a run",
        lambda d, a: {"evals": bench_eval_cadence(d, a.repeats)},
    ),
    "claims": ("time per claim from figures/records", lambda d, a: {"claim_times": claim_times()}),
    "paper": ("paper-scale cost from per-step times", lambda d, a: {"paper": estimate_paper(d, a.repeats)}),
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {tuple(PARTS)}")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (CI: 1 per xdist worker)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--quick", action="store_true", help="K=8 only, fewer steps, 1 repeat: a check that it runs"
    )
    args = ap.parse_args(argv)
    args.repeats = 1 if args.quick else args.repeats
    parts = [p for p in args.only.split(",") if p]
    if unknown := set(parts) - set(PARTS):
        ap.error(f"unknown part(s) {sorted(unknown)}; choose from {tuple(PARTS)}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = HERE / "results" / f"{device.type}.json"
    res = json.loads(out.read_text()) if out.exists() else {}
    here = {"machine": machine(device), "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    res.update({"kind": device.type, **here})
    for part in parts:  # each part's machine and time: a partial rerun may be elsewhere
        what, measure = PARTS[part]
        print(what, flush=True)
        t = time.perf_counter()
        res.update(measure(device, args))
        res.setdefault("part_s", {})[part] = time.perf_counter() - t
        res.setdefault("part_info", {})[part] = here
    res["wall_s"] = sum(res["part_s"].values())  # of the parts' latest runs
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out} and {write_readme()}")


if __name__ == "__main__":
    main()
