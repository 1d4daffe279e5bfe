"""The claims harness (claims/harness.py): what counts as a claims run, and the ledger's extensions."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from claims import harness

ROOT = Path(__file__).resolve().parent.parent


def _config(*args, cwd=ROOT):
    return SimpleNamespace(invocation_params=SimpleNamespace(dir=cwd), args=list(args))


@pytest.mark.parametrize(
    "args, claims",
    [
        (["claims/"], True),
        (["claims"], True),
        (["claims/test_optimization.py::test_gradient_norm"], True),
        ([str(ROOT / "claims")], True),
        (["tests/"], False),
        (["tests/test_claims_catalogue.py"], False),
        ([], False),
    ],
)
def test_one_test_says_whether_a_session_runs_claims(args, claims):
    assert harness.is_claims_run(_config(*args)) is claims


def test_a_claims_path_given_from_another_folder_is_still_a_claims_run():
    assert harness.is_claims_run(_config("../claims", cwd=ROOT / "tests"))
    assert not harness.is_claims_run(_config("claims", cwd=ROOT / "tests"))  # tests/claims: no such thing


def test_each_ledger_scale_has_its_extension_and_folder():
    assert set(harness.LEDGERS) == set(harness.LEDGER_SCALES)
    module = ROOT / "claims" / "test_optimization.py"
    where = SimpleNamespace(filepath=str(module), basename="test_optimization")
    for scale, cls in harness.LEDGERS.items():
        assert cls.dirname(test_location=where) == str(module.parent / "__snapshots__" / scale / module.stem)
