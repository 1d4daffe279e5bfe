"""A claim case's record: what it found, the figures and the setting that produced them, one JSON
file per case under <figures>/records/ (named from the test id, so xdist workers never share one).
Records of cases not run this time are kept if they were made at the same scale, and dropped if
made at another (a mixed index would mislead).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .stats import INCONCLUSIVE, Verdict


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def write_json(path: Path, obj, indent: int | None = 1) -> None:
    """Atomic JSON write (a reader never sees half a file); indent None: compact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=indent, default=str)
    os.replace(tmp, path)


def case_label(claim: str, case: str) -> str:
    """'function-depth [sinc]', or the claim id alone for an unparametrized claim."""
    return f"{claim} [{case}]" if case else claim


@dataclass
class FigureFile:
    """A figure a case filed: its name, its PNG and the JSON of the data behind it (file names)."""

    name: str
    png: str
    data: str


@dataclass
class ClaimRecord:
    """What one claim case found: the verdict, the figures and the setting that produced them."""

    claim: str  # claim id, e.g. "function-depth"
    case: str  # parametrization, e.g. "sinc"
    section: str
    statement: str
    scale: str
    seeds: list[int]
    order: int = 0  # the case's place in the report: its section, then the claims modules' order
    figures: list[FigureFile] = field(default_factory=list)
    verdict: Verdict | None = None
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
    reason: str = ""  # why the staged procedure stopped: one of hw1.stats.STOP_REASONS
    stop: str = ""  # the same, in words
    differs_from_ledger: bool = False
    within_fragile_split: bool = False  # differs, but within the case's measured split (not a failure)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0  # this run's wall time for the case (cached runs load in seconds)
    train_seconds: float | None = None  # what training the runs it used cost, cached or not

    @property
    def key(self) -> str:
        return slug(f"{self.claim}--{self.case}" if self.case else self.claim)

    @property
    def label(self) -> str:
        return case_label(self.claim, self.case)

    @property
    def status(self) -> str:
        return self.verdict.status if self.verdict else INCONCLUSIVE

    def conclude(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.seconds = time.time() - self.started

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict.to_dict() if self.verdict else None}

    @classmethod
    def from_dict(cls, d: dict) -> ClaimRecord:
        """The record `to_dict` wrote (fields it lacks take their defaults; unknown keys are ignored)."""
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        kw["figures"] = [FigureFile(**f) for f in kw.get("figures", [])]
        kw["verdict"] = Verdict.from_dict(kw["verdict"]) if kw.get("verdict") else None
        kw["seed_sets"] = tuple(kw.get("seed_sets") or ())
        return cls(**kw)

    def save(self, figures_dir: Path) -> Path:
        path = Path(figures_dir) / "records" / f"{self.key}.json"
        write_json(path, self.to_dict())
        return path


def load_records(figures_dir: Path) -> list[ClaimRecord]:
    """The records in figures_dir/records, in the report's order (section, then the suite's order)."""
    out = []
    for p in sorted((Path(figures_dir) / "records").glob("*.json")):
        try:
            out.append(ClaimRecord.from_dict(json.loads(p.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(out, key=lambda r: (r.section, r.order))


def drop_other_runs(figures_dir: Path, scale: str, seed_offset: int = 0, overrides=()) -> int:
    """Remove records made at another scale, seed offset or --set overrides (a mixed index would
    mislead), and unreadable ones. -> how many."""
    n = 0
    for p in (Path(figures_dir) / "records").glob("*.json"):
        try:
            r = ClaimRecord.from_dict(json.loads(p.read_text()))
            same = r.scale == scale and r.seed_offset == seed_offset and list(r.overrides) == list(overrides)
        except (OSError, ValueError, TypeError):
            same = False
        if not same:
            p.unlink(missing_ok=True)
            n += 1
    return n


def load_json(path: Path):
    """The JSON at path, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
