"""HW1-3 generalization: random labels, number of parameters, and flatness (interpolation,
sensitivity, sharpness) -- the runs, cached and shared, and the measurements on them.

Runs (each through the run cache one seed at a time, `cache.per_seed`, keyed on every argument;
a body trains the seeds it is given and returns their tensors, and the decorator's `result` turns
the cached tensors back into what the caller gets):
  random_label_runs  MNIST with a seeded permutation of the training labels (test labels true);
  size_runs          one member of a family of conv+dense nets of growing width on MNIST;
  batch_runs         one batch size on MNIST or on the HW1-1 function-fitting task: the
                     interpolation endpoints, the sensitivities and the sharpnesses all read these.
Measurements: chance_accuracy, interpolate, sensitivity (the report's loss-gradient norm and
Novak et al.'s softmax-Jacobian norm), gaussian_sharpness (the report's) and keskar_sharpness
(Keskar et al.'s epsilon-sharpness, L-BFGS-B in a box).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import Bounds, minimize
from torch import nn
from torch.func import functional_call, jacrev, vmap

from . import cache
from .config import BS_LR_SCALINGS, GenConfig
from .data import load_mnist, sample_target
from .ensemble import Ensemble, ensemble_of
from .landscape import as_double, flat_loss_fn
from .models import ConvDenseArch, dnn_arch
from .train import LOSSES, TrainOptions, evaluate, train_ensemble

MODULES = ("generalization", "landscape")  # landscape: the flat-parameter loss of the sharpness


# ---------------------------------------------------------------- random labels


def permute_labels(y: torch.Tensor, seed: int) -> torch.Tensor:
    """The labels y (N,) in a seeded random order: same histogram, tie to the images broken."""
    g = torch.Generator().manual_seed(10_007 + seed)
    return y[torch.randperm(len(y), generator=g)]


def chance_accuracy(pred: torch.Tensor, y: torch.Tensor, n_classes: int = 10) -> float:
    """Accuracy of a predictor that ignores the input: sum_k q_k p_k, with q the frequencies of
    its predictions pred (N,) and p the class frequencies of the labels y (N,)."""
    q = torch.bincount(pred, minlength=n_classes).double() / len(pred)
    p = torch.bincount(y, minlength=n_classes).double() / len(y)
    return float((q * p).sum())


def mnist_sets(train_size: int | None, test_size: int | None):
    """(x, y), (xt, yt): stratified MNIST subsets (None = all), images (N, 1, 28, 28)."""
    return load_mnist(True, limit=train_size), load_mnist(False, limit=test_size)


def random_label_arch(cfg: GenConfig) -> ConvDenseArch:
    return ConvDenseArch(cfg.rl_channels, cfg.rl_widths)


@cache.per_seed(modules=MODULES, result=ensemble_of("ce", lambda a: random_label_arch(a["cfg"])))
def random_label_runs(cfg: GenConfig, seeds: list[int], device="cpu") -> Ensemble:
    """One net per seed fitted to MNIST with labels permuted by that seed (the test set keeps its
    true labels), all seeds as one ensemble. history: 'train_loss'/'train_acc' (against the permuted
    labels) and 'test_loss'/'test_acc' (K, E) after the first epoch, every `rl_eval_every`-th and the
    last, at the epochs in 'eval_epoch'."""
    arch = random_label_arch(cfg)
    (x, y), (xt, yt) = mnist_sets(cfg.rl_train_size, cfg.rl_test_size)
    yp = [permute_labels(y, s) for s in seeds]  # each seed its own permutation: independent replicates
    options = TrainOptions(
        epochs=cfg.rl_epochs,
        lr=cfg.lr,
        loss="ce",
        batch_size=cfg.rl_batch,
        optimizer=cfg.optimizer,
        eval_every=cfg.rl_eval_every,
        eval_first=True,
        name="random labels",
        device=device,
    )
    return train_ensemble(arch, seeds, x, yp, options, eval_sets={"train": (x, yp), "test": (xt, yt)})


def predict_classes(run: Ensemble, x: torch.Tensor) -> torch.Tensor:
    """(K, N) the class each member predicts for x (N, ...)."""
    from .train import predict

    return predict(run.build, run.params, x).argmax(-1)


# ---------------------------------------------------------------- number of parameters


def size_arch(cfg: GenConfig, width: int) -> ConvDenseArch:
    return ConvDenseArch(cfg.pg_channels, (width,) * cfg.pg_depth)


@cache.per_seed(modules=MODULES, result=ensemble_of("ce", lambda a: size_arch(a["cfg"], a["width"])))
def size_runs(cfg: GenConfig, width: int, seeds: list[int], device="cpu") -> Ensemble:
    """Member `width` of the size family trained on MNIST. history: train/test loss/acc (K, E), E
    evaluations (`eval_every`; the last after the last epoch), at the epochs in 'eval_epoch'."""
    arch = size_arch(cfg, width)
    (x, y), (xt, yt) = mnist_sets(cfg.pg_train_size, cfg.pg_test_size)
    options = TrainOptions(
        epochs=cfg.pg_epochs,
        lr=cfg.lr,
        loss="ce",
        batch_size=cfg.pg_batch,
        optimizer=cfg.optimizer,
        eval_every=eval_every(cfg.pg_epochs),
        name=f"size {width}",
        device=device,
    )
    return train_ensemble(arch, seeds, x, y, options, eval_sets={"train": (x, y), "test": (xt, yt)})


# ---------------------------------------------------------------- batch-size runs


def task_data(cfg: GenConfig, task: str):
    """(x, y), (xt, yt) of a task: 'mnist' (stratified subsets) or 'fit' (the HW1-1 target:
    uniform training draws, an even test grid of as many points)."""
    if task == "mnist":
        return mnist_sets(cfg.bs_train_size, cfg.bs_test_size)
    if task == "fit":
        return (
            sample_target(cfg.fit_target, cfg.fit_points, seed=1),
            sample_target(cfg.fit_target, cfg.fit_points),
        )
    raise ValueError(f"unknown task {task!r}; use 'mnist' or 'fit'")


def batch_arch(cfg: GenConfig, task: str):
    if task == "fit":
        return dnn_arch(cfg.fit_depth, cfg.fit_budget)
    return ConvDenseArch(cfg.bs_channels, cfg.bs_widths)


def batch_epochs(cfg: GenConfig, task: str, batch: int) -> int:
    """The task's epochs, raised so that the run makes at least the task's minimum of steps: at
    equal epochs a batch of 1000 on 1000 points would take one step an epoch and stop far from a
    minimum (the report trains each batch size to a minimum; it does not say how long)."""
    epochs, steps = (
        (cfg.bs_epochs, cfg.bs_min_steps) if task == "mnist" else (cfg.fit_epochs, cfg.fit_min_steps)
    )
    n = (cfg.bs_train_size or 60_000) if task == "mnist" else cfg.fit_points
    per_epoch = -(-n // batch)
    return max(epochs, -(-steps // per_epoch))


EVALS = 50  # evaluations of both sets over a run whose curves no claim reads (final values only)


def batch_lr(cfg: GenConfig, batch: int) -> float:
    """The learning rate of the batch-size runs at `batch` (GenConfig.bs_lr_scaling): cfg.lr when
    fixed (the report's), else cfg.lr * (batch / bs_lr_ref) ** (1/2 for sqrt, 1 for linear)."""
    if cfg.bs_lr_scaling not in BS_LR_SCALINGS or cfg.bs_lr_ref < 1:
        raise ValueError(
            f"gen.bs_lr_scaling={cfg.bs_lr_scaling!r}, bs_lr_ref={cfg.bs_lr_ref}: the scaling is one of "
            f"{', '.join(BS_LR_SCALINGS)} and the reference a batch size >= 1"
        )
    power = BS_LR_SCALINGS[cfg.bs_lr_scaling]
    return cfg.lr if power == 0.0 else cfg.lr * (batch / cfg.bs_lr_ref) ** power


def eval_every(epochs: int) -> int:
    """Evaluate every this many epochs (and after the last) so that a run makes about EVALS
    evaluations: evaluating both sets after each of a large batch's many short epochs cost more than
    its training (batch 1000 on the fit task at ci: 20 s with, 8 s without). Training is untouched."""
    return max(1, epochs // EVALS)


def task_loss(task: str) -> str:
    return "ce" if task == "mnist" else "mse"


def _batch_ensemble(tensors: dict, args: dict) -> Ensemble:
    """batch_runs' cached tensors as the Ensemble it returns."""
    cfg, task = args["cfg"], args["task"]
    return Ensemble.from_tensors(batch_arch(cfg, task), args["seeds"], tensors, task_loss(task))


@cache.per_seed(modules=MODULES, result=_batch_ensemble)
def batch_runs(cfg: GenConfig, task: str, batch: int, seeds: list[int], device="cpu") -> Ensemble:
    """Nets trained with minibatches of `batch` on `task` ('mnist' CE or 'fit' MSE), one per seed.
    Epochs: `batch_epochs`; learning rate: `batch_lr` (cfg.lr unless bs_lr_scaling scales it).

    Member k starts from the same init (seed k) at every batch size, so batch sizes are paired.
    On MNIST with `cfg.bs_target_loss`, each member stops when its epoch's mean training loss
    reaches it (comparable training states across batch sizes), `bs_cap` x the epochs at most.
    history: 'train_loss', 'test_loss' (and '_acc' on MNIST), (K, E) at the epochs in 'eval_epoch'
    (`eval_every`; the last column after the last epoch).
    """
    arch, epochs = batch_arch(cfg, task), batch_epochs(cfg, task, batch)
    target = cfg.bs_target_loss if task == "mnist" else None
    if target is not None:  # trained to the target loss, the epochs rule times bs_cap a cap
        epochs *= cfg.bs_cap
    (x, y), (xt, yt) = task_data(cfg, task)
    options = TrainOptions(
        epochs=epochs,
        lr=batch_lr(cfg, batch),
        loss=task_loss(task),
        batch_size=batch,
        optimizer=cfg.optimizer,
        stop_below=target,
        eval_every=eval_every(epochs),
        name=f"{task} batch {batch}",
        device=device,
    )
    return train_ensemble(arch, seeds, x, y, options, eval_sets={"train": (x, y), "test": (xt, yt)})


# ---------------------------------------------------------------- interpolation


def interpolate(run1: Ensemble, run2: Ensemble, alphas, sets: dict, device="cpu") -> dict[str, np.ndarray]:
    """Evaluate theta(a) = (1 - a) theta_1 + a theta_2 of every member (all members at once, on
    `device`; the sets go there once).

    sets: {name: (x, y)}. -> {f'{name}_loss' (and _acc): (K, len(alphas))}.
    """
    out: dict[str, list] = {}
    sets = {name: (x.to(device), y.to(device)) for name, (x, y) in sets.items()}
    for a in alphas:
        params = {n: p.to(device) for n, p in interpolation_params(run1, run2, float(a)).items()}
        for name, (x, y) in sets.items():
            for metric, v in evaluate(run1.build, params, x, y, run1.loss).items():
                out.setdefault(f"{name}_{metric}", []).append(v.cpu().numpy())
    return {k: np.stack(v, 1) for k, v in out.items()}


def interpolation_params(run1: Ensemble, run2: Ensemble, alpha: float) -> dict[str, torch.Tensor]:
    """The stacked parameters theta(alpha) (what `interpolate` evaluates)."""
    return {n: (1 - alpha) * p1 + alpha * run2.params[n] for n, p1 in run1.params.items()}


# ---------------------------------------------------------------- sensitivity


def sensitivity(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str) -> dict[str, float]:
    """Input sensitivities of one model on points (x, y).

    'loss_grad_max' / 'loss_grad_mean': Frobenius norm of d loss_i / d x_i, each point's own loss
    (the report's definition: the largest over the points; the mean beside it).
    'softmax_jac' (loss 'ce' only): Novak et al.'s mean over points of ||d softmax(f(x_i)) / d x_i||_F.
    """
    lossf = LOSSES[loss]
    model = model.eval()
    params = {n: p.detach() for n, p in model.named_parameters()}

    def point_loss(xi, yi):
        return lossf(functional_call(model, params, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    g = vmap(torch.func.grad(point_loss))(x, y).flatten(1).norm(dim=1)
    out = {"loss_grad_max": float(g.max()), "loss_grad_mean": float(g.mean())}
    if loss == "ce":

        def probs(xi):
            return functional_call(model, params, (xi.unsqueeze(0),)).softmax(-1)[0]

        j = torch.cat([vmap(jacrev(probs))(xs) for xs in x.split(250)])  # (N, classes, *input)
        out["softmax_jac"] = float(j.flatten(1).norm(dim=1).mean())
    return out


def ensemble_sensitivity(run: Ensemble, x, y, device="cpu") -> dict[str, np.ndarray]:
    """sensitivity() of every member. -> {name: (K,)}. On CUDA all members at once on the device
    (`batched_sensitivity`); on CPU member by member, on CPU copies (the records' own numbers)."""
    if torch.device(device).type == "cuda":
        return batched_sensitivity(run, x, y, device)
    per = [sensitivity(run.model(k), x, y, run.loss) for k in range(len(run.seeds))]
    return {n: np.array([p[n] for p in per]) for n in per[0]}


def batched_sensitivity(run: Ensemble, x, y, device="cpu", chunk: int = 250) -> dict[str, np.ndarray]:
    """`sensitivity` of every member at once, vmapped over members and points, `chunk` points at a
    time, on `device`: the same definitions; on CPU equal to the member-by-member numbers to float32
    rounding (tests/test_generalization.py). -> {name: (K,)}."""
    lossf = LOSSES[run.loss]
    base = run.build().to("meta")
    params = {n: p.detach().to(device) for n, p in run.params.items()}

    def point_loss(p, xi, yi):
        return lossf(functional_call(base, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    def probs(p, xi):
        return functional_call(base, p, (xi.unsqueeze(0),)).softmax(-1)[0]

    loss_grad = vmap(vmap(torch.func.grad(point_loss, argnums=1), (None, 0, 0)), (0, None, None))
    jac = vmap(vmap(jacrev(probs, argnums=1), (None, 0)), (0, None))
    norms, jnorms = [], []
    for xs, ys in zip(x.split(chunk), y.split(chunk)):
        xs, ys = xs.to(device), ys.to(device)
        norms.append(loss_grad(params, xs, ys).flatten(2).norm(dim=2))  # (K, chunk)
        if run.loss == "ce":
            jnorms.append(jac(params, xs).flatten(2).norm(dim=2))  # (K, chunk)
    g = torch.cat(norms, 1)
    out = {"loss_grad_max": g.amax(1), "loss_grad_mean": g.mean(1)}
    if run.loss == "ce":
        out["softmax_jac"] = torch.cat(jnorms, 1).mean(1)
    return {n: v.double().cpu().numpy() for n, v in out.items()}


# ---------------------------------------------------------------- sharpness


def _flat_loss(model: nn.Module, x, y, loss: str):
    """f(v) -> (loss, grad) of the model with flat float64 parameters v (numpy), on (x, y).

    Evaluated in float64: at a converged point ||grad L||^2 / L is about float32 resolution, so in
    float32 L-BFGS-B's first step does not change the loss and it stops after two iterations.
    """
    params = {n: p.detach() for n, p in model.named_parameters()}
    loss_at = flat_loss_fn(
        lambda: model, as_double(x), as_double(y), {n: p.shape for n, p in params.items()}, loss
    )
    device = next(iter(params.values())).device

    def f(v: np.ndarray, need_grad: bool = True):
        t = torch.tensor(v, dtype=torch.float64, device=device, requires_grad=need_grad)
        value = loss_at(t)
        if not need_grad:
            return float(value)
        value.backward()
        return float(value.detach()), t.grad.cpu().numpy()

    return f, torch.cat([p.flatten() for p in params.values()]).double().numpy()


def gaussian_sharpness(model: nn.Module, x, y, loss: str, *, sigma: float, n: int, seed: int) -> float:
    """The report's sharpness: max over n draws d ~ N(0, sigma^2 I) of L(theta + d) - L(theta)."""
    f, x0 = _flat_loss(model, x, y, loss)
    rng = np.random.default_rng(seed)
    base = f(x0, need_grad=False)
    return max(f(x0 + sigma * rng.standard_normal(x0.size), need_grad=False) - base for _ in range(n))


def batched_gaussian_sharpness(
    run: Ensemble, x, y, *, sigma: float, n: int, device="cpu", chunk: int = 64
) -> np.ndarray:
    """`gaussian_sharpness` of every member on `device`, float64, its point and its n draws as one
    vmapped call per `chunk` points in parameter space (one member's draws in memory at a time):
    member k's draws are its own (numpy, seeded by its seed). -> (K,); on CPU equal to the
    member-by-member values to 1e-10 (tests/test_generalization.py)."""
    shapes = {name: p.shape[1:] for name, p in run.params.items()}
    f = vmap(flat_loss_fn(run.build, as_double(x).to(device), as_double(y).to(device), shapes, run.loss))
    out = []
    for theta, seed in zip(run.flat().double(), run.seeds):  # named_parameters order, like _flat_loss's
        draws = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, theta.numel())))
        points = torch.cat([theta[None], theta[None] + sigma * draws])  # its own point, then its draws
        with torch.no_grad():
            losses = torch.cat([f(c.to(device)) for c in points.split(chunk)]).cpu()
        out.append(float((losses[1:] - losses[0]).max()))
    return np.array(out)


def box_maximise(f, x0: np.ndarray, eps: float, iters: int):
    """Maximise f(x0 + y) over the box |y_i| <= eps (|x0_i| + 1) with L-BFGS-B, `iters` iterations.

    f: v -> (value, gradient). Starts at y = 0. -> (y, max value found, f(x0)).
    """
    half = eps * (np.abs(x0) + 1)

    def neg(y):
        v, g = f(x0 + y)
        return -v, -g

    res = minimize(
        neg,
        np.zeros_like(x0),
        jac=True,
        method="L-BFGS-B",
        bounds=Bounds(-half, half),
        options={"maxiter": iters, "gtol": 0.0, "ftol": 0.0},
    )
    y = np.clip(res.x, -half, half)  # L-BFGS-B keeps to the bounds; the clip makes it a guarantee
    return y, f(x0 + y)[0], f(x0)[0]


def keskar_sharpness(model: nn.Module, x, y, loss: str, *, eps: float, iters: int) -> float:
    """Keskar et al.'s epsilon-sharpness (A = I): 100 (max_{y in C_eps} f(x+y) - f(x)) / (1 + f(x))."""
    f, x0 = _flat_loss(model, x, y, loss)
    _, top, base = box_maximise(f, x0, eps, iters)
    return 100 * (top - base) / (1 + base)


def ensemble_sharpness(run: Ensemble, x, y, cfg: GenConfig, device="cpu") -> dict[str, np.ndarray]:
    """Both sharpnesses of every member on (x, y). -> {'gaussian': (K,), 'keskar': (K,)}.
    On CUDA the Gaussian one for all members at once (`batched_gaussian_sharpness`) and Keskar's
    L-BFGS-B on each member's model on the device (its steps stay on the host, in scipy); on CPU
    member by member on CPU copies (the records' own numbers)."""
    cuda = torch.device(device).type == "cuda"
    g, k = [], []
    for i, s in enumerate(run.seeds):
        m = run.model(i).to(device)
        if not cuda:
            g.append(gaussian_sharpness(m, x, y, run.loss, sigma=cfg.sharp_sigma, n=cfg.sharp_n, seed=s))
        k.append(
            keskar_sharpness(
                m, x.to(device), y.to(device), run.loss, eps=cfg.keskar_eps, iters=cfg.keskar_iters
            )
        )
    if cuda:
        g = batched_gaussian_sharpness(run, x, y, sigma=cfg.sharp_sigma, n=cfg.sharp_n, device=device)
    return {"gaussian": np.array(g), "keskar": np.array(k)}


def _measurement_arrays(tensors: dict, args: dict) -> dict:
    """A batch measurement's cached (K, B) tensors as arrays, with the batch sizes (B,) beside them."""
    return {"batch": np.array(args["cfg"].batch_sizes), **{n: t.numpy() for n, t in tensors.items()}}


def _per_batch(cfg: GenConfig, task: str, seeds: list[int], device, measure) -> dict:
    """{name: (K, B) tensor}: measure(run, b) -> {name: (K,)} on the batch-size runs of `task`."""
    cols: dict[str, list] = {}
    measured = cache.each_free(cfg.batch_sizes, lambda b: measure(batch_runs(cfg, task, b, seeds, device)))
    for b in cfg.batch_sizes:
        for n, v in measured[b].items():
            cols.setdefault(n, []).append(v)
    return {n: torch.tensor(np.stack(v, 1)) for n, v in cols.items()}


@cache.per_seed(modules=MODULES, result=_measurement_arrays)
def batch_sensitivities(cfg: GenConfig, task: str, seeds: list[int], device="cpu") -> dict:
    """The final losses (and accuracies) and the input sensitivities of the batch-size runs of
    `task`, cached. -> {'batch': (B,), 'train_loss', 'test_loss' (, 'train_acc', 'test_acc'),
    'loss_grad_max', 'loss_grad_mean' (, 'softmax_jac'): (K, B) arrays}."""
    (x, y), (xt, yt) = task_data(cfg, task)
    xs, ys = (
        (xt[: cfg.sens_points], yt[: cfg.sens_points]) if task == "mnist" else (xt, yt)
    )  # shuffled already

    def measure(run):
        final = {
            h: run.history[h][:, -1].numpy()
            for h in ("train_loss", "test_loss", "train_acc", "test_acc")
            if h in run.history
        }
        return {**final, **ensemble_sensitivity(run, xs, ys, device)}

    return _per_batch(cfg, task, seeds, device, measure)


@cache.per_seed(modules=MODULES, result=_measurement_arrays)
def batch_sharpnesses(cfg: GenConfig, task: str, seeds: list[int], device="cpu") -> dict:
    """Both sharpnesses of the batch-size runs of `task` on `sharp_points` training points, cached
    apart from the sensitivities: the sensitivity claim may stage to more seeds than the sharpness
    claims, and these are the dear part. -> {'batch': (B,), 'gaussian', 'keskar': (K, B) arrays}."""
    (x, y), _ = task_data(cfg, task)
    xh, yh = x[: cfg.sharp_points], y[: cfg.sharp_points]
    return _per_batch(cfg, task, seeds, device, lambda run: ensemble_sharpness(run, xh, yh, cfg, device))


def batch_measurements(cfg: GenConfig, task: str, seeds: list[int], device="cpu") -> dict:
    """Everything the flatness claims read off the batch-size runs of `task`: `batch_sensitivities`
    and `batch_sharpnesses` together (each cached on its own).

    -> {'batch': (B,), 'train_loss', 'test_loss' (, 'train_acc', 'test_acc'), 'loss_grad_max',
    'loss_grad_mean' (, 'softmax_jac'), 'gaussian', 'keskar': (K, B) arrays}.
    """
    return {**batch_sensitivities(cfg, task, seeds, device), **batch_sharpnesses(cfg, task, seeds, device)}
