"""One training loop for an ensemble of seeds trained at once (torch.func), and a plain reference loop.

`train_ensemble(build, seeds, x, y, TrainOptions(epochs=..., lr=...))` trains the K members as one:
their parameters stacked (`hw1.ensemble`), one pure loss mapped over them with `vmap`. Adam on the
stacked tensors is K independent Adams (it is elementwise), and the sum of the K losses has the
gradient of each model's own loss in its slice, so the ensemble is K separate trainings done in one
pass. When members stop early is `hw1.stopping`'s; replaying the steps as CUDA graphs, `hw1.graphs`'.
`train_model` is the same training as a plain loop over one nn.Module: the baseline of the
benchmarks and the reference of the equality test.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import nn
from torch.func import vmap

from . import progress, provenance
from .config import OPTIMIZERS
from .ensemble import Ensemble, ensemble_forward, init_params
from .graphs import CudaGraphs, StepGraphs, uses_graphs
from .stopping import FiniteGuard, Stopper


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
            raise DeviceError(
                f"device {name!r} is not there ({n} CUDA device(s) visible); use --device cpu or auto"
            )
    elif dev.type != "cpu":
        raise DeviceError(f"device type {dev.type!r} is not supported; use auto, cpu or cuda[:N]")
    set_precision(dev)
    return dev


def set_precision(device: torch.device | str) -> None:
    """Float32 on CUDA means float32: TF32 matrix products and cuDNN convolutions (PyTorch's default
    for convolutions) only where HW1_TF32 asks for them (`hw1.provenance.tf32`). Nothing on CPU."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = provenance.tf32()


GPU_SHARE = 0.9  # of the device's memory, split between the processes that share it


def share_gpu(device: torch.device | str, processes: int) -> float | None:
    """Cap this process's CUDA memory at GPU_SHARE / processes of the device (xdist workers on one
    GPU), so that one worker's peak cannot starve the others into out-of-memory errors. -> the
    fraction set, or None (CPU, or a single process: no cap)."""
    dev = torch.device(device)
    if dev.type != "cuda" or processes <= 1:
        return None
    fraction = GPU_SHARE / processes
    torch.cuda.set_per_process_memory_fraction(fraction, dev.index or 0)
    return fraction


def _graph_backend(graph, device: torch.device, optimizer: str):
    """`TrainOptions.graph` -> a backend (CudaGraphs or a stand-in), or None (eager)."""
    if graph is None:
        graph = uses_graphs(device, optimizer)
    if graph is True:
        if device.type != "cuda":
            raise DeviceError(f"CUDA graphs need a CUDA device, not {device}; unset HW1_CUDA_GRAPH")
        if optimizer != "adam":
            raise ValueError(f"CUDA graphs are made for Adam's capturable step, not {optimizer!r}")
        return CudaGraphs(device)
    return graph or None


def make_optimizer(
    name: str, params: list[torch.Tensor], lr: float, graphed: bool = False
) -> torch.optim.Optimizer:
    """The optimizer of every member at once: elementwise, so K stacked members are K optimizers.
    graphed: Adam as one fused kernel with its step counters on the device (capturable), for a
    step replayed as a CUDA graph (`CudaGraphs`); CUDA only."""
    if name == "adam":
        if graphed:
            return torch.optim.Adam(params, lr=lr, fused=True, capturable=True)
        return torch.optim.Adam(params, lr=lr, foreach=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, foreach=True)
    raise ValueError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")


def mse_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out - y) ** 2).mean()


def ce_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out, y)


LOSSES = {"mse": mse_loss, "ce": ce_loss}


def _permutation(seed: int, n: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def batch_order(seed: int, n: int, batch_size: int | None, epoch: int) -> list[torch.Tensor]:
    """The minibatches of one epoch for one seed (full batch when batch_size is None or >= n)."""
    if batch_size is None or batch_size >= n:
        return [torch.arange(n)]
    return list(_permutation(seed, n, epoch).split(batch_size))


def epoch_orders(seeds: list[int], n: int, epoch: int, device: torch.device) -> torch.Tensor:
    """(K, n) every member's permutation of the epoch on `device`, in one (non-blocking) copy;
    slicing it by the batch size gives `batch_order`'s minibatches, the tail one included."""
    perms = torch.stack([_permutation(s, n, epoch) for s in seeds])
    if device.type == "cuda":
        return perms.pin_memory().to(device, non_blocking=True)
    return perms.to(device)


def _has_conv(net: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in net.modules())


def vectorizes(build: Callable[[], nn.Module], device: torch.device | str) -> bool:
    """The one rule for `TrainOptions(vectorize="auto")`: vmap the members, except conv nets on
    CPU, where vmapped convolutions become grouped convolutions that PyTorch's CPU kernels run
    slower than K ordinary ones (the members then train one after another, the same result)."""
    return not _has_conv(build()) or torch.device(device).type != "cpu"


def _labels(y) -> tuple[torch.Tensor, bool]:
    """(labels, per member?): y shared by every member, or a sequence of K tensors, one per member."""
    if isinstance(y, (list, tuple)):
        return torch.stack(list(y)), True
    return y, False


CPU_FORWARD_IMAGES = 128  # images x members per forward call when evaluating a conv net on CPU (`evaluate`)
CPU_PIECE_MIN = 32  # but at least this many images per member and call


def evaluate(build, params, x, y, loss: str, chunk: int = 2000) -> dict[str, torch.Tensor]:
    """Loss (and accuracy for 'ce') of every member on (x, y). -> {'loss': (K,), 'acc': (K,)}.

    y: shared labels (N, ...), or a sequence of K, one per member (e.g. each its own random labels).
    The loss is summed per `chunk` of examples. On CPU a conv net's forward pass of a chunk runs in
    pieces of CPU_FORWARD_IMAGES / K images (at least CPU_PIECE_MIN), whose activations stay in
    cache (on 2000 images they do not: 2x slower). Each image's outputs are the same whatever its
    piece, to float rounding; on the Xeon we measured, the same bits from 16 images per piece up
    (below, the last bit of the loss moves), so the records did not change. A dense net's chunks
    stay whole: there the piece size changes the matrix-product kernel and the last bits.
    """
    base = copy.deepcopy(build()).to("meta")
    fwd, lossf = ensemble_forward(build, base), LOSSES[loss]
    K = next(iter(params.values())).shape[0]
    dev = next(iter(params.values())).device
    y, members = _labels(y)
    piece = max(CPU_PIECE_MIN, CPU_FORWARD_IMAGES // K) if dev.type == "cpu" and _has_conv(base) else chunk
    tot, correct = torch.zeros(K, device=dev), torch.zeros(K, device=dev)
    with torch.no_grad():
        for xs, ys in zip(x.split(chunk), y.split(chunk, dim=1 if members else 0)):
            xs, ys = xs.to(dev), ys.to(dev)
            out = torch.cat([fwd(params, p.expand(K, *p.shape)) for p in xs.split(piece)], 1)
            tot += vmap(lossf, in_dims=(0, 0 if members else None))(out, ys) * len(xs)
            if loss == "ce":
                correct += (out.argmax(-1) == ys).float().sum(1)
    res = {"loss": tot / len(x)}
    if loss == "ce":
        res["acc"] = correct / len(x)
    return res


def predict(build, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Outputs of every member on shared inputs x (N, ...). -> (K, N, out), on CPU."""
    K = next(iter(params.values())).shape[0]
    with torch.no_grad():
        return ensemble_forward(build)(params, x.expand(K, *x.shape)).cpu()


@dataclass(frozen=True)
class TrainOptions:
    """How `train_ensemble` trains: the schedule, what it evaluates and when, where it runs.

    epochs: passes over the training set (a cap with stop_below). lr: the learning rate.
    loss: 'mse' or 'ce' (LOSSES). batch_size: examples per step (None, or >= N: full batch).
    optimizer: 'adam' or 'sgd' (OPTIMIZERS, `make_optimizer`).
    stop_below: a member whose epoch's mean training loss falls to this or below stops after that
    epoch: its parameters stay as they were, its history after that epoch is nan, and the last
    evaluation column holds its final parameters' values, with its own stop epoch in 'eval_epoch'.
    The loop ends when every member has stopped. A member's result does not depend on its
    companions (the history keeps its full length, nan-padded).
    eval_every: evaluate the eval sets after every this many epochs (and after the last);
    eval_first: also after the first. name: the run's name in progress lines and errors.
    device: 'cpu', 'cuda', 'cuda:N' or a torch.device.
    vectorize: True vmaps the members, False trains them one after another (same orders, same
    result), "auto" follows `vectorizes` (conv nets on CPU one after another).
    sync_every: the host reads the device (non-finite losses, every member stopped) every this many
    epochs and after the last; nothing else in the loop waits for the device. None: on CUDA every
    25; on CPU every epoch with stop_below (an early end saves epochs), else every 50. A non-finite
    loss names its first epoch, whenever it is read.
    graph: each step as a CUDA graph (`CudaGraphs`, with fused capturable Adam): None follows
    HW1_CUDA_GRAPH on CUDA with Adam (`uses_graphs`), True asks for it, False never; a backend
    object with `warm(fn)` and `capture(fn) -> graph` replaces CUDA's (the CPU tests' stand-in).
    """

    epochs: int
    lr: float
    loss: str = "mse"
    batch_size: int | None = None
    optimizer: str = "adam"
    stop_below: float | None = None
    eval_every: int = 1
    eval_first: bool = False
    name: str = "run"
    device: torch.device | str = "cpu"
    vectorize: bool | str = "auto"
    sync_every: int | None = None
    graph: object = None


def train_ensemble(
    build: Callable[[], nn.Module],
    seeds: list[int],
    x: torch.Tensor,
    y,
    options: TrainOptions,
    *,
    eval_sets: dict | None = None,
    params: dict[str, torch.Tensor] | None = None,
    on_epoch: Callable[[int, dict], dict] | None = None,
    tracker: progress.Task | None = None,
) -> Ensemble:
    """Train one model per seed on (x, y) as `options` say, all at once.

    x: (N, ...) shared data; y: (N, ...) shared labels, or a sequence of K label tensors, one per
    member (each seed its own random labels); so may an eval set's labels be. Each seed draws its
    own minibatch order (`batch_order`). params: {name: (K, ...)} to start from (default:
    `init_params` of the seeds).
    history['loss'] (K, epochs): mean training loss over the epoch's steps (and 'acc' for 'ce'), so
    its last column is measured *before* the last update; `final` {'loss' (, 'acc')}: (K,) on all of
    (x, y) *after* it. With eval_sets {name: (x, y)}, history[f'{name}_loss'] (and _acc) after every
    `eval_every`-th epoch and the last (and the first, with eval_first), at history['eval_epoch'].
    on_epoch(epoch, params) may return {metric: (K,) tensor} to record (snapshots, norms...).
    tracker: where progress goes (default: a new `progress` task called `options.name`).
    """
    o = options
    if o.stop_below is not None and on_epoch is not None:
        raise ValueError(
            "stop_below with on_epoch is not supported: a stopped member's recordings would stop"
        )
    device = torch.device(o.device)
    set_precision(device)
    vectorize = vectorizes(build, device) if o.vectorize == "auto" else o.vectorize
    if not vectorize and len(seeds) > 1:
        return _train_one_by_one(build, seeds, x, y, o, eval_sets=eval_sets, params=params, on_epoch=on_epoch)
    graphs = _graph_backend(o.graph, device, o.optimizer)
    params = {
        n: p.detach().clone().to(device).requires_grad_(True)
        for n, p in (params or init_params(build, seeds)).items()
    }
    data = _Data(x, y, len(seeds), device)
    evals = {n: (xe.to(device), _to(ye, device)) for n, (xe, ye) in (eval_sets or {}).items()}
    train_set = next((n for n, (xe, ye) in (eval_sets or {}).items() if xe is x and ye is y), None)
    opt = make_optimizer(o.optimizer, list(params.values()), o.lr, graphed=isinstance(graphs, CudaGraphs))
    run = _Run(build, seeds, params, o.loss, opt, data, o.stop_below, o.name, o.sync_every, graphs)
    regular = eval_epochs(o.epochs, o.eval_every, o.eval_first)
    due = set(regular)
    task = tracker or progress.start(o.name, o.epochs)
    for epoch in range(o.epochs):
        run.epoch(epoch, o.batch_size)
        if evals and epoch in due:
            run.evaluate(evals, epoch)
        if on_epoch is not None:
            for metric, v in on_epoch(epoch, params).items():
                run.rec.setdefault(metric, []).append(v.detach())
        task.update(epoch + 1)
        if run.read_due(epoch, o.epochs) and run.check():
            break
    history = run.finish(evals, o.epochs, regular)
    task.close()
    if train_set is not None:  # the training set was just evaluated: reuse it, no second pass
        final = {
            m: history[f"{train_set}_{m}"][:, -1].clone()
            for m in ("loss", "acc")
            if f"{train_set}_{m}" in history
        }
    else:
        final = {m: v.cpu() for m, v in evaluate(build, params, data.x, _to(y, device), o.loss).items()}
    return Ensemble(
        build, list(seeds), {n: p.detach().cpu() for n, p in params.items()}, history, o.loss, final
    )


def eval_epochs(epochs: int, every: int, first: bool = False) -> list[int]:
    """The epochs after which `train_ensemble` evaluates its eval sets, the last one excepted (it
    is always evaluated, with the final parameters): every `every`-th, and the first if asked."""
    return [e for e in range(epochs - 1) if (e + 1) % every == 0 or (first and e == 0)]


def _to(y, device):
    return [t.to(device) for t in y] if isinstance(y, (list, tuple)) else y.to(device)


class _Data:
    """The training set on the device: x and y shared by every member or (K, N, ...) per member."""

    def __init__(self, x, y, K: int, device: torch.device):
        self.x = x.to(device)
        self.y, self.members = _labels(_to(y, device))
        self.K, self.n = K, self.y.shape[1] if self.members else len(self.y)
        self.rows = torch.arange(K, device=device)[:, None]

    @functools.cached_property
    def full(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All the data as one batch, the same for every member: no gather per step."""
        ys = self.y if self.members else self.y.expand(self.K, *self.y.shape)
        return self.x.expand(self.K, *self.x.shape), ys

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, B, ...) each member's minibatch, idx (K, B)."""
        return self.x[idx], (self.y[self.rows, idx] if self.members else self.y[idx])

    def tensors(self) -> list[torch.Tensor]:
        return [self.x, self.y, self.rows, *self.full]


class _Run:
    """The state of one `train_ensemble` call: parameters, Adam, stopping, non-finite losses, history."""

    def __init__(self, build, seeds, params, loss, opt, data, stop_below, name, sync_every, graphs=None):
        self.build, self.seeds, self.params, self.loss, self.data = build, seeds, params, loss, data
        self.device = device = data.x.device
        self.fwd, self.batch_loss = ensemble_forward(build), vmap(LOSSES[loss])  # (K, B, out), (K, B) -> (K,)
        self.opt = opt
        self.K = len(seeds)
        self.stop = Stopper(params, stop_below, device)
        # the epoch's sums, updated in place by every step (a graphed step writes these addresses)
        self.total, self.hits = torch.zeros(self.K, device=device), torch.zeros(self.K, device=device)
        self.graphs = StepGraphs(self.step, graphs, self.fixed) if graphs is not None else None
        self.guard = FiniteGuard(name, seeds)
        # on CPU a read costs nothing but its few operations: every epoch where stopping can end the
        # run early, every 50th (and the last) otherwise; on CUDA every 25th
        self.sync_every = sync_every or (25 if device.type != "cpu" else 1 if stop_below is not None else 50)
        self.rec: dict[str, list] = {"loss": []}
        self.before = self.stop.frozen.clone()

    def step(self, idx: torch.Tensor | None) -> None:
        """One training step of every member on its minibatch idx (K, B) (None: the full batch).
        It reads and writes only tensors that keep their storage for the whole run (`fixed`), so
        on CUDA it can be captured once and replayed (`StepGraphs`)."""
        xs, ys = self.data.full if idx is None else self.data.batch(idx)
        out = self.fwd(self.params, xs)
        losses = self.batch_loss(out, ys)
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.opt.step()
        self.stop.hold(self.params)
        self.total += losses.detach()
        if self.loss == "ce":  # running training accuracy, as seen during the epoch
            self.hits += (out.detach().argmax(-1) == ys).float().mean(1)

    def fixed(self) -> list[torch.Tensor]:
        """The tensors a step reads or writes besides its own temporaries: parameters, optimizer
        state, the stopper's, the epoch's sums and the data."""
        state = [t for s in self.opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
        return [
            *self.params.values(),
            *state,
            *self.stop.tensors(),
            self.total,
            self.hits,
            *self.data.tensors(),
        ]

    def epoch(self, epoch: int, batch_size: int | None) -> None:
        """One epoch of steps; records its mean loss (and accuracy), flags non-finite losses."""
        self.before = self.stop.frozen.clone()  # members stopped in an earlier epoch: their entries are nan
        data = self.data
        if batch_size is None or batch_size >= data.n:
            batches = [None]
        else:
            order = epoch_orders(self.seeds, data.n, epoch, self.device)
            batches = [order[:, i : i + batch_size] for i in range(0, data.n, batch_size)]
        self.total.zero_()
        self.hits.zero_()
        for idx in batches:
            (self.graphs or self.step)(idx)
        mean = self.total / len(batches)
        self.rec["loss"].append(self.stop.mask(mean, self.before))
        if self.loss == "ce":
            self.rec.setdefault("acc", []).append(self.stop.mask(self.hits / len(batches), self.before))
        self.guard.see(self.stop.mask(mean, self.before, 0.0), epoch)
        self.stop.update(mean, self.params, epoch)

    def evaluate(self, evals: dict, epoch: int) -> None:
        for set_name, (xe, ye) in evals.items():
            for metric, v in evaluate(self.build, self.params, xe, ye, self.loss).items():
                self.rec.setdefault(f"{set_name}_{metric}", []).append(self.stop.mask(v, self.before))
        self.rec.setdefault("eval_epoch", []).append(torch.full((self.K,), float(epoch), device=self.device))

    def read_due(self, epoch: int, epochs: int) -> bool:
        return (epoch + 1) % self.sync_every == 0 or epoch == epochs - 1

    def check(self) -> bool:
        """Read the device: raise on a non-finite loss; -> whether every member has stopped."""
        self.guard.check()
        if self.graphs is not None:
            self.graphs.verify()
        return self.stop.all_stopped()

    def finish(self, evals: dict, epochs: int, regular: list[int]) -> dict[str, torch.Tensor]:
        """The history on the host: padded after an early end, the last evaluation column added."""
        eval_keys = [f"{s}_{m}" for s in evals for m in (("loss", "acc") if self.loss == "ce" else ("loss",))]
        self.stop.pad(self.rec, epochs, regular, eval_keys, self.K, self.device)
        if evals:  # the last column: every member's final parameters, at its own last epoch
            for set_name, (xe, ye) in evals.items():
                for metric, v in evaluate(self.build, self.params, xe, ye, self.loss).items():
                    self.rec.setdefault(f"{set_name}_{metric}", []).append(v)
            self.rec.setdefault("eval_epoch", []).append(self.stop.last_epochs(epochs))
        return {k: torch.stack(v, 1).cpu() for k, v in self.rec.items()}


def _member(v, k: int):
    """Member k's part of per-member data (a sequence of K tensors); shared data as it is."""
    return [v[k]] if isinstance(v, (list, tuple)) else v


def _train_one_by_one(
    build, seeds: list[int], x, y, options: TrainOptions, *, eval_sets=None, params=None, on_epoch=None
) -> Ensemble:
    """train_ensemble member by member (the same orders and result), as one progress task."""
    start = params or init_params(build, seeds)
    epochs, one = options.epochs, replace(options, vectorize=False)
    task = progress.start(options.name, epochs * len(seeds))
    parts = []
    for k, s in enumerate(seeds):
        yk = _member(y, k)  # the training set's labels stay the same object in the eval sets
        sets = {n: (xe, yk if ye is y else _member(ye, k)) for n, (xe, ye) in (eval_sets or {}).items()}
        member = {n: p[k : k + 1] for n, p in start.items()}
        parts.append(
            train_ensemble(
                build,
                [s],
                x,
                yk,
                one,
                eval_sets=sets or None,
                params=member,
                on_epoch=on_epoch,
                tracker=task.offset(k * epochs),
            )
        )
    task.close()
    loss = parts[0].loss

    def cat(field_name):
        return {
            n: torch.cat([getattr(e, field_name)[n] for e in parts]) for n in getattr(parts[0], field_name)
        }

    return Ensemble(build, list(seeds), cat("params"), cat("history"), loss, cat("final"))


def train_model(
    model: nn.Module,
    seed: int,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    loss: str = "mse",
    batch_size: int | None = None,
) -> list[float]:
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
