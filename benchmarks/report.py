"""benchmarks/README.md: README.template.md with each `{{name}}` filled by its table or figures, from
every results/*.json (one file per machine kind) and the records of the paper-scale runs.

    python -m benchmarks.report       # (any `python -m benchmarks` run ends with it)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import timing
from .common import fmt_spread, label

HERE = Path(__file__).resolve().parent
PAPER_RUNS = {"cpu": HERE.parent / "figures" / "paper", "gpu": HERE / "results" / "paper-h100"}


def part_label(res: dict, part: str) -> str:
    """The machine a part of the results was measured on."""
    return label(res.get("part_info", {}).get(part, res)["machine"])


def _machine_lines(res: dict) -> str:
    """One phrase per machine the parts of a result were measured on (with their wall times)."""
    info = res.get("part_info") or {"all parts": res}
    by: dict[tuple, list[str]] = {}
    for part, i in info.items():
        m = i["machine"]
        by.setdefault((label(m), m["torch"], m["python"], m["load_avg_start"], i["when"]), []).append(part)
    out = []
    for (lab, torch_v, py, load, when), parts in by.items():
        secs = ", ".join(f"{p} {res['part_s'][p]:.0f} s" for p in parts if p in res.get("part_s", {}))
        secs = secs or (f"{res['wall_s']:.0f} s" if "wall_s" in res else "")
        head = f"{', '.join(parts)} on {lab}; torch {torch_v}, Python {py}, load average {load:.1f} at start"
        out.append(f"{head}, measured {when}" + (f" ({secs})" if secs else ""))
    return f"- `{res['kind']}`: " + "; ".join(out) + "."


def _ratio_rows(res: dict) -> list[str]:
    """Rows of the results table: what, baseline, ours, ratio (median [IQR], n), machine."""
    rows = []
    for r in res.get("ensemble", []):
        what = f"train K={r['K']} × {r['net']} (widths {r['widths']}, {r['params']} params), "
        what += f"{r['steps']} full-batch Adam steps"
        base = f"loop of `train_model`: {r['loop_s_per_step']['median'] * 1e3:.1f} ms/step"
        ours = f"vmapped `train_ensemble`: {r['ens_s_per_step']['median'] * 1e3:.1f} ms/step"
        rows.append((what, base, ours, r, "ensemble"))
    if c := res.get("cold_warm"):
        what = (
            f"`{c['command']}` ({c['entries']} trained runs; warm run retrained {c['retrained_when_warm']})"
        )
        base, ours = (f"{w} cache: {fmt_spread(c[f'{w}_s'], ' s')}" for w in ("cold", "warm"))
        rows.append((what, base, ours, c, "cache"))
    for r in res.get("evals", []):
        same = "yes" if r["identical_params"] else "NO"
        what = f"train K={r['seeds']} × ci {r['task']} batch-size run, batch {r['batch']}, "
        what += f"{r['epochs']} epochs, both sets evaluated (parameters bit-identical: {same})"
        ours = f"every {r['eval_every']} epochs (`eval_every`): {fmt_spread(r['ours_s'], ' s')}"
        rows.append((what, f"every epoch: {fmt_spread(r['base_s'], ' s')}", ours, r, "evals"))
    return [
        f"| {what} | {base} | {ours} | {fmt_spread(r['ratio'])} (n={r['ratio']['n']}) | {part_label(res, part)} |"
        for what, base, ours, r, part in rows
    ]


def _ensemble_notes(res: dict) -> dict[str, list[str]]:
    """The ensemble rows' target (at least 5x for K >= 32 on the deep narrow DNNs), where they miss 5x,
    the loop's cost per member, the equal-losses check and the profile of one vmapped step."""
    rows, where, out = res.get("ensemble", []), part_label(res, "ensemble"), {}
    if deep := [r for r in rows if r["K"] >= 32 and r["net"].startswith("HW1-1") and len(r["widths"]) >= 3]:
        worst = min(deep, key=lambda r: r["ratio"]["median"])
        met = "met" if all(r["ratio"]["median"] >= 5 for r in deep) else "NOT met"
        out["target"] = [
            f"- {where}: **{met}** — lowest median ratio {worst['ratio']['median']:.1f}× (K={worst['K']}, "
            f"{worst['net']}), over {len(deep)} (network, K) pairs."
        ]
    ratio = lambda r: r["ratio"]["median"]
    out["not_faster"] = [f"- {where}: K={r['K']}, {r['net']} — {ratio(r):.1f}x" for r in rows if ratio(r) < 5]
    if per := [r["loop_s_per_step"]["median"] / r["K"] * 1e3 for r in rows]:
        out["loop_cost"] = [
            f"- Loop cost per member and step on {where}: {min(per):.2f} to {max(per):.2f} ms."
        ]
        out["diffs"] = [f"{max(r['max_rel_diff_final_loss'] for r in rows):.1e} on `{res['kind']}`"]
    if p := res.get("profile"):
        out["profile"] = [
            "",
            f"Profile of the vmapped step, K={p['K']} × {p['net']} (widths {p['widths']}), {where} — share of "
            f"operator self time (torch.profiler); building the minibatch indices (`batch_order`, stack, index) "
            f"takes {100 * p['index_share']:.1f}%:",
            "",
            "| operator | share | calls per step |",
            "| --- | ---: | ---: |",
        ]
        out["profile"] += [
            f"| `{r['op']}` | {100 * r['share']:.1f}% | {r['calls_per_step']:.0f} |" for r in p["rows"]
        ]
    return out


def _claim_table(res: dict) -> tuple[list[str], list[str]]:
    """(the lines above the table of claim times, its rows)."""
    if not (ct := res.get("claim_times")):
        return [], []
    lines = []
    if s := res.get("suite"):
        lines += [
            f"**The whole ci suite**, {s['what']}: {s['claims_s']} s of wall time ({s['claims_s'] / 60:.1f} min; "
            f"the unit tests {s['unit_tests_s']} s more), {s['when']}, {s['machine']}.",
            "",
        ]
    lines.append(
        f"From `{ct['folder']}/*.json` (`seconds`: wall time of each claim case in its last run, training "
        "included unless its runs were already cached; `trained`: what training every run it read cost, cached "
        f"or not, counted once per case, so runs shared between cases count in each). Total {ct['total_s']:.0f} s."
    )
    rows = [
        f"| {r['claim']} | {r['case']} | {r['scale']} | {r['verdict']} | {r.get('seeds', '')} | {r['seconds']:.1f} | "
        + ("" if r.get("train_seconds") is None else f"{r['train_seconds']:.0f}")
        + " |"
        for r in ct["rows"]
    ]
    return lines, rows


def _h(seconds: float) -> str:
    return f"{seconds / 3600:.2f}"


def _count(it: dict, runs: dict) -> tuple[str, float]:
    """(what an item counts, its seconds per unit)."""
    if it["runs"]:
        steps = {k: runs[k].get("steps", it["steps"]) for k in it["runs"]}
        ev = sum(runs[k].get("evals", it["evals"]) for k in it["runs"])
        evals = f" + {ev:,} evaluations of {it['eval_images']:,}" if ev and it["eval_images"] else ""
        n, total = len(it["runs"]), sum(steps.values())
        per = sum(s * runs[k]["s_per_step"] for k, s in steps.items()) / max(total, 1)
        return f"{total:,} steps ({n} run{'s' if n > 1 else ''}){evals}", per
    if it["calls"]:
        return f"{it['calls']:,} call{'s' if it['calls'] > 1 else ''} (host)", it["s_per_call"]
    return "—", 0.0


def _paper_table(paper: dict) -> list[str]:
    lines = []
    for it in paper["items"]:
        count, per = _count(it, paper["runs"])
        what = it["what"] + (f" *(shares: {it['shares']})*" if it["shares"] else "")
        what += f" — {it['note']}" if it["note"] else ""
        lines.append(f"| {it['claim']} | {what} | {count} | {per:.3g} | {_h(it['s'])} |")
    return lines


def _shards(paper: dict) -> list[str]:
    groups: dict[str, list[float]] = {}
    for it in paper["items"]:
        g = groups.setdefault(it["group"], [0.0, 0.0])
        g[0] += it["s"]
        g[1] += it["s"] if it["host"] else 0.0
    lines = [f"| {name} | {_h(c)} | {_h(4 * c)} | {_h(h)} |" for name, (c, h) in groups.items()]
    c, h = (sum(g[i] for g in groups.values()) for i in (0, 1))
    return lines + [f"| **all claims, one machine** | **{_h(c)}** | **{_h(4 * c)}** | **{_h(h)}** |"]


def gpu_seconds(paper: dict, cuda: dict) -> dict[str, float | None]:
    """Per claim case that trains: measured GPU seconds per step x the paper's step counts; None
    where a GPU has not timed the steps of every one of its runs."""
    steps = {k: r["s_per_step"] for k, r in cuda.get("paper", {}).get("runs", {}).items()}
    runs, out = paper["runs"], {}
    for it in paper["items"]:
        if it["runs"] and it["claim"] not in out:
            n = {k: runs[k].get("steps", it["steps"]) for k in it["runs"]}
            out[it["claim"]] = sum(n[k] * steps[k] for k in n) if set(n) <= set(steps) else None
    return out


def _paper_runs(folder: Path, table_s: dict[str, float | None]) -> list[str]:
    """The paper-scale cases that ran on one machine (its records, slowest first), beside the table's seconds."""
    out = []
    for r in timing.rows(folder):
        case = f"{r['claim']} [{r['case']}]" if r["case"] else r["claim"]
        sec, train, est = (
            "—" if v is None else f"{v:.0f}" for v in (r["seconds"], r["trained"], table_s.get(case))
        )
        out.append(f"| {case} | {r['outcome']} | {r['seeds']} | {sec} | {train} | {est} |")
    return out


def _memory(paper: dict) -> list[str]:
    peaks: dict[str, dict] = {}
    for it in paper["items"]:
        if it["peak_bytes"] and it["peak_bytes"] > peaks.get(it["claim"], {}).get("peak_bytes", -1):
            peaks[it["claim"]] = it
    return [
        f"| {case} | {it['peak_bytes'] / 2**30:.2f} GiB | {it['what']} | {it['note'] or 'at real size'} |"
        for case, it in peaks.items()
    ]


def _channels_last(path: Path = HERE / "results" / "channels_last.json") -> tuple[str, list[str]]:
    """(the machine it ran on, the table's rows)."""
    if not path.exists():
        return "Not measured yet: `python -m benchmarks.channels_last`.", []
    res = json.loads(path.read_text())
    rows = [
        f"| {r['depth']} | {r['params']} | {r['train_default_s']['median'] * 1e3:.0f} | "
        f"{fmt_spread(r['train_ratio'], 'x', 2)} | {fmt_spread(r['eval_ratio'], 'x', 2)} | {r['same_first_loss']} |"
        for r in res["rows"]
    ]
    return f"On {label(res['machine'])}, load {res['machine']['load_avg_start']:.1f} at start:", rows


def _digests(path: Path = HERE / "results" / "digests.json") -> tuple[str, list[str], str]:
    """(what a digest is, the table's rows: which settings train the same parameters on which
    machines and what each costs, the settings that agree on every machine)."""
    if not path.exists():
        return "not measured: run `python -m benchmarks.digest --all --repeats 3 --record`", [], "?"
    known = json.loads(path.read_text())
    machines, runs = known["machines"], ("fit", "dnn", "cnn")
    settings = list(dict.fromkeys(name for m in machines for name in m["settings"]))
    rows = []
    for name in settings:
        for m, s in ((m, m["settings"][name]) for m in machines if name in m["settings"]):
            cost = ", ".join(f"{s['seconds'][r]:.2f}" for r in runs) if s.get("seconds") else "—"
            where = f"{m['cpu']}, {m['capability']}" + (f" ({m['source']})" if m.get("source") else "")
            rows.append(
                f"| `{name}` | {where} | " + " | ".join(s["digests"][r] for r in runs) + f" | {cost} |"
            )
    everywhere = [n for n in settings if all(n in m["settings"] for m in machines)]
    shared = [n for n in everywhere if len({json.dumps(m["settings"][n]["digests"]) for m in machines}) == 1]
    return known.get("definition", "?"), rows, ", ".join(f"`{n}`" for n in shared) if shared else "**none**"


def _suite_log(path: Path = HERE / "results" / "suite_log.json") -> list[str]:
    """Wall times of whole-suite runs with their dates (a run log, not a property of the code: kept
    here, not in the project README), newest first."""
    if not path.exists():
        return ["No dated runs recorded."]
    return [f"- **{e['when']}, {e['what']}**: {e['result']}" for e in json.loads(path.read_text())["runs"]]


def _paper_blocks(cpu: dict, cuda: dict | None) -> dict[str, list[str]]:
    """The paper scale's tables: CPU cost per case and per shard, GPU steps x counts, the cases that
    ran (their records) beside them, and the measurements' memory."""
    paper, none = cpu.get("paper", {}), ["Not measured yet: `python -m benchmarks --only paper`."]
    if "items" not in paper:
        return {k: none for k in ("paper_machine", "shards", "memory", "gpu_machine")} | {
            k: [] for k in ("paper", "gpu", "paper_cpu", "paper_gpu")
        }
    cpu_s: dict[str, float] = {}
    for it in paper["items"]:
        cpu_s[it["claim"]] = cpu_s.get(it["claim"], 0.0) + it["s"]
    gpu_s, when = gpu_seconds(paper, cuda) if cuda else {}, cpu.get("part_info", {}).get("paper", cpu)
    load, gpu = (
        when["machine"]["load_avg_start"],
        f"{part_label(cuda, 'paper')}, {cuda['when']}" if gpu_s else "",
    )
    mins = lambda t: "—" if t is None else f"{t / 60:.1f}"
    return {
        "paper_machine": [f"{part_label(cpu, 'paper')}, load {load:.1f} at start, {when['when']}:"],
        "paper": _paper_table(paper),
        "shards": _shards(paper),
        "paper_cpu": _paper_runs(PAPER_RUNS["cpu"], cpu_s),
        "gpu_machine": [
            f"Timed on {gpu} (eager, the loop of then):" if gpu else "No GPU has timed training steps."
        ],
        "gpu": [f"| {c} | {mins(t)} | {'not ' * (t is None)}measured |" for c, t in gpu_s.items()],
        "paper_gpu": _paper_runs(PAPER_RUNS["gpu"], gpu_s),
        "memory": _memory(paper),
    }


def blocks(results: list[dict]) -> dict[str, list[str]]:
    """The generated part of every `{{name}}` line of the template."""
    cpu = next((r for r in results if r["kind"] == "cpu"), {})
    cuda = next((r for r in results if r["kind"] == "cuda"), None)
    notes = [_ensemble_notes(r) for r in results]
    joined = lambda key: [line for n in notes for line in n.get(key, [])]
    (definition, digest_rows, shared), (cl_machine, cl_rows) = _digests(), _channels_last()
    claims = [_claim_table(r) for r in results]
    return {
        "machines": [_machine_lines(r) for r in results],
        "ratios": [row for r in results for row in _ratio_rows(r)],
        "diffs": [", ".join(joined("diffs"))],
        "target": joined("target") or ["- not measured (run the ensemble part with K ≥ 32)"],
        "not_faster": joined("not_faster") or ["- nowhere in these runs"],
        "loop_cost": joined("loop_cost") + joined("profile"),
        "claim_times": [line for intro, _ in claims for line in intro],
        "claim_rows": [line for _, rows in claims for line in rows],
        **_paper_blocks(cpu, cuda),
        "channels_last_machine": [cl_machine],
        "channels_last": cl_rows,
        "digest": [definition],
        "digests": digest_rows,
        "digests_shared": [shared],
        "suite_log": _suite_log(),
    }


def write_readme(path: Path = HERE / "README.md") -> Path:
    results = [json.loads(f.read_text()) for f in sorted((HERE / "results").glob("*.json"))]
    filled = blocks([r for r in results if "kind" in r])  # digests.json is the cross-CPU experiment's
    template = (HERE / "README.template.md").read_text().split("-->\n", 1)[1]  # its first lines: a comment
    path.write_text(re.sub(r"\{\{(\w+)\}\}", lambda m: "\n".join(filled[m[1]]), template))
    return path


if __name__ == "__main__":
    print(write_readme())
