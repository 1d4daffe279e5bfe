"""The report: one JSON record per claim case, assembled into figures/INDEX.md.

Under xdist each worker writes its own records (one file per case, named from the test id); the
controller assembles the index once the session ends. Records of cases not run this time are kept
if they were made at the same scale, and dropped if made at another (a mixed index would mislead).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .provenance import describe
from .stats import INCONCLUSIVE, Verdict, format_p

BADGE = {"reproduced": "✅ reproduced", "contradicted": "⛔ contradicted", "not shown": "➖ not shown",
         "inconclusive": "❔ inconclusive"}
OUTCOME_LEGEND = (
    "Outcomes (α = 0.05, one-sided, over seeds): **reproduced**: the claimed direction is "
    "significant; **contradicted**: the opposite direction is significant at the same α; **not "
    "shown**: neither is significant, though the design could have shown the claim (the details "
    "give the seeds the observed effect would need); **inconclusive**: the design cannot decide "
    "(too few units for the test to reach α, failed runs, or the smoke scale). Seeds come in "
    "stages: a case that is not decided by its first stage gets 2×, then 4× the seeds, with α "
    "spent ½, ¼, ¼ over the stages and an early stop when more seeds cannot help (futility).")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def write_json(path: Path, obj) -> None:
    """Atomic JSON write (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, default=str)
    os.replace(tmp, path)


@dataclass
class ClaimRecord:
    """What one claim case found: the verdict, the figures and the setting that produced them."""

    claim: str  # claim id, e.g. "function-depth"
    case: str  # parametrization, e.g. "sinc"
    section: str
    statement: str
    scale: str
    seeds: list[int]
    figures: list[dict] = field(default_factory=list)  # {name, png, data, structure}
    verdict: dict | None = None
    expected: str = "reproduced"  # what the suite expects at this scale (xfail cases say otherwise)
    expected_evidence: str = ""  # the measurement behind an expected non-reproduction
    note: str = ""
    config: dict = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)  # --set items of this run
    seed_offset: int = 0
    seed_sets: tuple[int, ...] = ()  # --seed-sets: the pooled seed sets (hw1.stability)
    ledger: bool = True  # whether this run checked the ledger and the strict expectations
    departures: list[dict] = field(default_factory=list)  # hw1.config.departures(scale, claim)
    stages: list[dict] = field(default_factory=list)  # hw1.stats.staged: one entry per stage run
    stop: str = ""  # why the staged procedure stopped
    differs_from_ledger: bool = False
    within_fragile_split: bool = False  # differs, but within the case's measured split (not a failure)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0  # this run's wall time for the case (cached runs load in seconds)
    train_seconds: float | None = None  # what training the runs it used cost, cached or not

    @property
    def key(self) -> str:
        return slug(f"{self.claim}--{self.case}" if self.case else self.claim)

    def conclude(self, verdict: Verdict) -> None:
        self.verdict = verdict.to_dict()
        self.seconds = time.time() - self.started

    def save(self, figures_dir: Path) -> Path:
        path = Path(figures_dir) / "records" / f"{self.key}.json"
        write_json(path, self.__dict__)
        return path


def load_records(figures_dir: Path) -> list[dict]:
    out = []
    for p in sorted((Path(figures_dir) / "records").glob("*.json")):
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            continue
    return out


def drop_other_runs(figures_dir: Path, scale: str, seed_offset: int = 0, overrides=()) -> int:
    """Remove records made at another scale, seed offset or --set overrides (a mixed index would
    mislead). -> how many."""
    n = 0
    for p in (Path(figures_dir) / "records").glob("*.json"):
        try:
            r = json.loads(p.read_text())
            same = (r.get("scale") == scale and r.get("seed_offset", 0) == seed_offset
                    and list(r.get("overrides", [])) == list(overrides))
        except (OSError, ValueError):
            same = False
        if not same:
            p.unlink(missing_ok=True)
            n += 1
    return n


def case_label(r: dict) -> str:
    return f"{r['claim']} [{r['case']}]" if r.get("case") else r["claim"]


def _status(r: dict) -> str:
    return (r.get("verdict") or {}).get("status", INCONCLUSIVE)


_fmt_p = format_p  # the one p formatter (hw1.stats)


def _num(x) -> float:
    """A record's number: None (JSON's stand-in for nan) is nan, and 0.0 stays 0.0."""
    return float(x) if isinstance(x, (int, float)) else float("nan")


def _seconds(r: dict) -> str:
    run, train = r.get("seconds", 0.0), r.get("train_seconds")
    if train is None:
        return f"{run:.0f} s"
    cached = " (cache)" if train > 2 * run + 5 else ""
    return f"trained in {train:.0f} s, this run {run:.0f} s{cached}"


def _seeds(r: dict) -> str:
    n = len(r.get("seeds", []))
    stages = r.get("stages") or []
    if not stages:
        return str(n)
    stop = r.get("stop", "")
    why = ("decided" if stop.startswith("decided") else "futility" if stop.startswith("futility")
           else "last stage" if stop.startswith("last") else stop.split(":")[0])
    return f"{n} (stage {len(stages)}, {why})"


def _departures(r: dict) -> str:
    deps = r.get("departures") or []
    if not deps:
        return "as the report" if r.get("scale") != "smoke" else "—"
    def one(d):
        flag = f" ⚠ {d['decisive']}" if d.get("decisive") else ""
        return f"{d['field'].split('.', 1)[1]} {_short(d['value'])} (report {_short(d['report'])}){flag}"
    return "; ".join(one(d) for d in deps)


def _short(v) -> str:
    if v is None:
        return "all"
    if isinstance(v, (list, tuple)):
        return "()" if not v else (f"{v[0]}..{v[-1]} ({len(v)})" if len(v) > 4 else
                                   ",".join(str(x) for x in v))
    return str(v)


def _stability_cell(st: dict | None) -> str:
    if not st:
        return ""
    if st.get("stable"):
        return f" · stable in {len(st['sets'])}/{len(st['sets'])} seed sets"
    split = ", ".join(f"{x['status']} (seed +{x['offset']}, p = {_fmt_p(x.get('p'))}, opposite "
                      f"{_fmt_p(x.get('p_opposite'))})" for x in st["sets"])
    pooled = st.get("pooled")
    pooled = (f"; **pooled over the sets: {pooled['status']}** ({pooled['seeds']} seeds, p = "
              f"{_fmt_p(pooled.get('p'))}, opposite {_fmt_p(pooled.get('p_opposite'))})") if pooled else ""
    return f" · ⚠ **fragile**: {split}{pooled}"


def summary_lines(records: list[dict]) -> list[str]:
    """One terminal line per case: outcome, case, seeds, p."""
    width = max(len(case_label(r)) for r in records)
    return [f"{BADGE.get(_status(r), _status(r)):16s} {case_label(r):{width}s}  "
            f"{_seeds(r)}, p = {_fmt_p((r.get('verdict') or {}).get('p_value'))}" for r in records]


def _row(r: dict, paper: dict | None, stability: dict | None, paper_column: bool = True) -> str:
    v = r.get("verdict") or {}
    badge = BADGE.get(_status(r), _status(r))
    if r.get("expected", "reproduced") != "reproduced" and _status(r) == r.get("expected"):
        badge += " (as in the ledger)"
    if r.get("within_fragile_split"):
        badge += f" (differs from the ledger's {r.get('expected')}, within this fragile case's split)"
    elif r.get("differs_from_ledger") and (r.get("expected_evidence") or r.get("scale") in ("smoke", "ci")):
        badge += f" (differs from the expectation: {r.get('expected')})"
    badge += _stability_cell(stability)
    if paper is None:
        paper_cell = "not yet run at paper scale"
    else:
        pv = paper.get("verdict") or {}
        paper_cell = f"{BADGE.get(_status(paper), _status(paper))}, p = {_fmt_p(pv.get('p_value'))}"
    stat = f"{v.get('test', '')}; p = {_fmt_p(v.get('p_value'))}, opposite p = {_fmt_p(v.get('p_opposite'))}"
    eff = v.get("effect")
    effect = (f"{v.get('effect_name')} = {eff:.3g} [{_num(v.get('ci_low')):.3g}, "
              f"{_num(v.get('ci_high')):.3g}]") if isinstance(eff, (int, float)) else "—"
    figs = " ".join(f"[{f['name']}]({f['png']})" for f in r.get("figures", []))
    paper_cell = f" {paper_cell} |" if paper_column else ""
    return (f"| `{case_label(r)}` | {badge} |{paper_cell} {_seeds(r)} | {stat} | {effect} | "
            f"{_departures(r)} | {_seconds(r)} | {figs} |")


def _details(r: dict, paper: dict | None) -> list[str]:
    v = r.get("verdict") or {}
    lines = [f"### `{case_label(r)}`", "", f"> {r['statement']}", "",
             f"- outcome: **{_status(r)}** — {v.get('detail', '')}",
             f"- scale `{r['scale']}`, seeds {_seed_range(r['seeds'])}; {_seconds(r)}"]
    if r.get("stages"):
        lines.append(f"- seeds in stages: stopped — {r.get('stop', '')}")
        lines += ["", "  | stage | seeds | level | outcome | p | opposite p |", "  |---|---|---|---|---|---|"]
        lines += [f"  | {s['stage']} | {s['seeds']} | {s['alpha']:.3g} | {s['status']} | "
                  f"{_fmt_p(s.get('p'))} | {_fmt_p(s.get('p_opposite'))} |" for s in r["stages"]]
        lines.append("")
    if r.get("departures"):
        lines.append("- departs from the report's setting: " + _departures(r))
    if paper is not None:
        lines.append(f"- at paper scale: **{_status(paper)}** — {(paper.get('verdict') or {}).get('detail', '')}")
    if r.get("note"):
        lines.append(f"- note: {r['note']}")
    if r.get("expected", "reproduced") != "reproduced":
        lines.append(f"- the ledger expects **{r['expected']}** at this scale (strict xfail at the "
                     f"default seeds), as measured: {r.get('expected_evidence', '')}")
    lines += ["- data: " + ", ".join(f"[{Path(f['data']).name}]({f['data']})" for f in r["figures"]), ""]
    lines += [f"![{f['name']}]({f['png']})" for f in r["figures"]] + [""]
    return lines


def _seed_range(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}..{seeds[-1]} ({len(seeds)})"
    return str(seeds)


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_index(figures_dir: Path, paper_dir: Path | None = None) -> Path:
    """figures/INDEX.md: one row per claim case, grouped by report section, then the details.

    Beside each case: its outcome at paper scale (records in `paper_dir`, default
    figures_dir/paper), its stability across seed sets (figures_dir/stability.json, written by
    `python -m hw1.stability`) and how its scale departs from the report's setting.
    """
    figures_dir = Path(figures_dir)
    records = load_records(figures_dir)
    paper_dir = Path(paper_dir) if paper_dir else figures_dir / "paper"
    paper = {}
    if paper_dir.resolve() != figures_dir.resolve():
        paper = {(r["claim"], r.get("case", "")): r for r in load_records(paper_dir) if r.get("scale") == "paper"}
    stability = (_load_json(figures_dir / "stability.json") or {}).get("cases", {})
    env = _load_json(figures_dir / "environment.json") or {}
    scales = sorted({r["scale"] for r in records})
    lines = ["# HW1 claims: the report", "",
             f"Scale: **{', '.join(scales) or 'none'}**"
             + (f", seed offset {env.get('seed_offset')}" if env.get("seed_offset") else "")
             + (f", overrides `{' '.join(env['overrides'])}`" if env.get("overrides") else "")
             + (f", device {env.get('device_name') or env.get('device')}" if env.get("device") else "")
             + ("" if env.get("ledger_check", True) else " (ledger check off: outcomes that differ from the ledger are marked)")
             + ". Each row is one claim case of `shared/CLAIMS.md`, re-run over several seeds and "
             "decided with the named test.", ""]
    if env.get("numerics"):
        lines += [f"Run on: {describe(env['numerics'])}. Another CPU trains slightly different bits "
                  "(README, \"Across machines\"): seeds used, p-values and effects may move; outcomes "
                  "should not.", ""]
    elif any(sh.get("numerics") for sh in env.get("shards", [])):  # merged shards on different CPUs
        lines += [f"Shard `{sh.get('shard', '?')}` ran on: {describe(sh['numerics'])}." for sh in env["shards"]
                  if sh.get("numerics")] + [""]
    lines += [OUTCOME_LEGEND, ""]
    counts = {}
    for r in records:
        counts[_status(r)] = counts.get(_status(r), 0) + 1
    lines += ["Totals: " + ", ".join(f"{BADGE.get(k, k)}: {counts[k]}" for k in BADGE if k in counts), ""]
    if stability:
        fragile = [k for k, st in stability.items() if not st.get("stable")]
        lines += [f"Stability ([STABILITY.md](STABILITY.md)): {len(stability) - len(fragile)}/{len(stability)} "
                  f"cases give the same outcome in every seed set; fragile: "
                  f"{', '.join(fragile) if fragile else 'none'}.", ""]
    paper_column = scales != ["paper"]  # an index of paper runs needs no column repeating them
    head = ("| claim | outcome |" + (" paper scale |" if paper_column else "") + " seeds (stop) | test; p | "
            "effect [95% CI] | departs from the report (⚠ = plausibly decisive) | time | figures |")
    for section in sorted({r["section"] for r in records}):
        lines += [f"## {section}", "", head, "|---" * (head.count("|") - 1) + "|"]
        lines += [_row(r, paper.get((r["claim"], r.get("case", ""))), stability.get(case_label(r)), paper_column)
                  for r in records if r["section"] == section]
        lines.append("")
    lines += ["## Details", ""]
    for r in records:
        lines += _details(r, paper.get((r["claim"], r.get("case", ""))))
    path = figures_dir / "INDEX.md"
    path.write_text("\n".join(lines))
    return path
