"""The vmapped ensemble (`train_ensemble`) vs a Python loop over the same K models (`train_model`).

Both train the same K members (seed k -> build() under manual_seed(k)) full-batch with Adam on
`sample_target("sincos", 256)`; repeats alternate which goes first, and each repeat's ratio is
loop time / ensemble time, so a load change during the run hits both sides of a ratio alike.
The first repeat also checks that both give the same final losses (they are the same training).
"""

from __future__ import annotations

import torch

from hw1.data import sample_target
from hw1.models import Arch, dnn_arch
from hw1.train import TrainOptions, train_ensemble, train_model

from .common import spread, timed


def networks() -> dict[str, Arch]:
    """The HW1-1 DNNs (depth 1, 3, 6 at ~1000 parameters) and a minimal-ratio-size net (1x32)."""
    nets = {f"HW1-1 DNN depth {d}": dnn_arch(d, 1000) for d in (1, 3, 6)}
    nets["minimal-ratio DNN 1x32"] = Arch("dnn", (32,))
    return nets


def _loop(arch: Arch, seeds: list[int], x, y, steps: int, device) -> list[float]:
    finals = []
    for s in seeds:
        torch.manual_seed(s)
        model = arch().to(device)
        finals.append(train_model(model, s, x, y, epochs=steps, lr=1e-3)[-1])
    return finals


def bench_ensemble(device: torch.device, ks=(8, 32, 100), steps: int = 30, repeats: int = 3) -> list[dict]:
    """One row per (network, K): loop and ensemble seconds per training step, and their ratio."""
    x, y = sample_target("sincos", 256)
    x, y = x.to(device), y.to(device)
    rows, opts = [], lambda epochs: TrainOptions(epochs=epochs, lr=1e-3, device=device)
    for name, arch in networks().items():
        train_ensemble(arch, [0, 1], x, y, opts(2))  # warm-up
        _loop(arch, [0], x, y, 2, device)
        for K in ks:
            seeds = list(range(K))
            t_loop, t_ens, ratios, err = [], [], [], None
            for r in range(repeats):
                box = {}
                run_loop = lambda: box.__setitem__("loop", _loop(arch, seeds, x, y, steps, device))
                run_ens = lambda: box.__setitem__("ens", train_ensemble(arch, seeds, x, y, opts(steps)))
                if r % 2 == 0:
                    a, b = timed(run_loop, device), timed(run_ens, device)
                else:
                    b, a = timed(run_ens, device), timed(run_loop, device)
                t_loop.append(a / steps)
                t_ens.append(b / steps)
                ratios.append(a / b)
                if err is None:
                    loop_final = torch.tensor(box["loop"])
                    ens_final = box["ens"].history["loss"][:, -1]
                    err = float(((loop_final - ens_final).abs() / loop_final.abs()).max())
            row = dict(net=name, widths=list(arch.widths), params=arch.n_params, K=K, steps=steps)
            row.update(loop_s_per_step=spread(t_loop), ens_s_per_step=spread(t_ens), ratio=spread(ratios))
            rows.append({**row, "max_rel_diff_final_loss": err})
            ms = [row[k]["median"] * 1e3 for k in ("loop_s_per_step", "ens_s_per_step")]
            print(
                f"  {name:24s} K={K:3d}: loop {ms[0]:7.1f}, ensemble {ms[1]:6.1f} ms/step (rel diff {err:.1e})",
                flush=True,
            )
    return rows


def profile_ensemble(
    device: torch.device, depth: int = 3, K: int = 32, steps: int = 10, top: int = 8
) -> dict:
    """Where one vmapped training step spends its time (torch.profiler, self time per operator)."""
    from torch.profiler import ProfilerActivity, profile

    x, y = sample_target("sincos", 256)
    arch, seeds = dnn_arch(depth, 1000), list(range(K))
    train_ensemble(arch, seeds, x, y, TrainOptions(epochs=2, lr=1e-3, device=device))  # warm-up
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        train_ensemble(arch, seeds, x, y, TrainOptions(epochs=steps, lr=1e-3, device=device))
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    events.sort(key=lambda e: -e.self_cpu_time_total)
    rows = [
        dict(op=e.key, share=e.self_cpu_time_total / total, calls_per_step=e.count / steps)
        for e in events[:top]
    ]
    index_ops = ("aten::arange", "aten::stack", "aten::index", "aten::cat", "aten::randperm")
    index = sum(e.self_cpu_time_total for e in events if e.key in index_ops) / total
    return dict(net=f"HW1-1 DNN depth {depth}", widths=list(arch.widths), K=K, rows=rows, index_share=index)
