"""The claims catalogue (claims/catalogue.toml): one entry per claim, the one place a claim is
described. Everything else that names claims is derived from it or checked against it.

    python -m hw1.catalogue write      # claims/CLAIMS.md from the catalogue
    python -m hw1.catalogue check      # exit 1 when the committed CLAIMS.md is not the generated one

TOML rather than Python: the entries are data that a reader edits (words, settings, dates), the
standard library reads it (tomllib), it cannot run code, and its diffs read as prose changes.
"""

from __future__ import annotations

import argparse
import calendar
import functools
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "claims" / "catalogue.toml"
CLAIMS_MD = ROOT / "claims" / "CLAIMS.md"


class CatalogueError(ValueError):
    """The catalogue is malformed, or a claim id names no entry (the message lists the ids)."""


@dataclass(frozen=True)
class Revision:
    """What changed in a claim's criterion after data was seen, when, and why."""

    date: str  # "YYYY-MM-DD HH:MM UTC"
    what: str
    why: str

    @property
    def timestamp(self) -> float:
        return calendar.timegm(time.strptime(self.date, "%Y-%m-%d %H:%M UTC"))


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    statement: str
    setting: str
    figures: tuple[str, ...]
    cases: tuple[str, ...]
    test: str
    settings: tuple[str, ...]
    shard: str
    files: tuple[str, ...] = ()  # the figure files its cases write, "{param}" filled from the case
    family: str = ""
    multiverse: str = ""
    report_words: str = ""
    tasks: dict = field(default_factory=dict)  # task -> {"settings": [...], "family": "..."}
    revisions: tuple[Revision, ...] = ()

    def settings_read(self, case: str = "") -> tuple[str, ...]:
        """The settings (globs) the case reads: its task's, else the claim's."""
        task = self.tasks.get(case.split("-")[0], {})
        return tuple(task.get("settings", self.settings))

    def figure_files(self, params: dict) -> tuple[str, ...]:
        """The figure files of the case with these parameters (one producer per file)."""
        return tuple(f.format(**params) for f in self.files)

    def family_of(self, case: str = "") -> str:
        """The group of claims whose trained runs the case shares."""
        return self.tasks.get(case.split("-")[0], {}).get("family", self.family)


@dataclass(frozen=True)
class Section:
    name: str
    outside: str = ""  # the outside facts a reader compares the section's claims with


def _is_date(text: str) -> bool:
    try:
        time.strptime(text, "%Y-%m-%d %H:%M UTC")
    except ValueError:
        return False
    return True


_REQUIRED = ("id", "section", "statement", "setting", "figures", "cases", "test", "settings", "shard")


def _claim(entry: dict, where: Path) -> Claim:
    missing = [k for k in _REQUIRED if k not in entry]
    unknown = set(entry) - {f for f in Claim.__dataclass_fields__}
    if missing or unknown:
        raise CatalogueError(
            f"{where}: claim {entry.get('id', '?')!r}: "
            + (f"missing {', '.join(missing)}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"unknown key(s) {', '.join(sorted(unknown))}" if unknown else "")
        )
    revisions = tuple(Revision(**r) for r in entry.get("revisions", ()))
    bad = [r.date for r in revisions if not _is_date(r.date)]
    if bad:
        raise CatalogueError(
            f"{where}: claim {entry['id']!r}: revision date(s) {bad} are not 'YYYY-MM-DD HH:MM UTC'"
        )
    return Claim(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in entry.items() if k != "revisions"},
        revisions=revisions,
    )


@functools.cache
def load(path: Path = CATALOGUE) -> tuple[tuple[Section, ...], tuple[Claim, ...]]:
    """(sections, claims) in the report's order."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CatalogueError(f"claims catalogue {path} cannot be read: {e}") from e
    sections = tuple(Section(**s) for s in data.get("section", ()))
    claims = tuple(_claim(c, path) for c in data.get("claim", ()))
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise CatalogueError(
            f"{path}: a claim id appears twice: {sorted(i for i in ids if ids.count(i) > 1)}"
        )
    names = {s.name for s in sections}
    stray = [c.id for c in claims if c.section not in names]
    if stray:
        raise CatalogueError(f"{path}: claim(s) {', '.join(stray)} name a section with no [[section]] entry")
    return sections, claims


def claims(path: Path = CATALOGUE) -> dict[str, Claim]:
    """id -> Claim, in the report's order."""
    return {c.id: c for c in load(path)[1]}


def get(claim_id: str, path: Path = CATALOGUE) -> Claim:
    every = claims(path)
    if claim_id not in every:
        raise CatalogueError(f"unknown claim {claim_id!r}; the catalogue ({path}) has: {', '.join(every)}")
    return every[claim_id]


def shard_groups(path: Path = CATALOGUE) -> dict[str, tuple[str, ...]]:
    """shard -> its claims, in the report's order (the GPU workflow's matrix)."""
    out: dict[str, tuple[str, ...]] = {}
    for c in load(path)[1]:
        out[c.shard] = out.get(c.shard, ()) + (c.id,)
    return out


def families(path: Path = CATALOGUE) -> dict[str, tuple[str, ...]]:
    """family -> its members, claims or "claim[task]" for a claim split across tasks (the departures
    grid runs a family's members together)."""
    out: dict[str, tuple[str, ...]] = {}
    for c in load(path)[1]:
        members = [(c.family, c.id)] if c.family else []
        members += [(t["family"], f"{c.id}[{task}]") for task, t in c.tasks.items() if "family" in t]
        for fam, m in members:
            out[fam] = out.get(fam, ()) + (m,)
    return out


def multiverse_families(path: Path = CATALOGUE) -> dict[str, tuple[str, ...]]:
    """multiverse family -> its claims (claims without variants are in none)."""
    out: dict[str, tuple[str, ...]] = {}
    for c in load(path)[1]:
        if c.multiverse:
            out[c.multiverse] = out.get(c.multiverse, ()) + (c.id,)
    return out


# ------------------------------------------------------------------------------ CLAIMS.md
_INTRO = """\
# The claims

Every claim of the student's Homework 1 report that the suite re-runs, in the report's order: the
claim as the suite tests it, the report's own words where they differ, the report's setting (the
`paper` scale), the figures the homework asked for, and the test that decides it.
`figures/INDEX.md` links each row here. How each claim is decided (seeds, test, thresholds) is in
the test's docstring and in the index's details.

*Generated from `claims/catalogue.toml` by `python -m hw1.catalogue write`; edit the catalogue,
not this file.*
"""


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _entry(c: Claim) -> list[str]:
    lines = [f"### {c.id}", "", f"> {c.statement}", ""]
    if c.report_words:
        lines.append(f"- the report's wording: {_md(c.report_words)}")
    lines += [
        f"- the report's setting: {_md(c.setting)}",
        f"- figures asked for: {'; '.join(c.figures)}",
        f"- cases: {', '.join(f'`{x}`' for x in c.cases) if c.cases else 'one'}",
        f"- test: `{c.test}`",
    ]
    if c.files:
        lines.append(f"- figure files: {', '.join(f'`{f}.png`' for f in c.files)}")
    for r in c.revisions:
        lines.append(f"- revised after data was seen ({r.date}): {_md(r.what)} Why: {_md(r.why)}")
    return lines + [""]


def claims_md(path: Path = CATALOGUE) -> str:
    sections, every = load(path)
    lines = [_INTRO]
    for s in sections:
        short = s.name.split(" ")[0]
        lines += [f"## {s.name}", ""]
        for c in every:
            if c.section == s.name:
                lines += _entry(c)
        if s.outside:
            lines += [f"#### Outside facts ({short})", "", s.outside.strip(), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw1.catalogue", description=__doc__.split("\n\n")[0])
    ap.add_argument("cmd", choices=("write", "check"))
    args = ap.parse_args(argv)
    try:
        text = claims_md()
    except CatalogueError as e:
        print(f"python -m hw1.catalogue: {e}", file=sys.stderr)
        return 2
    if args.cmd == "write":
        CLAIMS_MD.write_text(text)
        print(CLAIMS_MD)
        return 0
    if CLAIMS_MD.read_text() != text:
        print(f"{CLAIMS_MD} is not the catalogue's: run `python -m hw1.catalogue write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
