"""Merge the reports of a sharded claims run (one `--figures-dir` per CI job) into one report.

A shard is the figures folder of `pytest claims/ --claim ID ... --figures-dir DIR`: records/*.json
(one per claim case), the figures (PNG) and the data behind them (JSON), environment.json.
`merge` copies every shard into one folder, refuses what would make a misleading report (records
of different scales, one claim case recorded twice with different results, two different files of
one name), combines the shards' environment.json into one (the shards, each with its device and
its cases) and rebuilds INDEX.md with `hw1.report.write_index`. Nothing is written unless every
check passes.

    python -m hw1.shards merge OUT SHARD [SHARD ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from . import report

# Fields that differ between two runs of one case that found the same thing: when it ran, how long.
TIMING = ("started", "seconds")
REBUILT = ("INDEX.md", "environment.json")  # made anew by the merge, never copied


class ShardError(ValueError):
    """Shards that cannot be merged into one honest report; the message says which and why."""


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ShardError(f"{path} is not readable JSON ({e}); rerun that shard or leave it out") from e
    if not isinstance(value, dict):
        raise ShardError(f"{path} holds a {type(value).__name__}, not a JSON object")
    return value


def _shard_files(shard: Path) -> list[Path]:
    """Paths (relative to the shard) of what the merge copies: everything but hidden files (the
    temporaries of atomic writes) and what it rebuilds."""
    out = []
    for p in sorted(shard.rglob("*")):
        rel = p.relative_to(shard)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts) and str(rel) not in REBUILT:
            out.append(rel)
    return out


def _read_record(path: Path) -> report.ClaimRecord:
    try:
        return report.ClaimRecord.from_dict(_read_json(path))
    except TypeError as e:
        raise ShardError(f"{path} is not a claim record ({e}); rerun that shard or leave it out") from e


def _differing(a: report.ClaimRecord, b: report.ClaimRecord) -> list[str]:
    a, b = a.to_dict(), b.to_dict()
    return sorted(k for k in set(a) | set(b) if k not in TIMING and a.get(k) != b.get(k))


def _check_scales(records: dict, envs: dict) -> str:
    """The one scale of every record and environment.json. -> scale."""
    where: dict[str, set[str]] = {}
    for shard, rec in records.values():
        where.setdefault(rec.scale, set()).add(shard.name)
    for shard, env in envs.items():
        if "scale" in env:
            where.setdefault(str(env["scale"]), set()).add(shard.name)
    if len(where) > 1:
        raise ShardError(
            "the shards were run at different scales, and one report of mixed scales "
            "would mislead: "
            + "; ".join(f"{s}: {', '.join(sorted(n))}" for s, n in sorted(where.items()))
            + ". Merge the shards of one scale only"
        )
    if not where:
        raise ShardError("no shard holds a claim record (records/*.json): nothing to merge")
    return next(iter(where))


def _environment(shards: list[Path], envs: dict, cases: dict, scale: str) -> dict:
    """One environment.json: what every shard agrees on (devices that differ are listed, joined
    with ' + '), then each shard with its own environment and cases."""
    entries = [{"shard": s.name, "path": str(s), **envs[s], "cases": sorted(cases[s])} for s in shards]
    found = [envs[s] for s in shards if envs[s]]
    common = {
        k: v for k, v in (found[0] if found else {}).items() if all(k in e and e[k] == v for e in found)
    }
    for key in ("device", "device_name"):
        values = sorted({str(e[key]) for e in found if key in e})
        if len(values) > 1:
            common[key] = " + ".join(values)
    return {**common, "scale": scale, "shards": entries}


def merge(shard_dirs: list[Path], out: Path) -> Path:
    """Merge the shard folders into `out` (new or without records). -> the path of out/INDEX.md.

    Raises ShardError, and writes nothing, if a shard is missing, records of different scales
    meet, a claim case is recorded twice with different results (timing aside), or two shards hold
    different files of one name.
    """
    shards, out = [Path(s) for s in shard_dirs], Path(out)
    if not shards:
        raise ShardError("no shard folders given")
    for s in shards:
        if not s.is_dir():
            raise ShardError(f"shard folder {s} does not exist")
        if s.resolve() == out.resolve():
            raise ShardError(f"{out} is both a shard and the output; merge into another folder")
    if any((out / "records").glob("*.json")):
        raise ShardError(f"{out} already holds claim records; merge into a new or empty folder")
    records: dict[str, tuple[Path, report.ClaimRecord]] = {}  # case key -> (shard, record)
    files: dict[Path, Path] = {}  # relative path -> source file
    envs: dict[Path, dict] = {}
    cases: dict[Path, list[str]] = {}
    for s in shards:
        env_path = s / "environment.json"
        envs[s] = _read_json(env_path) if env_path.is_file() else {}
        cases[s] = []
        for rel in _shard_files(s):
            src = s / rel
            if rel.parent == Path("records") and rel.suffix == ".json":
                rec = _read_record(src)
                cases[s].append(rel.stem)
                if rel.stem in records:
                    first, prev = records[rel.stem]
                    if diff := _differing(prev, rec):
                        raise ShardError(
                            f"claim case {rel.stem} is recorded by both {first} and {s} "
                            f"with different {', '.join(diff)}; keep one of the two shards"
                        )
                    continue
                records[rel.stem] = (s, rec)
            if rel in files:
                if files[rel].read_bytes() != src.read_bytes():
                    raise ShardError(
                        f"{files[rel]} and {src} differ: two shards wrote {rel}; keep one of the two shards"
                    )
                continue
            files[rel] = src
    scale = _check_scales(records, envs)
    for rel, src in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out / rel)
    report.write_json(out / "environment.json", _environment(shards, envs, cases, scale))
    return report.write_index(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m hw1.shards", description="Merge sharded claims reports into one."
    )
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("merge", help="merge shard figures folders into OUT and rebuild OUT/INDEX.md")
    m.add_argument("out", type=Path, metavar="OUT", help="the merged report folder (new or without records)")
    m.add_argument("shards", type=Path, nargs="+", metavar="SHARD", help="a shard's figures folder")
    args = ap.parse_args(argv)
    try:
        index = merge(args.shards, args.out)
    except ShardError as e:
        print(f"python -m hw1.shards merge: error: {e}", file=sys.stderr)
        return 2
    n = len(list((args.out / "records").glob("*.json")))
    print(f"merged {len(args.shards)} shard(s), {n} claim case(s): {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
