"""One training loop for an ensemble of seeds trained at once (torch.func), and a plain reference loop.

The ensemble stacks K models' parameters (`stack_module_state`) and maps one pure loss over them
with `vmap`. Adam on the stacked tensors is K independent Adams (it is elementwise), and the sum of
the K losses has the gradient of each model's own loss in its slice, so the ensemble is K separate
trainings done in one pass. `train_model` is the same training as a plain loop over one nn.Module:
the baseline of the benchmarks and the reference of the equality test.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from . import progress


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the run, the seed and the epoch."""


class DeviceError(RuntimeError):
    """The requested device is not there."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU; 'cpu', 'cuda', 'cuda:N' are checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from e
    if dev.type == "cuda":
        n = torch.cuda.device_count()
        if n == 0 or (dev.index or 0) >= n:
            raise DeviceError(f"device {name!r} is not there ({n} CUDA device(s) visible); "
                              f"use --device cpu or auto")
    elif dev.type != "cpu":
        raise DeviceError(f"device type {dev.type!r} is not supported; use auto, cpu or cuda[:N]")
    return dev


def mse_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out - y) ** 2).mean()


def ce_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out, y)


LOSSES = {"mse": mse_loss, "ce": ce_loss}


@dataclass
class Ensemble:
    """K trained models of one architecture.

    params: name -> (K, ...) tensors. history: name -> (K, T), measured during training; e.g.
    history['loss'][:, -1] is the mean loss over the last epoch's steps, i.e. for full batch the loss
    *before* the last update. final: name -> (K,), the training-set 'loss' (and 'acc') of the
    returned parameters, *after* the last update (see `final_loss`).
    """

    build: Callable[[], nn.Module]
    seeds: list[int]
    params: dict[str, torch.Tensor]
    history: dict[str, torch.Tensor] = field(default_factory=dict)
    loss: str = "mse"
    final: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def final_loss(self) -> torch.Tensor:
        """(K,) training loss of the final parameters: after the last update."""
        return self.final["loss"]

    def model(self, k: int) -> nn.Module:
        """The k-th member as a plain nn.Module (CPU copy)."""
        m = self.build()
        m.load_state_dict({n: p[k].detach().cpu() for n, p in self.params.items()})
        return m

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Flat dict of (K, ...) tensors for the run cache ('param.<name>', 'hist.<name>', 'final.<name>')."""
        out = {f"param.{n}": p for n, p in self.params.items()}
        out.update({f"hist.{n}": h for n, h in self.history.items()})
        out.update({f"final.{n}": v for n, v in self.final.items()})
        return out

    @classmethod
    def from_tensors(cls, build, seeds, tensors: dict[str, torch.Tensor], loss: str) -> "Ensemble":
        part = {prefix: {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)}
                for prefix in ("param.", "hist.", "final.")}
        return cls(build, list(seeds), part["param."], part["hist."], loss, part["final."])

    def flat(self) -> torch.Tensor:
        """(K, P) all parameters of each member, in named_parameters order."""
        return flat_params(self.params)


def ensemble_of(loss: str, arch: Callable[[dict], Callable] | None = None) -> Callable:
    """The `result` of a `cache.per_seed` function that trains an Ensemble: rebuilds it from the
    cached tensors and the call's arguments (the architecture is args['arch'], or arch(args))."""

    def result(tensors: dict[str, torch.Tensor], args: dict) -> Ensemble:
        return Ensemble.from_tensors(arch(args) if arch else args["arch"], args["seeds"], tensors, loss)

    return result


def grad_norms(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """(K,) Euclidean norm of each member's last gradient (read after a step)."""
    return torch.sqrt(sum((p.grad.flatten(1) ** 2).sum(1) for p in params.values()))


def flat_params(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """(K, P) the stacked parameters of each member, flattened in named_parameters order."""
    return torch.cat([p.detach().flatten(1) for p in params.values()], 1)


def init_params(build: Callable[[], nn.Module], seeds: list[int]) -> dict[str, torch.Tensor]:
    """Stacked initial parameters: member k is build() under torch.manual_seed(seeds[k])."""
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(build())
    params, _ = stack_module_state(models)
    return {n: p.detach().clone() for n, p in params.items()}


def batch_order(seed: int, n: int, batch_size: int | None, epoch: int) -> list[torch.Tensor]:
    """The minibatches of one epoch for one seed (full batch when batch_size is None or >= n)."""
    if batch_size is None or batch_size >= n:
        return [torch.arange(n)]
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=g).split(batch_size))


def ensemble_forward(build: Callable[[], nn.Module]) -> Callable:
    """f(params, x) with params stacked (K, ...) and x (K, B, ...) -> (K, B, out)."""
    base = copy.deepcopy(build()).to("meta")

    def one(p, x):
        return functional_call(base, p, (x,))

    return vmap(one)


def evaluate(build, params, x, y, loss: str, chunk: int = 2000) -> dict[str, torch.Tensor]:
    """Loss (and accuracy for 'ce') of every member on (x, y). -> {'loss': (K,), 'acc': (K,)}."""
    fwd, lossf = ensemble_forward(build), LOSSES[loss]
    K = next(iter(params.values())).shape[0]
    dev = next(iter(params.values())).device
    tot, correct = torch.zeros(K, device=dev), torch.zeros(K, device=dev)
    with torch.no_grad():
        for xs, ys in zip(x.split(chunk), y.split(chunk)):
            xs, ys = xs.to(dev), ys.to(dev)
            out = fwd(params, xs.expand(K, *xs.shape))
            tot += vmap(lossf, in_dims=(0, None))(out, ys) * len(ys)
            if loss == "ce":
                correct += (out.argmax(-1) == ys).float().sum(1)
    res = {"loss": tot / len(y)}
    if loss == "ce":
        res["acc"] = correct / len(y)
    return res


def predict(build, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Outputs of every member on shared inputs x (N, ...). -> (K, N, out), on CPU."""
    K = next(iter(params.values())).shape[0]
    with torch.no_grad():
        return ensemble_forward(build)(params, x.expand(K, *x.shape)).cpu()


def _check_finite(losses: torch.Tensor, name: str, seeds: list[int], epoch: int) -> None:
    bad = ~torch.isfinite(losses)
    if bad.any():
        k = int(bad.nonzero()[0, 0])
        raise NonFiniteLossError(
            f"run {name!r}, seed {seeds[k]}: the training loss became {losses[k].item()} at epoch "
            f"{epoch}; lower the learning rate or check the data")


def train_ensemble(build: Callable[[], nn.Module], seeds: list[int], x: torch.Tensor, y: torch.Tensor, *,
                   epochs: int, lr: float, loss: str = "mse", batch_size: int | None = None,
                   device: torch.device | str = "cpu", eval_sets: dict | None = None, eval_every: int = 1,
                   params: dict[str, torch.Tensor] | None = None, name: str = "run",
                   on_epoch: Callable[[int, dict], dict] | None = None, vectorize: bool = True,
                   tracker: progress.Task | None = None, stop_below: float | None = None) -> Ensemble:
    """Train one model per seed on (x, y) with Adam, all at once.

    x: (N, ...) shared data; each seed draws its own minibatch order (`batch_order`).
    history['loss'] (K, epochs): mean training loss over the epoch's steps (and 'acc' for 'ce'), so
    its last column is measured *before* the last update; `final` {'loss' (, 'acc')}: (K,) on all of
    (x, y) *after* it. With eval_sets {name: (x, y)}, history[f'{name}_loss'] (and _acc) after every
    `eval_every`-th epoch and the last.
    on_epoch(epoch, params) may return {metric: (K,) tensor} to record (snapshots, norms...).
    vectorize=False trains the members one after another (same orders, same result): faster for
    conv nets on CPU, where vmapped convolutions become slow grouped convolutions.
    tracker: where progress goes (default: a new `progress` task called `name`).
    stop_below: a member whose epoch's mean training loss falls to this or below stops after that
    epoch (`epochs` is then a cap): its parameters stay as they were, its history after that epoch
    is nan, and the last evaluation column holds its final parameters' values, with its own stop
    epoch in 'eval_epoch'. The loop ends when every member has stopped. A member's result does not
    depend on its companions (the history keeps its full length, nan-padded).
    """
    if stop_below is not None and on_epoch is not None:
        raise ValueError("stop_below with on_epoch is not supported: a stopped member's recordings would stop")
    if not vectorize and len(seeds) > 1:
        return _train_one_by_one(build, seeds, x, y, epochs=epochs, lr=lr, loss=loss, batch_size=batch_size,
                                 device=device, eval_sets=eval_sets, eval_every=eval_every, params=params,
                                 name=name, on_epoch=on_epoch, stop_below=stop_below)
    x0, y0 = x, y
    device = torch.device(device)
    params = {n: p.detach().clone().to(device).requires_grad_(True)
              for n, p in (params or init_params(build, seeds)).items()}
    fwd, lossf = ensemble_forward(build), LOSSES[loss]
    batch_loss = vmap(lossf)  # (K, B, out), (K, B) -> (K,)
    opt = torch.optim.Adam(list(params.values()), lr=lr, foreach=True)
    x, y = x.to(device), y.to(device)
    K, N = len(seeds), len(y)
    full = batch_size is None or batch_size >= N
    if full:  # one batch of all the data, the same for every member: no gather per step
        xs, ys = x.expand(K, *x.shape), y.expand(K, *y.shape)
    rec: dict[str, list] = {"loss": []}
    task = tracker or progress.start(name, epochs)
    stop = _Stopper(params, stop_below, epochs, device)
    for epoch in range(epochs):
        before = stop.frozen.clone()  # members stopped in an earlier epoch: their entries are nan
        orders = [[None]] if full else [batch_order(s, N, batch_size, epoch) for s in seeds]
        total = torch.zeros(K, device=device)
        hits = torch.zeros(K, device=device)
        for step in range(len(orders[0])):
            if not full:
                idx = torch.stack([o[step] for o in orders]).to(device)  # (K, B)
                xs, ys = x[idx], y[idx]
            out = fwd(params, xs)
            losses = batch_loss(out, ys)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            stop.hold(params)
            total += losses.detach()
            if loss == "ce":  # running training accuracy, as seen during the epoch
                hits += (out.detach().argmax(-1) == ys).float().mean(1)
        mean = total / len(orders[0])
        rec["loss"].append(stop.mask(mean, before))
        if loss == "ce":
            rec.setdefault("acc", []).append(stop.mask(hits / len(orders[0]), before))
        if batch_size is not None or epoch % 50 == 0 or epoch == epochs - 1:
            _check_finite(stop.mask(mean, before, 0.0), name, seeds, epoch)
        stop.update(mean, params, epoch)
        if eval_sets and (epoch + 1) % eval_every == 0 and epoch < epochs - 1:
            for set_name, (xe, ye) in eval_sets.items():
                for metric, v in evaluate(build, params, xe, ye, loss).items():
                    rec.setdefault(f"{set_name}_{metric}", []).append(stop.mask(v, before))
            rec.setdefault("eval_epoch", []).append(torch.full((K,), float(epoch), device=device))
        if on_epoch is not None:
            for metric, v in on_epoch(epoch, params).items():
                rec.setdefault(metric, []).append(v.detach())
        task.update(epoch + 1)
        if stop.all_stopped():
            break
    eval_keys = [f"{s}_{m}" for s in (eval_sets or {}) for m in (("loss", "acc") if loss == "ce" else ("loss",))]
    stop.pad(rec, epochs, eval_every, eval_keys, K, device)
    if eval_sets:  # the last column: every member's final parameters, at its own last epoch
        for set_name, (xe, ye) in eval_sets.items():
            for metric, v in evaluate(build, params, xe, ye, loss).items():
                rec.setdefault(f"{set_name}_{metric}", []).append(v)
        rec.setdefault("eval_epoch", []).append(stop.last_epochs())
    task.close()
    history = {k: torch.stack(v, 1).cpu() for k, v in rec.items()}
    final = _final_metrics(build, params, x0, y0, loss, eval_sets, history)
    return Ensemble(build, list(seeds), {n: p.detach().cpu() for n, p in params.items()}, history, loss, final)


class _Stopper:
    """train_ensemble's `stop_below`: which members have stopped, their parameters as they were."""

    def __init__(self, params: dict, stop_below: float | None, epochs: int, device):
        K = next(iter(params.values())).shape[0]
        self.below = stop_below
        self.frozen = torch.zeros(K, dtype=torch.bool, device=device)
        self.stop_epoch = torch.full((K,), float(epochs - 1), device=device)
        self.keep: dict | None = None

    def hold(self, params: dict) -> None:
        """Put the stopped members' parameters back after a step moved them."""
        if self.keep is not None:
            with torch.no_grad():
                for n, p in params.items():
                    p[self.frozen] = self.keep[n][self.frozen]

    def mask(self, v: torch.Tensor, before: torch.Tensor, fill: float = float("nan")) -> torch.Tensor:
        """v with the members stopped before this epoch set to `fill`."""
        if self.below is None:
            return v
        shape = (-1,) + (1,) * (v.ndim - 1)
        return torch.where(before.view(shape), torch.full_like(v, fill), v)

    def update(self, mean: torch.Tensor, params: dict, epoch: int) -> None:
        if self.below is None:
            return
        newly = ~self.frozen & (mean <= self.below)
        if not bool(newly.any()):
            return
        if self.keep is None:
            self.keep = {n: p.detach().clone() for n, p in params.items()}
        for n, p in params.items():
            self.keep[n][newly] = p.detach()[newly]
        self.frozen |= newly
        self.stop_epoch[newly] = float(epoch)

    def all_stopped(self) -> bool:
        return self.below is not None and bool(self.frozen.all())

    def last_epochs(self) -> torch.Tensor:
        return self.stop_epoch.clone()

    def pad(self, rec: dict, epochs: int, eval_every: int, eval_keys: list[str], K: int, device) -> None:
        """After an early end, the history to its full length: nan for the epochs not run, and
        for the regular evaluations not made (the last column is added after)."""
        nan = torch.full((K,), float("nan"), device=device)
        for key in [k for k in ("loss", "acc") if k in rec]:
            rec[key] += [nan] * (epochs - len(rec[key]))
        if eval_keys:
            regular = [e for e in range(epochs - 1) if (e + 1) % eval_every == 0]
            for e in regular[len(rec.get("eval_epoch", [])):]:
                for key in eval_keys:
                    rec.setdefault(key, []).append(nan)
                rec.setdefault("eval_epoch", []).append(torch.full((K,), float(e), device=device))


def _final_metrics(build, params, x, y, loss: str, eval_sets: dict | None, history) -> dict[str, torch.Tensor]:
    """{'loss' (, 'acc')}: (K,) on the training data after the last update. An eval set that *is*
    the training data was just evaluated there: reuse it rather than pay a second pass."""
    for set_name, (xe, ye) in (eval_sets or {}).items():
        if xe is x and ye is y:
            return {m: history[f"{set_name}_{m}"][:, -1].clone() for m in ("loss", "acc")
                    if f"{set_name}_{m}" in history}
    return {m: v.cpu() for m, v in evaluate(build, params, x, y, loss).items()}


def _train_one_by_one(build, seeds: list[int], x, y, *, epochs: int, params=None, name: str, **kw) -> Ensemble:
    """train_ensemble member by member (the same orders and result), as one progress task."""
    start = params or init_params(build, seeds)
    task = progress.start(name, epochs * len(seeds))
    parts = [train_ensemble(build, [s], x, y, epochs=epochs, name=name, tracker=task.offset(k * epochs),
                            params={n: p[k:k + 1] for n, p in start.items()}, **kw)
             for k, s in enumerate(seeds)]
    task.close()
    loss = parts[0].loss

    def cat(field_name):
        return {n: torch.cat([getattr(e, field_name)[n] for e in parts]) for n in getattr(parts[0], field_name)}

    return Ensemble(build, list(seeds), cat("params"), cat("history"), loss, cat("final"))


def train_model(model: nn.Module, seed: int, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float,
                loss: str = "mse", batch_size: int | None = None) -> list[float]:
    """The same training as one ensemble member, as a plain loop (reference and benchmark baseline)."""
    opt, lossf, losses = torch.optim.Adam(model.parameters(), lr=lr, foreach=True), LOSSES[loss], []
    for epoch in range(epochs):
        total, batches = 0.0, batch_order(seed, len(y), batch_size, epoch)
        for idx in batches:
            value = lossf(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            total += value.item()
        losses.append(total / len(batches))
    return losses
