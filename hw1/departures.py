"""Every departure of the default scale from the report, measured one setting at a time.

    python -m hw1.departures write                      # write a dated grid (before any of it runs)
    python -m hw1.departures run [--grid G] [--only V] [--budget-s S] [-n 2]
    python -m hw1.departures run --only V --over-cap     # one variant over the cap, run on purpose
    python -m hw1.departures tables [--grid G]          # DEPARTURES.md, heatmap, data-size ladders

The grid is generated from `hw1.config.departures`, never by hand: for every case of the default
scale and every setting in which it departs from the report, one variant sets that one field to
the report's value with the rest at `ci`. A variant whose estimated wall time is over the grid's
cap takes the largest step toward the report's value that fits (x4, x16, ...; the value that ran
is in the grid). Per MNIST family, one more variant sets all of its model and training departures
to the report's values with the data at ci size, and a data-size ladder sets the training set to
x4 and x16 of ci (capped at all of MNIST). A variant that cannot fit at any step is in the grid,
marked not runnable, with its estimated cost.

Each variant runs `pytest claims/ --set ... --claim ... -k CASES --figures-dir
figures/departures/<grid>/<variant>`: the same harness, staged seeds and tests as the suite. A
finished variant keeps its records there with `variant.json`; a rerun skips it while its settings,
the training code and the deciding code are the same, so the grid runs across several sittings
(`--budget-s`); a variant decided by older statistics is decided again, from the run cache.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import catalogue, report
from .cache import code_version
from .config import CI, REPORT, Scale, _flat, _size, departures
from .fingerprint import decision_fingerprint
from .overrides import apply_overrides
from .stability import claims_command

ROOT = Path(__file__).resolve().parent.parent
GRIDS_DIR = ROOT / "data" / "grids"  # the committed grids, one JSON file each
CAP_S = 2700.0  # a variant's estimated wall time on 2 cores above which it takes a smaller step
STARTUP_S = 25.0  # pytest, xdist and torch start-up per variant
CONV_COST = 50.0  # an MLP made a conv net: ~50x the CPU time per step (hw1.config.GenConfig)
STEP = 4  # a step toward the report's value: x4, x16, ...
TRAINING_MODULES = ("api", "generalization", "landscape")  # producing modules besides train/models/data

# Claims that share trained runs (the catalogue's `family`), so a variant of one setting runs them
# together. A case whose claim splits across tasks is named with its case's task: "sensitivity[fit]".
FAMILIES = catalogue.families()
MNIST_FAMILIES = ("cnn-depth", "dnn-depth", "random-labels", "params-vs-generalization", "batch-size-mnist")
# Settings whose size scales a variant's training time (ratio new / ci), and its measuring time.
_TRAIN_COST = ("*epochs*", "*train_size*", "*budget*", "*widths*", "*n_points*", "*fit_points*")
_TRAIN_COST += ("*min_steps*", "*ratio_runs*", "*crossover_budgets*", "*depth", "*channels*")
_MEASURE_COST = ("*test_size*", "*sens_points*", "*sharp_points*", "*n_dirs*", "*grid", "opt.ratio_budget")
_DATA = ("*train_size*", "*test_size*", "*sens_points*", "*sharp_points*", "*n_points*", "*fit_points*")


class GridError(ValueError):
    """An unknown grid or variant name; the message lists the valid ones."""


@dataclass(frozen=True)
class Case:
    claim: str
    case: str

    @property
    def label(self) -> str:
        return report.case_label(self.claim, self.case)

    @property
    def family(self) -> str:
        fam = catalogue.get(self.claim).family_of(self.case)
        if not fam:
            raise ValueError(f"case {self.label} belongs to no family (claims/catalogue.toml: family)")
        return fam

    @property
    def selector(self) -> str:
        """Its part of a pytest -k expression."""
        test = "test_" + self.claim.replace("-", "_")
        return f"({test} and {self.case})" if self.case else test


@dataclass
class Variant:
    """One point of the grid: settings of one family moved toward the report's values."""

    name: str
    family: str
    kind: str  # "one" (one departure), "all" (every model and training departure), "ladder" (data size)
    cases: list[str]  # case labels it measures
    claims: list[str]
    select: str  # pytest -k
    set: list[str]  # --set items
    fields: list[str]
    value: list  # the value that runs, per field
    report: list  # the report's value, per field
    step: str  # "the report's value", or e.g. "x4 (the report is x15)"
    estimate_s: float  # wall seconds on 2 cores, of the value that runs
    full_estimate_s: float  # ... of the report's value
    runnable: bool = True
    decisive: str = ""  # what a cut of one of its settings plausibly decides ('training', ...), else ''
    extra: dict = field(default_factory=dict)

    def digest(self) -> str:
        key = json.dumps([self.set, self.claims, self.select], sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------ the cost model
def _cost_factor(key: str, old, new, globs) -> float:
    if not any(fnmatch.fnmatch(key, g) for g in globs):
        return 1.0
    if "channels" in key:
        return CONV_COST if (not old and new) else 1.0
    a, b = _size(old, key), _size(new, key)
    if not (a and b):
        return 1.0
    # an exact Hessian costs ~P^2 x points (forward-over-reverse, hw1.landscape.hessian_chunk)
    return (b / a) ** 2 if key == "opt.ratio_budget" and globs is _MEASURE_COST else b / a


def estimate_seconds(
    changes: dict, cases: list[Case], base: list[report.ClaimRecord], workers: int = 2
) -> float:
    """Wall seconds of one variant on `workers` cores: its cases' training time in the default
    run's records x the size ratios of the changed cost settings (an MLP made a conv net:
    CONV_COST), over the workers but never under the dearest case alone; plus measuring and
    start-up. `changes`: {field: new value}."""
    ci = _flat(CI)
    k_train = k_measure = 1.0
    for key, new in changes.items():
        k_train *= _cost_factor(key, ci[key], new, _TRAIN_COST)
        k_measure *= _cost_factor(key, ci[key], new, _MEASURE_COST)
    labels = {c.label for c in cases}
    mine = [r for r in base if r.label in labels]
    trains = {round(r.train_seconds or 0.0, 1) for r in mine}  # cases with equal times share runs
    train = sum(trains) * k_train
    measure = sum(r.seconds for r in mine) * k_measure
    return max(train / workers, max(trains, default=0.0) * k_train) + measure / workers + STARTUP_S


def _steps(key: str, old, new) -> list:
    """Values from `old` toward `new` by factors of STEP, ending at `new` (numbers and all-of-MNIST
    only; other settings have one step: the report's value)."""
    a, b = _size(old, key), _size(new, key)
    if isinstance(old, (tuple, list, bool)) or not a or not b or b / a <= STEP:
        return [new]
    out, k = [], STEP
    while a * k < b:
        out.append(type(a)(round(a * k)) if isinstance(old, int) else a * k)
        k *= STEP
    return out + [new]


def _fmt_value(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, tuple):
        return ",".join(map(str, v)) if v else "()"
    return repr(v) if isinstance(v, float) else str(v)


def _step_words(key: str, old, value, new) -> str:
    if value == new:
        return "the report's value"
    a, v, b = _size(old, key), _size(value, key), _size(new, key)
    return f"x{v / a:g} (the report is x{b / a:.3g})"


# ------------------------------------------------------------------------------ the generator
def cases_of(scale: Scale, base: list[report.ClaimRecord]) -> list[Case]:
    """The cases of the default run, in the report's order."""
    return [Case(r.claim, r.case) for r in base if r.scale == scale.name]


def _variant(kind, fam, cases, changes: dict, full: dict, base, cap, old, decisive="") -> Variant:
    est = estimate_seconds(changes, cases, base)
    full_est = estimate_seconds(full, cases, base)
    keys = list(changes)
    tag = "+".join(f"{k.split('.', 1)[1]}-{_fmt_value(changes[k])}" for k in keys) if kind != "all" else "all"
    name = f"{fam}.{tag}".replace(",", "_").replace("()", "mlp").replace("/", "over")
    step = (
        "; ".join(_step_words(k, old[k], changes[k], full[k]) for k in keys)
        if kind != "all"
        else ("the report's values")
    )
    return Variant(
        name=name,
        family=fam,
        kind=kind,
        cases=[c.label for c in cases],
        claims=sorted({c.claim for c in cases}),
        select=" or ".join(c.selector for c in cases),
        set=[f"{k}={_fmt_value(v)}" for k, v in changes.items()],
        fields=keys,
        value=[changes[k] for k in keys],
        report=[full[k] for k in keys],
        step=step,
        estimate_s=round(est, 1),
        full_estimate_s=round(full_est, 1),
        runnable=est <= cap,
        decisive=decisive,
    )


def _fitting(key, old, new, cases, base, cap):
    """The largest step toward the report's value whose estimate fits under the cap (or the
    smallest step, marked not runnable, when none does)."""
    steps = _steps(key, old, new)
    fits = [v for v in steps if estimate_seconds({key: v}, cases, base) <= cap]
    return fits[-1] if fits else steps[0]


def generate(base: list[report.ClaimRecord], scale: Scale = CI, cap: float = CAP_S) -> list[Variant]:
    """The grid of `scale` from its departures (`hw1.config.departures`, per case) and the
    default run's records (`base`: the cost model's times). Deterministic in its inputs."""
    old, theirs = _flat(scale), _flat(REPORT)
    cases = cases_of(scale, base)
    by_family: dict[str, dict[str, list[Case]]] = {}  # family -> field -> cases that depart in it
    decisive: dict[str, str] = {}
    for c in cases:
        for d in departures(scale, c.claim, case=c.case):
            if d["field"] in old:
                by_family.setdefault(c.family, {}).setdefault(d["field"], []).append(c)
                decisive[d["field"]] = decisive.get(d["field"]) or d["decisive"]
    out: dict[str, Variant] = {}

    def add(v: Variant):  # a ladder rung that is also a departure's step is one run, in both roles
        out.setdefault(v.name, v).extra.update(v.extra)

    for fam, fields_ in by_family.items():
        for key, cs in fields_.items():
            value = _fitting(key, old[key], theirs[key], cs, base, cap)
            add(_variant("one", fam, cs, {key: value}, {key: theirs[key]}, base, cap, old, decisive[key]))
        if fam in MNIST_FAMILIES:
            model = [k for k in fields_ if not any(fnmatch.fnmatch(k, g) for g in _DATA)]
            fam_cases = [c for c in cases if c.family == fam]
            if len(model) > 1:
                changes = {k: theirs[k] for k in model}
                add(_variant("all", fam, fam_cases, changes, changes, base, cap, old))
            for key in [k for k in fields_ if fnmatch.fnmatch(k, "*train_size*")]:
                for k in (STEP, STEP * STEP):
                    n = min(60_000, _size(old[key], key) * k)
                    value = None if n >= 60_000 else n
                    v = _variant("ladder", fam, fam_cases, {key: value}, {key: theirs[key]}, base, cap, old)
                    v.extra["data_fraction"] = n / 60_000
                    add(v)
    return list(out.values())


# ------------------------------------------------------------------------------ grid files
def grid_names() -> list[str]:
    return sorted(p.stem for p in GRIDS_DIR.glob("*.json"))


def load_grid(name: str | None = None) -> dict:
    """A committed grid by name (the newest when None). An unknown name raises GridError listing
    the valid ones."""
    names = grid_names()
    if not names:
        raise GridError(f"no departure grid in {GRIDS_DIR}: write one with `python -m hw1.departures write`")
    name = name or names[-1]
    if name not in names:
        raise GridError(f"unknown grid {name!r}; grids: {', '.join(names)}")
    grid = json.loads((GRIDS_DIR / f"{name}.json").read_text())
    grid["variants"] = [Variant(**v) for v in grid["variants"]]
    return grid


def write_grid(base, date: str, note: str = "", scale: Scale = CI, cap: float = CAP_S) -> Path:
    name = f"departures-{date[:10]}"
    path = GRIDS_DIR / f"{name}.json"
    if path.exists():
        raise GridError(f"{path} exists: a grid is not edited after it is written; date a new one")
    grid = {
        "name": name,
        "date": date,
        "scale": scale.name,
        "cap_s": cap,
        "note": note,
        "variants": [asdict(v) for v in generate(base, scale, cap)],
    }
    report.write_json(path, grid)
    return path


def choose(grid: dict, only=()) -> list[Variant]:
    """The grid's variants, or those named in `only`; an unknown name raises GridError listing
    the valid ones (nothing runs)."""
    every = grid["variants"]
    unknown = [n for n in only if n not in {v.name for v in every}]
    if unknown:
        raise GridError(
            f"unknown variant(s) {', '.join(unknown)} in grid {grid['name']}; variants: "
            + ", ".join(v.name for v in every)
        )
    return [v for v in every if not only or v.name in only]


# ------------------------------------------------------------------------------ running
def variant_dir(out: Path, grid: dict, v: Variant) -> Path:
    return Path(out) / "departures" / grid["name"] / v.name


def _code() -> str:
    return code_version(TRAINING_MODULES)


@functools.cache
def _decision() -> str:
    """What the statistics that decide a case from its measurements decide, as a digest
    (`hw1.fingerprint`): a variant decided by other statistics is decided again (from the run
    cache), and a move of the deciding code that decides nothing differently reruns nothing. A
    changed criterion in a claim test is a new grid, dated, as a changed setting is."""
    return decision_fingerprint()


def is_done(out: Path, grid: dict, v: Variant) -> bool:
    """The variant ran to its end with these settings and this training code, and every case it
    measures has a record."""
    folder = variant_dir(out, grid, v)
    marker = report.load_json(folder / "variant.json") or {}
    if (marker.get("digest"), marker.get("code"), marker.get("decision")) != (
        v.digest(),
        _code(),
        _decision(),
    ):
        return False
    have = {r.label for r in report.load_records(folder)}
    return set(v.cases) <= have


def run_variant(
    out: Path, grid: dict, v: Variant, workers, timeout: float | None = None, runner=subprocess.run
):
    """One variant through the claims harness. -> wall seconds, or None when it ran out of time
    (its trained seeds stay in the run cache; the next sitting resumes there)."""
    folder = variant_dir(out, grid, v)
    folder.mkdir(parents=True, exist_ok=True)
    old = report.load_json(folder / "variant.json") or {}
    # decided again from cached runs: the variant's cost stays that of the run that trained it
    trained = old.get("trained_seconds", old.get("seconds")) if old.get("digest") == v.digest() else None
    (folder / "variant.json").unlink(missing_ok=True)
    sets = [a for i in v.set for a in ("--set", i)]
    claims = [a for c in v.claims for a in ("--claim", c)]
    cmd = claims_command(grid["scale"], folder, workers, *sets, *claims, "-k", v.select)
    start = time.time()
    with open(folder / "pytest.log", "w") as log:
        try:
            rc = runner(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    seconds = time.time() - start
    if rc.returncode not in (0, 1):
        raise RuntimeError(
            f"departure variant {v.name} stopped with pytest exit code {rc.returncode}; see {log.name}"
        )
    marker = {
        "name": v.name,
        "digest": v.digest(),
        "code": _code(),
        "decision": _decision(),
        "set": v.set,
        "seconds": round(seconds, 1),
        "trained_seconds": round(max(seconds, trained or 0.0), 1),
    }
    report.write_json(folder / "variant.json", marker)
    return seconds


def order(chosen: list[Variant]) -> list[Variant]:
    """The plausibly decisive departures first, then the rest; cheapest first within each, so a
    budget buys the most of what matters."""
    return sorted(chosen, key=lambda v: (not v.decisive, v.estimate_s))


def run(
    out: Path,
    grid: dict,
    chosen: list[Variant],
    workers="2",
    budget_s: float | None = None,
    runner=subprocess.run,
    over_cap: bool = False,
):
    """Run every chosen runnable variant not yet done, cheapest first, within `budget_s` wall
    seconds (a variant whose estimate does not fit in what is left waits for the next sitting).
    `over_cap` also runs chosen variants over the grid's cap, at the value the grid states (a
    sitting that can afford one names it with `only`). -> the names run now."""
    start, ran = time.time(), []
    for v in order([v for v in chosen if v.runnable or over_cap]):
        if is_done(out, grid, v):
            continue
        left = None if budget_s is None else budget_s - (time.time() - start)
        if left is not None and v.estimate_s > left:
            print(f"[departures] {v.name}: estimated {v.estimate_s:.0f} s, {left:.0f} s left; next sitting")
            continue
        print(f"[departures] {v.name}: --set {' '.join(v.set)} ({', '.join(v.cases)})", flush=True)
        seconds = run_variant(out, grid, v, workers, timeout=left, runner=runner)
        print(
            f"[departures] {v.name}: {'out of time' if seconds is None else f'{seconds:.0f} s'}", flush=True
        )
        if seconds is not None:
            ran.append(v.name)
    return ran


# ------------------------------------------------------------------------------ the command
def _base(out: Path) -> list[report.ClaimRecord]:
    base = [r for r in report.load_records(out) if r.scale == "ci" and not r.overrides]
    if not base:
        raise GridError(f"no ci records in {out}/records: run `pytest claims/` first")
    return base


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw1.departures", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write a dated grid from hw1.config.departures (before running it)")
    w.add_argument("--note", default="")
    r = sub.add_parser("run", help="run the grid's variants not yet done, cheapest first")
    r.add_argument("--grid")
    r.add_argument("--only", action="append", default=[], help="only this variant (repeatable)")
    r.add_argument("--budget-s", type=float, help="stop starting variants after this many wall seconds")
    r.add_argument("-n", "--workers", default="2")
    r.add_argument(
        "--over-cap",
        action="store_true",
        help="also run the --only variants over the cap (at the grid's value)",
    )
    t = sub.add_parser("tables", help="DEPARTURES.md, its heatmap and the data-size ladders")
    t.add_argument("--grid")
    for p in (w, r, t):
        p.add_argument("--out", default=str(ROOT / "figures"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:
        if args.cmd == "write":
            date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            print(write_grid(_base(out), date, args.note))
            return 0
        grid = load_grid(args.grid)
        chosen = choose(grid, getattr(args, "only", ()))
        for v in chosen:  # a grid that no longer fits the config stops here, before anything runs
            apply_overrides(CI, v.set)
        if args.cmd == "run":
            if args.over_cap and not args.only:
                raise GridError("--over-cap runs only variants named with --only")
            run(out, grid, chosen, args.workers, args.budget_s, over_cap=args.over_cap)
    except (GridError, ValueError) as e:
        print(f"python -m hw1.departures: {e}", file=sys.stderr)
        return 2
    from .departures_report import write_tables

    print(write_tables(out, grid))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
