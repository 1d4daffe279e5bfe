"""pytest's hooks and fixtures for the claims; what they do lives in claims/harness.py.

Options (`pytest claims/ --help`, group hw1): --scale, --seed, --seed-sets, --set, --device,
--claim, --figures-dir, --no-run-cache, --clear-run-cache, --progress-every.
"""

from __future__ import annotations

import time

import pytest

from claims import harness

# Progress lines (what trains where, epoch, ETA), also under xdist: --progress-every SECONDS, 0 = off.
pytest_plugins = ["claims.progress_plugin"]


def pytest_addoption(parser):
    harness.add_options(parser)


def pytest_configure(config):
    harness.configure(config)


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
    """The filer of the claim named by the test's @pytest.mark.claim(id) (claims/catalogue.toml)."""
    filer = harness.ClaimFiler.for_item(request.node, scale, pytestconfig, ledger)
    yield filer
    filer.close()


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
    harness.finish(session.config)
