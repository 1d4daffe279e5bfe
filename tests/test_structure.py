"""The structural GPU estimate (benchmarks/structure.py): what it counts and how it adds up."""

from __future__ import annotations

import pytest
import torch

from benchmarks import structure as S
from hw1.data import sample_target
from hw1.models import dnn_arch


def test_the_census_counts_operations_flops_and_bytes_and_skips_views():
    a, b = torch.ones(3, 4), torch.ones(4, 5)
    c = S.census(lambda: a @ b)
    assert c["ops"] == 1 and c["flops"] == 2 * 3 * 4 * 5
    assert c["bytes"] == (12 + 20 + 15) * 4
    assert S.census(lambda: (a.t(), a.view(12), a[1:]))["ops"] == 0  # views launch nothing
    assert S.census(lambda: torch.relu(a).sum())["ops"] == 2


def test_a_graphed_step_counts_fewer_operations_and_the_same_flops():
    x, y = sample_target("sinc", 64)
    steps = S.step_census(dnn_arch(3, 200), [0, 1, 2], x, y, 16, "mse")
    eager, graph = steps["eager"], steps["graph"]
    assert 0 < graph["ops"] < eager["ops"]  # one fused Adam instead of foreach passes
    assert graph["flops"] == eager["flops"] > 0
    # the step is the one train_ensemble takes: its matrix products are the forward's and backward's
    assert "bmm" in eager["top"]


def test_device_time_is_the_largest_bound_and_names_it():
    s, bound = S.device_seconds(ops=100, flops=0, nbytes=0, t_op=1e-5)
    assert (s, bound) == (pytest.approx(1e-3), "launch")
    flops = 10 * S.GPU["fp32"] * S.EFFICIENCY["compute"]  # 10 s of compute
    assert S.device_seconds(100, flops, 0, 1e-5) == (pytest.approx(10.0), "compute")
    assert S.device_seconds(0, flops, 0, 0, fp64=True)[0] == pytest.approx(
        10.0 * S.GPU["fp32"] / S.GPU["fp64"]
    )


def test_the_calibration_uses_launch_bound_rows_only():
    small = {"ops": 100, "flops": 0, "bytes": 0}
    heavy = {"ops": 100, "flops": S.GPU["fp32"] * S.EFFICIENCY["compute"], "bytes": 0}  # 1 s of compute
    cal = S.calibrate(
        [
            {"what": "a", "s_per_step": 3e-3, "census": small},
            {"what": "b", "s_per_step": 5e-3, "census": small},
            {"what": "c", "s_per_step": 1.2, "census": heavy},
        ]
    )
    assert [r["launch_bound"] for r in cal["rows"]] == [True, True, False]
    assert cal["t_eager"] == pytest.approx(40e-6)


def _training(group, steps, ops_eager, ops_graph, flops=0.0, graphed=True):
    return {
        "key": f"{group}/run",
        "case": group,
        "group": group,
        "what": "w",
        "steps": steps,
        "epochs": steps,
        "step": {
            "eager": {"ops": ops_eager, "flops": flops, "bytes": 0},
            "graph": {"ops": ops_graph, "flops": flops, "bytes": 0},
        },
        "graphed": graphed,
        "top": "",
        "epoch_ops": 2,
        "evals": 0,
        "eval_images": 0,
    }


def test_graphs_pay_off_where_launches_bound_and_add_up_per_group():
    t = 30e-6
    launch = _training("fit", 1000, 60, 50)
    plain = _training("ratio", 1000, 60, 50, graphed=False)
    eager, graph = S.item_seconds(launch, t, False), S.item_seconds(launch, t, True)
    assert eager["total"] == pytest.approx(1000 * (60 + 2) * t)
    assert graph["total"] == pytest.approx(1000 * (50 * S.T_NODE + 2 * t))
    assert eager["busy"] == 0 and graph["busy"] == pytest.approx(1000 * 50 * S.T_NODE)
    assert S.item_seconds(plain, t, True) == S.item_seconds(plain, t, False)
    s = S.summary([launch, plain], t)
    for mode in ("eager", "graph"):
        sm = s[mode]
        assert sm["sum"] == pytest.approx(sum(g["total"] for g in sm["groups"].values()))
        assert sm["one_gpu"] >= max(g["total"] for g in sm["groups"].values())
        assert sm["one_gpu"] >= sm["busy"]


def test_the_readme_section_says_what_was_measured_and_what_was_assumed():
    t = 30e-6
    items = [_training("fit", 1000, 60, 50)]
    res = {
        "gpu": S.GPU,
        "t_node": S.T_NODE,
        "efficiency": S.EFFICIENCY,
        "eigh_s": S.EIGH_S,
        "calibration": S.calibrate(
            [{"what": "row", "s_per_step": 2e-3, "census": {"ops": 60, "flops": 0, "bytes": 0}}]
        ),
        "items": items,
        "summary": {name: S.summary(items, t, name) for name in S.SCENARIOS},
    }
    text = "\n".join(S.report_lines(res))
    assert "No GPU measured anything in this section" in text
    assert "Assumed:" in text and "Calibrated:" in text and "| fit | w | 1,000 steps | 60 → 50 |" in text
    assert all(name in text for name in S.SCENARIOS)
    assert S.report_lines(None)[0].startswith("Not run yet")


def test_a_gpus_measured_steps_are_set_beside_the_derived_ones():
    t = 30e-6
    items = [_training("fit", 1000, 60, 50)]
    res = {"calibration": {"t_eager": t}, "items": items}
    assert "No GPU has measured today's steps yet" in S.measured_lines(res, None)[0]
    legacy = {"rows": [{"what": "DNN depth 1, budget 40, 8 seeds", "s_per_step": 1e-3}]}  # older format
    assert "No GPU has measured" in S.measured_lines(res, legacy)[0]
    graphed = {"runs": {"fit/run": {"s_per_step": 3e-4}}, "graphs": True}
    text = "\n".join(S.measured_lines(res, graphed))
    # derived graphed step: 50 operations x T_NODE, launch bound; against 0.3 ms measured
    assert "graphed steps" in text and f"| fit/run | 0.300 | {50 * S.T_NODE * 1e3:.3f} (launch) |" in text
    eager = "\n".join(S.measured_lines(res, {"runs": {"fit/run": {"s_per_step": 3e-3}}, "graphs": False}))
    assert f"| fit/run | 3.000 | {60 * t * 1e3:.3f} (launch) | {60 * t / 3e-3:.2f} |" in eager
