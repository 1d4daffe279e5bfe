"""The paper suite's GPU cost from the structure of its steps (issue 17, item 8).

What one training step, one evaluation and one measurement call *do* does not depend on the device:
the same aten operations are dispatched on CPU and on CUDA. So they are counted here, on the CPU,
at the real shapes (`Census`): operations (views excepted: they launch nothing), floating-point
operations (torch's own flop counter: matrix products and convolutions) and bytes read and written
(each operation's inputs and outputs, an upper bound: nothing assumed to stay in cache).

A step on a GPU then costs the largest of three times (`device_seconds`):
- **launch**: operations x the cost of one. Eagerly that is `T_EAGER`, calibrated on the H100 steps
  measured in an earlier session (`calibrate`: measured seconds / counted operations, for every
  row). In a CUDA graph it is `T_NODE`, **assumed** (no GPU was lent to measure it): a replayed
  node costs its kernel's run time, a few microseconds for these small kernels, plus a sub-
  microsecond gap (NVIDIA, "Getting Started with CUDA Graphs", 2019: 3.4 µs per node for a 2.9 µs
  kernel, against 3.8 µs launched one by one).
- **compute**: FLOPs / (peak x `EFFICIENCY`), FP32 or FP64 as the measurement computes.
- **memory**: bytes / (bandwidth x `EFFICIENCY`).

Every derived number says which of the three bounds it; the constants below are the assumptions.
"""

from __future__ import annotations

import statistics

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from hw1 import train as T

from .common import label

# H100 SXM (80 GB HBM3), NVIDIA's data sheet: non-tensor-core FP32 and FP64, HBM3 bandwidth
GPU = {"name": "H100 SXM", "fp32": 67e12, "fp64": 34e12, "tf32": 495e12, "bandwidth": 3.35e12}
WORKERS = 8  # xdist workers on one GPU (README: each capped at 0.9/8 of its memory)
EFFICIENCY = {"compute": 0.25, "memory": 0.5}  # assumed shares of the peaks that these small kernels reach
T_NODE = 3e-6  # assumed seconds per operation replayed in a CUDA graph (see the module's text)
EVAL_CHUNK = 2000  # images per forward call of `hw1.train.evaluate` on CUDA

# launch nothing: views (func.is_view) and these
_FREE = {
    torch.ops.aten.empty.memory_format,
    torch.ops.aten.empty_strided.default,
    torch.ops.aten.new_empty.default,
    torch.ops.aten.new_empty_strided.default,
    torch.ops.aten.lift_fresh.default,
    torch.ops.aten.detach.default,
    torch.ops.aten._unsafe_view.default,  # a view that autograd does not track as one
    torch.ops.aten._local_scalar_dense.default,
}


class Census(TorchDispatchMode):
    """Counts the operations dispatched in its block (views and allocations excepted), the bytes
    they read and write, and how often each operation ran (`census` adds torch's FLOP count)."""

    def __init__(self):
        super().__init__()
        self.ops = 0
        self.bytes = 0
        self.ops_by: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.is_view or func in _FREE:
            return out
        self.ops += 1
        name = func.overloadpacket.__name__
        self.ops_by[name] = self.ops_by.get(name, 0) + 1
        for t in tree_flatten((args, kwargs or {}, out))[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                self.bytes += min(t.numel() * t.element_size(), t.untyped_storage().nbytes())
        return out


def census(fn) -> dict:
    """{'ops', 'flops', 'bytes', 'top'} of one call of fn() (top: the most frequent operations)."""
    counter = FlopCounterMode(display=False)
    with counter, Census() as c:
        fn()
    return {"ops": c.ops, "flops": counter.get_total_flops(), "bytes": c.bytes, "top": _top(c.ops_by)}


def _top(by: dict[str, int], n: int = 4) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(by.items(), key=lambda kv: -kv[1])[:n])


def _fused_adam(params, lr):
    return torch.optim.Adam(params, lr=lr, fused=True)  # CPU: fused, not capturable; the same ops


def _census_run(arch, seeds, x, y, loss: str, fused: bool = False):
    """A `train_ensemble` run's state on the CPU (foreach Adam, or fused: what a graph captures),
    for counting its steps and epochs."""
    params = {n: p.detach().clone().requires_grad_(True) for n, p in T.init_params(arch, seeds).items()}
    plist = list(params.values())
    opt = _fused_adam(plist, 1e-3) if fused else T.make_optimizer("adam", plist, 1e-3)
    return T._Run(
        arch, seeds, params, loss, opt, T._Data(x, y, len(seeds), torch.device("cpu")), None, "census", None
    )


def step_census(arch, seeds, x, y, batch: int | None, loss: str) -> dict:
    """One training step of the vmapped ensemble (the path CUDA takes), at the real shapes:
    {'eager': census with foreach Adam, 'graph': census with fused Adam (what a graph captures)}.
    The step after the first (the optimizer's state exists by then)."""
    out = {}
    for kind in ("eager", "graph"):
        run = _census_run(arch, seeds, x, y, loss, fused=kind == "graph")
        n = run.data.n
        idx = None if batch is None or batch >= n else T.epoch_orders(seeds, n, 0, run.device)[:, :batch]
        run.step(idx)
        out[kind] = census(lambda: run.step(idx))
    return out


def eval_census(arch, seeds, x, y, loss: str, n: int = 256) -> dict:
    """One `evaluate` call on n images (no pieces: the CUDA path): ops per call, and FLOPs and
    bytes per image."""
    params = T.init_params(arch, seeds)
    saved = T.CPU_FORWARD_IMAGES
    T.CPU_FORWARD_IMAGES = 10**9  # one forward call per chunk, as on CUDA
    try:
        c = census(lambda: T.evaluate(arch, params, x[:n], y[:n], loss, chunk=n))
    finally:
        T.CPU_FORWARD_IMAGES = saved
    return {"ops": c["ops"], "flops_per_image": c["flops"] / n, "bytes_per_image": c["bytes"] / n}


def device_parts(ops: float, flops: float, nbytes: float, t_op: float, fp64: bool = False, eff=None) -> dict:
    """Seconds of work with this census on `GPU`, by what bounds it: launch, compute, memory."""
    eff = eff or EFFICIENCY
    return {
        "launch": ops * t_op,
        "compute": flops / ((GPU["fp64"] if fp64 else eff.get("fp32_peak", GPU["fp32"])) * eff["compute"]),
        "memory": nbytes / (GPU["bandwidth"] * eff["memory"]),
    }


def device_seconds(ops: float, flops: float, nbytes: float, t_op: float, fp64: bool = False, eff=None):
    """(seconds, bound): the largest of `device_parts`."""
    parts = device_parts(ops, flops, nbytes, t_op, fp64, eff)
    bound = max(parts, key=parts.get)
    return parts[bound], bound


def calibrate(measured: list[dict]) -> dict:
    """T_EAGER from measured eager steps: rows {'what', 's_per_step', 'census'}: seconds per
    operation of each row, where the row is launch bound (its compute and memory times at the
    assumed efficiency are under half its measured time). -> {'t_eager', 'rows'}."""
    rows = []
    for m in measured:
        c = m["census"]
        per_op = m["s_per_step"] / c["ops"]
        other = device_seconds(0, c["flops"], c["bytes"], 0)[0]
        rows.append({**m, "s_per_op": per_op, "launch_bound": other < 0.5 * m["s_per_step"]})
    bound = [r["s_per_op"] for r in rows if r["launch_bound"]]
    return {"t_eager": statistics.median(bound) if bound else None, "rows": rows}


# ------------------------------------------------------------------------------ what the paper runs
N_TRAIN, N_TEST = 60_000, 10_000
EIGH_S = 0.02  # assumed seconds of one 1000x1000 float64 symmetric eigendecomposition on the GPU


def _train(
    case,
    group,
    what,
    arch,
    seeds,
    x,
    y,
    batch,
    loss,
    *,
    key,
    steps,
    epochs,
    evals=0,
    eval_images=0,
    on_epoch=None,
):
    """A training item: its step's census (eager and graph), its per-epoch eager work outside the
    step (bookkeeping, recordings), and its evaluations' census. key: the run's name in
    `benchmarks.paper_cost` (where a GPU's measured seconds per step are stored)."""
    c = step_census(arch, seeds, x, y, batch, loss)
    per_epoch = _epoch_ops(arch, seeds, x, y, loss, on_epoch)
    item = {
        "key": key,
        "case": case,
        "group": group,
        "what": what,
        "steps": steps,
        "epochs": epochs,
        "step": {k: {m: v[m] for m in ("ops", "flops", "bytes")} for k, v in c.items()},
        "top": c["graph"]["top"],
        "epoch_ops": per_epoch,
        "evals": evals,
        "eval_images": eval_images,
    }
    if evals:
        item["eval"] = eval_census(arch, seeds, x, y, loss)
    return item


def _epoch_ops(arch, seeds, x, y, loss, on_epoch) -> int:
    """Eager operations of one epoch outside its steps (a full-batch epoch less its step), plus an
    on_epoch recorder's."""
    run = _census_run(arch, seeds, x, y, loss)
    run.epoch(0, None)
    whole, step = census(lambda: run.epoch(1, None))["ops"], census(lambda: run.step(None))["ops"]
    extra = census(lambda: on_epoch(1, run.params))["ops"] if on_epoch else 0
    return max(whole - step, 0) + extra


def training_items(quick: bool = False) -> list[dict]:
    """Every training family of `hw1.config.PAPER` at its base seed count, as the library trains
    it now: random labels as one ensemble, the evaluation cadences of the config."""
    import math

    from hw1 import generalization as G
    from hw1.api import _recorder
    from hw1.config import PAPER
    from hw1.data import load_mnist, sample_target
    from hw1.experiments import mnist_arch
    from hw1.models import dnn_arch

    items = []
    f = PAPER.fit
    x, y = sample_target("sinc", f.n_points)
    budgets = sorted(set(f.crossover_budgets) | {f.budget})
    for b in budgets[-1:] if quick else budgets:
        for d in f.depths:
            items.append(
                _train(
                    f"fit (2 targets) budget {b}",
                    "fit",
                    f"DNN depth {d}, {b} params, {f.seeds} seeds, full batch",
                    dnn_arch(d, b),
                    list(range(f.seeds)),
                    x,
                    y,
                    None,
                    "mse",
                    key=f"fit/d{d}/b{b}",
                    steps=2 * f.epochs,
                    epochs=2 * f.epochs,
                    on_epoch=_recorder(f.epochs, True, f.snapshot_every, f.seeds),
                )
            )
    m = PAPER.mnist
    xm, ym = load_mnist(True, limit=2 * m.batch_size)
    steps = m.epochs * math.ceil((m.train_size or N_TRAIN) / m.batch_size)
    for kind, depths in (("cnn", m.cnn_depths), ("dnn", m.dnn_depths)):
        for d in depths[:1] if quick else depths:
            xs = xm if kind == "cnn" else xm.flatten(1)
            items.append(
                _train(
                    f"{kind}-depth",
                    f"{kind}-depth",
                    f"{kind.upper()} depth {d}, {m.seeds} seeds, batch {m.batch_size}",
                    mnist_arch(m, kind, d),
                    list(range(m.seeds)),
                    xs,
                    ym,
                    m.batch_size,
                    "ce",
                    key=f"mnist/{kind}/d{d}",
                    steps=steps,
                    epochs=m.epochs,
                    evals=1,
                    eval_images=N_TRAIN + N_TEST,
                )
            )
    o = PAPER.opt
    xr, yr = sample_target(o.ratio_target, o.n_points)
    from hw1 import landscape

    items.append(
        _train(
            "minimal-ratio",
            "minimal-ratio",
            f"{o.ratio_runs} one-layer DNNs, MSE phase, full batch",
            landscape.ratio_arch(o),
            list(range(o.ratio_runs)),
            xr,
            yr,
            None,
            "mse",
            key="ratio/mse",
            steps=o.mse_epochs,
            epochs=o.mse_epochs,
        )
    )
    items.append(_grad_norm_phase(o, xr, yr))
    g = PAPER.gen
    xg, yg = load_mnist(True, limit=2 * max(g.rl_batch, g.pg_batch))
    per_epoch = math.ceil(N_TRAIN / g.rl_batch)
    items.append(
        _train(
            "random-labels",
            "random-labels",
            f"conv {g.rl_channels[0]} + dense {g.rl_widths[0]}, {g.seeds} seeds as one ensemble, batch {g.rl_batch}",
            G.random_label_arch(g),
            list(range(g.seeds)),
            xg,
            [yg] * g.seeds,
            g.rl_batch,
            "ce",
            key="random-labels",
            steps=g.rl_epochs * per_epoch,
            epochs=g.rl_epochs,
            evals=len(T.eval_epochs(g.rl_epochs, g.rl_eval_every, first=True)) + 1,
            eval_images=N_TRAIN + N_TEST,
        )
    )
    for w in g.pg_widths[-1:] if quick else g.pg_widths:
        items.append(
            _train(
                "params-vs-generalization",
                "params-vs-generalization",
                f"conv+dense width {w}, {g.pg_seeds} seeds, batch {g.pg_batch}",
                G.size_arch(g, w),
                list(range(g.pg_seeds)),
                xg,
                yg,
                g.pg_batch,
                "ce",
                key=f"size/w{w}",
                steps=g.pg_epochs * math.ceil(N_TRAIN / g.pg_batch),
                epochs=g.pg_epochs,
                evals=math.ceil(g.pg_epochs / G.eval_every(g.pg_epochs)),
                eval_images=N_TRAIN + N_TEST,
            )
        )
    xb, yb = load_mnist(True, limit=2 * max(g.batch_sizes))
    xf, yf = sample_target(g.fit_target, 2 * max(g.batch_sizes), seed=1)
    for task, (xs, ys), n_train, n_eval in (
        ("mnist", (xb, yb), N_TRAIN, N_TRAIN + N_TEST),
        ("fit", (xf, yf), g.fit_points, 2 * g.fit_points),
    ):
        for b in g.batch_sizes[:1] if quick else g.batch_sizes:
            epochs = G.batch_epochs(g, task, b)
            items.append(
                _train(
                    f"sensitivity [{task}] (batch-size runs)",
                    "batch-size",
                    f"batch {b}, {g.seeds} seeds, {epochs} epochs",
                    G.batch_arch(g, task),
                    list(range(g.seeds)),
                    xs[: 2 * b],
                    ys[: 2 * b],
                    b,
                    G.task_loss(task),
                    key=f"batch/{task}/b{b}",
                    steps=epochs * math.ceil(n_train / b),
                    epochs=epochs,
                    evals=math.ceil(epochs / G.eval_every(epochs)),
                    eval_images=n_eval,
                )
            )
    return items


def _grad_norm_phase(o, x, y) -> dict:
    """The minimal-ratio ||grad L||^2 phase: its own loop (`landscape.minimize_grad_norm`), eager;
    one step = census(2 epochs) - census(1 epoch)."""
    from hw1 import landscape

    arch, seeds = landscape.ratio_arch(o), list(range(o.ratio_runs))
    ens = T.Ensemble(arch, seeds, T.init_params(arch, seeds), {}, "mse")

    def run(e):
        return census(lambda: landscape.minimize_grad_norm(ens, x, y, epochs=e, lr=o.gn_lr))

    one, two = run(1), run(2)
    step = {m: two[m] - one[m] for m in ("ops", "flops", "bytes")}
    return {
        "key": "ratio/gn",
        "case": "minimal-ratio",
        "group": "minimal-ratio",
        "what": f"{o.ratio_runs} DNNs, ||grad L||^2 phase (its own eager loop, not graphed)",
        "steps": o.gn_epochs,
        "epochs": o.gn_epochs,
        "step": {"eager": step, "graph": step},
        "graphed": False,
        "top": two["top"],
        "epoch_ops": 0,
        "evals": 0,
        "eval_images": 0,
    }


def _call(
    case,
    group,
    what,
    c: dict,
    *,
    calls: int,
    scale: float = 1.0,
    chunks: int = 1,
    fp64=False,
    host_s=0.0,
    note="",
):
    """A measurement item: `calls` calls one after another, each `chunks` device calls of c's
    operations, c's FLOPs and bytes times `scale` (c was counted on fewer points), plus host_s of
    host work per call."""
    return {
        "case": case,
        "group": group,
        "what": what,
        "calls": calls,
        "call": {"ops": c["ops"] * chunks, "flops": c["flops"] * scale, "bytes": c["bytes"] * scale},
        "top": c["top"],
        "fp64": fp64,
        "host_s": host_s,
        "note": note,
    }


def measurement_items(points: int = 250) -> list[dict]:
    """The measurements as they run on CUDA now (device-batched where the library batches them),
    counted on `points` points and scaled linearly in the points to the real count."""
    import math
    import time

    import numpy as np

    from hw1 import generalization as G, landscape
    from hw1.config import PAPER
    from hw1.data import load_mnist, sample_target

    g, o = PAPER.gen, PAPER.opt
    K, B = g.seeds, len(g.batch_sizes)
    items = []
    for task in ("mnist", "fit"):
        arch, loss = G.batch_arch(g, task), G.task_loss(task)
        run = T.Ensemble(arch, list(range(K)), T.init_params(arch, list(range(K))), {}, loss)
        if task == "mnist":
            (x, y), (xt, yt) = load_mnist(True, limit=points), load_mnist(False, limit=points)
            n_sens, n_sharp = g.sens_points or N_TEST, g.sharp_points or N_TRAIN
        else:
            (x, y), (xt, yt) = G.task_data(g, task)
            x, y, xt, yt = x[:points], y[:points], xt[:points], yt[:points]
            n_sens, n_sharp = g.fit_points, min(g.sharp_points or g.fit_points, g.fit_points)
        n = len(x)
        c = census(lambda: G.batched_sensitivity(run, xt, yt, chunk=n))
        items.append(
            _call(
                f"sensitivity [{task}]",
                "batch-size",
                f"gradient norms{' + softmax Jacobians' if task == 'mnist' else ''}, {K} members at once, "
                f"{n_sens} points in chunks of 250, per batch size",
                c,
                calls=B,
                scale=n_sens / n,
                chunks=math.ceil(n_sens / 250),
            )
        )
        c = census(lambda: G.batched_gaussian_sharpness(run, x, y, sigma=g.sharp_sigma, n=g.sharp_n))
        items.append(
            _call(
                f"sharpness [{task}-gaussian]",
                "batch-size",
                f"{g.sharp_n + 1} float64 losses on {n_sharp} points, {K} members at once, per batch size",
                c,
                calls=B,
                scale=n_sharp / n,
                fp64=True,
            )
        )
        model = run.model(0)
        c = census(lambda: G.keskar_sharpness(model, x, y, loss, eps=g.keskar_eps, iters=g.keskar_iters))
        t0 = time.perf_counter()
        G.keskar_sharpness(model, x[:4], y[:4], loss, eps=g.keskar_eps, iters=g.keskar_iters)
        host = time.perf_counter() - t0  # on 4 points: the host's part (scipy, Python)
        items.append(
            _call(
                f"sharpness [{task}-keskar]",
                "batch-size",
                f"L-BFGS-B, {g.keskar_iters} iterations, float64, {n_sharp} points, per member and batch size",
                c,
                calls=K * B,
                scale=n_sharp / n,
                fp64=True,
                host_s=host,
                note=f"host part {host:.2f} s per call (timed on 4 points, this CPU)",
            )
        )
    arch = G.batch_arch(g, "mnist")
    ev = eval_census(arch, list(range(K)), *load_mnist(False, limit=points), "ce", n=points)
    images = N_TRAIN + N_TEST
    items.append(
        {
            "case": "interpolation",
            "group": "batch-size",
            "what": f"{g.n_alphas} points on the line x {images} images x {K} members",
            "calls": g.n_alphas,
            "call": {
                "ops": ev["ops"] * math.ceil(images / EVAL_CHUNK),
                "flops": ev["flops_per_image"] * images,
                "bytes": ev["bytes_per_image"] * images,
            },
            "top": "",
            "fp64": False,
            "host_s": 0.0,
            "note": "",
        }
    )
    xr, yr = sample_target(o.ratio_target, o.n_points)
    arch = landscape.ratio_arch(o)
    one = T.Ensemble(arch, [0], T.init_params(arch, [0]), {}, "mse")
    c = census(lambda: landscape.hessian_eigenvalues(one, xr, yr))
    items.append(
        _call(
            "minimal-ratio",
            "minimal-ratio",
            f"exact {arch.n_params}x{arch.n_params} float64 Hessian and eigenvalues, per member",
            c,
            calls=o.ratio_runs,
            fp64=True,
            host_s=EIGH_S,
            note=f"eigvalsh: {EIGH_S * 1e3:.0f} ms assumed per member",
        )
    )
    theta = one.flat()[0]
    radii = np.asarray(o.radii) * float(theta.norm())
    c = census(lambda: landscape.sphere_losses(one, xr, yr, radii, o.n_dirs, seed=0))
    items.append(
        _call(
            "error-surface",
            "minimal-ratio",
            f"sphere losses, {len(o.radii)} radii x {o.n_dirs} directions, per member "
            "(operations as on CPU: one sphere a call)",
            c,
            calls=min(o.seeds, o.ratio_runs),
        )
    )
    shapes = landscape.param_shapes(one.params)
    c = census(lambda: landscape.surface_2d(arch, theta, xr, yr, shapes, o.span, o.grid, seed=0))
    items.append(_call("error-surface", "minimal-ratio", f"2-D surface, {o.grid}x{o.grid} grid", c, calls=1))
    return items


# ------------------------------------------------------------------------------ calibration rows
def calibration_rows(gpu_result: dict) -> list[dict]:
    """The eager steps measured on a GPU (results/cuda.json: the ensemble benchmark, and the HW1-1
    estimate's fit and MNIST rows as `paper_cost.legacy_gpu_runs` reads them), each with the census
    of the same step here: operations per step including the epoch's own (one step an epoch at
    full batch)."""
    from hw1.api import _recorder
    from hw1.config import PAPER
    from hw1.data import load_mnist, sample_target
    from hw1.experiments import mnist_arch
    from hw1.models import dnn_arch

    from .ensemble import networks
    from .paper_cost import legacy_gpu_runs

    rows = []
    x, y = sample_target("sincos", 256)
    nets = networks()
    for r in gpu_result.get("ensemble", []):
        arch, seeds = nets[r["net"]], list(range(r["K"]))
        c = step_census(arch, seeds, x, y, None, "mse")["eager"]
        c["ops"] += _epoch_ops(arch, seeds, x, y, "mse", None)
        rows.append(
            {
                "what": f"{r['net']}, K={r['K']}, full batch",
                "s_per_step": r["ens_s_per_step"]["median"],
                "census": c,
            }
        )
    f, m = PAPER.fit, PAPER.mnist
    xs, ys = sample_target("sinc", f.n_points)
    xm, ym = load_mnist(True, limit=2 * m.batch_size)
    for key, r in legacy_gpu_runs(gpu_result).items():
        kind, *spec = key.split("/")
        if kind == "fit":  # fit/d<depth>/b<budget>: the fit runs, their recorder included
            arch, seeds = dnn_arch(int(spec[0][1:]), int(spec[1][1:])), list(range(f.seeds))
            c = step_census(arch, seeds, xs, ys, None, "mse")["eager"]
            rec = _recorder(f.epochs, True, f.snapshot_every, f.seeds)
            c["ops"] += _epoch_ops(arch, seeds, xs, ys, "mse", rec)
            what = f"fit run {key}, {f.seeds} seeds, full batch"
        elif kind == "mnist":  # mnist/<cnn|dnn>/d<depth>
            arch, seeds = mnist_arch(m, spec[0], int(spec[1][1:])), list(range(m.seeds))
            xk = xm if spec[0] == "cnn" else xm.flatten(1)
            c = step_census(arch, seeds, xk, ym, m.batch_size, "ce")["eager"]
            what = f"MNIST run {key}, {m.seeds} seeds, batch {m.batch_size}"
        else:  # ratio/mse: the ensemble benchmark's K=100 depth-1 row, already above
            continue
        rows.append({"what": what, "s_per_step": r["s_per_step"], "census": c})
    return rows


# ------------------------------------------------------------------------------ the estimate
SCENARIOS = {
    "as assumed": {"t_node": T_NODE, "eff": EFFICIENCY},
    "optimistic": {"t_node": 1.5e-6, "eff": {"compute": 0.5, "memory": 0.8}},
    "pessimistic": {"t_node": 6e-6, "eff": {"compute": 0.12, "memory": 0.25}},
    "as assumed, with HW1_TF32=1": {"t_node": T_NODE, "eff": {**EFFICIENCY, "fp32_peak": GPU["tf32"]}},
}


def item_seconds(item: dict, t_eager: float, graph: bool, t_node: float = T_NODE, eff=None) -> dict:
    """{'total', 'busy', 'bound'}: an item's seconds on one GPU, eager or with graphed steps, and
    the part of them the device is busy (launch-bound eager work leaves it idle between launches;
    a graph's nodes keep it busy), and what bounds its main part."""
    if "call" in item:  # a measurement: eager calls
        c = item["call"]
        parts = device_parts(c["ops"], c["flops"], c["bytes"], t_eager, item["fp64"], eff)
        per = max(parts.values()) + item["host_s"]
        busy = max(parts["compute"], parts["memory"])
        bound = max(parts, key=parts.get)
        return {"total": item["calls"] * per, "busy": item["calls"] * busy, "bound": bound}
    graphed = graph and item.get("graphed", True)
    c = item["step"]["graph" if graphed else "eager"]
    parts = device_parts(c["ops"], c["flops"], c["bytes"], t_node if graphed else t_eager, False, eff)
    step = max(parts.values())
    busy_step = step if graphed else max(parts["compute"], parts["memory"])
    total = item["steps"] * step + item["epochs"] * item["epoch_ops"] * t_eager
    busy = item["steps"] * busy_step
    if item["evals"]:
        ev, chunks = item["eval"], -(-item["eval_images"] // EVAL_CHUNK)
        ep = device_parts(
            ev["ops"] * chunks,
            ev["flops_per_image"] * item["eval_images"],
            ev["bytes_per_image"] * item["eval_images"],
            t_eager,
            False,
            eff,
        )
        total += item["evals"] * max(ep.values())
        busy += item["evals"] * max(ep["compute"], ep["memory"])
    return {"total": total, "busy": busy, "bound": max(parts, key=parts.get)}


def summary(items: list[dict], t_eager: float, scenario: str = "as assumed") -> dict:
    """Eager and graphed: seconds per group (the cases that share runs: one CI shard) and in all.

    One GPU shared by WORKERS xdist workers takes at least (`one_gpu`, the estimate):
    - the longest item: one run or one measurement, which one worker does alone;
    - the sum of all items over the workers (each worker does its items one after another);
    - the sum of the time the device is busy: processes take turns on a GPU (no MPS), so their
      compute, memory traffic and graph replays add up; eager launch gaps leave it idle for others.
    """
    sc = SCENARIOS[scenario]
    out = {}
    for mode in ("eager", "graph"):
        groups: dict[str, dict] = {}
        longest = (0.0, "")
        for it in items:
            s = item_seconds(it, t_eager, mode == "graph", sc["t_node"], sc["eff"])
            g = groups.setdefault(it["group"], {"total": 0.0, "busy": 0.0})
            g["total"] += s["total"]
            g["busy"] += s["busy"]
            longest = max(longest, (s["total"], f"{it['case']}, {it['what']}"))
        total = sum(g["total"] for g in groups.values())
        busy = sum(g["busy"] for g in groups.values())
        bounds = {
            "longest item": longest[0],
            f"all over {WORKERS} workers": total / WORKERS,
            "device busy": busy,
        }
        out[mode] = {
            "groups": groups,
            "longest": longest[1],
            "longest_s": longest[0],
            "sum": total,
            "busy": busy,
            "one_gpu": max(bounds.values()),
            "bound": max(bounds, key=bounds.get),
        }
    return out


def estimate(gpu_result: dict, quick: bool = False) -> dict:
    """Everything `python -m benchmarks --only structure` stores: the calibration, the items and
    the summaries under each scenario."""
    from hw1.config import PAPER

    from .paper_cost import _trajectories

    cal = calibrate(calibration_rows(gpu_result))
    items = training_items(quick) + measurement_items()
    traj = _trajectories(PAPER.fit)
    items.append(
        {
            "case": "trajectories-diverge",
            "group": "fit",
            "what": traj["what"] + " (host CPU, timed here)",
            "calls": 1,
            "call": {"ops": 0, "flops": 0, "bytes": 0},
            "top": "",
            "fp64": False,
            "host_s": traj["s_per_call"],
            "note": "host CPU",
        }
    )
    t = cal["t_eager"]
    return {
        "gpu": GPU,
        "t_node": T_NODE,
        "efficiency": EFFICIENCY,
        "eigh_s": EIGH_S,
        "calibration": cal,
        "items": items,
        "summary": {name: summary(items, t, name) for name in SCENARIOS},
        "quick": quick,
    }


# ------------------------------------------------------------------------------ the README section
def _m(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def _count(it: dict) -> str:
    return f"{it['calls']:,} calls" if "call" in it else f"{it['steps']:,} steps"


def measured_lines(res: dict, gpu_paper: dict | None) -> list[str]:
    """The derived step times beside a GPU's measured ones (`python -m benchmarks --device cuda
    --only paper`, with HW1_CUDA_GRAPH=1 for graphed steps), where a GPU has measured today's runs."""
    runs = (gpu_paper or {}).get("runs") or {}
    t = res["calibration"]["t_eager"]
    graphs = bool((gpu_paper or {}).get("graphs"))
    rows = []
    for it in res["items"]:
        if it.get("key") in runs and "step" in it:
            c = it["step"]["graph" if graphs and it.get("graphed", True) else "eager"]
            t_op = T_NODE if graphs and it.get("graphed", True) else t
            derived, bound = device_seconds(c["ops"], c["flops"], c["bytes"], t_op)
            measured = runs[it["key"]]["s_per_step"]
            rows.append(
                f"| {it['key']} | {measured * 1e3:.3f} | {derived * 1e3:.3f} ({bound}) | {derived / measured:.2f} |"
            )
    if not rows:
        return [
            "**No GPU has measured today's steps yet**: the GPU results on file are the earlier session's "
            "(the calibration above). A GPU session runs `python -m benchmarks --device cuda --only paper` "
            "(eager) and `HW1_CUDA_GRAPH=1 python -m benchmarks --device cuda --only paper` (graphed); "
            "this table then compares every family's derived step with its measured one.",
            "",
        ]
    return [
        f"Measured on a GPU ({'graphed' if graphs else 'eager'} steps) against derived:",
        "",
        "| run | measured ms/step | derived ms/step (bound) | derived ÷ measured |",
        "| --- | ---: | ---: | ---: |",
        *rows,
        "",
    ]


def report_lines(res: dict | None, gpu_paper: dict | None = None) -> list[str]:
    """benchmarks/README.md's section on the structural estimate (empty without a result);
    gpu_paper: a GPU's `paper` result, whose measured steps are set beside the derived ones."""
    if not res:
        return ["Not run yet: `python -m benchmarks --only structure`.", ""]
    cal, t = res["calibration"], res["calibration"]["t_eager"]
    per_op = [r["s_per_op"] for r in cal["rows"] if r["launch_bound"]]
    eff = res["efficiency"]
    lines = [
        __doc__.split("\n\n", 1)[1].strip(),
        "",
        f"Counted on {label(res['machine']) if res.get('machine') else 'this CPU'}, {res.get('when', '')}"
        + (" (quick: one run of each family)" if res.get("quick") else "")
        + ". **No GPU measured anything in this section**: the eager per-operation cost comes from "
        "steps an H100 measured in an earlier session (torch 2.11, the training loop of that time); "
        "everything else is counted or assumed as said.",
        "",
        f"- GPU: {res['gpu']['name']}, FP32 {res['gpu']['fp32'] / 1e12:.0f} TFLOP/s, FP64 "
        f"{res['gpu']['fp64'] / 1e12:.0f} TFLOP/s, {res['gpu']['bandwidth'] / 1e12:.2f} TB/s (data sheet).",
        f"- Assumed: {eff['compute']:.0%} of peak FLOP/s and {eff['memory']:.0%} of bandwidth reached; "
        f"{res['t_node'] * 1e6:.1f} µs per operation replayed in a CUDA graph; "
        f"{res['eigh_s'] * 1e3:.0f} ms per 1000x1000 float64 eigendecomposition.",
        f"- Calibrated: **{t * 1e6:.0f} µs per eagerly launched operation** (median of {len(per_op)} "
        f"launch-bound measured steps; range {min(per_op) * 1e6:.0f}-{max(per_op) * 1e6:.0f} µs). "
        "Those steps read the device once per epoch (the loop of that time), i.e. once per step at "
        "full batch, so this is an upper bound for today's loop.",
        "",
        "### The calibration: measured eager steps and their census",
        "",
        "| measured step (H100, torch 2.11) | ms/step | operations | µs per operation | model ÷ measured |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in cal["rows"]:
        c = r["census"]
        model = device_seconds(c["ops"], c["flops"], c["bytes"], t)[0]
        lb = "" if r["launch_bound"] else " (not launch bound: left out of the median)"
        lines.append(
            f"| {r['what']}{lb} | {r['s_per_step'] * 1e3:.2f} | {c['ops']} | {r['s_per_op'] * 1e6:.1f} | "
            f"{model / r['s_per_step']:.2f} |"
        )
    lines += [
        "",
        "### Every family and measurement at paper scale (base seed counts)",
        "",
        "Operations per step: eager (foreach Adam) → in a graph (fused Adam). FLOPs and bytes per "
        "step or call. Eager and graph: minutes on one GPU, alone. Bound: what sets the graphed "
        "time (launch: operations x cost; compute; memory).",
        "",
        "| claim case | what | count | operations | GFLOP | GB | bound | eager min | graph min |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for it in res["items"]:
        e, g = item_seconds(it, t, False), item_seconds(it, t, True)
        c = it.get("call") or it["step"]["graph"]
        ops = str(c["ops"]) if "call" in it else f"{it['step']['eager']['ops']} → {c['ops']}"
        if "step" in it and not it.get("graphed", True):
            ops = f"{c['ops']} (not graphed)"
        lines.append(
            f"| {it['case']} | {it['what']} | {_count(it)} | {ops} | {c['flops'] / 1e9:.2f} | "
            f"{c['bytes'] / 1e9:.3f} | {g['bound']} | {_m(e['total'])} | {_m(g['total'])} |"
        )
    lines += [
        "",
        "### One GPU, 8 xdist workers",
        "",
        "Per group of cases that share runs (a CI shard; its runs may be spread over several "
        "workers): minutes eager and graphed, everything of the group one after another.",
        "",
        "| group | eager min | graph min |",
        "| --- | ---: | ---: |",
    ]
    base = res["summary"]["as assumed"]
    for name, g in base["eager"]["groups"].items():
        lines.append(f"| {name} | {_m(g['total'])} | {_m(base['graph']['groups'][name]['total'])} |")
    lines += [
        "",
        f"The estimate for one GPU and {WORKERS} workers is the largest of three lower bounds "
        f"(`summary`): the longest single run or measurement, the sum of everything over the {WORKERS} "
        "workers, and the sum of the time the device is busy (processes take turns on a GPU).",
        "",
        "| scenario | eager: one GPU, min (bound) | graphed: one GPU, min (bound) "
        "| graphed: longest item, min | graphed: device busy, min |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for name, s in res["summary"].items():
        sc = SCENARIOS.get(name, {"t_node": res["t_node"], "eff": res["efficiency"]})
        peak = " FP32 products at TF32 tensor-core rate," if "fp32_peak" in sc["eff"] else ""
        scenario = (
            f"{name} ({sc['t_node'] * 1e6:.1f} µs a node,{peak} {sc['eff']['compute']:.0%} / "
            f"{sc['eff']['memory']:.0%} of FLOP/s / bandwidth)"
        )
        e, gr = s["eager"], s["graph"]
        lines.append(
            f"| {scenario} | {_m(e['one_gpu'])} ({e['bound']}) | **{_m(gr['one_gpu'])}** ({gr['bound']}) | "
            f"{gr['longest']}: {_m(gr['longest_s'])} | {_m(gr['busy'])} |"
        )
    lines.append("")
    return lines + ["### Measured against derived", ""] + measured_lines(res, gpu_paper)
