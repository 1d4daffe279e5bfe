"""The report: the claim cases' records (hw1.records), assembled into figures/INDEX.md.

Under xdist each worker writes its own records; the controller assembles the index once the
session ends.

INDEX.md opens with the overview figure (every case's effect on one signed scale, `overview`),
then one narrow row per case, then each case's details, all in the report's order.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from . import catalogue as claims_catalogue, plots
from .config import describe_plan
from .provenance import describe

# the record model (hw1.records), re-exported: report.ClaimRecord and the rest keep working
from .records import (
    ClaimRecord as ClaimRecord,
    FigureFile as FigureFile,
    case_label as case_label,
    drop_other_runs as drop_other_runs,
    load_json as load_json,
    load_records as load_records,
    slug as slug,
    write_json as write_json,
)
from .stats import CONTRADICTED, REPRODUCED, StagePlan, Verdict, format_p, futility_z

BADGE = {
    "reproduced": "✅ reproduced",
    "contradicted": "⛔ contradicted",
    "not shown": "➖ not shown",
    "inconclusive": "❔ inconclusive",
}
CATALOGUE = claims_catalogue.CLAIMS_MD  # the claims' wording, generated from the catalogue
OVERVIEW = "overview"  # figures/overview.png and .json
MULTIVERSE_MD = "MULTIVERSE.md"  # python -m hw1.multiverse: the robust column's k/n
DEPARTURES_MD = "DEPARTURES.md"  # python -m hw1.departures: the departures column


def outcome_legend(alpha: float, plan: StagePlan) -> str:
    """What the four outcomes mean, and the stage plan of this run (from its config)."""
    return (
        f"Outcomes (α = {alpha:g}, one-sided, over seeds): **reproduced**: the claimed direction is "
        "significant; **contradicted**: the opposite direction is significant at the same α; **not "
        "shown**: neither is significant, though the design could have shown the claim (the details "
        "give the seeds the observed effect would need); **inconclusive**: the design cannot decide "
        "(too few units for the test to reach α, failed runs, or the smoke scale). The tables' p is "
        "the one that decided the outcome: the claim's for *reproduced*, the opposite direction's "
        "for *contradicted*, both where neither is significant. A claim of m parts is reproduced "
        "when every part is (its p is the largest part's) and contradicted when its opposite p, "
        "Bonferroni-adjusted (m × the smallest part's), is below the level. A secondary definition "
        "beside a claim's test is descriptive: an effect and its interval, no p and no outcome. "
        + describe_plan(plan, alpha)
    )


def _plan(r: ClaimRecord) -> tuple[float, StagePlan]:
    """(alpha, stage plan) of the run that made the record (its saved config)."""
    stages = r.config.get("stages") or {}
    plan = (
        StagePlan(**{k: tuple(v) if isinstance(v, list) else v for k, v in stages.items()})
        if stages
        else StagePlan()
    )
    return float(r.config.get("alpha", 0.05)), plan


# ------------------------------------------------------------------------------ cells
def _num(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "nan"


def _effect(v: Verdict | None, named: bool = False) -> str:
    if v is None or not math.isfinite(v.effect):
        return "—"
    name = f"{v.effect_name} = " if named else ""
    return f"{name}{_num(v.effect)} [{_num(v.ci_low)}, {_num(v.ci_high)}]"


def _seconds(r: ClaimRecord) -> str:
    if r.train_seconds is None:
        return f"{r.seconds:.0f} s"
    cached = " (cache)" if r.train_seconds > 2 * r.seconds + 5 else ""
    return f"trained in {r.train_seconds:.0f} s, this run {r.seconds:.0f} s{cached}"


def _seeds(r: ClaimRecord, stage: bool = True) -> str:
    """'16 (stage 2, decided)': the seeds used and why the stages stopped ('16 (decided)' if not stage)."""
    if not r.stages or not r.reason:
        return str(len(r.seeds))
    return f"{len(r.seeds)} (stage {len(r.stages)}, {r.reason})" if stage else f"{len(r.seeds)} ({r.reason})"


def _short(v) -> str:
    if v is None:
        return "all"
    if isinstance(v, (list, tuple)):
        return (
            "()" if not v else (f"{v[0]}..{v[-1]} ({len(v)})" if len(v) > 4 else ",".join(str(x) for x in v))
        )
    return str(v)


def _departures(r: ClaimRecord, measured: dict | None = None) -> str:
    """Each departure, and what moving it to the report's value was measured to do (`measured`:
    field -> hw1.departures_report.measurements' entry; no entry: not in the grid)."""
    if not r.departures:
        return "as the report" if r.scale != "smoke" else "—"
    measured = measured or {}

    def one(d):
        flag = f" ⚠ {d['decisive']}" if d.get("decisive") else ""
        m = measured.get(d["field"])
        tail = f" — {m['text']}" if m else ""
        return (
            f"{d['field'].split('.', 1)[1]} {_short(d['value'])} (report {_short(d['report'])}){flag}{tail}"
        )

    return "; ".join(one(d) for d in r.departures)


def _stability_text(st: dict | None) -> str:
    """A case's line in figures/stability.json, in words: stable, or its split and pooled verdict."""
    if not st:
        return ""
    if st.get("stable"):
        return f"stable in {len(st['sets'])}/{len(st['sets'])} seed sets"
    opposite = "opposite" if st.get("parts", 1) == 1 else f"opposite (Bonferroni ×{st['parts']})"
    split = ", ".join(
        f"{x['status']} (seed +{x['offset']}, p = {format_p(x.get('p'))}, {opposite} "
        f"{format_p(x.get('p_opposite'))})"
        for x in st["sets"]
    )
    pooled = st.get("pooled")
    if pooled and pooled.get("offsets"):
        sets = ", ".join(f"+{o}" for o in pooled["offsets"])
        pooled = (
            f"; pooled on fresh seed sets ({sets}, shared with none above): {pooled['status']} "
            f"({pooled['seeds']} seeds, p = {format_p(pooled.get('p'))}, {opposite} "
            f"{format_p(pooled.get('p_opposite'))})"
        )
    else:  # pooled over the sets above: their data made the split, so no outcome word
        pooled = ""
    return f"⚠ **fragile**: {split}{pooled}"


def _differs(r: ClaimRecord) -> str:
    if r.within_fragile_split:
        return f"differs from the ledger's {r.expected}, within this fragile case's split"
    if r.differs_from_ledger and (r.expected_evidence or r.scale in ("smoke", "ci")):
        return f"differs from the expectation: {r.expected}"
    return ""


def one_line(statement: str, width: int = 60) -> str:
    """The statement cut at a word before `width` characters (… when cut)."""
    if len(statement) <= width:
        return statement
    return statement[:width].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _p(r: ClaimRecord) -> str:
    return format_p(r.verdict.p_value if r.verdict else None)


def n_parts(v: Verdict) -> int:
    """How many parts a claim's test combines (1 for a single test)."""
    return len(futility_z(v)[0]) if v.test.startswith("intersection-union") else 1


def opposite_label(v: Verdict) -> str:
    """'opposite p', with how a multi-part claim's is adjusted (m × the smallest part's)."""
    m = n_parts(v)
    return f"opposite p (Bonferroni: {m} × the smallest part's)" if m > 1 else "opposite p"


def deciding_p(r: ClaimRecord, labelled: bool = False) -> str:
    """The p that decided the outcome: the opposite direction's for 'contradicted', labelled (with
    its Bonferroni factor for a claim of m parts), else the claim's ('p = ' before it if labelled)."""
    v = r.verdict
    if v is None:
        return "—"
    if v.status == CONTRADICTED:
        m = n_parts(v)
        return f"opposite {'p = ' if labelled else ''}{format_p(v.p_opposite)}" + (
            f" (×{m}, Bonferroni)" if m > 1 else ""
        )
    return f"{'p = ' if labelled else ''}{format_p(v.p_value)}"


def summary_lines(records: list[ClaimRecord]) -> list[str]:
    """One terminal line per case: outcome, case, seeds, p."""
    width = max(len(r.label) for r in records)
    return [
        f"{BADGE.get(r.status, r.status):16s} {r.label:{width}s}  {_seeds(r)}, {deciding_p(r, labelled=True)}"
        for r in records
    ]


def _row(
    r: ClaimRecord,
    paper: ClaimRecord | None,
    stability: dict | None,
    catalogue: str,
    paper_column: bool = True,
    robust: str = "",
    measured: dict | None = None,
) -> str:
    """claim | what the report says | outcome | paper | robust | departures | seeds | p | effect
    ("—": no multiverse result for the case)."""
    outcome = BADGE.get(r.status, r.status)
    if stability and not stability.get("stable"):
        outcome += " ⚠ fragile"
    if _differs(r):
        outcome += f" ({_differs(r)})"
    paper_cell = "not run" if paper is None else BADGE.get(paper.status, paper.status)
    paper_cell = f" {paper_cell} |" if paper_column else ""
    says = f"[{one_line(r.statement, 54)}]({catalogue}#{r.claim})"
    return (
        f"| [{r.label}](#{r.key}) | {says} | {outcome} |{paper_cell} {robust or '—'} | "
        f"{_measured_cell(r, measured)} | {_seeds(r, stage=False)} | {deciding_p(r)} | {_effect(r.verdict)} |"
    )


def _measured_cell(r: ClaimRecord, measured: dict | None) -> str:
    """ "k/n (f)": of the case's n departures, k measured at (or toward) the report's value, f of
    them flipping its outcome; "—" where it has none."""
    if not r.departures:
        return "—"
    measured = measured or {}
    k = sum(1 for d in r.departures if measured.get(d["field"], {}).get("measured"))
    f = sum(1 for d in r.departures if measured.get(d["field"], {}).get("flip"))
    return f"[{k}/{len(r.departures)} ({f})]({DEPARTURES_MD})" if measured else f"0/{len(r.departures)}"


def departure_measurements(figures_dir: Path) -> dict[str, dict]:
    """label -> field -> what the newest departures grid measured (hw1.departures_report), for a
    ci report; {} elsewhere or before any grid."""
    if not (Path(figures_dir) / DEPARTURES_MD).exists():
        return {}
    from .departures_report import measurements

    return measurements(Path(figures_dir))


def robust_cells(figures_dir: Path) -> dict[str, str]:
    """Per case label, "k/n" linked to MULTIVERSE.md: same outcome in k of the n multiverse variants
    that ran it (figures_dir/multiverse.json, written by `python -m hw1.multiverse`). {} when none."""
    data = load_json(Path(figures_dir) / "multiverse.json") or {}
    return {
        c["label"]: f"[{c['same']}/{c['n']}]({MULTIVERSE_MD}#per-case)"
        for c in data.get("cases", [])
        if c.get("n")
    }


def _levels(s: dict) -> str:
    """A stage's level per direction, '*' where that direction's design could not reach it (its
    alpha went on to the later stages)."""
    a, b = s["alpha"], s.get("alpha_opposite", s["alpha"])
    idle = (
        not s.get("can_decide_claim", s.get("can_decide", True)),
        not s.get("can_decide_opposite", s.get("can_decide", True)),
    )
    return " / ".join(f"{x:.3g}{'*' if i else ''}" for x, i in zip((a, b), idle))


def _stage_table(r: ClaimRecord) -> list[str]:
    lines = [
        f"- seeds in stages: stopped — {r.stop}",
        "",
        "  | stage | seeds | level: claim / opposite | outcome | p | opposite p |",
        "  |---|---|---|---|---|---|",
    ]
    lines += [
        f"  | {s['stage']} | {s['seeds']} | {_levels(s)} | {s['status']} | "
        f"{format_p(s.get('p'))} | {format_p(s.get('p_opposite'))} |"
        for s in r.stages
    ]
    return lines + [""]


def _details(
    r: ClaimRecord,
    paper: ClaimRecord | None,
    stability: dict | None,
    catalogue: str,
    measured: dict | None = None,
) -> list[str]:
    v = r.verdict
    lines = [
        f'<a id="{r.key}"></a>',
        "",
        f"### {r.label}",
        "",
        f"> {r.statement} ([claims]({catalogue}#{r.claim}))",
        "",
        f"- outcome: **{r.status}**"
        + (f" ({_differs(r)})" if _differs(r) else "")
        + f" — {v.detail if v else ''}",
    ]
    if v is not None:
        lines.append(
            f"- test: {v.test}; p = {format_p(v.p_value)}, {opposite_label(v)} = "
            f"{format_p(v.p_opposite)}; effect: {_effect(v, named=True)}"
        )
    lines.append(f"- scale `{r.scale}`, seeds {_seed_range(r.seeds)}; {_seconds(r)}")
    if r.stages:
        lines += _stage_table(r)
    lines.append(
        "- departs from the report's setting (⚠ = plausibly decisive; what moving each to the report's "
        f"value did: [{DEPARTURES_MD}]({DEPARTURES_MD})): " + _departures(r, measured)
    )
    if stability:
        lines.append(f"- across seed sets ([STABILITY.md](STABILITY.md)): {_stability_text(stability)}")
    if paper is not None:
        detail = paper.verdict.detail if paper.verdict else ""
        lines.append(
            f"- at paper scale: **{paper.status}**, p = {_p(paper)}, seeds {_seeds(paper)} — {detail}"
        )
    if r.note:
        lines.append(f"- note: {r.note}")
    lines += _revisions(r, paper)
    if r.expected != REPRODUCED:
        lines.append(
            f"- the ledger pins **{r.expected}** at this scale (strict xfail at the default seeds); "
            f"the committed record: {r.expected_evidence}"
        )
    lines += ["- data: " + ", ".join(f"[{f.data}]({f.data})" for f in r.figures), ""]
    lines += [f"![{f.name}]({f.png})" for f in r.figures] + [""]
    return lines


def _revisions(r: ClaimRecord, paper: ClaimRecord | None) -> list[str]:
    """The catalogue's revisions of the claim's criterion after data was seen, and which of the
    records shown were decided before one."""
    entry = claims_catalogue.claims().get(r.claim)
    out = []
    for rev in entry.revisions if entry else ():
        before = [x.scale for x in (r, paper) if x is not None and x.started < rev.timestamp]
        out.append(
            f"- **criterion revised after data was seen** ({rev.date}): {rev.what} Why: {rev.why}"
            + (
                f" The {' and '.join(before)} record predates it (decided by the earlier criterion)."
                if before
                else ""
            )
        )
    return out


def _seed_range(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}..{seeds[-1]} ({len(seeds)})"
    return str(seeds)


# ------------------------------------------------------------------------------ overview
def standardized_effect(v: Verdict | None) -> tuple[float, float, float]:
    """(d, low, high): the claim's standardized statistic per unit, z / √n, with (z ± 1.96) / √n.

    z is the test's statistic centred and scaled under the null, signed so that the claimed
    direction is positive (Verdict.z_parts; from p where a test has none); for a claim of several
    parts, its weakest part (the claim needs every part). z has unit variance, so z ± 1.96 is an
    approximate 95% interval, and dividing by √n puts cases with different numbers of seeds or
    runs on one scale. nan where the verdict has no estimate."""
    nan = (math.nan,) * 3
    if v is None or v.n <= 0:
        return nan
    z = min(futility_z(v)[0], default=math.nan)
    if not math.isfinite(z):
        return nan
    root = math.sqrt(v.n)
    return z / root, (z - 1.96) / root, (z + 1.96) / root


def _overview_row(r: ClaimRecord | None) -> dict | None:
    if r is None:
        return None

    def finite(x):
        return x if x is not None and math.isfinite(x) else None  # JSON has no nan

    d, lo, hi = standardized_effect(r.verdict)
    return {
        "status": r.status,
        "d": finite(d),
        "low": finite(lo),
        "high": finite(hi),
        "n": r.verdict.n if r.verdict else 0,
        "p": finite(r.verdict.p_value if r.verdict else None),
    }


def write_overview(
    figures_dir: Path, records: list[ClaimRecord], paper: dict, fragile: set[str], paper_column: bool
) -> str:
    """figures/overview.png (+ .json): every case on one signed scale, ci and paper side by side.
    -> the caption."""
    columns = {records[0].scale if records else "ci": [_overview_row(r) for r in records]}
    if paper_column:
        columns["paper"] = [_overview_row(paper.get((r.claim, r.case))) for r in records]
    labels = [r.label + (" ⚠ fragile" if r.label in fragile else "") for r in records]
    plots.draw_overview(figures_dir / f"{OVERVIEW}.png", labels, columns, [r.section for r in records])
    return (
        "Each case's standardized effect: the test's statistic, centred and scaled under the null "
        "(z, signed so that the **claimed direction is to the right**), divided by √n (n = seeds or "
        "runs), with the approximate 95% interval (z ± 1.96)/√n; a claim of several parts shows its "
        "weakest part. The dot's colour is the outcome; ⚠ marks a case whose outcome differed between "
        "disjoint seed sets; dashed lines part the report's sections. Effects in their own units are "
        "in the table."
    )


# ------------------------------------------------------------------------------ index
def _header(records: list[ClaimRecord], env: dict) -> list[str]:
    scales = sorted({r.scale for r in records})
    lines = [
        "# HW1 claims: the report",
        "",
        f"Scale: **{', '.join(scales) or 'none'}**"
        + (f", seed offset {env.get('seed_offset')}" if env.get("seed_offset") else "")
        + (f", overrides `{' '.join(env['overrides'])}`" if env.get("overrides") else "")
        + (f", device {env.get('device_name') or env.get('device')}" if env.get("device") else "")
        + (
            ""
            if env.get("ledger_check", True)
            else " (ledger check off: outcomes that differ from the ledger are marked)"
        )
        + ".",
        "",
    ]
    if env.get("numerics"):
        lines += [
            f"Run on: {describe(env['numerics'])}. Another CPU trains slightly different bits "
            '(README, "Across machines"): seeds used, p-values and effects may move; outcomes '
            "should not.",
            "",
        ]
    elif any(sh.get("numerics") for sh in env.get("shards", [])):  # merged shards on different CPUs
        lines += [
            f"Shard `{sh.get('shard', '?')}` ran on: {describe(sh['numerics'])}."
            for sh in env["shards"]
            if sh.get("numerics")
        ] + [""]
    return lines


def _totals(records: list[ClaimRecord], stability: dict) -> list[str]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    lines = ["Totals: " + ", ".join(f"{BADGE.get(k, k)}: {counts[k]}" for k in BADGE if k in counts), ""]
    if stability:
        fragile = [k for k, st in stability.items() if not st.get("stable")]
        stable = len(stability) - len(fragile)
        lines += [
            f"Stability ([STABILITY.md](STABILITY.md)): {stable}/{len(stability)} "
            f"cases give the same outcome in every seed set; fragile: "
            f"{', '.join(fragile) if fragile else 'none'}.",
            "",
        ]
    return lines


def write_index(figures_dir: Path, paper_dir: Path | None = None) -> Path:
    """figures/INDEX.md: the overview figure, one narrow row per case by report section, then the
    details, all in the report's order.

    Beside each case: its outcome at paper scale (records in `paper_dir`, default
    figures_dir/paper), its stability across seed sets (figures_dir/stability.json, written by
    `python -m hw1.stability`) and how its scale departs from the report's setting.
    """
    figures_dir = Path(figures_dir)
    records = load_records(figures_dir)
    paper_dir = Path(paper_dir) if paper_dir else figures_dir / "paper"
    paper = {}
    if paper_dir.resolve() != figures_dir.resolve():
        paper = {(r.claim, r.case): r for r in load_records(paper_dir) if r.scale == "paper"}
    stability = (load_json(figures_dir / "stability.json") or {}).get("cases", {})
    env = load_json(figures_dir / "environment.json") or {}
    catalogue = os.path.relpath(CATALOGUE, figures_dir.resolve())
    paper_column = {r.scale for r in records} != {"paper"}  # a paper index needs no paper column
    fragile = {k for k, st in stability.items() if not st.get("stable")}
    robust = robust_cells(figures_dir)
    measured = departure_measurements(figures_dir)
    has_multiverse = (figures_dir / MULTIVERSE_MD).exists()  # no link to a file that is not there
    robust_head = f"[robust]({MULTIVERSE_MD})" if has_multiverse else "robust"
    where = f"[{MULTIVERSE_MD}]({MULTIVERSE_MD})" if has_multiverse else "`python -m hw1.multiverse`"
    lines = _header(records, env)
    if records:
        caption = write_overview(figures_dir, records, paper, fragile, paper_column)
        lines += [
            f"![overview: every case's effect on one signed scale]({OVERVIEW}.png)",
            "",
            f"*{caption}* Data: [{OVERVIEW}.json]({OVERVIEW}.json).",
            "",
        ]
        lines += [outcome_legend(*_plan(records[0])), ""]
    lines += _totals(records, stability)
    flipped = sorted(
        {
            f"{label} ({field.split('.', 1)[1]} → {m['flipped_to']})"
            for label, fs in measured.items()
            for field, m in fs.items()
            if m["flip"]
        }
    )
    if measured:
        lines += [
            f"Departures ([{DEPARTURES_MD}]({DEPARTURES_MD})): cases whose outcome flips when one ⚠ or other "
            f"departure moves toward the report's value: {', '.join(flipped) if flipped else 'none so far'}.",
            "",
        ]
    lines += [
        f"Each row is one case of a claim in [claims/CLAIMS.md]({catalogue}), re-run over several "
        "seeds; its details (test, stages, departures from the report's setting, time, stability, "
        "figures) follow the tables. *robust*: the same outcome in k of the n variants of the "
        f"multiverse ({where}, one changed setting each; descriptive, no new test); — where no "
        "multiverse result exists.",
        "",
    ]
    head = (
        "| claim | what the report says | outcome |"
        + (" paper |" if paper_column else "")
        + f" {robust_head} | departures measured (flips) | seeds | p that decided it | effect [95% CI] |"
    )
    for section in dict.fromkeys(r.section for r in records):
        lines += [f"## {section}", "", head, "|---" * (head.count("|") - 1) + "|"]
        lines += [
            _row(
                r,
                paper.get((r.claim, r.case)),
                stability.get(r.label),
                catalogue,
                paper_column,
                robust.get(r.label, ""),
                measured.get(r.label),
            )
            for r in records
            if r.section == section
        ]
        lines.append("")
    lines += ["## Details", ""]
    for r in records:
        lines += _details(
            r, paper.get((r.claim, r.case)), stability.get(r.label), catalogue, measured.get(r.label)
        )
    path = figures_dir / "INDEX.md"
    path.write_text("\n".join(lines))
    return path
