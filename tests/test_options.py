"""The claims harness rejects bad options with the allowed choices, and --seed shifts every seed."""

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from hw1.config import SCALES, get_scale, seeds_for

ROOT = Path(__file__).resolve().parent.parent


def _pytest(*args):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "claims/", "--collect-only", "-q", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scale", "huge"], "invalid choice: 'huge' (choose from"),
        (["--seed", "-3"], "--seed"),
        (["--device", "cuda:97"], "is not there"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--device", "mps"], "not supported"),
    ],
)
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


# ------------------------------------------------------------------------------ --set overrides
@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "fit.epoch=5"], "fit has no field 'epoch'; valid fields: fit.targets"),
        (["--set", "nope.x=1"], "unknown section 'nope'; sections: fit, mnist, opt, gen, stages"),
        (["--set", "fit.epochs=many"], "--set fit.epochs=many: expected int"),
        (["--set", "fit.epochs"], "write SECTION.FIELD=VALUE"),
        (["--set", "stages.spend=0.5"], "one spend fraction per stage"),
    ],
)
def test_bad_overrides_are_usage_errors(args, message):
    res = _pytest(*args)
    assert res.returncode == 4, res.stdout + res.stderr  # pytest's usage error
    assert message in res.stderr


def test_overrides_are_typed_and_recorded():
    from hw1.config import CI
    from hw1.overrides import apply_overrides

    s = apply_overrides(
        CI,
        [
            "fit.epochs=5000",
            "gen.seeds=12",
            "mnist.train_size=none",
            "fit.targets=sinc",
            "fit.lr=3e-3",
            "opt.eig_rel_tol=1e-6",
            "gen.interp_batches=(10, 100)",
            "alpha=0.01",
        ],
    )
    assert (s.fit.epochs, s.gen.seeds, s.mnist.train_size, s.fit.targets) == (5000, 12, None, ("sinc",))
    assert (s.fit.lr, s.opt.eig_rel_tol, s.gen.interp_batches, s.alpha) == (3e-3, 1e-6, (10, 100), 0.01)
    assert s.overrides[0] == "fit.epochs=5000" and s.to_dict()["overrides"] == s.overrides
    assert apply_overrides(CI, []) is CI
    with pytest.raises(ValueError, match="expected 2 values"):
        apply_overrides(CI, ["gen.interp_batches=1,2,3"])


def test_departures_are_derived_from_the_configs():
    from hw1.config import CI, PAPER, departures

    deps = {d["field"]: d for d in departures(CI, "cnn-depth")}
    assert deps["mnist.epochs"]["value"] == CI.mnist.epochs and deps["mnist.epochs"]["report"] == 20
    assert deps["mnist.epochs"]["decisive"] == "training" and deps["mnist.train_size"]["decisive"] == "data"
    assert departures(PAPER, "cnn-depth") == []
    assert not any(d["field"].endswith("seeds") for d in departures(CI, "random-labels"))
