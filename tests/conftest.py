"""Unit-test settings: one torch thread, and property tests that are the same on every run.

Hypothesis runs under the "ci" profile: derandomized (the examples are a function of the test, not
of the clock) and with no example database (nothing read from or written to .hypothesis/), so a
property test passes or fails the same way on every machine and every rerun. A test's own
@settings(max_examples=...) inherits the loaded profile as its parent, so it keeps both; the
collection hook below fails any test that turns either back on.
"""

import pytest
import torch
from hypothesis import settings

torch.set_num_threads(1)

settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.load_profile("ci")


def pytest_collection_modifyitems(items):
    for item in items:
        fn = getattr(item, "obj", None)
        if not getattr(fn, "is_hypothesis_test", False):
            continue
        s = getattr(fn, "_hypothesis_internal_use_settings", None) or settings.default
        if not s.derandomize or s.database is not None:
            raise pytest.UsageError(
                f"{item.nodeid}: its @settings re-enable random examples or the example database; "
                f"tests/ runs hypothesis derandomized with database=None (see tests/conftest.py)"
            )


@pytest.fixture
def run_cache(tmp_path, monkeypatch):
    """An empty run-cache folder, the cache switched on, its counters and training seconds at zero."""
    from hw1 import cache

    folder = tmp_path / "runs"
    monkeypatch.setenv("HW1_RUN_CACHE", str(folder))
    monkeypatch.delenv("HW1_NO_CACHE", raising=False)
    monkeypatch.setattr(cache, "STATS", {"hits": 0, "misses": 0, "corrupt": 0})
    cache.reset_train_seconds()
    return folder
