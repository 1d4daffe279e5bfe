"""The claims harness: options, fixtures, expected verdicts, the report index and the ledger.

Options (one group, `hw1`): --scale smoke|ci|paper (default ci), --seed N (shifts every seed),
--set SECTION.FIELD=VALUE (repeatable), --device auto|cpu|cuda[:N], --claim ID (repeatable),
--figures-dir DIR, --no-run-cache, --clear-run-cache.

The ledger check (syrupy snapshots of each case's outcome, and strict expectations) is on at the
default seeds and settings of a ledger scale; under --seed or --set it is off, and an outcome that
differs from the ledger is listed in the terminal summary and the index instead of failing the run.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

ROOT = Path(__file__).parent
# Progress lines (what trains where, epoch, ETA), also under xdist: --progress-every SECONDS, 0 = off.
pytest_plugins = ["claims.progress_plugin"]
LEDGER_SCALES = ("smoke", "ci")  # scales whose verdict ledger is committed (claims/__snapshots__)


class ClaimNotReproduced(AssertionError):
    """The claim's outcome is not 'reproduced' (strict xfail cases expect exactly this)."""


class OutcomeChanged(AssertionError):
    """A case expected to end in one non-reproduced outcome ended in another (e.g. 'not shown'
    instead of 'contradicted'): not the failure its strict xfail expects, so the run fails."""


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


def pytest_addoption(parser):
    g = parser.getgroup("hw1", "hw1 claims")
    g.addoption("--scale", choices=("smoke", "ci", "paper"), default="ci",
                help="smoke: seconds, decides nothing; ci (default): CPU scale that decides every "
                     "claim; paper: the report's settings (GPU)")
    g.addoption("--seed", type=_seed, default=0, help="shift every seed by N to rerun on fresh seeds "
                "(the ledger check is off; outcomes that differ from it are listed, not failed)")
    g.addoption("--seed-sets", type=_seed_sets, default=None, metavar="OFFSETS",
                help="pool disjoint seed sets, e.g. 0,1000,2000: each stage uses the first seeds of "
                     "every set (k sets: k x the base count); the pooled verdict of hw1.stability")
    g.addoption("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", dest="overrides",
                help="override one config field of the scale, e.g. --set fit.epochs=5000 (repeatable; "
                     "sections fit, mnist, opt, gen, stages; the ledger check is off)")
    g.addoption("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    g.addoption("--figures-dir", default=None,
                help="where the report is written (default: figures/, figures/smoke/ at smoke scale)")
    g.addoption("--claim", action="append", default=[], metavar="ID",
                help="run only this claim (repeatable), e.g. --claim function-depth")
    g.addoption("--no-run-cache", action="store_true", help="train everything afresh, store nothing")
    g.addoption("--clear-run-cache", action="store_true", help="empty the run cache before running")


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def figures_dir(config) -> Path:
    given = config.getoption("--figures-dir")
    if given:
        return Path(given)
    scale = config.getoption("--scale")
    return ROOT / "figures" / ("" if scale == "ci" else scale)


def expectations_on(config) -> bool:
    """Measured outcomes are strict expectations: the default seeds and settings of a scale."""
    return (config.getoption("--seed") == 0 and not config.getoption("overrides")
            and not config.getoption("--seed-sets"))


def ledger_on(config) -> bool:
    """The syrupy ledger is checked too: expectations on, at a ledger scale (smoke, ci)."""
    return expectations_on(config) and config.getoption("--scale") in LEDGER_SCALES


def _scale(config):
    from hw1.config import OverrideError, apply_overrides, get_scale

    try:
        return apply_overrides(get_scale(config.getoption("--scale")), config.getoption("overrides"))
    except OverrideError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_configure(config):
    import torch

    from hw1 import cache, report
    from hw1.train import DeviceError, resolve_device

    config.addinivalue_line("markers", "claim(id, section, statement): a claim of the report")
    config.addinivalue_line("markers", "expect(scale, outcome, evidence): the outcome measured at that "
                            "scale (reproduced, contradicted, not shown, inconclusive), with its numbers")
    config._hw1_scale = _scale(config)  # a bad --set is a usage error before anything runs
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
    if config.getoption("--no-run-cache"):
        os.environ["HW1_NO_CACHE"] = "1"
    if _is_worker(config):
        return
    if config.getoption("--clear-run-cache"):
        cache.clear()
    out = figures_dir(config)
    if any(str(a).startswith("claims") or "claims/" in str(a) for a in config.args):
        report.drop_other_runs(out, config.getoption("--scale"), config.getoption("--seed"), config.getoption("overrides"))


@pytest.fixture(scope="session")
def scale(pytestconfig):
    """The frozen config of the chosen scale with any --set applied, e.g. `scale.fit.epochs`."""
    return pytestconfig._hw1_scale


@pytest.fixture(scope="session")
def device(pytestconfig):
    return pytestconfig._hw1_device


def _select_claims(config, items) -> None:
    wanted = config.getoption("--claim")
    if not wanted:
        return
    known = {m.args[0] for it in items for m in it.iter_markers("claim")}
    unknown = sorted(set(wanted) - known)
    if unknown and known:
        raise pytest.UsageError(f"unknown claim(s) {', '.join(unknown)}; known claims: {', '.join(sorted(known))}")
    keep = [it for it in items if any(m.args[0] in wanted for m in it.iter_markers("claim"))]
    config.hook.pytest_deselected(items=[it for it in items if it not in keep])
    items[:] = keep


def _longest_first(config, items) -> None:
    """Order the claim cases by what training their runs cost in the committed ci records
    (`train_seconds`: the same whether this run found them cached or not), longest first (LPT
    scheduling: xdist hands them out in this order, so the case that may run to 4x its seeds,
    cnn-depth's CNNs, starts first instead of running alone at the end). A case without a record
    keeps its place after the timed ones. The order is the same in every worker (it is read from
    committed files)."""
    from hw1 import report

    claims = [it for it in items if it.get_closest_marker("claim") is not None]
    if not claims:
        return
    seconds = {}
    for r in report.load_records(ROOT / "figures"):
        if r.get("scale") == "ci":
            seconds[report.case_label(r)] = float(r.get("train_seconds") or r.get("seconds") or 0.0)
    if not seconds:
        return
    rank = {id(it): -seconds.get(_case_label(it), 0.0) for it in claims}
    lpt = sorted(claims, key=lambda it: rank[id(it)])  # stable: ties keep their order
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    ordered = iter(first_chunks(lpt, workers))
    items[:] = [next(ordered) if it.get_closest_marker("claim") is not None else it for it in items]


def first_chunks(lpt: list, workers: int) -> list:
    """xdist's `load` scheduler hands each worker a first chunk of consecutive items (2 when there
    are 8 to 11 items per worker), then one by one. Deal the heaviest items over the first chunks
    as a snake (worker 0 gets the 1st and the 2n-th heaviest, worker 1 the 2nd and the (2n-1)-th,
    ...), so that the two heaviest cases never start on one worker; the rest follow longest first."""
    chunk = max(min(len(lpt) // max(workers, 1) // 4, len(lpt)), 2)
    if workers < 2 or len(lpt) < 2 * workers * chunk:
        return list(lpt)
    head, rest = lpt[:workers * chunk], lpt[workers * chunk:]
    deal = [[] for _ in range(workers)]
    for i, it in enumerate(head):
        row, col = divmod(i, workers)
        deal[col if row % 2 == 0 else workers - 1 - col].append(it)
    return [it for d in deal for it in d] + rest


def pytest_collection_modifyitems(config, items):
    _select_claims(config, items)
    _longest_first(config, items)
    # A measured outcome other than 'reproduced' at this scale becomes an xfail: it must keep
    # failing the same way (ClaimNotReproduced). With the ledger on it is strict (a flip to
    # 'reproduced' fails the run); under --seed / --set it is not, and flips are listed instead.
    # A fragile case whose measured split holds 'reproduced' may pass on another machine: its xfail
    # is not strict (the outcome is still checked against the split in ClaimFiler).
    scale, strict = config.getoption("--scale"), expectations_on(config)
    for item in items:
        for mark in item.iter_markers("expect"):
            if mark.args[0] == scale and mark.args[1] != "reproduced":
                split = _split_of(config, item) or frozenset()
                item.add_marker(pytest.mark.xfail(strict=strict and "reproduced" not in split,
                                                  raises=ClaimNotReproduced,
                                                  reason=f"{mark.args[1]}: " + mark.kwargs.get("evidence", "")))


def _stability(config) -> dict:
    """The committed stability table of this scale (figures/stability.json, `python -m hw1.stability`)."""
    if not hasattr(config, "_hw1_stability"):
        from hw1 import report

        table = report._load_json(ROOT / "figures" / "stability.json") or {}
        config._hw1_stability = table if table.get("scale") == config.getoption("--scale") else {}
    return config._hw1_stability


def _case_label(item) -> str:
    from hw1 import report

    callspec = getattr(item, "callspec", None)
    return report.case_label({"claim": item.get_closest_marker("claim").args[0],
                              "case": callspec.id if callspec else ""})


def _split_of(config, item) -> frozenset[str] | None:
    """The outcomes a fragile case gave across seed sets, or None (stable, unmeasured, or the
    expectations are off)."""
    from hw1 import ledger

    if not expectations_on(config) or item.get_closest_marker("claim") is None:
        return None
    return ledger.fragile_split(_stability(config), _case_label(item))


def _ledger_extension(scale: str):
    """syrupy JSON snapshots kept in claims/__snapshots__/<scale>/, one folder per scale.

    syrupy still drops the smoke snapshots of tests that *pass* during a ci update, so the README
    says to update ci first, then smoke (where every test is skipped and nothing is dropped)."""
    from syrupy.extensions.json import JSONSnapshotExtension

    class Ledger(JSONSnapshotExtension):
        @classmethod
        def dirname(cls, *, test_location) -> str:
            return str(Path(test_location.filepath).parent / "__snapshots__" / scale / test_location.basename)

    return Ledger


_LEDGER = {scale: _ledger_extension(scale) for scale in LEDGER_SCALES}  # one class per scale


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

    def __init__(self, record, out: Path, scale, snapshot, ledger: bool, offset: int, strict: bool,
                 measured: bool, split: frozenset[str] | None = None):
        self.record, self.out = record, out
        self.split = split  # a fragile case's measured outcomes (figures/stability.json), else None
        self.scale, self.snapshot, self.ledger, self.offset = scale, snapshot, ledger, offset
        self.strict = strict  # default seeds and settings: outcomes must match the expectations
        self.measured = measured  # this case has a measured expectation (or a ledger) at this scale
        self.structures: dict[str, dict] = {}
        self.staging = None

    def stage(self, measure, base: int):
        """Run `measure` on the scale's stages of seeds (base, 2 base, 4 base at ci) until the
        case is decided, futile, or at its last stage. -> (verdict, seeds, payload)."""
        from hw1 import stats
        from hw1.config import pooled_seeds, seeds_for

        sets = self.record.seed_sets
        if sets:  # the union of the sets' seeds, stage by stage
            self.staging = stats.staged(measure, base * len(sets), self.scale.stages, alpha=self.scale.alpha,
                                        seeds_for=lambda n: pooled_seeds(n, sets))
        else:
            self.staging = stats.staged(measure, base, self.scale.stages, alpha=self.scale.alpha,
                                        seeds_for=lambda n: seeds_for(n, self.offset))
        return self.staging.verdict, self.staging.seeds, self.staging.payload

    def figure(self, name: str, panels, suptitle: str = "") -> Path:
        from hw1 import plots

        png = self.out / f"{name}.png"
        self.structures[name] = plots.draw(png, panels, suptitle)
        self.record.figures.append({"name": name, "png": png.name,
                                    "data": png.with_suffix(".json").name})
        return png

    def _file_record(self, verdict, seeds, note) -> None:
        from hw1 import cache

        self.record.seeds = list(seeds)
        self.record.note = note
        if self.staging is not None:
            self.record.stages, self.record.stop = self.staging.stages, self.staging.stop
        self.record.train_seconds = getattr(cache, "train_seconds", lambda: None)()
        self.record.differs_from_ledger = (self.scale.decides and self.measured
                                           and verdict.status != self.record.expected)
        self.record.within_fragile_split = bool(self.record.differs_from_ledger and self._within_split(verdict))
        self.record.conclude(verdict)
        self.record.save(self.out)

    def conclude(self, verdict, seeds: list[int], note: str = "") -> None:
        from hw1 import stats

        if not self.scale.decides:
            verdict = stats.inconclusive(
                f"{self.scale.name} scale only exercises the code and decides nothing "
                f"(it computed: {verdict.summary()})", test=verdict.test, n=verdict.n)
        self._file_record(verdict, seeds, note)
        if self.ledger:  # only what a machine cannot change: hw1.ledger
            from hw1 import ledger

            entry = ledger.entry(self.record.claim, self.record.case, verdict.status, verdict.test,
                                 self.structures, self.split)
            assert entry == self.snapshot(extension_class=_LEDGER[self.scale.name])
        if not self.scale.decides:
            pytest.skip(f"{self.scale.name} scale decides nothing: verdict recorded as inconclusive")
        self._assert_outcome(verdict)

    def _within_split(self, verdict) -> bool:
        """The outcome differs from the ledger's, but this fragile case gave both in its seed sets."""
        return bool(self.split) and {verdict.status, self.record.expected} <= self.split

    def _assert_outcome(self, verdict) -> None:
        from hw1 import stats

        expected, got = self.record.expected, verdict.status
        what = f"{self.record.claim} [{self.record.case}]: {verdict.summary()}\n{verdict.detail}"
        if got == stats.REPRODUCED:
            return  # passes, or XPASS(strict) where the expectation was another outcome
        strict = self.strict and self.measured
        if got == expected or expected == stats.REPRODUCED and strict and not self._within_split(verdict):
            raise ClaimNotReproduced(what)
        if strict and self._within_split(verdict):  # listed in the summary and the index, not failed
            raise ClaimNotReproduced(f"fragile case, outcome within its measured split "
                                     f"({', '.join(sorted(self.split))}): {what}")
        if not strict:  # fresh seeds or settings, or a case never measured at this scale
            why = "expected" if self.measured else "not yet measured at this scale; assumed"
            if expected == stats.REPRODUCED:
                pytest.xfail(f"outcome differs from the expectation ({why} reproduced): {got}")
            raise ClaimNotReproduced(f"outcome differs from the expectation ({why} {expected}): {what}")
        raise OutcomeChanged(f"expected {expected!r} at this scale, got {got!r}: {what}")


@pytest.fixture
def claim(request, scale, pytestconfig, snapshot):
    """The filer of the claim named by the test's @pytest.mark.claim(id, section=, statement=)."""
    from hw1 import cache
    from hw1.config import departures
    from hw1.report import ClaimRecord

    mark = request.node.get_closest_marker("claim")
    if mark is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `claim` without @pytest.mark.claim")
    callspec = getattr(request.node, "callspec", None)
    expected, evidence, measured = "reproduced", "", scale.name in LEDGER_SCALES
    for m in request.node.iter_markers("expect"):
        if m.args[0] == scale.name:
            expected, evidence, measured = m.args[1], m.kwargs.get("evidence", ""), True
    record = ClaimRecord(claim=mark.args[0], case=callspec.id if callspec else "",
                         section=mark.kwargs["section"], statement=mark.kwargs["statement"],
                         scale=scale.name, seeds=[], expected=expected, expected_evidence=evidence,
                         config=scale.to_dict(), overrides=list(scale.overrides),
                         seed_offset=pytestconfig.getoption("--seed"), ledger=ledger_on(pytestconfig),
                         seed_sets=tuple(pytestconfig.getoption("--seed-sets") or ()),
                         departures=departures(scale, mark.args[0]))
    getattr(cache, "reset_train_seconds", lambda: None)()
    out = figures_dir(pytestconfig)
    filer = ClaimFiler(record, out, scale, snapshot, ledger_on(pytestconfig), pytestconfig.getoption("--seed"),
                       expectations_on(pytestconfig), measured, _split_of(pytestconfig, request.node))
    yield filer
    if record.verdict is None:  # the test failed before its verdict: say so in the report
        record.note = "the test stopped before reaching a verdict (see the pytest log)"
        record.save(out)


def _session_records(config) -> list[dict]:
    from hw1 import report

    started = getattr(config, "_hw1_started", 0.0)
    return [r for r in report.load_records(figures_dir(config)) if r.get("started", 0) >= started]


def pytest_sessionstart(session):
    import time

    session.config._hw1_started = time.time()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _is_worker(config) or not any("claims" in str(a) for a in config.args):
        return
    from hw1 import report

    records = [r for r in _session_records(config) if r.get("verdict")]
    if not records:
        return
    terminalreporter.section("hw1 claim outcomes")
    for line in report.summary_lines(records):
        terminalreporter.write_line(line)
    differ = [r for r in records if r.get("differs_from_ledger")
              and (not ledger_on(config) or r.get("within_fragile_split"))]
    if differ and ledger_on(config):
        terminalreporter.write_line("")
        terminalreporter.write_line(f"{len(differ)} fragile case(s) ended in another outcome of their "
                                    "measured split (figures/STABILITY.md); not an error:")
        for r in differ:
            terminalreporter.write_line(f"  {report.case_label(r)}: {r['verdict']['status']} "
                                        f"(ledger: {r['expected']})")
    elif differ:
        terminalreporter.write_line("")
        terminalreporter.write_line(f"{len(differ)} outcome(s) differ from the ledger (the ledger check "
                                    "is off under --seed/--set; these are results, not errors):")
        for r in differ:
            terminalreporter.write_line(f"  {report.case_label(r)}: {r['verdict']['status']} "
                                        f"(ledger: {r['expected']})")
    terminalreporter.write_line(f"report: {figures_dir(config) / 'INDEX.md'}")


def pytest_sessionfinish(session, exitstatus):
    if _is_worker(session.config):
        return
    from hw1 import report

    out = figures_dir(session.config)
    if (out / "records").is_dir():
        scale = session.config._hw1_scale
        env = {"scale": scale.name, "seed_offset": session.config.getoption("--seed"),
               "overrides": list(scale.overrides), "ledger_check": ledger_on(session.config),
               "device": str(session.config._hw1_device), "python": platform.python_version(),
               "machine": platform.machine(), "cpus": os.cpu_count()}
        import torch

        from hw1.provenance import numerics

        env["torch"] = torch.__version__
        env["numerics"] = numerics()  # CPU, torch's vector capability, BLAS, versions
        if session.config._hw1_device.type == "cuda":
            env["device_name"] = torch.cuda.get_device_name(session.config._hw1_device)
        (out / "environment.json").write_text(json.dumps(env, indent=1))
        report.write_index(out)
