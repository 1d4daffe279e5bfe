"""The claims harness: options, which cases run and in what order, expected outcomes, the ledger,
and the filer that decides a case over staged seeds and files its record.

conftest.py (the repository root) wires these into pytest's hooks and fixtures; this module holds
what they do. Options (one group, `hw1`): --scale smoke|ci|paper (default ci), --seed N,
--seed-sets OFFSETS, --set SECTION.FIELD=VALUE (repeatable), --device auto|cpu|cuda[:N],
--claim ID (repeatable), --figures-dir DIR, --no-run-cache, --clear-run-cache.

The ledger check (syrupy snapshots of each case's outcome, and strict expectations) is on at the
default seeds and settings of a ledger scale; under --seed, --seed-sets or --set it is off, and an
outcome that differs from the ledger is listed in the terminal summary and the index instead.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest
import torch
from syrupy.extensions.json import JSONSnapshotExtension

from hw1 import cache, catalogue, ledger, plots, report, stats
from hw1.config import departures, get_scale, pooled_seeds, seeds_for
from hw1.overrides import OverrideError, apply_overrides
from hw1.provenance import numerics
from hw1.records import ClaimRecord, FigureFile
from hw1.train import DeviceError, resolve_device, share_gpu

ROOT = Path(__file__).resolve().parent.parent
CLAIMS = ROOT / "claims"
LEDGER_SCALES = ("smoke", "ci")  # scales whose verdict ledger is committed (claims/__snapshots__)


class ClaimNotReproduced(AssertionError):
    """The claim's outcome is not 'reproduced' (strict xfail cases expect exactly this)."""


class OutcomeChanged(AssertionError):
    """A case expected to end in one non-reproduced outcome ended in another (e.g. 'not shown'
    instead of 'contradicted'): not the failure its strict xfail expects, so the run fails."""


# ------------------------------------------------------------------------------ options
def _seed_sets(text: str) -> tuple[int, ...]:
    offsets = tuple(int(x) for x in text.split(",") if x.strip())
    if len(offsets) < 2 or len(set(offsets)) != len(offsets) or min(offsets) < 0:
        raise ValueError("--seed-sets takes two or more distinct offsets >= 0, e.g. 0,1000,2000")
    return offsets


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("the seed offset must be >= 0")
    return value


def add_options(parser) -> None:
    g = parser.getgroup("hw1", "hw1 claims")
    g.addoption(
        "--scale",
        choices=("smoke", "ci", "paper"),
        default="ci",
        help="smoke: seconds, decides nothing; ci (default): CPU scale that decides every "
        "claim; paper: the report's settings (GPU)",
    )
    g.addoption(
        "--seed",
        type=_seed,
        default=0,
        help="shift every seed by N to rerun on fresh seeds "
        "(the ledger check is off; outcomes that differ from it are listed, not failed)",
    )
    g.addoption(
        "--seed-sets",
        type=_seed_sets,
        default=None,
        metavar="OFFSETS",
        help="pool disjoint seed sets, e.g. 3000,4000,5000: each stage uses the first seeds of "
        "every set (k sets: k x the base count); the pooled verdict of hw1.stability (on fresh sets)",
    )
    g.addoption(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        dest="overrides",
        help="override one config field of the scale, e.g. --set fit.epochs=5000 (repeatable; "
        "sections fit, mnist, opt, gen, stages; the ledger check is off)",
    )
    g.addoption("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    g.addoption(
        "--figures-dir",
        default=None,
        help="where the report is written (default: figures/, figures/smoke/ at smoke scale)",
    )
    g.addoption(
        "--claim",
        action="append",
        default=[],
        metavar="ID",
        help="run only this claim (repeatable), e.g. --claim function-depth",
    )
    g.addoption("--no-run-cache", action="store_true", help="train everything afresh, store nothing")
    g.addoption("--clear-run-cache", action="store_true", help="empty the run cache before running")


def configure(config) -> None:
    """pytest_configure: the markers, the scale (a bad --set is a usage error before anything
    runs), the device, one torch thread, the run-cache switches, and a clean report folder."""
    config.addinivalue_line("markers", "claim(id): a claim of the report, described in claims/catalogue.toml")
    config._hw1_scale = chosen_scale(config)
    if config.getoption("--seed-sets") and config.getoption("--seed"):
        raise pytest.UsageError("--seed-sets pools seed sets at their own offsets; give it without --seed")
    # The ledger is ours to keep: syrupy must never report deselected claims or other scales as
    # unused, nor delete them on --snapshot-update (that would wipe every other claim's entries).
    config.option.disable_unused_snapshots = True
    # One torch thread per process (per xdist worker): the suite's nets are small, and threads only
    # oversubscribe the cores that the other workers use (measured: 2-6x slower fits with 2 threads).
    torch.set_num_threads(1)
    try:
        config._hw1_device = resolve_device(config.getoption("--device"))
    except DeviceError as e:
        raise pytest.UsageError(str(e)) from None
    # xdist workers sharing one GPU: each gets its share of the memory (hw1.train.share_gpu)
    share_gpu(config._hw1_device, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    if config.getoption("--no-run-cache"):
        os.environ["HW1_NO_CACHE"] = "1"
    if is_worker(config):
        return
    if config.getoption("--clear-run-cache"):
        cache.clear()
    if is_claims_run(config):
        report.drop_other_runs(
            figures_dir(config),
            config.getoption("--scale"),
            config.getoption("--seed"),
            config.getoption("overrides"),
        )


def finish(config) -> None:
    """pytest_sessionfinish (controller only): environment.json and the index of the run."""
    out = figures_dir(config)
    if is_worker(config) or not is_claims_run(config) or config.option.collectonly:
        return
    if (out / "records").is_dir():
        write_environment(config, out)
        report.write_index(out)


def is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def is_claims_run(config) -> bool:
    """Whether this session runs claims: some argument names claims/ or a path inside it."""
    here = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (here / str(arg).split("::")[0]).resolve()
        if path == CLAIMS or CLAIMS in path.parents:
            return True
    return False


def figures_dir(config) -> Path:
    given = config.getoption("--figures-dir")
    if given:
        return Path(given)
    scale = config.getoption("--scale")
    return ROOT / "figures" / ("" if scale == "ci" else scale)


def expectations_on(config) -> bool:
    """Measured outcomes are strict expectations: the default seeds and settings of a scale."""
    return (
        config.getoption("--seed") == 0
        and not config.getoption("overrides")
        and not config.getoption("--seed-sets")
    )


def ledger_on(config) -> bool:
    """The syrupy ledger is checked too: expectations on, at a ledger scale (smoke, ci)."""
    return expectations_on(config) and config.getoption("--scale") in LEDGER_SCALES


def chosen_scale(config):
    """The --scale with every --set applied; a bad --set is a usage error."""
    try:
        return apply_overrides(get_scale(config.getoption("--scale")), config.getoption("overrides"))
    except OverrideError as e:
        raise pytest.UsageError(str(e)) from None


# ------------------------------------------------------------------------------ which cases, in what order
def claim_mark(item):
    return item.get_closest_marker("claim")


def claim_entry(item) -> catalogue.Claim:
    """The catalogue's entry of the claim the item's marker names; an unknown id is a usage error."""
    try:
        return catalogue.get(claim_mark(item).args[0])
    except catalogue.CatalogueError as e:
        raise pytest.UsageError(f"{item.nodeid}: {e}") from None


def case_label(item) -> str:
    callspec = getattr(item, "callspec", None)
    return report.case_label(claim_mark(item).args[0], callspec.id if callspec else "")


ORDER = pytest.StashKey[int]()  # a claim item's place in the report


def number_in_report_order(items) -> None:
    """Each claim case's place in the report (its section, then where its test stands in the
    claims module), kept on the item for its record; the modules are collected alphabetically, not
    by section. Parametrized cases keep their parameters' order (a stable sort)."""
    claims = [it for it in items if claim_mark(it) is not None]

    sections = [sec.name for sec in catalogue.load()[0]]

    def where(it):
        return sections.index(claim_entry(it).section), str(it.path), it.location[1]

    for k, it in enumerate(sorted(claims, key=where)):
        it.stash[ORDER] = k


def select_claims(config, items) -> None:
    wanted = config.getoption("--claim")
    if not wanted:
        return
    known = {m.args[0] for it in items for m in it.iter_markers("claim")}
    unknown = sorted(set(wanted) - known)
    if unknown and known:
        raise pytest.UsageError(
            f"unknown claim(s) {', '.join(unknown)}; known claims: {', '.join(sorted(known))}"
        )
    keep = [it for it in items if any(m.args[0] in wanted for m in it.iter_markers("claim"))]
    config.hook.pytest_deselected(items=[it for it in items if it not in keep])
    items[:] = keep


def longest_first(config, items) -> None:
    """Order the claim cases by what training their runs cost in the committed ci records
    (`train_seconds`: the same whether this run found them cached or not), longest first (LPT
    scheduling: xdist hands them out in this order, so the case that may run to 4x its seeds,
    cnn-depth's CNNs, starts first instead of running alone at the end). A case without a record
    keeps its place after the timed ones. The order is the same in every worker (it is read from
    committed files)."""
    if not any(claim_mark(it) is not None for it in items):
        return
    claims = [it for it in items if claim_mark(it) is not None]
    seconds = {
        r.label: float(r.train_seconds or r.seconds)
        for r in report.load_records(ROOT / "figures")
        if r.scale == "ci"
    }
    if not seconds:
        return
    lpt = sorted(claims, key=lambda it: -seconds.get(case_label(it), 0.0))  # stable: ties keep their order
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    ordered = iter(first_chunks(lpt, workers))
    items[:] = [next(ordered) if claim_mark(it) is not None else it for it in items]


def first_chunks(lpt: list, workers: int) -> list:
    """xdist's `load` scheduler hands each worker a first chunk of consecutive items (2 when there
    are 8 to 11 items per worker), then one by one. Deal the heaviest items over the first chunks
    as a snake (worker 0 gets the 1st and the 2n-th heaviest, worker 1 the 2nd and the (2n-1)-th,
    ...), so that the two heaviest cases never start on one worker; the rest follow longest first."""
    chunk = max(min(len(lpt) // max(workers, 1) // 4, len(lpt)), 2)
    if workers < 2 or len(lpt) < 2 * workers * chunk:
        return list(lpt)
    head, rest = lpt[: workers * chunk], lpt[workers * chunk :]
    deal = [[] for _ in range(workers)]
    for i, it in enumerate(head):
        row, col = divmod(i, workers)
        deal[col if row % 2 == 0 else workers - 1 - col].append(it)
    return [it for d in deal for it in d] + rest


# ------------------------------------------------------------------------------ expectations
def stability_table(config) -> dict:
    """The committed stability table of this scale (figures/stability.json, `python -m hw1.stability`)."""
    if not hasattr(config, "_hw1_stability"):
        table = report.load_json(ROOT / "figures" / "stability.json") or {}
        config._hw1_stability = table if table.get("scale") == config.getoption("--scale") else {}
    return config._hw1_stability


def split_of(config, item) -> frozenset[str] | None:
    """The outcomes a fragile case gave across seed sets, or None (stable, unmeasured, or the
    expectations are off)."""
    if not expectations_on(config) or claim_mark(item) is None:
        return None
    return ledger.fragile_split(stability_table(config), case_label(item))


def ledger_dir(test_file, scale: str) -> Path:
    """The ledger folder of a claims module at a ledger scale: __snapshots__/<scale>/<module>/."""
    return Path(test_file).parent / "__snapshots__" / scale / Path(test_file).stem


def ledger_file(item, scale: str) -> Path:
    """The case's ledger entry at a ledger scale (the file syrupy writes for the test)."""
    return ledger_dir(item.path, scale) / f"{item.name}.json"


def committed_record(label: str, scale: str) -> ClaimRecord | None:
    """The committed record of the case at `scale` (figures/, figures/<scale>/): its measurement."""
    folder = ROOT / "figures" / ("" if scale == "ci" else scale)
    if folder not in _COMMITTED:
        _COMMITTED[folder] = {r.label: r for r in report.load_records(folder) if r.scale == scale}
    return _COMMITTED[folder].get(label)


_COMMITTED: dict[Path, dict[str, ClaimRecord]] = {}


def expected_outcome(item, scale) -> tuple[str, str, bool]:
    """(outcome, evidence, measured) the case is expected to end in at `scale`, from the one place
    that pins it: the ledger at smoke and ci (a fragile case's "fragile: a | b" pins its split; its
    expected outcome is the one its committed record holds), the committed records at paper (a
    paper run that changes an outcome fails, and committing its new record is the update). The
    evidence is the committed record's summary. A case with neither is assumed reproduced."""
    if not scale.decides:
        return stats.REPRODUCED, "", scale.name in LEDGER_SCALES
    rec = committed_record(case_label(item), scale.name)
    evidence = rec.verdict.summary() if rec is not None and rec.verdict else ""
    if scale.name not in LEDGER_SCALES:
        return (
            (rec.status, evidence, True) if rec is not None and rec.verdict else (stats.REPRODUCED, "", False)
        )
    pinned = (report.load_json(ledger_file(item, scale.name)) or {}).get("verdict")
    if pinned is None:
        return stats.REPRODUCED, "", False
    split = ledger.split_of_pinned(pinned)
    if split:
        return (rec.status if rec is not None and rec.status in split else sorted(split)[0]), evidence, True
    return pinned, evidence, True


def mark_expected_failures(config, items) -> None:
    """A pinned outcome other than 'reproduced' at this scale becomes an xfail: it must keep
    failing the same way (ClaimNotReproduced). With the ledger on it is strict (a flip to
    'reproduced' fails the run); under --seed / --set it is not, and flips are listed instead.
    A fragile case whose measured split holds 'reproduced' may pass on another machine: its xfail
    is not strict (the outcome is still checked against the split in ClaimFiler)."""
    scale, strict = config._hw1_scale, expectations_on(config)
    for item in items:
        if claim_mark(item) is None:
            continue
        outcome, evidence, _ = expected_outcome(item, scale)
        if outcome != stats.REPRODUCED:
            split = split_of(config, item) or frozenset()
            item.add_marker(
                pytest.mark.xfail(
                    strict=strict and "reproduced" not in split,
                    raises=ClaimNotReproduced,
                    reason=f"{outcome}: as measured: {evidence}",
                )
            )


# ------------------------------------------------------------------------------ the ledger
class _Ledger(JSONSnapshotExtension):
    """syrupy JSON snapshots in claims/__snapshots__/<scale>/<module>/ (one folder per scale).

    syrupy still drops the smoke snapshots of tests that *pass* during a ci update, so the README
    says to update ci first, then smoke (where every test is skipped and nothing is dropped)."""

    scale = ""

    @classmethod
    def dirname(cls, *, test_location) -> str:
        return str(ledger_dir(test_location.filepath, cls.scale))


# One extension class per ledger scale, made once (syrupy's extensions are classes).
LEDGERS = {s: type(f"Ledger_{s}", (_Ledger,), {"scale": s}) for s in LEDGER_SCALES}


# ------------------------------------------------------------------------------ filing a case
def new_record(item, scale, config) -> ClaimRecord:
    """The record of the claim case `item` at `scale`, before anything is measured."""
    if claim_mark(item) is None:
        raise pytest.UsageError(f"{item.nodeid} uses `claim` without @pytest.mark.claim")
    entry = claim_entry(item)
    callspec = getattr(item, "callspec", None)
    expected, evidence, _ = expected_outcome(item, scale)
    return ClaimRecord(
        claim=entry.id,
        case=callspec.id if callspec else "",
        section=entry.section,
        statement=entry.statement,
        scale=scale.name,
        seeds=[],
        order=item.stash.get(ORDER, 0),
        expected=expected,
        expected_evidence=evidence,
        config=scale.to_dict(),
        overrides=list(scale.overrides),
        seed_offset=config.getoption("--seed"),
        ledger=ledger_on(config),
        seed_sets=tuple(config.getoption("--seed-sets") or ()),
        departures=departures(scale, entry.id, case=callspec.id if callspec else ""),
    )


def is_measured(item, scale) -> bool:
    """The case has a pinned outcome at this scale: a ledger entry, or a committed paper record."""
    return expected_outcome(item, scale)[2]


def declared_figures(item) -> tuple[str, ...]:
    """The figure files the case `item` writes: its catalogue entry's `files`, each "{param}"
    filled from the case's parameters."""
    return claim_entry(item).figure_files(item.callspec.params if hasattr(item, "callspec") else {})


class ClaimFiler:
    """Files a claim case: decides it over staged seeds, files its figures, its outcome and its
    ledger entry, then asserts the outcome.

    Usage in a claim test::

        def measure(s, alpha):            # one seed set -> (Verdict at level alpha, payload)
            runs = fit_runs(cfg, ..., s, device)
            return stats.trend_test(..., alpha=alpha), runs
        verdict, s, runs = claim.stage(measure, cfg.seeds)   # the harness picks the seed count
        claim.figure("function-depth-sinc-loss", [Panel(...)])
        claim.conclude(verdict, s)        # records; raises unless the outcome is as expected
    """

    @classmethod
    def for_item(cls, item, scale, config, snapshot) -> ClaimFiler:
        """The filer of the claim case `item` (the `claim` fixture), its record started."""
        cache.reset_train_seconds()
        return cls(
            new_record(item, scale, config),
            figures_dir(config),
            scale,
            snapshot,
            config.getoption("--seed"),
            expectations_on(config),
            is_measured(item, scale),
            split_of(config, item),
            declared_figures(item),
        )

    def close(self) -> None:
        """After the test: a case that stopped before its verdict is filed as such."""
        if self.record.verdict is None:
            self.record.note = "the test stopped before reaching a verdict (see the pytest log)"
            self.record.save(self.out)

    def __init__(
        self,
        record,
        out: Path,
        scale,
        snapshot,
        offset: int,
        strict: bool,
        measured: bool,
        split: frozenset[str] | None = None,
        figures: tuple[str, ...] | None = None,
    ):
        self.record, self.out = record, out
        self.declared = figures  # the figure files this case may write (None: not checked)
        self.split = split  # a fragile case's measured outcomes (figures/stability.json), else None
        self.scale, self.offset = scale, offset
        self.snapshot = snapshot  # the ledger fixture (syrupy), or None when the ledger is off
        self.strict = strict  # default seeds and settings: outcomes must match the expectations
        self.measured = measured  # this case has a measured expectation (or a ledger) at this scale
        self.structures: dict[str, dict] = {}
        self.staging = None

    def stage(self, measure, base: int):
        """Run `measure` on the scale's stages of seeds (base, 2 base, 4 base at ci) until the
        case is decided, futile, or at its last stage. -> (verdict, seeds, payload)."""
        sets = self.record.seed_sets
        if sets:  # the union of the sets' seeds, stage by stage
            base, pick = base * len(sets), (lambda n: pooled_seeds(n, sets))
        else:
            pick = lambda n: seeds_for(n, self.offset)
        self.staging = stats.staged(measure, base, self.scale.stages, alpha=self.scale.alpha, seeds_for=pick)
        return self.staging.verdict, self.staging.seeds, self.staging.payload

    def figure(self, name: str, panels, suptitle: str = "") -> Path:
        """Draw panels side by side (plots.draw) into `name`.png and file the figure."""
        return self.draw(name, plots.draw, panels, suptitle)

    def draw(self, name: str, producer, *args, **kwargs) -> Path:
        """File a figure drawn by another producer: producer(png, *args, **kwargs) -> its structure
        (e.g. plots.draw_trajectories, plots.draw_contour)."""
        if self.declared is not None and name not in self.declared:
            raise ValueError(
                f"figure {name!r} is not among this case's declared figures {list(self.declared)}: "
                "name it in the claim's `files` in claims/catalogue.toml (one producer per figure file)"
            )
        png = self.out / f"{name}.png"
        self.structures[name] = producer(png, *args, **kwargs)
        self.record.figures.append(FigureFile(name=name, png=png.name, data=png.with_suffix(".json").name))
        return png

    def _file_record(self, verdict, seeds, note) -> None:
        self.record.seeds = list(seeds)
        self.record.note = note
        if self.staging is not None:
            self.record.stages, self.record.reason = self.staging.stages, self.staging.reason
            self.record.stop = self.staging.stop
        self.record.train_seconds = cache.train_seconds()
        self.record.differs_from_ledger = (
            self.scale.decides and self.measured and verdict.status != self.record.expected
        )
        self.record.within_fragile_split = self.record.differs_from_ledger and self._within_split(verdict)
        self.record.conclude(verdict)
        self.record.save(self.out)

    def conclude(self, verdict, seeds: list[int], note: str = "") -> None:
        if not self.scale.decides:
            verdict = stats.inconclusive(
                f"{self.scale.name} scale only exercises the code and decides nothing "
                f"(it computed: {verdict.summary()})",
                test=verdict.test,
                n=verdict.n,
            )
        self._file_record(verdict, seeds, note)
        if self.snapshot is not None:  # only what a machine cannot change: hw1.ledger
            assert (
                ledger.entry(
                    self.record.claim,
                    self.record.case,
                    verdict.status,
                    verdict.test,
                    self.structures,
                    self.split,
                )
                == self.snapshot
            )
        if not self.scale.decides:
            pytest.skip(f"{self.scale.name} scale decides nothing: verdict recorded as inconclusive")
        self._assert_outcome(verdict)

    def _within_split(self, verdict) -> bool:
        """The outcome differs from the ledger's, but this fragile case gave both in its seed sets."""
        return bool(self.split) and {verdict.status, self.record.expected} <= self.split

    def _assert_outcome(self, verdict) -> None:
        expected, got = self.record.expected, verdict.status
        what = f"{self.record.claim} [{self.record.case}]: {verdict.summary()}\n{verdict.detail}"
        if got == stats.REPRODUCED:
            return  # passes, or XPASS(strict) where the expectation was another outcome
        strict = self.strict and self.measured
        if got == expected or expected == stats.REPRODUCED and strict and not self._within_split(verdict):
            raise ClaimNotReproduced(what)
        if strict and self._within_split(verdict):  # listed in the summary and the index, not failed
            raise ClaimNotReproduced(
                f"fragile case, outcome within its measured split ({', '.join(sorted(self.split))}): {what}"
            )
        if not strict:  # fresh seeds or settings, or a case never measured at this scale
            why = "expected" if self.measured else "not yet measured at this scale; assumed"
            if expected == stats.REPRODUCED:
                pytest.xfail(f"outcome differs from the expectation ({why} reproduced): {got}")
            raise ClaimNotReproduced(f"outcome differs from the expectation ({why} {expected}): {what}")
        raise OutcomeChanged(f"expected {expected!r} at this scale, got {got!r}: {what}")


# ------------------------------------------------------------------------------ the end of a session
def session_records(config) -> list[ClaimRecord]:
    started = getattr(config, "_hw1_started", 0.0)
    return [r for r in report.load_records(figures_dir(config)) if r.started >= started and r.verdict]


def summary(config) -> list[str]:
    """The terminal summary's lines: one per case, then the outcomes that differ from the ledger."""
    records = session_records(config)
    if not records:
        return []
    lines = report.summary_lines(records)
    differ = [
        r for r in records if r.differs_from_ledger and (not ledger_on(config) or r.within_fragile_split)
    ]
    if differ:
        lines.append("")
        lines.append(
            f"{len(differ)} fragile case(s) ended in another outcome of their measured split "
            "(figures/STABILITY.md); not an error:"
            if ledger_on(config)
            else f"{len(differ)} outcome(s) differ from the ledger (the ledger check is off under "
            "--seed/--set; these are results, not errors):"
        )
        lines += [f"  {r.label}: {r.status} (ledger: {r.expected})" for r in differ]
    return lines + [f"report: {figures_dir(config) / 'INDEX.md'}"]


def write_environment(config, out: Path) -> None:
    """out/environment.json: the run's scale, options, device, CPU and versions."""
    scale, device = config._hw1_scale, config._hw1_device
    env = {
        "scale": scale.name,
        "seed_offset": config.getoption("--seed"),
        "overrides": list(scale.overrides),
        "ledger_check": ledger_on(config),
        "device": str(device),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "numerics": numerics(),
    }  # CPU, torch's vector capability, BLAS, versions
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
    report.write_json(out / "environment.json", env)
