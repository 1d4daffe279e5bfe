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

from .stats import INCONCLUSIVE, Verdict

BADGE = {"reproduced": "✅ reproduced", "not reproduced": "❌ not reproduced",
         "inconclusive": "❔ inconclusive"}


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
    started: float = field(default_factory=time.time)
    seconds: float = 0.0

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


def drop_other_scales(figures_dir: Path, scale: str) -> int:
    """Remove records made at another scale. -> how many."""
    n = 0
    for p in (Path(figures_dir) / "records").glob("*.json"):
        try:
            if json.loads(p.read_text()).get("scale") != scale:
                p.unlink()
                n += 1
        except (OSError, ValueError):
            p.unlink(missing_ok=True)
    return n


def _row(r: dict) -> str:
    v = r.get("verdict") or {}
    status = v.get("status", INCONCLUSIVE)
    badge = BADGE.get(status, status)
    if r.get("expected", "reproduced") != "reproduced" and status == r.get("expected"):
        badge += " (expected)"
    p = v.get("p_value")
    stat = f"{v.get('test', '')}; p = {p:.2g}" if isinstance(p, float) else v.get("test", "")
    eff = v.get("effect")
    effect = (f"{v.get('effect_name')} = {eff:.3g} [{v.get('ci_low') or float('nan'):.3g}, "
              f"{v.get('ci_high') or float('nan'):.3g}]") if isinstance(eff, float) else "—"
    figs = " ".join(f"[{f['name']}]({f['png']})" for f in r.get("figures", []))
    case = f" [{r['case']}]" if r.get("case") else ""
    return f"| `{r['claim']}`{case} | {badge} | {stat} | {effect} | {figs} |"


def write_index(figures_dir: Path) -> Path:
    """figures/INDEX.md: one row per claim case, grouped by report section, then the details."""
    figures_dir = Path(figures_dir)
    records = load_records(figures_dir)
    scales = sorted({r["scale"] for r in records})
    lines = ["# HW1 claims: the report", "",
             f"Scale: **{', '.join(scales) or 'none'}**. Each row is one claim case of "
             "`shared/CLAIMS.md`, re-run over several seeds and decided with the named test. "
             "Verdicts: reproduced (p < alpha, effect in the claimed direction), not reproduced "
             "(the design could have shown it and did not), inconclusive (the design could not decide, "
             "e.g. the smoke scale).", ""]
    counts = {}
    for r in records:
        s = (r.get("verdict") or {}).get("status", INCONCLUSIVE)
        counts[s] = counts.get(s, 0) + 1
    lines += ["Totals: " + ", ".join(f"{BADGE.get(k, k)}: {v}" for k, v in sorted(counts.items())), ""]
    for section in sorted({r["section"] for r in records}):
        lines += [f"## {section}", "", "| claim | verdict | test | effect [95% CI] | figures |",
                  "|---|---|---|---|---|"]
        lines += [_row(r) for r in records if r["section"] == section]
        lines.append("")
    lines += ["## Details", ""]
    for r in records:
        v = r.get("verdict") or {}
        case = f" [{r['case']}]" if r.get("case") else ""
        lines += [f"### `{r['claim']}`{case}", "", f"> {r['statement']}", "",
                  f"- verdict: **{v.get('status', INCONCLUSIVE)}** — {v.get('detail', '')}",
                  f"- scale `{r['scale']}`, seeds {r['seeds']}, {r.get('seconds', 0):.0f} s"]
        if r.get("note"):
            lines.append(f"- note: {r['note']}")
        if r.get("expected", "reproduced") != "reproduced":
            lines.append(f"- the suite expects **{r['expected']}** at this scale (strict xfail), "
                         f"as measured: {r.get('expected_evidence', '')}")
        lines += [f"- data: " + ", ".join(f"[{Path(f['data']).name}]({f['data']})" for f in r["figures"]), ""]
        lines += [f"![{f['name']}]({f['png']})" for f in r["figures"]] + [""]
    path = figures_dir / "INDEX.md"
    path.write_text("\n".join(lines))
    return path
