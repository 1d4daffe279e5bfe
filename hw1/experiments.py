"""The trained runs that claims share: calls of the cached library API (`hw1.api`).

A claim asks for runs by what determines them (scale section, target, depth, budget, seeds); two
claims asking for the same runs get the same cached seeds, whichever trained them first, and a
claim asking for more seeds trains only the new ones.
"""

from __future__ import annotations

import torch

from .api import fit_mnist, fit_target
from .config import FitConfig, MnistConfig
from .models import Arch, cnn_arch, dnn_arch
from .train import Ensemble


def fit_runs(
    cfg: FitConfig, target: str, depth: int, budget: int, seeds: list[int], device: torch.device | str = "cpu"
) -> Ensemble:
    """DNNs of `depth` hidden layers and ~`budget` parameters fitted to `target`, one per seed.

    history: 'loss' (K, epochs) mean loss of each epoch (full batch: before that epoch's update),
    'grad_norm' (K, epochs) (one step per epoch), 'snapshot' (K, T, P) flat parameters every
    cfg.snapshot_every epochs from epoch 0 and at the last, 'snapshot_epoch' (K, T);
    final_loss (K,): the MSE after the last update.
    """
    return fit_target(
        dnn_arch(depth, budget),
        target,
        seeds,
        n_points=cfg.n_points,
        epochs=cfg.epochs,
        lr=cfg.lr,
        record_grad_norm=True,
        snapshot_every=cfg.snapshot_every,
        optimizer=cfg.optimizer,
        device=device,
    )


def mnist_arch(cfg: MnistConfig, kind: str, depth: int) -> Arch:
    if kind == "cnn":
        return cnn_arch(depth, cfg.cnn_budget)
    return dnn_arch(depth, cfg.dnn_budget, n_in=784, n_out=10)


def mnist_runs(
    cfg: MnistConfig, kind: str, depth: int, seeds: list[int], device: torch.device | str = "cpu"
) -> Ensemble:
    """CNNs or DNNs of `depth` blocks/layers at the section's budget trained on MNIST, one per seed.

    history: 'loss'/'acc' (K, epochs) running means over each epoch; 'train_loss'/'train_acc' and
    'test_loss'/'test_acc' (K, 1) evaluated once, after the last epoch (evaluating every epoch
    would cost as much as a third more training on CPU); final_loss (K,) = train_loss[:, -1].
    """
    return fit_mnist(
        mnist_arch(cfg, kind, depth),
        seeds,
        train_size=cfg.train_size,
        test_size=cfg.test_size,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        optimizer=cfg.optimizer,
        device=device,
    )
