"""HW1-2 optimization measurements: trajectories, the gradient-norm phase, Hessian spectra
(minimal ratio) and the error surface around a found minimum.

Parameters travel as flat vectors (P,) in named_parameters order (`flat_params`); `unflatten`
turns one back into the name -> tensor dict that `functional_call` takes.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch.func import functional_call, grad, hessian, vmap

from . import cache, progress
from .config import OptConfig
from .data import sample_target
from .ensemble import Ensemble, flat_params
from .models import Arch, dnn_arch
from .train import LOSSES, TrainOptions, train_ensemble


# ------------------------------------------------------------------------------ flat parameters
def param_shapes(params: dict[str, torch.Tensor]) -> dict[str, torch.Size]:
    """Shapes of one member's parameters from stacked (K, ...) params."""
    return {n: p.shape[1:] for n, p in params.items()}


def unflatten(flat: torch.Tensor, shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """(..., P) flat vector(s) -> {name: (..., *shape)} in named_parameters order."""
    out, i = {}, 0
    for n, s in shapes.items():
        size = int(np.prod(s))
        out[n] = flat[..., i : i + size].reshape(*flat.shape[:-1], *s)
        i += size
    if i != flat.shape[-1]:
        raise ValueError(f"flat vector has {flat.shape[-1]} entries, the shapes need {i}")
    return out


def layer_slice(shapes: dict[str, torch.Size], layer: str) -> slice:
    """Where the parameters whose name starts with `layer + '.'` (weight and bias) sit in the flat vector."""
    i, start, stop = 0, None, None
    for n, s in shapes.items():
        size = int(np.prod(s))
        if n.split(".")[0] == layer:
            start = i if start is None else start
            stop = i + size
        i += size
    if start is None:
        raise ValueError(f"no layer {layer!r}; layers are {sorted({n.split('.')[0] for n in shapes})}")
    return slice(start, stop)


def as_double(t: torch.Tensor) -> torch.Tensor:
    """t in float64 if it is floating; integer tensors (class labels) are kept as they are."""
    return t.double() if t.is_floating_point() else t


def flat_loss_fn(build, x: torch.Tensor, y: torch.Tensor, shapes, loss: str = "mse"):
    """f(theta (P,)) -> scalar training loss of the model `build` at flat parameters theta."""
    base, lossf = copy.deepcopy(build()).to("meta"), LOSSES[loss]

    def f(theta):
        return lossf(functional_call(base, unflatten(theta, shapes), (x,)), y)

    return f


# ------------------------------------------------------------------------------ trajectories
def project_trajectories(snapshots: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D projection fitted jointly over all runs, so they share one picture.

    snapshots: (K, T, P) flat parameters. method: 'pca' or 'tsne'. -> (K, T, 2).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    K, T, P = snapshots.shape
    flat = np.asarray(snapshots, dtype=np.float64).reshape(K * T, P)
    if method == "pca":
        z = PCA(n_components=2, random_state=seed).fit_transform(flat)
    elif method == "tsne":
        z = TSNE(
            n_components=2, perplexity=min(30.0, (K * T - 1) / 3), init="pca", random_state=seed
        ).fit_transform(flat)
    else:
        raise ValueError(f"unknown projection {method!r}; use 'pca' or 'tsne'")
    return z.reshape(K, T, 2)


def _dense_layers(shapes) -> list[tuple[str, str]]:
    """(weight name, bias name) of each Linear layer, in order."""
    return [(n, n[:-6] + "bias") for n, s in shapes.items() if n.endswith("weight") and len(s) == 2]


def middle_layer(shapes) -> str:
    """The name prefix of the middle hidden Linear layer (the 'one layer' of the trajectory figure)."""
    layers = _dense_layers(shapes)
    return layers[(len(layers) - 1) // 2][0].rsplit(".", 1)[0]


def align_hidden_units(ref: torch.Tensor, other: torch.Tensor, shapes) -> torch.Tensor:
    """`other` (P,) with its hidden units permuted, layer by layer, to be closest to `ref` (P,).

    Each hidden layer's units are matched by their incoming weights (inputs already permuted
    like the previous layer) and bias, with the Hungarian algorithm on squared distances; the
    next layer's incoming columns follow. The function computed is unchanged.
    """
    r, o = unflatten(ref, shapes), {n: t.clone() for n, t in unflatten(other, shapes).items()}
    layers = _dense_layers(shapes)
    for (w, b), (w_next, _) in zip(layers[:-1], layers[1:]):
        a = torch.cat([r[w], r[b][:, None]], 1)
        c = torch.cat([o[w], o[b][:, None]], 1)
        _, perm = linear_sum_assignment(torch.cdist(a.double(), c.double()).numpy() ** 2)
        perm = torch.as_tensor(perm)
        o[w], o[b], o[w_next] = o[w][perm], o[b][perm], o[w_next][:, perm]
    return torch.cat([o[n].flatten() for n in shapes])


def endpoint_distances(start: torch.Tensor, final: torch.Tensor, shapes) -> dict[str, np.ndarray]:
    """How far the runs end from each other, next to how far each travelled.

    start, final: (K, P). -> 'moved' (K,) ||final_k - start_k||; 'apart' (K, K) distance between
    final_i and final_j after aligning j's hidden units to i's (inf on the diagonal);
    'apart_start' (K, K) the same for the starts (aligned the same way).
    """
    K = final.shape[0]
    apart, apart0 = np.full((K, K), np.inf), np.full((K, K), np.inf)
    for i in range(K):
        for j in range(K):
            if i != j:
                apart[i, j] = float((final[i] - align_hidden_units(final[i], final[j], shapes)).norm())
                apart0[i, j] = float((start[i] - align_hidden_units(start[i], start[j], shapes)).norm())
    return {"moved": (final - start).norm(dim=1).numpy(), "apart": apart, "apart_start": apart0}


# ------------------------------------------------------------------------------ gradient norm
def quiet_mask(grad_norm: np.ndarray, *, quiet: float, window: int) -> np.ndarray:
    """(K, epochs) True where the gradient norm is 'near zero': its mean over the `window` epochs
    ending there is below `quiet` x the run's first gradient norm (the smoothing ignores a
    single-epoch dip)."""
    g = np.asarray(grad_norm, float)
    kernel, mask = np.ones(window) / window, np.zeros(g.shape, bool)
    for k in range(len(g)):
        mask[k, window - 1 :] = np.convolve(g[k], kernel, mode="valid") < quiet * g[k, 0]
    return mask


def quiet_loss_change(grad_norm: np.ndarray, loss: np.ndarray, *, quiet: float, window: int) -> np.ndarray:
    """Per run, how much the loss moved while the gradient norm was near zero (`quiet_mask`).

    grad_norm, loss: (K, epochs). -> (K,) sum over the quiet epochs t of log10(loss[t] / loss[t-1]),
    i.e. decades gained (negative: the loss still fell); nan for a run with under `window` quiet epochs.
    """
    mask = quiet_mask(grad_norm, quiet=quiet, window=window)[:, 1:]
    step = np.diff(np.log10(np.asarray(loss, float)), axis=1)
    change = np.where(mask, step, 0.0).sum(1)
    return np.where(mask.sum(1) >= window, change, np.nan)


def minimize_grad_norm(
    ens: Ensemble, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float, device="cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Continue every member by minimising ||grad L||^2 (the report's 'gradient square' phase).

    Adam on the stacked parameters; the squared norm of each member's own gradient is taken with
    torch.func.grad inside vmap, and their sum backpropagates to each member's slice alone.
    -> (params, history) with 'grad_norm' and 'loss' (K, epochs + 1) measured before each step
    (the last column after the last step).
    """
    task = progress.start("grad-norm phase", epochs)
    base, lossf = copy.deepcopy(ens.build()).to("meta"), LOSSES[ens.loss]
    x, y = x.to(device), y.to(device)

    def one_loss(p):
        return lossf(functional_call(base, p, (x,)), y)

    def one_sq(p):
        g = grad(one_loss)(p)
        return sum((t**2).sum() for t in g.values()), one_loss(p)

    sq_and_loss = vmap(one_sq)
    params = {n: p.detach().clone().to(device).requires_grad_(True) for n, p in ens.params.items()}
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    norms, losses = [], []
    for epoch in range(epochs + 1):
        sq, value = sq_and_loss(params)
        norms.append(sq.detach().clamp_min(0).sqrt())
        losses.append(value.detach())
        if epoch == epochs:
            break
        opt.zero_grad(set_to_none=True)
        sq.sum().backward()
        opt.step()
        task.update(epoch + 1)
    task.close()
    history = {"grad_norm": torch.stack(norms, 1).cpu(), "loss": torch.stack(losses, 1).cpu()}
    return {n: p.detach().cpu() for n, p in params.items()}, history


# ------------------------------------------------------------------------------ Hessian
def hessian_matrix(f, theta: torch.Tensor) -> torch.Tensor:
    """Exact Hessian (P, P) of the scalar f at flat theta (P,) (forward-over-reverse)."""
    return hessian(f)(theta)


HESSIAN_MEMORY = 2 * 2**30  # bytes the members computed at once may take


def hessian_chunk(n_params: int, n_points: int, budget: int = HESSIAN_MEMORY) -> int:
    """How many members' Hessians to compute at once within `budget` bytes (1..16).

    Forward-over-reverse keeps about 12.5 bytes per (P^2 x points) per member (measured: 3.2 GiB
    for P = 1000 on 256 points), so the paper's 1000-parameter nets go one at a time (16 at once
    took 51 GiB) while the ci's 200-parameter ones still go 16 at a time.
    """
    per_member = 12.5 * n_params**2 * max(n_points, 1)
    return int(max(1, min(16, budget // per_member)))


def hessian_eigenvalues(
    ens: Ensemble, x: torch.Tensor, y: torch.Tensor, chunk: int | None = None, device="cpu"
) -> torch.Tensor:
    """(K, P) ascending eigenvalues of each member's exact training-loss Hessian, in float64,
    computed on `device` (returned on the CPU).
    chunk: members at once (default: as many as fit in HESSIAN_MEMORY, see hessian_chunk)."""
    shapes = param_shapes(ens.params)
    x, y = as_double(x).to(device), as_double(y).to(device)  # CE keeps int labels
    f = flat_loss_fn(ens.build, x, y, shapes, ens.loss)
    theta = ens.flat().double().to(device)
    chunk = chunk or hessian_chunk(theta.shape[1], len(x))
    hess = vmap(hessian(f))
    return torch.cat([torch.linalg.eigvalsh(hess(t)).cpu() for t in theta.split(chunk)])


def default_rel_tol(n_params: int) -> float:
    """P x float32 epsilon: below this fraction of the largest |eigenvalue|, a curvature is lost
    in the rounding of float32 training."""
    return n_params * float(np.finfo(np.float32).eps)


def minimal_ratio(eigenvalues, rel_tol: float | None = None) -> dict[str, np.ndarray]:
    """Minimal ratio of each spectrum, with and without the near-zero eigenvalues.

    eigenvalues: (K, P) or (P,). An eigenvalue is near zero when |λ| <= rel_tol x max|λ| (of its
    own spectrum); rel_tol None = P x float32 epsilon (numpy's matrix_rank rule at the precision
    the nets are trained in). -> 'ratio_all' fraction of all P eigenvalues > 0 (near-zero positives
    too); 'ratio' fraction > 0 among those above the tolerance (nan if none is); 'negative' and
    'near_zero' fractions of P counted with the tolerance; 'tol' (K,) the absolute tolerance.
    """
    if rel_tol is not None and rel_tol < 0:
        raise ValueError(f"rel_tol must be >= 0, got {rel_tol}")
    ev = np.atleast_2d(np.asarray(eigenvalues, dtype=np.float64))
    rel_tol = default_rel_tol(ev.shape[1]) if rel_tol is None else rel_tol
    tol = rel_tol * np.abs(ev).max(axis=1, keepdims=True)
    pos, neg = ev > tol, ev < -tol
    big = pos.sum(1) + neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(big > 0, pos.sum(1) / big, np.nan)
    P = ev.shape[1]
    return {
        "ratio_all": (ev > 0).sum(1) / P,
        "ratio": ratio,
        "negative": neg.sum(1) / P,
        "near_zero": 1 - big / P,
        "tol": tol[:, 0],
    }


def ratio_arch(cfg: OptConfig) -> Arch:
    return dnn_arch(1, cfg.ratio_budget)


@cache.per_seed
def ratio_runs(cfg: OptConfig, seeds: list[int], device="cpu") -> dict[str, torch.Tensor]:
    """The minimal-ratio experiment: one-hidden-layer DNNs on cfg.ratio_target, one per seed,
    trained as one ensemble on MSE, then on ||grad L||^2, then the exact Hessian of each.

    -> 'mse_loss' (K, mse epochs), 'gn_grad_norm'/'gn_loss' (K, grad-norm epochs + 1),
    'eigvals' (K, P), 'loss' (K,) and 'grad_norm' (K,) at the end, and the final 'param.*'.
    """
    arch = ratio_arch(cfg)
    x, y = sample_target(cfg.ratio_target, cfg.n_points)
    options = TrainOptions(
        epochs=cfg.mse_epochs,
        lr=cfg.lr,
        loss="mse",
        optimizer=cfg.optimizer,
        name="minimal-ratio MSE phase",
        device=device,
    )
    ens = train_ensemble(arch, seeds, x, y, options)
    params, hist = minimize_grad_norm(ens, x, y, epochs=cfg.gn_epochs, lr=cfg.gn_lr, device=device)
    final = Ensemble(arch, list(seeds), params, {}, "mse")
    out = {f"param.{n}": p for n, p in params.items()}
    out.update(
        {
            "mse_loss": ens.history["loss"],
            "gn_grad_norm": hist["grad_norm"],
            "gn_loss": hist["loss"],
            "loss": hist["loss"][:, -1],
            "grad_norm": hist["grad_norm"][:, -1],
            "eigvals": hessian_eigenvalues(final, x, y, device=device),
        }
    )
    return out


# ------------------------------------------------------------------------------ error surface
def sample_sphere(center: torch.Tensor, radius: float, n: int, seed: int) -> torch.Tensor:
    """n points uniform on the sphere of `radius` around center (P,). -> (n, P)."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n, center.numel(), generator=g, dtype=torch.float64)
    d = d / d.norm(dim=1, keepdim=True)
    return (center.double() + radius * d).to(center.dtype)


def losses_at(build, thetas: torch.Tensor, x, y, shapes, loss: str = "mse", chunk: int = 256) -> torch.Tensor:
    """Training loss at each of the flat parameter vectors thetas (n, P). -> (n,)."""
    f = vmap(flat_loss_fn(build, x, y, shapes, loss))
    with torch.no_grad():
        return torch.cat([f(t) for t in thetas.split(chunk)])


SPHERE_ELEMENTS = 2**27  # CUDA: points x training points x parameters that one vmapped call may take


def sphere_losses(
    ens: Ensemble, x, y, radii, n_dirs: int, seed: int = 0, device="cpu", spheres_per_call: int | None = None
) -> np.ndarray:
    """Loss at n_dirs random points at each distance r from each member's parameters.

    -> (K, len(radii), n_dirs). Member k, radius i draw from seed (seed, k, i), on the host: the
    same draws on every device. The points of `spheres_per_call` spheres (of any members: they
    share one architecture) go through one vmapped loss: by default one sphere at a time on CPU
    (the numbers of a loop over members and radii, bit for bit), and on CUDA as many as
    SPHERE_ELEMENTS allows (a few calls instead of K x radii).
    """
    shapes, theta = param_shapes(ens.params), ens.flat()
    K, R = len(theta), len(radii)
    if spheres_per_call is None:
        cuda = torch.device(device).type == "cuda"
        spheres_per_call = max(1, SPHERE_ELEMENTS // (n_dirs * len(x) * theta.shape[1])) if cuda else 1
    x, y = x.to(device), y.to(device)
    spheres = (  # drawn as they are used: at paper scale all of them at once would take GBs
        sample_sphere(t, float(r), n_dirs, seed=seed * 1_000_003 + k * 1009 + i)
        for k, t in enumerate(theta)
        for i, r in enumerate(radii)
    )
    out = []
    for _ in range(0, K * R, spheres_per_call):
        pts = torch.cat(list(itertools.islice(spheres, spheres_per_call))).to(device)
        # one sphere: losses_at's own chunks, as the loop over members and radii had them
        out.append(
            losses_at(
                ens.build, pts, x, y, shapes, ens.loss, chunk=256 if spheres_per_call == 1 else len(pts)
            )
        )
    return torch.cat(out).cpu().double().reshape(K, R, n_dirs).numpy()  # float64, as the loop filled it


def filter_normalized_direction(theta: torch.Tensor, shapes, seed: int) -> torch.Tensor:
    """A random direction (P,) scaled filter by filter (Li et al. 2018): each output unit's row of
    every weight gets the norm of the same row of theta; biases get no component."""
    g = torch.Generator().manual_seed(seed)
    d = unflatten(torch.randn(theta.numel(), generator=g, dtype=theta.dtype), shapes)
    t = unflatten(theta, shapes)
    for n in shapes:
        if n.endswith("weight"):
            rows = d[n].flatten(1)
            d[n] = (
                rows
                * t[n].flatten(1).norm(dim=1, keepdim=True)
                / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
            ).reshape(d[n].shape)
        else:
            d[n] = torch.zeros_like(d[n])
    return torch.cat([d[n].flatten() for n in shapes])


def surface_2d(
    build, theta: torch.Tensor, x, y, shapes, span: float, n: int, seed: int, loss: str = "mse"
) -> tuple[np.ndarray, np.ndarray]:
    """Loss on theta + a d1 + b d2 for a, b on an n x n grid over [-span, span] (filter-normalised
    random d1, d2). -> (coords (n,), losses (n, n) indexed [b, a])."""
    d1 = filter_normalized_direction(theta, shapes, seed)
    d2 = filter_normalized_direction(theta, shapes, seed + 1)
    a = torch.linspace(-span, span, n, dtype=theta.dtype)
    B, A = torch.meshgrid(a, a, indexing="ij")
    pts = theta + A.reshape(-1, 1) * d1 + B.reshape(-1, 1) * d2
    return a.numpy(), losses_at(build, pts, x, y, shapes, loss).reshape(n, n).numpy()


__all__ = [
    "param_shapes",
    "unflatten",
    "layer_slice",
    "project_trajectories",
    "middle_layer",
    "align_hidden_units",
    "endpoint_distances",
    "quiet_mask",
    "quiet_loss_change",
    "minimize_grad_norm",
    "hessian_matrix",
    "hessian_eigenvalues",
    "default_rel_tol",
    "minimal_ratio",
    "ratio_arch",
    "ratio_runs",
    "sample_sphere",
    "losses_at",
    "sphere_losses",
    "filter_normalized_direction",
    "surface_2d",
    "flat_params",
]


def same_order_pairs(final_loss, decades: float = 1.0) -> np.ndarray:
    """(n // 2,) whether runs 2i and 2i+1 end within `decades` of each other in final loss: disjoint
    pairs, so the count is binomial (a run left without a partner is dropped)."""
    logs = np.log10(np.asarray(final_loss, float))
    pairs = logs[: len(logs) // 2 * 2].reshape(-1, 2)
    return np.abs(pairs[:, 0] - pairs[:, 1]) < decades
