"""benchmarks/README.md, regenerated from every results/*.json (one file per machine kind)."""

from __future__ import annotations

import json
from pathlib import Path

from .common import fmt_spread, label
from .paper_cost import gpu_item, legacy_gpu_runs

HERE = Path(__file__).resolve().parent

HEADER = """# Benchmarks

Regenerate everything on this machine (about 8 minutes on 2 CPU cores;
this file is rewritten):

    python -m benchmarks                 # CPU, 1 torch thread: ensemble vs loop, cold vs warm cache,
                                         # evaluation cadence of the batch-size runs, time per claim
                                         # (from figures/records), paper-scale estimate
    python -m benchmarks --only evals    # just the evaluation cadence (about 2 minutes)
    python -m benchmarks --device cuda --only ensemble,paper   # the same measurements on a GPU
    python -m benchmarks --only paper    # the paper-scale cost and memory (about 3 minutes)

Each result is stored in `benchmarks/results/<cpu|cuda>.json` and this file is rebuilt from all of
them, so a GPU run adds its rows beside the CPU ones. Ratios are baseline time / our time, measured
in the same run with repeats that alternate which side goes first; shown as median [inter-quartile
range] over the repeats. The machine line says what the numbers were measured on (and its load
average when the run started: the CI machine is shared, so absolute times move; the ratios much less).

## The run cache

Training is the suite's cost, so every trained run goes through one cache (`hw1/cache.py`):

- **Where**: `.cache/runs/` in the repository (one folder per run: `tensors.pt` + `meta.json`), or
  the folder named by `HW1_RUN_CACHE`. It is shared by all claims, all xdist workers (one trains,
  the others wait on a per-run file lock, none trains twice) and later pytest invocations.
- **Bypass / clear**: `pytest --no-run-cache` (or `HW1_NO_CACHE=1`) trains everything afresh and
  stores nothing; `pytest --clear-run-cache` empties the cache first (only its own entries are
  deleted, whatever folder `HW1_RUN_CACHE` points at).
- **What invalidates an entry**: the key hashes the run's spec (architecture, data, optimiser,
  epochs, seeds, recording settings), the code of the training path (`hw1/train.py`, `models.py`,
  `data.py`, `experiments.py` and the modules the producing function names; hashed as syntax
  trees, so comment, docstring and layout edits keep entries), the device class (cpu/cuda), the
  torch version and the default dtype. Editing a plot, a threshold or a claim test reuses every run.
- **Safety**: entries are written to a temporary folder and renamed into place (an interrupted run
  leaves nothing loadable); loading is JSON plus `torch.load(weights_only=True)` after a SHA-256
  check, so nothing in the cache folder is ever executed; an entry that fails any check is
  discarded with a `CacheWarning` and retrained.
"""


def part_label(res: dict, part: str) -> str:
    """The machine a part of the results was measured on."""
    return label(res.get("part_info", {}).get(part, res)["machine"])


def _table_row(what: str, base: str, ours: str, ratio: dict, res: dict, part: str) -> str:
    """One row of the results table: what, baseline, ours, ratio (median [IQR], n), machine."""
    return f"| {what} | {base} | {ours} | {fmt_spread(ratio)} (n={ratio['n']}) | {part_label(res, part)} |"


def _ensemble_rows(res: dict) -> list[str]:
    return [
        _table_row(
            f"train K={r['K']} × {r['net']} (widths {r['widths']}, {r['params']} params), "
            f"{r['steps']} full-batch Adam steps",
            f"loop of `train_model`: {r['loop_s_per_step']['median'] * 1e3:.1f} ms/step",
            f"vmapped `train_ensemble`: {r['ens_s_per_step']['median'] * 1e3:.1f} ms/step",
            r["ratio"],
            res,
            "ensemble",
        )
        for r in res.get("ensemble", [])
    ]


def _cache_rows(res: dict) -> list[str]:
    c = res.get("cold_warm")
    if not c:
        return []
    what = f"`{c['command']}` ({c['entries']} trained runs; warm run retrained {c['retrained_when_warm']})"
    return [
        _table_row(
            what,
            f"cold cache: {fmt_spread(c['cold_s'], ' s')}",
            f"warm cache: {fmt_spread(c['warm_s'], ' s')}",
            c["ratio"],
            res,
            "cache",
        )
    ]


def _eval_rows(res: dict) -> list[str]:
    return [
        _table_row(
            f"train K={r['seeds']} × ci {r['task']} batch-size run, batch {r['batch']}, "
            f"{r['epochs']} epochs, both sets evaluated (parameters bit-identical: "
            f"{'yes' if r['identical_params'] else 'NO'})",
            f"every epoch: {fmt_spread(r['base_s'], ' s')}",
            f"every {r['eval_every']} epochs (`eval_every`): {fmt_spread(r['ours_s'], ' s')}",
            r["ratio"],
            res,
            "evals",
        )
        for r in res.get("evals", [])
    ]


def _not_faster(results: list[dict]) -> list[str]:
    lines = []
    for res in results:
        slow = [r for r in res.get("ensemble", []) if r["ratio"]["median"] < 5]
        for r in slow:
            lines.append(
                f"- {part_label(res, 'ensemble')}: K={r['K']}, {r['net']} — {r['ratio']['median']:.1f}x"
            )
    return lines


def _target(results: list[dict]) -> list[str]:
    lines = []
    for res in results:
        deep = [
            r
            for r in res.get("ensemble", [])
            if r["K"] >= 32 and r["net"].startswith("HW1-1") and len(r["widths"]) >= 3
        ]
        if deep:
            worst = min(deep, key=lambda r: r["ratio"]["median"])
            met = all(r["ratio"]["median"] >= 5 for r in deep)
            lines.append(
                f"- {part_label(res, 'ensemble')}: **{'met' if met else 'NOT met'}** — lowest median ratio "
                f"{worst['ratio']['median']:.1f}× (K={worst['K']}, {worst['net']}), over "
                f"{len(deep)} (network, K) pairs."
            )
    return lines or ["- not measured (run the ensemble part with K ≥ 32)"]


WHY = """Why: a Python loop over K small models pays PyTorch's fixed per-operation cost (dispatch,
autograd bookkeeping, one Adam update per tensor; see the per-member loop cost below) K times per
step, whatever the model's size; the vmapped ensemble pays it once and does
the arithmetic as batched matrix products. So vmap wins where the per-model work is small next to
that fixed cost: the deep, narrow HW1-1 DNNs (widths 14-31) and the minimal-ratio net. It wins
little or loses where the per-model work is already large: the 1-hidden-layer DNN at 1000
parameters is 333 units wide, so one member's activations are 256x333 floats; a loop member keeps
them in cache, while K members at once are K times that (34 MB at K=100), and the step becomes
memory-bound in the element-wise ReLU, bias and Adam passes, with the first layer (1 input) a
degenerate batched matrix product. Convolutions are not vmapped on CPU at all (`train_ensemble`'s
`vectorize="auto"`, `hw1.train.vectorizes`): vmap turns K convolutions into one grouped
convolution, for which PyTorch's CPU kernels are slower than K ordinary ones (not timed here). On a
GPU the fixed per-operation cost is a kernel launch (about 10 µs) and the arithmetic is nearly free
at these sizes, so the ensemble's advantage grows with K almost linearly."""


def _profile(res: dict) -> list[str]:
    p = res.get("profile")
    if not p:
        return []
    lines = [
        f"Profile of the vmapped step, K={p['K']} × {p['net']} (widths {p['widths']}), "
        f"{part_label(res, 'ensemble')} — share of operator self time (torch.profiler); building the "
        f"minibatch indices (`batch_order`, stack, index) takes {100 * p['index_share']:.1f}%:",
        "",
        "| operator | share | calls per step |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| `{r['op']}` | {100 * r['share']:.1f}% | {r['calls_per_step']:.0f} |" for r in p["rows"]]
    return lines + [""]


def _trained(row: dict) -> str:
    t = row.get("train_seconds")
    return "" if t is None else f"{t:.0f}"


def _claim_table(res: dict) -> list[str]:
    ct = res.get("claim_times")
    if not ct:
        return []
    if not ct["rows"]:
        return [
            f"No records in `{ct['folder']}` yet: run `pytest claims/` at ci scale first, then "
            f"`python -m benchmarks --only claims` (records are written by the harness)."
        ]
    suite = res.get("suite")
    head = (
        [
            f"**The whole ci suite**, {suite['what']}: {suite['claims_s']} s of wall time "
            f"({suite['claims_s'] / 60:.1f} min; the unit tests {suite['unit_tests_s']} s more), "
            f"{suite['when']}, {suite['machine']}.",
            "",
        ]
        if suite
        else []
    )
    lines = head + [
        f"From `{ct['folder']}/*.json` (`seconds`: wall time of each claim case in its last run, "
        f"training included unless its runs were already cached; `trained`: what training every run "
        f"it read cost, cached or not, counted once per case, so runs shared between cases count in "
        f"each). Total {ct['total_s']:.0f} s.",
        "",
        "| claim | case | scale | outcome | seeds used | seconds | trained (s) |",
        "| --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['claim']} | {r['case']} | {r['scale']} | {r['verdict']} | {r.get('seeds', '')} | "
        f"{r['seconds']:.1f} | {_trained(r)} |"
        for r in ct["rows"]
    ]
    return lines


def _h(seconds: float) -> str:
    return f"{seconds / 3600:.2f}"


def _min(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 60:.1f}" if seconds < 600 else f"{seconds / 60:.0f}"


def _count(it: dict, runs: dict) -> tuple[str, float]:
    """(what an item counts, its CPU seconds per unit)."""
    if it["runs"]:
        steps = sum(runs[k].get("steps", it["steps"]) for k in it["runs"])
        per = sum(runs[k].get("steps", it["steps"]) * runs[k]["s_per_step"] for k in it["runs"]) / max(
            steps, 1
        )
        ev = sum(runs[k].get("evals", it["evals"]) for k in it["runs"])
        evals = f" + {ev:,} evaluations of {it['eval_images']:,}" if ev and it["eval_images"] else ""
        n = len(it["runs"])
        return f"{steps:,} steps ({n} run{'s' if n > 1 else ''}){evals}", per
    if it["calls"]:
        return f"{it['calls']:,} call{'s' if it['calls'] > 1 else ''}", it["s_per_call"]
    return "—", 0.0


def _gpu_runs(results: list[dict]) -> tuple[dict, dict, str]:
    """(GPU per-run timings, GPU per-item seconds, machine label) from the cuda results, if any."""
    gpu = next((r for r in results if r["kind"] == "cuda"), None)
    if gpu is None:
        return {}, {}, ""
    pc = gpu.get("paper", {})
    if "runs" in pc:  # measured with this estimate: every item on the GPU runner itself
        return pc["runs"], {(i["claim"], i["what"]): i["s"] for i in pc["items"]}, part_label(gpu, "paper")
    return legacy_gpu_runs(gpu), {}, part_label(gpu, "paper")


def _paper_rows(cpu: dict, results: list[dict]) -> tuple[list[dict], str]:
    runs = cpu["paper"]["runs"]
    gpu_runs, gpu_items, gpu_label = _gpu_runs(results)
    rows = []
    for it in cpu["paper"]["items"]:
        if (it["claim"], it["what"]) in gpu_items:
            g, how = gpu_items[it["claim"], it["what"]], f"measured on {gpu_label}"
        else:
            g, how = gpu_item(it, runs, gpu_runs)
            how = how.replace("measured", f"measured on {gpu_label}") if gpu_label else how
        count, per = _count(it, runs)
        rows.append({**it, "count": count, "per": per, "cpu": it["s"], "gpu": g, "gpu_how": how})
    return rows, gpu_label


PAPER_INTRO = """Every run family of `hw1.config.PAPER` is timed for a few steps with its real models on real
data shapes (MNIST images, the real batch sizes, the paper's seeds per ensemble, vmapped or seed
after seed as the producers train them on that device, with the evaluations they do; median of 3
repeats), and every dominant measurement at its real size or at two smaller point counts,
extrapolated linearly (`benchmarks/paper_cost.py`). Count × time gives the estimate. Runs that
several claims share are counted once, under the claim case named; the `shares` notes say who else
reads them. Items marked *host CPU* are measurements the library makes on CPU copies of the models
(`Ensemble.model(k)`, cached CPU tensors): they ran on the CPU of a GPU runner too, one torch
thread per xdist worker, so their GPU-runner time was their CPU time. Since issue 17 (2026-12-01)
several of them run on the device on CUDA, batched over members, points or draws: the sensitivity,
the Gaussian sharpness, the interpolation curve, the sphere losses and the Hessians. For those the
*host CPU* figures below are upper bounds until a GPU measures them; the Keskar sharpness
(L-BFGS-B) and the projections still run on the host.

GPU column: *measured* where a GPU result has the run (the H100 numbers come from an earlier
session's HW1-1 estimate and ensemble benchmark, torch 2.11; its MNIST evaluation time per image is
its evaluation total over the 20 evaluations it counted). *Derived* elsewhere: the run's CPU time
÷ the smallest CPU/GPU ratio measured on its analog (the HW1-1 CNNs for every conv net on MNIST,
the HW1-1 fit DNNs for the fit task's batch-size runs, the minimal-ratio MSE phase for its
gradient-norm phase), and never less than the fastest GPU step among those analog runs (a step's
fixed cost: Python, kernel launches), paid per seed where seeds train one at a time. A
`python -m benchmarks --device cuda --only paper` run replaces every derived number by a measured one.
This column scales CPU times, so it cannot see what changes only on a GPU (CUDA graphs, steps no
longer waiting for the host, measurements moved onto the device): the next section derives the GPU
time from what each step does instead, and supersedes this column until a GPU measures it.

The CPU is shared with other work (load average above): two runs of this estimate an hour apart
differed by up to 2x per run family and by about 30% in total, so read the CPU hours as ±50%."""


def _paper_table(results: list[dict]) -> list[str]:
    cpu = next((r for r in results if r["kind"] == "cpu" and "items" in r.get("paper", {})), None)
    if cpu is None:
        return ["Not measured with this estimate yet: `python -m benchmarks --only paper`.", ""]
    rows, gpu_label = _paper_rows(cpu, results)
    when = cpu.get("part_info", {}).get("paper", cpu)
    lines = [
        PAPER_INTRO,
        "",
        f"CPU: {part_label(cpu, 'paper')}, load average "
        f"{when['machine']['load_avg_start']:.1f} at start, measured {when['when']}. GPU: "
        + (
            f"{gpu_label} where measured; derived from it elsewhere (column *GPU from*)."
            if gpu_label
            else "no GPU results; GPU column = host CPU items only."
        ),
        "",
        "| claim case | what dominates | count | CPU s per step or call | CPU h | GPU min | GPU from |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        what = (
            r["what"]
            + (f" *(shares: {r['shares']})*" if r["shares"] else "")
            + (f" — {r['note']}" if r["note"] else "")
        )
        lines.append(
            f"| {r['claim']} | {what} | {r['count']} | {r['per']:.3g} | {_h(r['cpu'])} | "
            f"{_min(r['gpu'])} | {r['gpu_how']} |"
        )
    lines += ["", _totals(rows), ""]
    return lines


def _paper_measured(results: list[dict]) -> list[str]:
    """The paper-scale cases that ran on a CPU (figures/paper/records), their wall and training
    seconds beside the estimate's CPU hours for the same claim."""
    cpu = next((r for r in results if r["kind"] == "cpu" and "items" in r.get("paper", {})), None)
    est: dict[str, float] = {}
    for r in _paper_rows(cpu, results)[0] if cpu else []:  # CPU seconds per case label
        est[r["claim"]] = est.get(r["claim"], 0.0) + r["cpu"]
    lines = [
        "Cases run at `paper` scale on a CPU (records in `figures/paper/records`; one torch thread per "
        "xdist worker, on a 2-core machine shared with other runs, so a case's CPU time is at most its "
        "wall time). Training seconds count every run a case used, cached or not; the estimate is the "
        "table above's for the case (its rows summed; a case that reads another's runs has only its "
        "own measuring there), at the stages' first seed count.",
        "",
        "| case | outcome | seeds | wall s | training s | estimate (claim, 1x) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for f in sorted((HERE.parent / "figures" / "paper" / "records").glob("*.json")):
        r = json.loads(f.read_text())
        status = (r.get("verdict") or {}).get("status", "stopped before its verdict")
        label = f"{r['claim']} [{r['case']}]" if r.get("case") else r["claim"]
        e = f"{est[label]:.0f} s" if label in est else "—"
        train = r.get("train_seconds") or 0
        lines.append(f"| {label} | {status} | {len(r['seeds'])} | {r['seconds']:.0f} | {train:.0f} | {e} |")
    return lines + [""]


def _channels_last_lines(path: Path = HERE / "results" / "channels_last.json") -> list[str]:
    if not path.exists():
        return ["Not measured yet: `python -m benchmarks.channels_last`.", ""]
    res = json.loads(path.read_text())
    lines = [
        f"`python -m benchmarks.channels_last` on {label(res['machine'])}, load "
        f"{res['machine']['load_avg_start']:.1f} at start: the report's 90k-parameter MNIST CNN, one "
        "training step (batch 128) and one evaluation forward (2000 images), NCHW against "
        "channels_last on the same weights, arms alternating. Ratio = NCHW time / channels_last time.",
        "",
        "| depth | params | train step NCHW ms | train ratio | evaluation ratio | same loss |",
        "| ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['depth']} | {r['params']} | {r['train_default_s']['median'] * 1e3:.0f} | "
            f"{fmt_spread(r['train_ratio'], 'x', 2)} | {fmt_spread(r['eval_ratio'], 'x', 2)} | "
            f"{r['same_first_loss']} |"
        )
    return lines + ["", CHANNELS_LAST_WHY, ""]


CHANNELS_LAST_WHY = """Not adopted yet, though depths 2 and 4 clear 1.2x: the suite trains and evaluates every
member through `torch.func.vmap` (one member at a time for conv nets on CPU), and inside vmap
torch 2.14 refuses channels_last ("NYI: querying is_contiguous inside of vmap for memory_format
other than torch.contiguous_format"). Adopting it means a plain, unvmapped step for CPU conv
members: another summation order in every convolution, so new trained bits for every CNN run, a
retrained run cache and a cold re-check of cnn-depth's outcome against the ledger (about 20 min
of CPU at ci)."""


def _totals(rows: list[dict]) -> str:
    groups: dict[str, list[float]] = {}
    for r in rows:
        g = groups.setdefault(r["group"], [0.0, 0.0, 0.0])
        g[0] += r["cpu"]
        g[1] += r["gpu"] if r["gpu"] is not None else float("nan")
        g[2] += r["cpu"] if r["host"] else 0.0
    lines = [
        "Per shard (one CI job each, `.github/workflows/claims-gpu.yml`) and in all. The harness adds "
        "seeds in stages (1x, 2x, 4x the base count; a later stage trains and measures only the seeds "
        "it adds, each cached per seed), so a case that no stage decides costs up to 4x: the 4x column "
        "is that worst case for every case at once (an upper bound on a GPU, where a larger vmapped "
        "ensemble costs less than proportionally).",
        "",
        "| shard | CPU h (1x) | CPU h (4x) | GPU-runner h (1x) | GPU-runner h (4x) | of which host CPU h (1x) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    tot = [0.0, 0.0, 0.0]
    for name, (c, g, h) in groups.items():
        lines.append(f"| {name} | {_h(c)} | {_h(4 * c)} | {_h(g)} | {_h(4 * g)} | {_h(h)} |")
        tot = [tot[0] + c, tot[1] + g, tot[2] + h]
    lines.append(
        f"| **all claims, one machine** | **{_h(tot[0])}** | **{_h(4 * tot[0])}** | **{_h(tot[1])}** | "
        f"**{_h(4 * tot[1])}** | **{_h(tot[2])}** |"
    )
    return "\n".join(lines)


def _memory_table(results: list[dict]) -> list[str]:
    cpu = next((r for r in results if r["kind"] == "cpu" and "items" in r.get("paper", {})), None)
    if cpu is None:
        return []
    runs, peaks = cpu["paper"]["runs"], {}
    for it in cpu["paper"]["items"]:
        cands = []
        for k in it["runs"]:
            r = runs[k]
            if "step_bytes" in r:
                where = "GPU"
                cands.append(
                    (
                        r["step_bytes"],
                        where,
                        f"training step of {k} ({r['members']} members at once)",
                        "analytic: 16 B/param/member + layer outputs x batch",
                    )
                )
                cands.append(
                    (
                        r["eval_bytes"],
                        where,
                        f"evaluation chunk of {k}",
                        "analytic: largest layer in+out x 2000",
                    )
                )
        if it.get("peak_bytes"):
            cands.append(
                (
                    it["peak_bytes"],
                    "host RAM",
                    it["what"],
                    "measured: peak RSS growth on CPU" + (f" ({it['note']})" if it["note"] else ""),
                )
            )
        for c in cands or [(0, "—", "reads cached runs only", "—")]:
            if it["claim"] not in peaks or c[0] > peaks[it["claim"]][0]:
                peaks[it["claim"]] = c
    lines = [
        "Peak memory each claim case needs at paper scale beyond the interpreter and the data (the "
        "largest of its items; a case that only reads cached runs needs little). Training steps and "
        "evaluation chunks are analytic, for the vmapped path a GPU takes (`footprint` in "
        "`benchmarks/paper_cost.py`: a lower bound, the allocator and vmap's copies come on top); the "
        "measurements are measured on CPU as the growth of the process's resident memory (sampled every "
        "2 ms) during the call, at the real size or scaled linearly from a smaller point count.",
        "",
        "| claim case | peak | where | dominated by | how obtained |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for claim, (b, where, what, how) in peaks.items():
        lines.append(f"| {claim} | {f'{b / 2**30:.2f} GiB' if b else '—'} | {where} | {what} | {how} |")
    return lines + [
        "",
        "`tests/test_paper_shapes.py` runs every one of these paths at its real size (the measurements "
        "on fewer points) and holds the minimal-ratio Hessian to a budget of 16 GiB per claim case (the "
        "memory of the smallest GitHub GPU runner's T4, about half its 28 GB of host RAM): "
        "`hessian_eigenvalues` takes as many members at once as fit in "
        "`landscape.HESSIAN_MEMORY` (one at a time for the paper's 1000-parameter nets).",
        "",
    ]


def _machine_lines(res: dict) -> list[str]:
    """One phrase per machine the parts of a result were measured on (with their wall times)."""
    info = res.get("part_info") or {p: res for p in res.get("part_s", {})} or {"all parts": res}
    by: dict[tuple, list[str]] = {}
    for part, i in info.items():
        m = i["machine"]
        by.setdefault((label(m), m["torch"], m["python"], m["load_avg_start"], i["when"]), []).append(part)
    out = []
    for (lab, torch_v, py, load, when), parts in by.items():
        secs = ", ".join(f"{p} {res['part_s'][p]:.0f} s" for p in parts if p in res.get("part_s", {})) or (
            f"{res['wall_s']:.0f} s" if "wall_s" in res and parts == ["all parts"] else ""
        )
        out.append(
            f"{', '.join(parts)} on {lab}; torch {torch_v}, Python {py}, load average {load:.1f} at "
            f"start, measured {when}" + (f" ({secs})" if secs else "")
        )
    return out


def write_readme(path: Path = HERE / "README.md") -> Path:
    results = [json.loads(f.read_text()) for f in sorted((HERE / "results").glob("*.json"))]
    results = [r for r in results if "kind" in r]  # digests.json is the cross-CPU experiment's
    lines = [HEADER, "## Results", ""]
    for res in results:
        lines.append(f"- `{res['kind']}`: " + "; ".join(_machine_lines(res)) + ".")
    lines += [
        "",
        "| what | baseline | ours | ratio: median [IQR] | machine |",
        "| --- | --- | --- | --- | --- |",
    ]
    for res in results:
        lines += _ensemble_rows(res) + _cache_rows(res) + _eval_rows(res)
    lines += [
        "",
        "The cold/warm row is a smoke-scale subset (seconds of training), so its warm time is the "
        "floor of any run (pytest and torch start-up, measuring, drawing and filing the figures) and "
        "the ratio is small; at ci scale the training is minutes per claim (the table of claim times "
        "below) and a warm run costs about that same floor.",
        "",
        "Every ensemble row was checked to train the same models as the loop (largest relative "
        "difference of the final losses, first repeat: "
        + ", ".join(
            f"{max(r['max_rel_diff_final_loss'] for r in res['ensemble']):.1e} on `{res['kind']}`"
            for res in results
            if res.get("ensemble")
        )
        + ").",
        "",
        "### Target: the ensemble at least 5× the loop for K ≥ 32 on the deep narrow DNNs",
        "",
    ]
    lines += _target(results) + ["", "### Where the vmapped ensemble is not 5× faster", ""]
    lines += _not_faster(results) or ["- nowhere in these runs"]
    lines += ["", WHY, ""]
    for res in results:
        per = [r["loop_s_per_step"]["median"] / r["K"] * 1e3 for r in res.get("ensemble", [])]
        if per:
            lines.append(
                f"- Loop cost per member and step on {part_label(res, 'ensemble')}: "
                f"{min(per):.2f} to {max(per):.2f} ms."
            )
    lines.append("")
    for res in results:
        lines += _profile(res)
    lines += ["", "## Time per claim at ci scale", ""]
    for res in results:
        lines += _claim_table(res)
    lines += ["", "## What `paper` scale costs", ""] + _paper_table(results)
    lines += ["### Measured: the paper cases run on a CPU", ""] + _paper_measured(results)
    lines += ["## channels_last for the MNIST CNNs", ""] + _channels_last_lines()
    lines += ["## Peak memory at `paper` scale", ""] + _memory_table(results)
    lines += ["", "## Same bits on every CPU?", ""] + _digest_section()
    lines += ["", "## The whole suite, dated runs", ""] + _suite_log()
    path.write_text("\n".join(lines) + "\n")
    return path


def _suite_log(path: Path = HERE / "results" / "suite_log.json") -> list[str]:
    """Wall times of whole-suite runs with their dates (a run log, not a property of the code:
    kept here, not in the project README), newest first, from results/suite_log.json."""
    if not path.exists():
        return ["No dated runs recorded."]
    entries = json.loads(path.read_text())["runs"]
    lines = [
        "Wall times of whole-suite runs, with their dates and machines. Each entry says what ran; "
        "times on a shared 2-core VM move by 15-40% between runs.",
        "",
    ]
    return lines + [f"- **{e['when']}, {e['what']}**: {e['result']}" for e in entries]


def _digest_section(path: Path = HERE / "results" / "digests.json") -> list[str]:
    """The cross-CPU experiment of `python -m benchmarks.digest` (issue 15): which settings train
    the same parameters on which machines, and what each costs."""
    if not path.exists():
        return ["Not measured: run `python -m benchmarks.digest --all --repeats 3 --record`."]
    known = json.loads(path.read_text())
    machines = known["machines"]
    settings = list(dict.fromkeys(name for m in machines for name in m["settings"]))
    runs = ("fit", "dnn", "cnn")
    lines = [
        "Float results differ between CPUs: torch's BLAS (MKL) and its vector kernels (ATen) take "
        "another code path on each. `python -m benchmarks.digest` trains three small runs (a fit "
        "DNN, an MNIST DNN, an MNIST CNN; one thread, no cache) in a fresh interpreter per setting "
        "of the knobs and prints a digest of the parameters (" + known.get("definition", "") + "). "
        "Same digest = same bits.",
        "",
        "| setting | machine | " + " | ".join(runs) + " | seconds (fit, dnn, cnn) |",
        "| --- | --- | " + " | ".join("---" for _ in runs) + " | --- |",
    ]
    for name in settings:
        for m in machines:
            s = m["settings"].get(name)
            if not s:
                continue
            secs = s.get("seconds")
            cost = ", ".join(f"{secs[r]:.2f}" for r in runs) if secs else "—"
            lines.append(
                f"| `{name}` | {m['cpu']}, {m['capability']}"
                + (f" ({m['source']})" if m.get("source") else "")
                + " | "
                + " | ".join(s["digests"][r] for r in runs)
                + f" | {cost} |"
            )
    groups = {}
    for name in settings:
        digests = {
            json.dumps(m["settings"][name]["digests"], sort_keys=True)
            for m in machines
            if name in m["settings"]
        }
        groups[name] = len(digests)
    shared = [
        n for n, k in groups.items() if k == 1 and sum(n in m["settings"] for m in machines) == len(machines)
    ]
    lines += [
        "",
        "Settings under which every machine above trains the same bits: "
        + (", ".join(f"`{n}`" for n in shared) if shared else "**none**")
        + ".",
        "",
    ]
    lines += [NO_PIN]
    return lines


NO_PIN = """What this shows and what the project does about it:

- On the two AMD EPYC machines (issue 15), `MKL_CBWR` with `ATEN_CPU_CAPABILITY=avx2` makes them agree bit
  for bit. On this project's Intel Xeon (AVX-512, the CPU that wrote the ledger), **no setting reproduces
  the AMD digests**, not even `MKL_CBWR=COMPATIBLE`, which MKL documents as its vendor-neutral path, nor
  `MKL_CBWR=AVX2,STRICT` (Intel: fit f7d4809cbfba). Every setting is repeatable on one machine (3 runs
  each, identical digests). On Intel `ONEDNN_MAX_CPU_ISA=AVX2` changes nothing, and neither does
  `torch.use_deterministic_algorithms(True)` (`--deterministic`: the same digests under the default and
  under the MKL_CBWR+ATEN pin): the runs are already deterministic on one machine.
- Where the bits part on Intel (the `stages` digests in `results/digests.json`): the sinc targets, the
  MNIST subset and the initial parameters are identical under every setting; the parameters differ
  from the first epoch on, i.e. in the BLAS and vector kernels of training. The same stage digests
  taken on an AMD machine would say whether its inputs already differ.
- Cost: on these small runs every setting takes the same time within the noise of single-second runs
  (the table's seconds, median of 3).
- So no setting is adopted: pinning one would change every bit on every machine and buy agreement
  only among the AMD machines. The harness sets no knob; the ledger pins only what a machine cannot
  change (README, "Across machines"), and `environment.json` names the CPU, torch's vector capability
  and the BLAS. A user who sets a knob gets it recorded there and in the run cache's key.
- A second, smaller drift: a seed trained alone can end a few ulps away from the same seed trained
  beside others (the vmapped ensemble's batched BLAS calls differ in shape; issue 15 measured seed 0's
  final fit loss at 0.00539603224 alone and 0.00539597217 beside 2, 6 or 12 seeds). A one-seed API call
  is therefore the same run to about 1e-5 relative, not bit for bit; the MNIST DNN agrees at every count,
  and the conv nets, which train seed after seed on the CPU, always do.

Whoever runs on another CPU kind: `python -m benchmarks.digest --all --repeats 3 --record --compare`, and
commit `results/digests.json`; any `python -m benchmarks` run rebuilds this file from it."""
