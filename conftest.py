"""The claims harness: options, fixtures, expected verdicts, the report index and the ledger.

Options (one group, `hw1`): --scale smoke|ci|paper (default ci), --seed N (shifts every seed),
--device auto|cpu|cuda[:N], --claim ID (repeatable), --figures-dir DIR, --no-run-cache,
--clear-run-cache.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

ROOT = Path(__file__).parent
LEDGER_SCALES = ("smoke", "ci")  # scales whose verdict ledger is committed (claims/__snapshots__)


class ClaimNotReproduced(AssertionError):
    """The claim's verdict is not 'reproduced' (strict xfail cases expect exactly this)."""


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
    g.addoption("--seed", type=_seed, default=0, help="shift every seed by N to rerun on fresh seeds")
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
    return ROOT / "figures" / ("smoke" if config.getoption("--scale") == "smoke" else "")


def pytest_configure(config):
    import torch

    from hw1 import cache, report
    from hw1.train import DeviceError, resolve_device

    config.addinivalue_line("markers", "claim(id, section, statement): a claim of the report")
    config.addinivalue_line("markers", "expect(scale, verdict, evidence): a measured non-reproduction")
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
        report.drop_other_scales(out, config.getoption("--scale"))


@pytest.fixture(scope="session")
def scale(pytestconfig):
    """The frozen config of the chosen scale, e.g. `scale.fit.epochs`."""
    from hw1.config import get_scale

    return get_scale(pytestconfig.getoption("--scale"))


@pytest.fixture(scope="session")
def seeds(pytestconfig):
    """seeds(n) -> the n seeds of a run, shifted by --seed. Usage: `seeds(scale.fit.seeds)`."""
    from hw1.config import seeds_for

    offset = pytestconfig.getoption("--seed")
    return lambda n: seeds_for(n, offset)


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


def pytest_collection_modifyitems(config, items):
    _select_claims(config, items)
    # A measured non-reproduction at this scale becomes a strict xfail: it must keep failing the
    # same way (ClaimNotReproduced), and a flip to 'reproduced' fails the run.
    scale = config.getoption("--scale")
    for item in items:
        for mark in item.iter_markers("expect"):
            if mark.args[0] == scale and mark.args[1] != "reproduced":
                item.add_marker(pytest.mark.xfail(strict=True, raises=ClaimNotReproduced,
                                                  reason=mark.kwargs.get("evidence", mark.args[1])))


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


class ClaimFiler:
    """Files a claim case: its figures, its verdict, its ledger entry, then asserts the verdict.

    Usage in a claim test::

        claim.figure("function-depth-sinc-loss", [Panel(...)])
        claim.conclude(verdict, seeds)   # records; raises ClaimNotReproduced unless reproduced
    """

    def __init__(self, record, out: Path, scale, snapshot, ledger: bool):
        self.record, self.out = record, out
        self.scale, self.snapshot, self.ledger = scale, snapshot, ledger
        self.structures: dict[str, dict] = {}

    def figure(self, name: str, panels, suptitle: str = "") -> Path:
        from hw1 import plots

        png = self.out / f"{name}.png"
        self.structures[name] = plots.draw(png, panels, suptitle)
        self.record.figures.append({"name": name, "png": png.name,
                                    "data": png.with_suffix(".json").name})
        return png

    def conclude(self, verdict, seeds: list[int], note: str = "") -> None:
        from hw1 import stats

        self.record.seeds = list(seeds)
        if not self.scale.decides:
            verdict = stats.inconclusive(
                f"{self.scale.name} scale only exercises the code and decides nothing "
                f"(it computed: {verdict.summary()})", test=verdict.test, n=verdict.n)
        self.record.note = note
        self.record.conclude(verdict)
        self.record.save(self.out)
        if self.ledger:
            entry = {"claim": self.record.claim, "case": self.record.case, "verdict": verdict.status,
                     "test": verdict.test, "figures": self.structures}
            assert entry == self.snapshot(extension_class=_ledger_extension(self.scale.name))
        if not self.scale.decides:
            pytest.skip(f"{self.scale.name} scale decides nothing: verdict recorded as inconclusive")
        if verdict.status != stats.REPRODUCED:
            raise ClaimNotReproduced(f"{self.record.claim} [{self.record.case}]: {verdict.summary()}\n"
                                     f"{verdict.detail}")


@pytest.fixture
def claim(request, scale, seeds, pytestconfig, snapshot):
    """The filer of the claim named by the test's @pytest.mark.claim(id, section=, statement=)."""
    from hw1.report import ClaimRecord

    mark = request.node.get_closest_marker("claim")
    if mark is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `claim` without @pytest.mark.claim")
    callspec = getattr(request.node, "callspec", None)
    expected, evidence = "reproduced", ""
    for m in request.node.iter_markers("expect"):
        if m.args[0] == scale.name:
            expected, evidence = m.args[1], m.kwargs.get("evidence", "")
    record = ClaimRecord(claim=mark.args[0], case=callspec.id if callspec else "",
                         section=mark.kwargs["section"], statement=mark.kwargs["statement"],
                         scale=scale.name, seeds=[], expected=expected, expected_evidence=evidence,
                         config=scale.to_dict())
    out = figures_dir(pytestconfig)
    ledger = scale.name in LEDGER_SCALES and pytestconfig.getoption("--seed") == 0
    filer = ClaimFiler(record, out, scale, snapshot, ledger)
    yield filer
    if record.verdict is None:  # the test failed before its verdict: say so in the report
        record.note = "the test stopped before reaching a verdict (see the pytest log)"
        record.save(out)


def pytest_sessionfinish(session, exitstatus):
    if _is_worker(session.config):
        return
    from hw1 import report

    out = figures_dir(session.config)
    if (out / "records").is_dir():
        report.write_index(out)
        (out / "environment.json").write_text(json.dumps({
            "scale": session.config.getoption("--scale"), "seed_offset": session.config.getoption("--seed"),
            "device": str(session.config._hw1_device), "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count()}, indent=1))
