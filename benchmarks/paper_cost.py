"""What `paper` scale (hw1.config.PAPER) costs, claim case by claim case: measured time x count.

Every training run family is timed for a few steps with its real models on data of the real
shapes (real MNIST images, the real batch size, the paper's seeds per ensemble, vmapped or seed
after seed as the producers train them on this device); every dominant measurement is timed at
its real size, or at two smaller point counts and extrapolated linearly to the real one. Each time
is multiplied by the paper's count (steps, evaluations, members x batch sizes, ...).

Shared runs are counted once, under one claim case; the others name it. The measurements that the
library makes on CPU copies of the models (sensitivity, both sharpnesses, the interpolation curve,
the Hessians, the sphere losses, the projections) are timed on the CPU whatever the device: that is
where they ran on a GPU runner before issue 17. On CUDA most now run on the device, batched (the
sensitivity, the Gaussian sharpness, the interpolation, the sphere losses, the Hessians), so these
CPU times are upper bounds for them until a GPU measures them. Their peak memory is probed on the way (`PeakRSS`).

`gpu_estimates` turns a CPU result plus whatever GPU result exists into per-item GPU estimates,
each labelled measured, host CPU, or derived (and how).
"""

from __future__ import annotations

import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch

from hw1 import generalization as G, landscape
from hw1.config import PAPER
from hw1.data import load_mnist, sample_target
from hw1.experiments import fit_runs, mnist_arch
from hw1.train import (
    Ensemble,
    TrainOptions,
    eval_epochs,
    evaluate,
    init_params,
    train_ensemble,
    uses_graphs,
    vectorizes,
)

from .common import PeakRSS, timed

CPU = torch.device("cpu")
N_TRAIN, N_TEST = 60_000, 10_000
EVAL_IMAGES = 500  # images an evaluation is timed on (per-image cost)


# ------------------------------------------------------------------------------ timing helpers
def _per_step(
    run, extra: int, repeats: int, device, steps_per_epoch: int = 1, target_s: float = 0.25
) -> float:
    """Seconds per step: median over repeats of (t(run(1 + extra)) - t(run(1))) / steps, so the
    set-up and the final evaluation (the same in both) cancel. run(epochs) trains. Cheap steps get
    more extra epochs (up to 50), so that the difference is at least about `target_s`."""
    run(1)  # warm-up
    extra = max(extra, min(50, math.ceil(target_s / timed(lambda: run(1), device))))
    out = []
    for _ in range(repeats):
        t1 = timed(lambda: run(1), device)
        out.append(max(timed(lambda: run(1 + extra), device) - t1, 0.0) / (extra * steps_per_epoch))
    return float(np.median(out))


def _median(fn, repeats: int, device) -> float:
    fn()
    return float(np.median([timed(fn, device) for _ in range(repeats)]))


def _linear(fn, sizes: tuple[int, int]) -> tuple[dict, int]:
    """fn(n) timed at two point counts: ({'a', 'b'} with seconds = a + b n, the peak memory growth
    of the larger call)."""
    t = []
    for n in sizes:
        with PeakRSS() as mem:
            t.append(timed(lambda: fn(n), CPU))
    (n1, n2) = sizes
    b = (t[1] - t[0]) / (n2 - n1)
    return {"a": max(t[0] - b * n1, 0.0), "b": max(b, 0.0), "sizes": list(sizes), "s": t}, mem.growth


def _at(fit: dict, n: int) -> float:
    return fit["a"] + fit["b"] * n


@contextmanager
def _no_run_cache():
    """Time the training itself, never a cache hit, and leave the project's cache alone."""
    old = {k: os.environ.get(k) for k in ("HW1_NO_CACHE", "HW1_RUN_CACHE")}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(HW1_NO_CACHE="1", HW1_RUN_CACHE=tmp)
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _minibatch_run(arch, seeds, x, y, batch, device, vectorize, loss="ce"):
    """run(epochs) trains on two minibatches of `batch` per epoch, from fixed initial parameters."""
    start, n = init_params(arch, seeds), 2 * batch

    def run(epochs):
        opts = TrainOptions(
            epochs=epochs, lr=1e-3, loss=loss, batch_size=batch, device=device, vectorize=vectorize
        )
        train_ensemble(arch, seeds, x[:n], y[:n], opts, params=start)

    return run


def _train_row(name, arch, seeds, x, y, batch, device, repeats, loss="ce") -> dict:
    """A run family's seconds per step (all seeds) and per evaluated image (all seeds).

    Seeds trained one after another (conv nets on CPU) are timed on one seed and multiplied by
    their number: the same work in sequence.
    """
    vec = vectorizes(arch, device)
    timed_seeds = seeds if vec else seeds[:1]
    k = len(seeds) / len(timed_seeds)
    step = (
        _per_step(
            _minibatch_run(arch, timed_seeds, x, y, batch, device, vec, loss),
            1,
            repeats,
            device,
            steps_per_epoch=2,
        )
        * k
    )
    params = {n: p.to(device) for n, p in init_params(arch, timed_seeds).items()}
    xe, ye = x[:EVAL_IMAGES], y[:EVAL_IMAGES]
    ev = _median(lambda: evaluate(arch, params, xe, ye, loss), repeats, device) / len(xe) * k
    row = {
        "key": name,
        "s_per_step": step,
        "eval_s_per_image": ev,
        "members": len(seeds),
        "vectorized": vec,
        "params": sum(p[0].numel() for p in params.values()),
        **footprint(arch, len(seeds), batch, sample=x[:1]),
    }
    print(
        f"  {name:34s} {step * 1e3:9.2f} ms/step, {ev * 1e6:8.2f} µs per evaluated image "
        f"({len(seeds)} seeds, {'vmapped' if vec else 'one after another'})",
        flush=True,
    )
    return row


def _item(
    claim,
    group,
    what,
    *,
    runs=(),
    steps=0,
    evals=0,
    eval_images=0,
    calls=0,
    s_per_call=0.0,
    host=False,
    shares="",
    peak_bytes=None,
    note="",
) -> dict:
    return {
        "claim": claim,
        "group": group,
        "what": what,
        "runs": list(runs),
        "steps": steps,
        "evals": evals,
        "eval_images": eval_images,
        "calls": calls,
        "s_per_call": s_per_call,
        "host": host,
        "shares": shares,
        "peak_bytes": peak_bytes,
        "note": note,
    }


def footprint(arch, members: int, batch: int, eval_chunk: int = 2000, sample=None) -> dict:
    """Analytic peak bytes of one training step and of one evaluation chunk, all members at once
    (the vmapped path a GPU takes), float32.

    Step: parameters, gradients and Adam's two moments (16 B per parameter and member) plus every
    layer's output for the batch (kept for the backward pass; max-pool indices at 8 B) plus the two
    largest gradient buffers. Evaluation (no grad): the parameters plus the largest input + output
    pair of a layer for the chunk. A lower bound: allocator slack and vmap's copies come on top.
    """
    model = arch()
    sizes, pairs, pool = [], [], 0

    def hook(mod, inp, out):
        nonlocal pool
        if isinstance(mod, torch.nn.Flatten):
            return  # a view
        sizes.append(out[0].numel())
        pairs.append(inp[0][0].numel() + out[0].numel())
        if isinstance(mod, torch.nn.MaxPool2d):
            pool += out[0].numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model(sample if sample is not None else torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    P = sum(p.numel() for p in model.parameters())
    acts = (sum(sizes) + 2 * max(sizes)) * 4 + pool * 8
    return {
        "step_bytes": members * (16 * P + batch * acts),
        "eval_bytes": members * (4 * P + eval_chunk * 4 * max(pairs)),
    }


# ------------------------------------------------------------------------------ HW1-1 and HW1-2 fit runs
def _fit(device, repeats) -> tuple[list, list]:
    from hw1.models import dnn_arch

    cfg = PAPER.fit
    seeds = list(range(cfg.seeds))
    budgets = sorted(set(cfg.crossover_budgets) | {cfg.budget})
    runs = []
    for b in budgets:
        for d in cfg.depths:
            run = lambda e, b=b, d=d: fit_runs(replace(cfg, epochs=e), "sinc", d, b, seeds, device)
            runs.append(
                {
                    "key": f"fit/d{d}/b{b}",
                    "s_per_step": _per_step(run, 10, repeats, device),
                    "eval_s_per_image": 0.0,
                    "members": len(seeds),
                    "vectorized": True,
                    **footprint(
                        dnn_arch(d, b), len(seeds), cfg.n_points, cfg.n_points, sample=torch.zeros(1, 1)
                    ),
                }
            )
            print(f"  {runs[-1]['key']:34s} {runs[-1]['s_per_step'] * 1e3:9.2f} ms/step", flush=True)
    items = []
    for t in cfg.targets:
        items.append(
            _item(
                f"function-depth [{t}]",
                "fit",
                f"{len(cfg.depths)} DNNs at {cfg.budget} params, {len(seeds)} seeds, full batch",
                runs=[f"fit/d{d}/b{cfg.budget}" for d in cfg.depths],
                steps=cfg.epochs,
                shares="small-budget-crossover reads them at its largest budget"
                + ("; trajectories-diverge and gradient-norm read them" if t == "sincos" else ""),
            )
        )
        items.append(
            _item(
                f"small-budget-crossover [{t}]",
                "fit",
                f"{len(cfg.depths)} depths x budgets {[b for b in budgets if b != cfg.budget]}",
                runs=[f"fit/d{d}/b{b}" for b in budgets if b != cfg.budget for d in cfg.depths],
                steps=cfg.epochs,
            )
        )
    items.append(_trajectories(cfg))
    items.append(
        _item(
            "gradient-norm",
            "fit",
            "reads function-depth [sincos]'s 1-layer runs; its own arithmetic is negligible",
            shares="function-depth [sincos]",
        )
    )
    return runs, items


def _trajectories(cfg) -> dict:
    """PCA and t-SNE of (seeds x snapshots) points, for one layer and the whole model, plus the
    aligned end-point distances: at the real shape (a random walk stands in for training)."""
    from hw1.models import dnn_arch

    arch, K = dnn_arch(max(cfg.depths), cfg.budget), cfg.seeds
    T = cfg.epochs // cfg.snapshot_every + 1
    start = Ensemble(arch, list(range(K)), init_params(arch, list(range(K)))).flat()
    g = torch.Generator().manual_seed(0)
    snap = start[:, None] + 0.01 * torch.randn(K, T, start.shape[1], generator=g).cumsum(1)
    shapes = landscape.param_shapes(init_params(arch, [0]))
    layer = landscape.layer_slice(shapes, landscape.middle_layer(shapes))

    def work():
        landscape.endpoint_distances(snap[:, 0], snap[:, -1], shapes)
        for part in (snap[..., layer], snap):
            for method in ("pca", "tsne"):
                landscape.project_trajectories(part.numpy(), method, seed=0)

    with PeakRSS() as mem:
        s = timed(work, CPU)
    print(f"  trajectories (PCA, t-SNE, distances)   {s:9.2f} s", flush=True)
    return _item(
        "trajectories-diverge",
        "fit",
        f"PCA + t-SNE of {K}x{T} snapshots (layer, model), aligned end distances",
        calls=1,
        s_per_call=s,
        host=True,
        peak_bytes=mem.growth,
        shares="trains nothing: function-depth [sincos]'s 6-layer runs",
    )


# ------------------------------------------------------------------------------ HW1-1 MNIST
def _mnist(device, repeats) -> tuple[list, list]:
    cfg = PAPER.mnist
    seeds = list(range(cfg.seeds))
    x, y = load_mnist(True, limit=2 * cfg.batch_size)
    steps = cfg.epochs * math.ceil((cfg.train_size or N_TRAIN) / cfg.batch_size)
    runs, items = [], []
    for kind, depths in (("cnn", cfg.cnn_depths), ("dnn", cfg.dnn_depths)):
        for d in depths:
            arch = mnist_arch(cfg, kind, d)
            xs = x if kind == "cnn" else x.flatten(1)
            runs.append(_train_row(f"mnist/{kind}/d{d}", arch, seeds, xs, y, cfg.batch_size, device, repeats))
        # mnist_runs evaluates once, after the last epoch, on the training and the test set
        items.append(
            _item(
                f"{kind}-depth",
                f"{kind}-depth",
                f"{kind.upper()}s of {len(depths)} depths at "
                f"~{cfg.cnn_budget if kind == 'cnn' else cfg.dnn_budget} params, {len(seeds)} seeds, "
                f"batch {cfg.batch_size}, {cfg.epochs} epochs",
                runs=[f"mnist/{kind}/d{d}" for d in depths],
                steps=steps,
                evals=1,
                eval_images=(cfg.train_size or N_TRAIN) + (cfg.test_size or N_TEST),
            )
        )
    return runs, items


# ------------------------------------------------------------------------------ HW1-2 minimal ratio
def _ratio(device, repeats) -> tuple[list, list]:
    cfg = PAPER.opt
    seeds = list(range(cfg.ratio_runs))
    arch = landscape.ratio_arch(cfg)
    x, y = sample_target(cfg.ratio_target, cfg.n_points)
    mse = _per_step(
        lambda e: train_ensemble(arch, seeds, x, y, TrainOptions(epochs=e, lr=cfg.lr, device=device)),
        5,
        repeats,
        device,
    )
    ens = Ensemble(arch, seeds, init_params(arch, seeds), {}, "mse")
    gn = _per_step(
        lambda e: landscape.minimize_grad_norm(ens, x, y, epochs=e, lr=cfg.gn_lr, device=device),
        2,
        repeats,
        device,
    )
    mem = footprint(arch, len(seeds), cfg.n_points, cfg.n_points, sample=torch.zeros(1, 1))
    runs = [
        {
            "key": "ratio/mse",
            "s_per_step": mse,
            "eval_s_per_image": 0.0,
            "members": len(seeds),
            "vectorized": True,
            **mem,
        },
        {
            "key": "ratio/gn",
            "s_per_step": gn,
            "eval_s_per_image": 0.0,
            "members": len(seeds),
            "vectorized": True,
            "step_bytes": 3 * mem["step_bytes"],
            "eval_bytes": mem["eval_bytes"],
            "note": "grad of grad: ~3x the MSE step's activations (analytic guess)",
        },
    ]
    one = Ensemble(arch, [0], init_params(arch, [0]), {}, "mse")
    # members hessian_eigenvalues computes at once (its default chunk, sized by memory)
    at_once = min(landscape.hessian_chunk(one.flat().shape[1], len(x)), len(seeds))
    with PeakRSS() as mem:
        hess = timed(lambda: landscape.hessian_eigenvalues(one, x, y), CPU)
    print(
        f"  ratio MSE phase {mse * 1e3:.1f} ms/step, gradient-norm phase {gn * 1e3:.1f} ms/step, "
        f"Hessian {hess:.1f} s and {mem.growth / 2**30:.1f} GiB per member",
        flush=True,
    )
    items = [
        _item(
            "minimal-ratio",
            "minimal-ratio",
            f"{len(seeds)} one-layer DNNs ({arch.n_params} params) as one "
            f"ensemble: {cfg.mse_epochs} MSE steps",
            runs=["ratio/mse"],
            steps=cfg.mse_epochs,
        ),
        _item(
            "minimal-ratio",
            "minimal-ratio",
            f"then {cfg.gn_epochs} steps on ||grad L||^2",
            runs=["ratio/gn"],
            steps=cfg.gn_epochs,
        ),
        _item(
            "minimal-ratio",
            "minimal-ratio",
            f"exact {arch.n_params}x{arch.n_params} Hessian (float64) and its eigenvalues, per member",
            calls=len(seeds),
            s_per_call=hess,
            host=True,
            peak_bytes=mem.growth * at_once,
            note=f"memory: one member's {mem.growth / 2**30:.1f} GiB x {at_once} (hessian_eigenvalues' chunk)",
        ),
    ]
    theta = one.flat()[0]
    radii = np.asarray(cfg.radii) * float(theta.norm())
    with PeakRSS() as mem:
        sph = timed(lambda: landscape.sphere_losses(one, x, y, radii, cfg.n_dirs, seed=0), CPU)
    with PeakRSS() as mem2:
        surf = timed(
            lambda: landscape.surface_2d(
                arch, theta, x, y, landscape.param_shapes(one.params), cfg.span, cfg.grid, seed=0
            ),
            CPU,
        )
    items += [
        _item(
            "error-surface",
            "minimal-ratio",
            f"sphere losses: {len(cfg.radii)} radii x {cfg.n_dirs} directions, per member",
            calls=min(cfg.seeds, cfg.ratio_runs),
            s_per_call=sph,
            host=True,
            peak_bytes=mem.growth,
            shares="trains nothing: minimal-ratio's end points",
        ),
        _item(
            "error-surface",
            "minimal-ratio",
            f"2-D surface, {cfg.grid}x{cfg.grid} grid",
            calls=1,
            s_per_call=surf,
            host=True,
            peak_bytes=mem2.growth,
        ),
    ]
    return runs, items


# ------------------------------------------------------------------------------ HW1-3
def _random_labels_and_sizes(device, repeats) -> tuple[list, list]:
    cfg = PAPER.gen
    x, y = load_mnist(True, limit=2 * max(cfg.rl_batch, cfg.pg_batch))
    n_eval = (cfg.rl_train_size or N_TRAIN) + (cfg.rl_test_size or N_TEST)
    # random_label_runs trains its seeds as one ensemble, each with its own label permutation
    # (vmapped on CUDA, seed after seed for conv nets on CPU), evaluating both sets after the first
    # epoch, every rl_eval_every-th and the last
    rl = _train_row(
        "random-labels", G.random_label_arch(cfg), list(range(cfg.seeds)), x, y, cfg.rl_batch, device, repeats
    )
    n_evals = len(eval_epochs(cfg.rl_epochs, cfg.rl_eval_every, first=True)) + 1
    items = [
        _item(
            "random-labels",
            "random-labels",
            f"1 conv ({cfg.rl_channels[0]}) + dense {cfg.rl_widths[0]}, "
            f"{cfg.seeds} seeds as one ensemble, {cfg.rl_epochs} epochs, batch {cfg.rl_batch}, both "
            f"sets evaluated {n_evals} times",
            runs=["random-labels"],
            steps=cfg.rl_epochs * math.ceil((cfg.rl_train_size or N_TRAIN) / cfg.rl_batch),
            evals=n_evals,
            eval_images=n_eval,
        )
    ]
    runs = [rl]
    seeds = list(range(cfg.pg_seeds))
    for w in cfg.pg_widths:
        runs.append(_train_row(f"size/w{w}", G.size_arch(cfg, w), seeds, x, y, cfg.pg_batch, device, repeats))
    items.append(
        _item(
            "params-vs-generalization [test-accuracy-flat]",
            "params-vs-generalization",
            f"{len(cfg.pg_widths)} conv+dense nets up to width {cfg.pg_widths[-1]}, {len(seeds)} seeds, "
            f"{cfg.pg_epochs} epochs, batch {cfg.pg_batch}, both sets evaluated every "
            f"{G.eval_every(cfg.pg_epochs)} epoch(s)",
            runs=[f"size/w{w}" for w in cfg.pg_widths],
            steps=cfg.pg_epochs * math.ceil((cfg.pg_train_size or N_TRAIN) / cfg.pg_batch),
            evals=math.ceil(cfg.pg_epochs / G.eval_every(cfg.pg_epochs)),
            eval_images=(cfg.pg_train_size or N_TRAIN) + (cfg.pg_test_size or N_TEST),
            shares="test-loss-rises and train-loss-falls read the same runs",
        )
    )
    for part in ("test-loss-rises", "train-loss-falls"):
        items.append(
            _item(
                f"params-vs-generalization [{part}]",
                "params-vs-generalization",
                "reads the size family",
                shares="params-vs-generalization [test-accuracy-flat]",
            )
        )
    return runs, items


def _batch_runs(device, repeats) -> tuple[list, list]:
    cfg = PAPER.gen
    seeds = list(range(cfg.seeds))
    x, y = load_mnist(True, limit=2 * max(cfg.batch_sizes))
    xf, yf = sample_target(cfg.fit_target, 2 * max(cfg.batch_sizes), seed=1)
    runs, items = [], []
    for task, (xs, ys), n_train, n_eval in (
        (
            "mnist",
            (x, y),
            cfg.bs_train_size or N_TRAIN,
            (cfg.bs_train_size or N_TRAIN) + (cfg.bs_test_size or N_TEST),
        ),
        ("fit", (xf, yf), cfg.fit_points, 2 * cfg.fit_points),
    ):
        arch, loss = G.batch_arch(cfg, task), "ce" if task == "mnist" else "mse"
        keys = []
        for b in cfg.batch_sizes:
            runs.append(_train_row(f"batch/{task}/b{b}", arch, seeds, xs, ys, b, device, repeats, loss=loss))
            keys.append(f"batch/{task}/b{b}")
            epochs = G.batch_epochs(cfg, task, b)
            runs[-1].update(
                steps=epochs * math.ceil(n_train / b), evals=math.ceil(epochs / G.eval_every(epochs))
            )  # G.batch_runs' cadence
        case = f"sensitivity [{task}]"
        items.append(
            _item(
                case,
                "batch-size",
                f"{len(cfg.batch_sizes)} batch sizes {list(cfg.batch_sizes)}, "
                f"{len(seeds)} seeds, both sets evaluated about {G.EVALS} times a run",
                runs=keys,
                eval_images=n_eval,
                shares=(
                    "interpolation and sharpness [mnist-*] read them"
                    if task == "mnist"
                    else "sharpness [fit-*] reads them"
                ),
            )
        )
    return runs, items


def _measurements(repeats) -> list:
    """Per member and batch size, on CPU copies of the models (as batch_measurements does)."""
    cfg = PAPER.gen
    calls = cfg.seeds * len(cfg.batch_sizes)
    items = []
    for task in ("mnist", "fit"):
        arch, loss = G.batch_arch(cfg, task), "ce" if task == "mnist" else "mse"
        model = Ensemble(arch, [0], init_params(arch, [0]), {}, loss).model(0)
        if task == "mnist":
            (x, y), (xt, yt) = (load_mnist(True, limit=2000), load_mnist(False, limit=2000))
            n_sens, n_sharp = cfg.sens_points or N_TEST, cfg.sharp_points or N_TRAIN
        else:
            (x, y), (xt, yt) = G.task_data(cfg, task)
            n_sens, n_sharp = cfg.fit_points, min(cfg.sharp_points or cfg.fit_points, cfg.fit_points)
        # fn(n) -> one call on n points, and how many such calls the real one is worth in its
        # point-dependent part: the Gaussian sharpness is timed with 1 draw (2 losses) of its 21
        probes = {
            "sensitivity": (
                lambda n: G.sensitivity(model, xt[:n], yt[:n], loss),
                1.0,
                n_sens,
                f"loss-gradient norms{' + softmax Jacobians' if task == 'mnist' else ''} on "
                f"{n_sens} test points",
            ),
            "gaussian": (
                lambda n: G.gaussian_sharpness(model, x[:n], y[:n], loss, sigma=cfg.sharp_sigma, n=1, seed=0),
                (cfg.sharp_n + 1) / 2,
                n_sharp,
                f"{cfg.sharp_n + 1} float64 losses on {n_sharp} training points",
            ),
            "keskar": (
                lambda n: G.keskar_sharpness(
                    model, x[:n], y[:n], loss, eps=cfg.keskar_eps, iters=cfg.keskar_iters
                ),
                1.0,
                n_sharp,
                f"L-BFGS-B, {cfg.keskar_iters} iterations, float64, on {n_sharp} training points",
            ),
        }
        for name, (fn, per_point_x, n_real, what) in probes.items():
            sizes = (250, len(x)) if task == "mnist" else (n_real // 2, n_real)
            t, grown = _linear(fn, sizes)
            s = t["a"] + t["b"] * per_point_x * n_real
            peak = grown * n_real / sizes[1]  # the working set grows with the points
            case = f"sensitivity [{task}]" if name == "sensitivity" else f"sharpness [{task}-{name}]"
            how = (
                "timed at real size"
                if sizes[-1] == n_real
                else f"timed at {sizes[0]} and {sizes[1]} points, linear; memory x {n_real / sizes[1]:g}"
            )
            how += f"; 1 draw timed, x {per_point_x:g}" if per_point_x != 1 else ""
            items.append(
                _item(
                    case,
                    "batch-size",
                    f"{what}, per member and batch size",
                    calls=calls,
                    s_per_call=s,
                    host=True,
                    peak_bytes=peak,
                    note=how,
                    shares="" if name == "sensitivity" else f"the batch-size runs of sensitivity [{task}]",
                )
            )
            print(f"  {case:34s} {s:9.2f} s per member ({how}), peak {peak / 2**30:.2f} GiB", flush=True)
    return items + [_interpolation(repeats)]


def _interpolation(repeats) -> dict:
    cfg = PAPER.gen
    arch, K = G.batch_arch(cfg, "mnist"), cfg.seeds
    params = init_params(arch, list(range(K)))  # CPU: the cached endpoints are CPU tensors
    x, y = load_mnist(False, limit=EVAL_IMAGES)
    with PeakRSS() as mem:
        s = _median(lambda: evaluate(arch, params, x, y, "ce"), repeats, CPU) / len(x)
    n = (cfg.bs_train_size or N_TRAIN) + (cfg.bs_test_size or N_TEST)
    print(f"  interpolation: {s * 1e6:.1f} µs per image for {K} members", flush=True)
    return _item(
        "interpolation",
        "batch-size",
        f"{cfg.n_alphas} points on the line x {n} images x {K} members",
        calls=cfg.n_alphas,
        s_per_call=s * n,
        host=True,
        note="memory: x 2000/500 (evaluate's chunk)",
        peak_bytes=mem.growth * 2000 / EVAL_IMAGES,
        shares=f"the batch-{cfg.interp_batches[0]} and -{cfg.interp_batches[1]} runs of sensitivity [mnist]",
    )


# ------------------------------------------------------------------------------ the estimate
def estimate_paper(device: torch.device, repeats: int = 3) -> dict:
    """Per-run timings and per-claim-case items at paper scale (seconds; see item_seconds)."""
    runs, items = [], []
    with _no_run_cache():
        for part in (_fit, _mnist, _ratio, _random_labels_and_sizes, _batch_runs):
            r, i = part(device, repeats)
            runs += r
            items += i
        items += _measurements(repeats)
    # graphed steps (HW1_CUDA_GRAPH=1 on CUDA) or eager: what the runs' seconds per step measured
    graphs = uses_graphs(device)
    out = {"runs": {r["key"]: r for r in runs}, "items": items, "graphs": graphs}
    for it in items:
        it["s"] = item_seconds(it, out["runs"])  # on this device (host items: on its CPU)
    return out


def item_seconds(item: dict, runs: dict) -> float:
    """An item's seconds from per-run timings: steps x seconds per step (+ evaluations), or calls x
    seconds per call. Batch-size runs carry their own steps and evaluations."""
    total = item["calls"] * item["s_per_call"]
    for key in item["runs"]:
        r = runs[key]
        steps, evals = r.get("steps", item["steps"]), r.get("evals", item["evals"])
        total += steps * r["s_per_step"] + evals * item["eval_images"] * r["eval_s_per_image"]
    return total


# ------------------------------------------------------------------------------ GPU estimates
# Where a run has no GPU timing, its GPU time is derived from measured CPU/GPU pairs of the
# nearest kind of run measured on both (the smallest ratio: the conservative one).
ANALOG = {
    "fit/": "fit/",
    "batch/fit/": "fit/",
    "ratio/gn": "ratio/mse",
    "mnist/cnn/": "mnist/cnn/",
    "random-labels": "mnist/cnn/",
    "size/": "mnist/cnn/",
    "batch/mnist/": "mnist/cnn/",
    "mnist/dnn/": "mnist/dnn/",
}


ANALOG_NAME = {
    "fit/": "HW1-1 fit DNN",
    "mnist/cnn/": "HW1-1 MNIST CNN",
    "mnist/dnn/": "HW1-1 MNIST DNN",
    "ratio/mse": "minimal-ratio MSE phase",
}


def legacy_gpu_runs(res: dict) -> dict:
    """Per-run GPU timings from a results file of the earlier HW1-1-only estimate: its fit and
    MNIST rows, and the K=100 depth-1 row of its ensemble benchmark (the minimal-ratio MSE phase:
    the same net, 100 members, 256 points)."""
    import re

    out = {}
    for r in res.get("paper", {}).get("rows", []):
        if m := re.match(r"DNN depth (\d+), budget (\d+), ", r["what"]):
            out[f"fit/d{m[1]}/b{m[2]}"] = {"s_per_step": r["s_per_step"], "eval_s_per_image": 0.0}
        elif m := re.match(r"(CNN|DNN) depth (\d+), \d+ params", r["what"]):
            # that estimate counted 20 evaluations of the 60k + 10k images in eval_s
            out[f"mnist/{m[1].lower()}/d{m[2]}"] = {
                "s_per_step": r["s_per_step"],
                "eval_s_per_image": r.get("eval_s", 0.0) / (20 * 70_000),
            }
    for r in res.get("ensemble", []):
        if r["net"] == "HW1-1 DNN depth 1" and r["K"] == 100:
            out["ratio/mse"] = {
                "s_per_step": r["ens_s_per_step"]["median"],
                "eval_s_per_image": 0.0,
                "source": "ensemble benchmark, K=100 × HW1-1 DNN depth 1",
            }
    return out


def _analog(key: str, cpu_runs: dict, gpu_runs: dict) -> dict | None:
    prefix = next((ANALOG[p] for p in sorted(ANALOG, key=len, reverse=True) if key.startswith(p)), None)
    pairs = [k for k in gpu_runs if prefix and k.startswith(prefix) and k in cpu_runs]
    if not pairs:
        return None
    ratio = {k: cpu_runs[k]["s_per_step"] / gpu_runs[k]["s_per_step"] for k in pairs}
    evals = {
        k: cpu_runs[k]["eval_s_per_image"] / gpu_runs[k]["eval_s_per_image"]
        for k in pairs
        if gpu_runs[k]["eval_s_per_image"] > 0
    }
    worst = min(ratio, key=ratio.get)
    return {
        "ratio": ratio[worst],
        "worst": worst,
        "floor": min(gpu_runs[k]["s_per_step"] for k in pairs),
        "eval_ratio": min(evals.values()) if evals else ratio[worst],
        "pairs": pairs,
    }


def gpu_run(key: str, cpu_runs: dict, gpu_runs: dict) -> tuple[dict, str] | None:
    """A run's GPU seconds per step and per evaluated image: measured, or derived from its analog.

    Derived: CPU time / the smallest CPU/GPU ratio among the analog's runs, and never below the
    fastest GPU step among them (the fixed cost of a step: Python, kernel launches); a run whose
    seeds train one at a time on the GPU too pays that per seed.
    """
    if key in gpu_runs:
        return gpu_runs[key], "measured"
    a, c = _analog(key, cpu_runs, gpu_runs), cpu_runs[key]
    if a is None:
        return None
    if c.get("one_at_a_time"):
        step = c["members"] * max(a["floor"], c["s_per_step"] / c["members"] / a["ratio"])
    else:
        step = max(a["floor"], c["s_per_step"] / a["ratio"])
    how = (
        f"derived: CPU ÷ {a['ratio']:.3g} (smallest CPU/GPU ratio of the {len(a['pairs'])} "
        f"{next(v for k, v in ANALOG_NAME.items() if a['worst'].startswith(k))} "
        f"runs), at least {a['floor'] * 1e3:.1f} ms/step"
        + (" per seed, trained one at a time" if c.get("one_at_a_time") else "")
    )
    return {"s_per_step": step, "eval_s_per_image": c["eval_s_per_image"] / a["eval_ratio"]}, how


def gpu_item(item: dict, cpu_runs: dict, gpu_runs: dict) -> tuple[float | None, str]:
    """(GPU-runner seconds, how) of one item; host items run on the CPU there too."""
    if item["host"] or not item["runs"]:
        return item["calls"] * item["s_per_call"], "host CPU" if item["calls"] else "—"
    got = {k: gpu_run(k, cpu_runs, gpu_runs) for k in item["runs"]}
    if any(v is None for v in got.values()):
        return None, "no GPU timing and no analog"
    runs = {k: {**cpu_runs[k], **v[0]} for k, v in got.items()}
    hows = sorted({v[1] for v in got.values()})
    return item_seconds(item, runs), "; ".join(hows)
