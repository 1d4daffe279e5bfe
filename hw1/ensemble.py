"""K models of one architecture as stacked tensors (torch.func): their parameters, forward pass and result.

Member k's parameters are the k-th slice of every (K, ...) tensor (`stack_module_state`), and one
pure forward pass is mapped over the slices with `vmap` (`ensemble_forward`), so the K models run
as one. `Ensemble` is what `train_ensemble` returns and the run cache stores.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


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
        part = {
            prefix: {n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)}
            for prefix in ("param.", "hist.", "final.")
        }
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


def ensemble_forward(build: Callable[[], nn.Module], base: nn.Module | None = None) -> Callable:
    """f(params, x) with params stacked (K, ...) and x (K, B, ...) -> (K, B, out). base: the
    net as a parameter-free (meta) module, if the caller already built one."""
    base = base if base is not None else copy.deepcopy(build()).to("meta")

    def one(p, x):
        return functional_call(base, p, (x,))

    return vmap(one)
