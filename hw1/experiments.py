"""The trained runs that claims share, each produced once through the run cache.

A claim asks for runs by what determines them (scale section, target, depth, budget, seeds); two
claims asking for the same runs get the same cached tensors, whichever trained them first.
"""
from __future__ import annotations

from dataclasses import asdict

import torch

from . import cache
from .config import FitConfig, MnistConfig
from .data import load_mnist, sample_target
from .models import Arch, cnn_arch, dnn_arch
from .train import Ensemble, flat_params, grad_norms, train_ensemble


def fit_runs(cfg: FitConfig, target: str, depth: int, budget: int, seeds: list[int],
             device: torch.device | str = "cpu") -> Ensemble:
    """DNNs of `depth` hidden layers and ~`budget` parameters fitted to `target`, one per seed.

    history: 'loss' (K, epochs), 'grad_norm' (K, epochs) (full batch: one step per epoch),
    'snapshot' (K, T, P) flat parameters every cfg.snapshot_every epochs from epoch 0,
    'snapshot_epoch' (K, T).
    """
    arch = dnn_arch(depth, budget)
    x, y = sample_target(target, cfg.n_points)
    spec = {"what": "fit", "target": target, "arch": arch.to_dict(), "n_points": cfg.n_points,
            "epochs": cfg.epochs, "lr": cfg.lr, "seeds": list(seeds), "snapshot_every": cfg.snapshot_every}

    def record(epoch: int, params: dict) -> dict:
        out = {"grad_norm": grad_norms(params)}
        if epoch % cfg.snapshot_every == 0 or epoch == cfg.epochs - 1:
            out["snapshot"] = flat_params(params)
            out["snapshot_epoch"] = torch.full((len(seeds),), float(epoch))
        return out

    def compute():
        return train_ensemble(arch, seeds, x, y, epochs=cfg.epochs, lr=cfg.lr, loss="mse",
                              device=device, on_epoch=record,
                              name=f"fit {target} depth {depth} budget {budget}").to_tensors()

    return Ensemble.from_tensors(arch, seeds, cache.cached(spec, device, compute), "mse")


def mnist_arch(cfg: MnistConfig, kind: str, depth: int) -> Arch:
    if kind == "cnn":
        return cnn_arch(depth, cfg.cnn_budget)
    return dnn_arch(depth, cfg.dnn_budget, n_in=784, n_out=10)


def mnist_runs(cfg: MnistConfig, kind: str, depth: int, seeds: list[int],
               device: torch.device | str = "cpu") -> Ensemble:
    """CNNs or DNNs of `depth` blocks/layers at the section's budget trained on MNIST, one per seed.

    history: 'loss'/'acc' (K, epochs) running means over each epoch; 'train_loss'/'train_acc' and
    'test_loss'/'test_acc' (K, 1) evaluated once, after the last epoch (evaluating every epoch
    would cost as much as a third more training on CPU).
    """
    arch = mnist_arch(cfg, kind, depth)
    spec = {"what": "mnist", "arch": arch.to_dict(), **asdict(cfg), "seeds": list(seeds)}

    def compute():
        x, y = load_mnist(True, limit=cfg.train_size)
        xt, yt = load_mnist(False, limit=cfg.test_size)
        if kind == "dnn":
            x, xt = x.flatten(1), xt.flatten(1)
        return train_ensemble(arch, seeds, x, y, epochs=cfg.epochs, lr=cfg.lr, loss="ce",
                              batch_size=cfg.batch_size, device=device,
                              eval_sets={"train": (x, y), "test": (xt, yt)}, eval_every=cfg.epochs,
                              vectorize=kind == "dnn" or torch.device(device).type == "cuda",
                              name=f"mnist {kind} depth {depth}").to_tensors()

    return Ensemble.from_tensors(arch, seeds, cache.cached(spec, device, compute), "ce")
