"""What `paper` scale (hw1.config.PAPER) costs on this device, claim case by claim case: measured
time x count.

Every run family is timed for a few steps with its real models on data of the real shapes, vmapped
or seed after seed as the producers train them here; every dominant measurement at its real size,
or at two smaller point counts and extrapolated linearly. Each time is multiplied by the paper's
count (steps, evaluations, members x batch sizes). Runs that several cases share are counted once,
under one case; the others name it (`shares`). Measurements on CPU copies of the models (`host`)
are timed on the CPU whatever the device, with their peak memory (`PeakRSS`); on CUDA several of
them run on the device, so their CPU times are upper bounds there (benchmarks/README.md).
"""

from __future__ import annotations

import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from unittest import mock

import numpy as np
import torch

from hw1 import generalization as G, landscape
from hw1.config import PAPER
from hw1.data import load_mnist, sample_target
from hw1.experiments import fit_runs, mnist_arch
from hw1.graphs import uses_graphs
from hw1.models import dnn_arch
from hw1.train import Ensemble, TrainOptions, eval_epochs, evaluate, init_params, train_ensemble, vectorizes

from .common import PeakRSS, timed

CPU = torch.device("cpu")
N_TRAIN, N_TEST = 60_000, 10_000
EVAL_IMAGES = 500  # images an evaluation is timed on (per-image cost)


def _per_step(run, extra: int, repeats: int, device, steps_per_epoch: int = 1, target_s=0.25) -> float:
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


def _linear(fn, sizes: tuple[int, int]) -> tuple[float, float, int]:
    """fn(n) timed at two point counts: (a, b) with seconds = a + b n, and the peak memory growth of
    the larger call."""
    (t1, _), (t2, grown) = (_on_cpu(lambda: fn(n)) for n in sizes)
    b = (t2 - t1) / (sizes[1] - sizes[0])
    return max(t1 - b * sizes[0], 0.0), max(b, 0.0), grown


@contextmanager
def _no_run_cache():
    """Time the training itself, never a cache hit, and leave the project's cache alone."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.dict(os.environ, HW1_NO_CACHE="1", HW1_RUN_CACHE=tmp),
    ):
        yield


def _run(key: str, s_per_step: float, members: int, eval_s_per_image=0.0, vectorized=True, **kw) -> dict:
    """A run family's measured seconds per step and per evaluated image (all seeds)."""
    row = dict(key=key, s_per_step=s_per_step, eval_s_per_image=eval_s_per_image, members=members)
    return {**row, "vectorized": vectorized, **kw}


NO_CALLS = {"calls": 0, "s_per_call": 0.0, "host": False, "peak_bytes": None, "note": ""}


def _item(claim: str, group: str, what: str, runs=(), steps=0, evals=0, eval_images=0, shares="") -> dict:
    """A row of the estimate from training: each of `runs` trained for `steps` (a batch-size run
    carries its own), plus `evals` evaluations of `eval_images`. `group`: its CI shard."""
    row = dict(claim=claim, group=group, what=what, runs=list(runs), steps=steps, evals=evals)
    return {**row, "eval_images": eval_images, **NO_CALLS, "shares": shares}


def _host(claim: str, group: str, what: str, calls: int, s: float, peak: float, note="", shares="") -> dict:
    """A row of the estimate from a measurement on CPU copies of the models: `calls` of `s` seconds,
    `peak` bytes of resident memory each."""
    row = _item(claim, group, what, shares=shares)
    return {**row, "calls": calls, "s_per_call": s, "host": True, "peak_bytes": peak, "note": note}


def _on_cpu(fn) -> tuple[float, int]:
    """(seconds, peak growth of resident memory) of one call of fn() on the CPU."""
    with PeakRSS() as mem:
        s = timed(fn, CPU)
    return s, mem.growth


def _train_row(name, arch, seeds, data, batch, device, repeats, loss="ce") -> dict:
    """Timed on two minibatches per epoch from fixed initial parameters. Seeds trained one after
    another (conv nets on CPU) are timed on one seed and multiplied by their number."""
    (x, y), vec = data, vectorizes(arch, device)
    timed_seeds = seeds if vec else seeds[:1]
    k, n, start = len(seeds) / len(timed_seeds), 2 * batch, init_params(arch, timed_seeds)
    opts = TrainOptions(1, 1e-3, loss=loss, batch_size=batch, device=device, vectorize=vec)
    run = lambda e: train_ensemble(arch, timed_seeds, x[:n], y[:n], replace(opts, epochs=e), params=start)
    step = _per_step(run, 1, repeats, device, steps_per_epoch=2) * k
    params = {n: p.to(device) for n, p in start.items()}
    xe, ye = x[:EVAL_IMAGES], y[:EVAL_IMAGES]
    ev = _median(lambda: evaluate(arch, params, xe, ye, loss), repeats, device) / len(xe) * k
    print(f"  {name:34s} {step * 1e3:9.2f} ms/step, {ev * 1e6:8.2f} µs per evaluated image", flush=True)
    n_params = sum(p[0].numel() for p in params.values())
    return _run(name, step, len(seeds), ev, vectorized=vec, params=n_params)


def _fit(device, repeats) -> tuple[list, list]:
    """HW1-1 and HW1-2: the fit runs of every depth and budget, full batch."""
    cfg, seeds = PAPER.fit, list(range(PAPER.fit.seeds))
    budgets = sorted(set(cfg.crossover_budgets) | {cfg.budget})
    small = [b for b in budgets if b != cfg.budget]
    runs = []
    for b in budgets:
        for d in cfg.depths:
            run = lambda e, b=b, d=d: fit_runs(replace(cfg, epochs=e), "sinc", d, b, seeds, device)
            runs.append(_run(f"fit/d{d}/b{b}", _per_step(run, 10, repeats, device), len(seeds)))
            print(f"  {runs[-1]['key']:34s} {runs[-1]['s_per_step'] * 1e3:9.2f} ms/step", flush=True)
    items = []
    for t in cfg.targets:
        largest = [f"fit/d{d}/b{cfg.budget}" for d in cfg.depths]
        what = f"{len(cfg.depths)} DNNs at {cfg.budget} params, {len(seeds)} seeds, full batch"
        shares = "small-budget-crossover reads them at its largest budget"
        shares += "; trajectories-diverge and gradient-norm read them" if t == "sincos" else ""
        items.append(_item(f"function-depth [{t}]", "fit", what, largest, cfg.epochs, shares=shares))
        keys = [f"fit/d{d}/b{b}" for b in small for d in cfg.depths]
        what = f"{len(cfg.depths)} depths x budgets {small}"
        items.append(_item(f"small-budget-crossover [{t}]", "fit", what, keys, cfg.epochs))
    what = "reads function-depth [sincos]'s 1-layer runs; its own arithmetic is negligible"
    items += [_trajectories(cfg), _item("gradient-norm", "fit", what, shares="function-depth [sincos]")]
    return runs, items


def _trajectories(cfg) -> dict:
    """PCA and t-SNE of (seeds x snapshots) points, for one layer and the whole model, plus the
    aligned end-point distances: at the real shape (a random walk stands in for training)."""
    arch, K, T = dnn_arch(max(cfg.depths), cfg.budget), cfg.seeds, cfg.epochs // cfg.snapshot_every + 1
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

    s, peak = _on_cpu(work)
    print(f"  trajectories (PCA, t-SNE, distances)   {s:9.2f} s", flush=True)
    what = f"PCA + t-SNE of {K}x{T} snapshots (layer, model), aligned end distances"
    shares = "trains nothing: function-depth [sincos]'s 6-layer runs"
    return _host("trajectories-diverge", "fit", what, 1, s, peak, shares=shares)


def _mnist(device, repeats) -> tuple[list, list]:
    """HW1-1 MNIST: CNNs and DNNs of every depth, evaluated once after the last epoch."""
    cfg, seeds = PAPER.mnist, list(range(PAPER.mnist.seeds))
    x, y = load_mnist(True, limit=2 * cfg.batch_size)
    steps = cfg.epochs * math.ceil((cfg.train_size or N_TRAIN) / cfg.batch_size)
    n_eval = (cfg.train_size or N_TRAIN) + (cfg.test_size or N_TEST)
    runs, items = [], []
    for kind, depths in (("cnn", cfg.cnn_depths), ("dnn", cfg.dnn_depths)):
        data = (x if kind == "cnn" else x.flatten(1), y)
        keys = [f"mnist/{kind}/d{d}" for d in depths]
        for key, arch in zip(keys, (mnist_arch(cfg, kind, d) for d in depths)):
            runs.append(_train_row(key, arch, seeds, data, cfg.batch_size, device, repeats))
        budget = cfg.cnn_budget if kind == "cnn" else cfg.dnn_budget
        what = (
            f"{kind.upper()}s of {len(depths)} depths at ~{budget} params, {len(seeds)} seeds, "
            f"batch {cfg.batch_size}, {cfg.epochs} epochs"
        )
        items.append(_item(f"{kind}-depth", f"{kind}-depth", what, keys, steps, 1, n_eval))
    return runs, items


def _ratio(device, repeats) -> tuple[list, list]:
    """HW1-2 minimal ratio: the MSE phase, the gradient-norm phase, the Hessians; the error surface."""
    cfg, group = PAPER.opt, "minimal-ratio"
    seeds, arch = list(range(cfg.ratio_runs)), landscape.ratio_arch(cfg)
    x, y = sample_target(cfg.ratio_target, cfg.n_points)
    mse = lambda e: train_ensemble(arch, seeds, x, y, TrainOptions(e, cfg.lr, device=device))
    ens = Ensemble(arch, seeds, init_params(arch, seeds), {}, "mse")
    gn = lambda e: landscape.minimize_grad_norm(ens, x, y, epochs=e, lr=cfg.gn_lr, device=device)
    mse, gn = _per_step(mse, 5, repeats, device), _per_step(gn, 2, repeats, device)
    runs = [_run(f"ratio/{k}", s, len(seeds)) for k, s in (("mse", mse), ("gn", gn))]
    one = Ensemble(arch, [0], init_params(arch, [0]), {}, "mse")
    # members hessian_eigenvalues computes at once (its default chunk, sized by memory)
    at_once = min(landscape.hessian_chunk(one.flat().shape[1], len(x)), len(seeds))
    hess, peak = _on_cpu(lambda: landscape.hessian_eigenvalues(one, x, y))
    print(
        f"  ratio MSE {mse * 1e3:.1f}, gradient norm {gn * 1e3:.1f} ms/step, Hessian {hess:.1f} s", flush=True
    )
    n = arch.n_params
    what = f"{len(seeds)} one-layer DNNs ({n} params) as one ensemble: {cfg.mse_epochs} MSE steps"
    items = [_item("minimal-ratio", group, what, ["ratio/mse"], cfg.mse_epochs)]
    what = f"then {cfg.gn_epochs} steps on ||grad L||^2"
    items.append(_item("minimal-ratio", group, what, ["ratio/gn"], cfg.gn_epochs))
    what = f"exact {n}x{n} Hessian (float64) and its eigenvalues, per member"
    note = f"memory: one member's {peak / 2**30:.1f} GiB x {at_once} (hessian_eigenvalues' chunk)"
    items.append(_host("minimal-ratio", group, what, len(seeds), hess, peak * at_once, note))
    theta = one.flat()[0]
    radii = np.asarray(cfg.radii) * float(theta.norm())
    sph, peak = _on_cpu(lambda: landscape.sphere_losses(one, x, y, radii, cfg.n_dirs, seed=0))
    what = f"sphere losses: {len(cfg.radii)} radii x {cfg.n_dirs} directions, per member"
    calls, shares = min(cfg.seeds, cfg.ratio_runs), "trains nothing: minimal-ratio's end points"
    items.append(_host("error-surface", group, what, calls, sph, peak, shares=shares))
    shapes = landscape.param_shapes(one.params)
    surf, peak = _on_cpu(lambda: landscape.surface_2d(arch, theta, x, y, shapes, cfg.span, cfg.grid, seed=0))
    items.append(_host("error-surface", group, f"2-D surface, {cfg.grid}x{cfg.grid} grid", 1, surf, peak))
    return runs, items


def _random_labels_and_sizes(device, repeats) -> tuple[list, list]:
    """HW1-3: random labels (the seeds as one ensemble, each with its own label permutation) and
    the size family, both sets evaluated at their producers' cadence."""
    cfg, pg = PAPER.gen, "params-vs-generalization"
    data = load_mnist(True, limit=2 * max(cfg.rl_batch, cfg.pg_batch))
    seeds, rl_seeds = list(range(cfg.pg_seeds)), list(range(cfg.seeds))
    nets = [("random-labels", G.random_label_arch(cfg), rl_seeds, cfg.rl_batch)]
    nets += [(f"size/w{w}", G.size_arch(cfg, w), seeds, cfg.pg_batch) for w in cfg.pg_widths]
    runs = [_train_row(key, arch, k, data, batch, device, repeats) for key, arch, k, batch in nets]
    n_evals = len(eval_epochs(cfg.rl_epochs, cfg.rl_eval_every, first=True)) + 1
    what = (
        f"1 conv ({cfg.rl_channels[0]}) + dense {cfg.rl_widths[0]}, {cfg.seeds} seeds as one ensemble, "
        f"{cfg.rl_epochs} epochs, batch {cfg.rl_batch}, both sets evaluated {n_evals} times"
    )
    steps = cfg.rl_epochs * math.ceil((cfg.rl_train_size or N_TRAIN) / cfg.rl_batch)
    n_eval = (cfg.rl_train_size or N_TRAIN) + (cfg.rl_test_size or N_TEST)
    items = [_item("random-labels", "random-labels", what, ["random-labels"], steps, n_evals, n_eval)]
    every, case = G.eval_every(cfg.pg_epochs), f"{pg} [test-accuracy-flat]"
    what = (
        f"{len(cfg.pg_widths)} conv+dense nets up to width {cfg.pg_widths[-1]}, {len(seeds)} seeds, "
        f"{cfg.pg_epochs} epochs, batch {cfg.pg_batch}, both sets evaluated every {every} epoch(s)"
    )
    steps = cfg.pg_epochs * math.ceil((cfg.pg_train_size or N_TRAIN) / cfg.pg_batch)
    n_eval = (cfg.pg_train_size or N_TRAIN) + (cfg.pg_test_size or N_TEST)
    keys, shares = (
        [f"size/w{w}" for w in cfg.pg_widths],
        "test-loss-rises and train-loss-falls read the same runs",
    )
    items.append(_item(case, pg, what, keys, steps, math.ceil(cfg.pg_epochs / every), n_eval, shares))
    for part in ("test-loss-rises", "train-loss-falls"):
        items.append(_item(f"{pg} [{part}]", pg, "reads the size family", shares=case))
    return runs, items


def _batch_runs(device, repeats) -> tuple[list, list]:
    """HW1-3 batch size: each batch size's run carries its own steps and evaluations."""
    cfg, seeds, n_mnist = PAPER.gen, list(range(PAPER.gen.seeds)), PAPER.gen.bs_train_size or N_TRAIN
    mnist = load_mnist(True, limit=2 * max(cfg.batch_sizes))
    fit = sample_target(cfg.fit_target, 2 * max(cfg.batch_sizes), seed=1)
    tasks = {  # task -> (data, training points, evaluated points, who else reads the runs)
        "mnist": (
            mnist,
            n_mnist,
            n_mnist + (cfg.bs_test_size or N_TEST),
            "interpolation and sharpness [mnist-*]",
        ),
        "fit": (fit, cfg.fit_points, 2 * cfg.fit_points, "sharpness [fit-*]"),
    }
    runs, items = [], []
    for task, (data, n_train, n_eval, readers) in tasks.items():
        arch, keys = G.batch_arch(cfg, task), [f"batch/{task}/b{b}" for b in cfg.batch_sizes]
        for key, b in zip(keys, cfg.batch_sizes):
            runs.append(_train_row(key, arch, seeds, data, b, device, repeats, loss=G.task_loss(task)))
            epochs = G.batch_epochs(cfg, task, b)  # G.batch_runs' cadence
            evals = math.ceil(epochs / G.eval_every(epochs))
            runs[-1].update(steps=epochs * math.ceil(n_train / b), evals=evals)
        what = (
            f"{len(cfg.batch_sizes)} batch sizes {list(cfg.batch_sizes)}, {len(seeds)} seeds, both sets "
            f"evaluated about {G.EVALS} times a run"
        )
        shares = readers + (" read them" if task == "mnist" else " reads them")
        items.append(
            _item(f"sensitivity [{task}]", "batch-size", what, keys, eval_images=n_eval, shares=shares)
        )
    return runs, items


def _measurements(repeats) -> list:
    """Per member and batch size, on CPU copies of the models (as batch_measurements does)."""
    cfg, calls = PAPER.gen, PAPER.gen.seeds * len(PAPER.gen.batch_sizes)
    items = []
    for task in ("mnist", "fit"):
        arch, loss = G.batch_arch(cfg, task), G.task_loss(task)
        model = Ensemble(arch, [0], init_params(arch, [0]), {}, loss).model(0)
        if task == "mnist":
            (x, y), (xt, yt) = (load_mnist(True, limit=2000), load_mnist(False, limit=2000))
            n_sens, n_sharp = cfg.sens_points or N_TEST, cfg.sharp_points or N_TRAIN
        else:
            (x, y), (xt, yt) = G.task_data(cfg, task)
            n_sens, n_sharp = cfg.fit_points, min(cfg.sharp_points or cfg.fit_points, cfg.fit_points)
        sens = lambda n: G.sensitivity(model, xt[:n], yt[:n], loss)
        gauss = lambda n: G.gaussian_sharpness(model, x[:n], y[:n], loss, sigma=cfg.sharp_sigma, n=1, seed=0)
        kw = dict(eps=cfg.keskar_eps, iters=cfg.keskar_iters)
        keskar = lambda n: G.keskar_sharpness(model, x[:n], y[:n], loss, **kw)
        jac = " + softmax Jacobians" if task == "mnist" else ""
        gauss_what = f"{cfg.sharp_n + 1} float64 losses on {n_sharp} training points"
        keskar_what = f"L-BFGS-B, {cfg.keskar_iters} iterations, float64, on {n_sharp} training points"
        # name -> (fn(n): one call on n points; how many such calls the real one is worth in its
        # point-dependent part (the Gaussian sharpness is timed on 1 draw, 2 losses, of its 21); the
        # real point count; what it computes)
        probes = {
            "sensitivity": (sens, 1.0, n_sens, f"loss-gradient norms{jac} on {n_sens} test points"),
            "gaussian": (gauss, (cfg.sharp_n + 1) / 2, n_sharp, gauss_what),
            "keskar": (keskar, 1.0, n_sharp, keskar_what),
        }
        for name, (fn, per_point_x, n_real, what) in probes.items():
            sizes = (250, len(x)) if task == "mnist" else (n_real // 2, n_real)
            a, b, grown = _linear(fn, sizes)
            s = a + b * per_point_x * n_real
            peak = grown * n_real / sizes[1]  # the working set grows with the points
            case = f"sensitivity [{task}]" if name == "sensitivity" else f"sharpness [{task}-{name}]"
            how = f"timed at {sizes[0]} and {sizes[1]} points, linear; memory x {n_real / sizes[1]:g}"
            how = "timed at real size" if sizes[-1] == n_real else how
            how += f"; 1 draw timed, x {per_point_x:g}" if per_point_x != 1 else ""
            shares = "" if name == "sensitivity" else f"the batch-size runs of sensitivity [{task}]"
            what = f"{what}, per member and batch size"
            items.append(_host(case, "batch-size", what, calls, s, peak, how, shares))
            print(f"  {case:34s} {s:9.2f} s per member ({how}), peak {peak / 2**30:.2f} GiB", flush=True)
    return items + [_interpolation(repeats)]


def _interpolation(repeats) -> dict:
    cfg, K = PAPER.gen, PAPER.gen.seeds
    arch = G.batch_arch(cfg, "mnist")
    params = init_params(arch, list(range(K)))  # CPU: the cached endpoints are CPU tensors
    x, y = load_mnist(False, limit=EVAL_IMAGES)
    with PeakRSS() as mem:
        s = _median(lambda: evaluate(arch, params, x, y, "ce"), repeats, CPU) / len(x)
    n = (cfg.bs_train_size or N_TRAIN) + (cfg.bs_test_size or N_TEST)
    print(f"  interpolation: {s * 1e6:.1f} µs per image for {K} members", flush=True)
    what = f"{cfg.n_alphas} points on the line x {n} images x {K} members"
    shares = f"the batch-{cfg.interp_batches[0]} and -{cfg.interp_batches[1]} runs of sensitivity [mnist]"
    peak, note = mem.growth * 2000 / EVAL_IMAGES, "memory: x 2000/500 (evaluate's chunk)"
    return _host("interpolation", "batch-size", what, cfg.n_alphas, s * n, peak, note, shares)


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
    out = {"runs": {r["key"]: r for r in runs}, "items": items, "graphs": uses_graphs(device)}
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
