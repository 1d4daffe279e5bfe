"""pytest's hooks and fixtures for the claims; what they do lives in claims/harness.py.

Options (`pytest claims/ --help`, group hw1): --scale, --seed, --seed-sets, --set, --device,
--claim, --figures-dir, --no-run-cache, --clear-run-cache, --progress-every.
"""

from __future__ import annotations

import os
import time

import pytest
import torch

from claims import harness
from hw1 import cache, report
from hw1.train import DeviceError, resolve_device

# Progress lines (what trains where, epoch, ETA), also under xdist: --progress-every SECONDS, 0 = off.
pytest_plugins = ["claims.progress_plugin"]


def pytest_addoption(parser):
    harness.add_options(parser)


def pytest_configure(config):
    config.addinivalue_line("markers", "claim(id, section, statement): a claim of the report")
    config.addinivalue_line(
        "markers",
        "expect(scale, outcome, evidence): the outcome measured at that "
        "scale (reproduced, contradicted, not shown, inconclusive), with its numbers",
    )
    config._hw1_scale = harness.chosen_scale(config)  # a bad --set is a usage error before anything runs
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
    if harness.is_worker(config):
        return
    if config.getoption("--clear-run-cache"):
        cache.clear()
    if harness.is_claims_run(config):
        report.drop_other_runs(
            harness.figures_dir(config),
            config.getoption("--scale"),
            config.getoption("--seed"),
            config.getoption("overrides"),
        )


def pytest_collection_modifyitems(config, items):
    harness.number_in_report_order(items)
    harness.select_claims(config, items)
    harness.longest_first(config, items)
    harness.mark_expected_failures(config, items)


@pytest.fixture(scope="session")
def scale(pytestconfig):
    """The frozen config of the chosen scale with any --set applied, e.g. `scale.fit.epochs`."""
    return pytestconfig._hw1_scale


@pytest.fixture(scope="session")
def device(pytestconfig):
    """The torch device the claims train on (--device; CUDA when present)."""
    return pytestconfig._hw1_device


@pytest.fixture
def ledger(snapshot, scale, pytestconfig):
    """The case's ledger entry (syrupy, claims/__snapshots__/<scale>/), or None when the ledger is
    off (--seed, --set, --seed-sets, paper scale). Usage: `assert entry == ledger`."""
    if not harness.ledger_on(pytestconfig):
        return None
    return snapshot.use_extension(harness.LEDGERS[scale.name])


@pytest.fixture
def claim(request, scale, pytestconfig, ledger):
    """The filer of the claim named by the test's @pytest.mark.claim(id, section=, statement=)."""
    record = harness.new_record(request.node, scale, pytestconfig)
    cache.reset_train_seconds()
    out = harness.figures_dir(pytestconfig)
    yield harness.ClaimFiler(
        record,
        out,
        scale,
        ledger,
        pytestconfig.getoption("--seed"),
        harness.expectations_on(pytestconfig),
        harness.is_measured(request.node, scale),
        harness.split_of(pytestconfig, request.node),
    )
    if record.verdict is None:  # the test failed before its verdict: say so in the report
        record.note = "the test stopped before reaching a verdict (see the pytest log)"
        record.save(out)


def pytest_sessionstart(session):
    session.config._hw1_started = time.time()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if harness.is_worker(config) or not harness.is_claims_run(config):
        return
    lines = harness.summary(config)
    if lines:
        terminalreporter.section("hw1 claim outcomes")
    for line in lines:
        terminalreporter.write_line(line)


def pytest_sessionfinish(session, exitstatus):
    out = harness.figures_dir(session.config)
    if (
        harness.is_worker(session.config)
        or not harness.is_claims_run(session.config)
        or session.config.option.collectonly
        or not (out / "records").is_dir()
    ):
        return
    harness.write_environment(session.config, out)
    report.write_index(out)
