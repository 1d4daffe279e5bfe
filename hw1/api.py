"""Train any DNN or CNN on a target function or on MNIST, over several seeds at once, cached.

Every function here trains one model per seed in a single vmapped ensemble and goes through the
run cache one seed at a time (`cache.per_seed`): the key is the function and every argument, so a
call never returns runs trained with other settings, and asking for more seeds later trains only
the new ones. The claims' own runs (`experiments.fit_runs`, `experiments.mnist_runs`) are calls of
these functions.

    from hw1 import dnn, fit_target

    net = dnn([5, 10, 10, 10, 10, 10, 5])  # 1 -> 5 -> 10 -> 10 -> 10 -> 10 -> 10 -> 5 -> 1
    runs = fit_target(net, "sinc", seeds=[0, 1, 2, 3], epochs=2000)
    for seed, mse in zip(runs.seeds, runs.final_loss.tolist()):
        print(f"seed {seed}: final MSE {mse:.2e}")

The result is an `Ensemble`: `params` (K, ...) per seed, `history` (K, epochs) measured during
training (history['loss'][:, -1] is the last epoch's mean loss, before the last update), and
`final_loss` (K,), the training loss after the last update.
"""

from __future__ import annotations

import torch

from . import cache
from .data import load_mnist, sample_target
from .ensemble import ensemble_of, flat_params, grad_norms
from .models import Arch, ConvDenseArch
from .train import TrainOptions, train_ensemble

__all__ = ["dnn", "cnn", "fit_target", "fit_mnist"]


def dnn(widths, activation: str = "relu", n_in: int = 1, n_out: int = 1) -> Arch:
    """A fully connected net with hidden layers of `widths` (e.g. [5, 10, 5]), n_in -> n_out."""
    return Arch("dnn", tuple(int(w) for w in widths), n_in, n_out, activation)


def cnn(channels, dense=(), n_classes: int = 10) -> ConvDenseArch:
    """Conv3x3+ReLU+MaxPool2 blocks of `channels`, then ReLU dense layers of `dense`, then a linear
    head, for (N, 1, 28, 28) images. channels=() makes it a DNN on the flattened image."""
    return ConvDenseArch(tuple(int(c) for c in channels), tuple(int(w) for w in dense), n_classes)


def _describe(arch) -> str:
    """Short name of an architecture for progress lines: 'dnn 5-10-5', 'cnn 16|128'."""
    if isinstance(arch, ConvDenseArch):
        return f"cnn {'-'.join(map(str, arch.channels))}|{'-'.join(map(str, arch.widths))}"
    return f"{arch.kind} {'-'.join(map(str, arch.widths))}"


def _recorder(epochs: int, record_grad_norm: bool, snapshot_every: int, k: int):
    """on_epoch for train_ensemble: the gradient norm every epoch, flat parameters every
    `snapshot_every` epochs from epoch 0 and at the last (0: none)."""
    if not record_grad_norm and not snapshot_every:
        return None

    def record(epoch: int, params: dict) -> dict:
        out = {"grad_norm": grad_norms(params)} if record_grad_norm else {}
        if snapshot_every and (epoch % snapshot_every == 0 or epoch == epochs - 1):
            out["snapshot"] = flat_params(params)
            out["snapshot_epoch"] = torch.full((k,), float(epoch))
        return out

    return record


@cache.per_seed(result=ensemble_of("mse"))
def fit_target(
    arch: Arch,
    target: str,
    seeds: list[int],
    *,
    n_points: int = 256,
    epochs: int = 2000,
    lr: float = 1e-3,
    batch_size: int | None = None,
    record_grad_norm: bool = False,
    snapshot_every: int = 0,
    optimizer: str = "adam",
    device: torch.device | str = "cpu",
):
    """Fit `arch` (one input, one output) to the target function `target` ('sinc', 'sincos',
    'square'; hw1.data.TARGETS) on an even grid of `n_points`, MSE, Adam (or optimizer='sgd':
    momentum 0.9), one model per seed.

    batch_size None = full batch (one step per epoch). -> Ensemble with history 'loss'
    (K, epochs) (the mean over each epoch's steps), with record_grad_norm 'grad_norm' (K, epochs)
    (after each epoch's last step), with snapshot_every 'snapshot' (K, T, P) flat parameters and
    'snapshot_epoch' (K, T); and final_loss (K,): the MSE after the last update.
    """
    x, y = sample_target(target, n_points)
    options = TrainOptions(
        epochs=epochs,
        lr=lr,
        loss="mse",
        batch_size=batch_size,
        optimizer=optimizer,
        name=f"fit {target} {_describe(arch)}",
        device=device,
    )
    on_epoch = _recorder(epochs, record_grad_norm, snapshot_every, len(seeds))
    return train_ensemble(arch, seeds, x, y, options, on_epoch=on_epoch)


@cache.per_seed(result=ensemble_of("ce"))
def fit_mnist(
    arch,
    seeds: list[int],
    *,
    train_size: int | None = None,
    test_size: int | None = None,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    eval_every: int | None = None,
    optimizer: str = "adam",
    device: torch.device | str = "cpu",
):
    """Train `arch` (`cnn(...)`, `dnn(..., n_in=784, n_out=10)` or models.Arch) on MNIST with
    cross-entropy, minibatches and Adam (or optimizer='sgd'), one model per seed.

    train_size / test_size: class-stratified subsets (None = all 60k / 10k). eval_every: also
    evaluate on both sets every that many epochs (None = only after the last).
    -> Ensemble with history 'loss'/'acc' (K, epochs) running means over each epoch;
    'train_loss'/'train_acc'/'test_loss'/'test_acc' (K, evaluations) at 'eval_epoch'; and
    final_loss (K,) (final['acc'] too): on the training set, after the last update.
    """
    x, y = load_mnist(True, limit=train_size)
    xt, yt = load_mnist(False, limit=test_size)
    if isinstance(arch, Arch) and arch.kind == "dnn":  # models.Arch DNNs take flat images
        x, xt = x.flatten(1), xt.flatten(1)
    options = TrainOptions(
        epochs=epochs,
        lr=lr,
        loss="ce",
        batch_size=batch_size,
        optimizer=optimizer,
        eval_every=eval_every or epochs,
        name=f"mnist {_describe(arch)}",
        device=device,
    )
    return train_ensemble(arch, seeds, x, y, options, eval_sets={"train": (x, y), "test": (xt, yt)})
