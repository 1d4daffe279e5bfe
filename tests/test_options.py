"""The claims harness rejects bad options with the allowed choices, and --seed shifts every seed."""
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from hw1.config import SCALES, get_scale, seeds_for

ROOT = Path(__file__).resolve().parent.parent


def _pytest(*args):
    return subprocess.run([sys.executable, "-m", "pytest", "claims/", "--collect-only", "-q", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["--scale", "huge"], "invalid choice: 'huge' (choose from"),
    (["--seed", "-3"], "--seed"),
    (["--device", "cuda:97"], "is not there"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "mps"], "not supported"),
])
def test_bad_options_are_rejected(args, message):
    res = _pytest(*args)
    assert res.returncode != 0
    assert message in res.stderr + res.stdout


def test_unknown_claim_is_rejected_with_the_known_ones():
    res = _pytest("--claim", "no-such-claim")
    assert res.returncode != 0
    assert "unknown claim(s) no-such-claim; known claims:" in res.stderr and "function-depth" in res.stderr


def test_claim_option_selects_its_cases():
    res = _pytest("--claim", "function-depth")
    assert res.returncode == 0
    assert "test_function_depth[sinc]" in res.stdout and "test_cnn_depth" not in res.stdout


def test_every_scale_is_frozen_and_named():
    for name, s in SCALES.items():
        assert s.name == name and get_scale(name) is s
    with pytest.raises(ValueError, match="choose one of smoke, ci, paper"):
        get_scale("huge")
    assert SCALES["ci"].decides and not SCALES["smoke"].decides


@given(n=st.integers(0, 50), offset=st.integers(0, 10_000))
def test_seed_offset_shifts_every_seed(n, offset):
    s = seeds_for(n, offset)
    assert len(s) == n == len(set(s))
    assert s == [x + offset for x in seeds_for(n)]
