"""When members stop before their epochs: `TrainOptions.stop_below`, and non-finite losses.

Both keep their state on the device and look at it only when `train_ensemble` reads the host
(every `TrainOptions.sync_every` epochs), so nothing in the loop waits for the device.
"""

from __future__ import annotations

import torch


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the run, the seed and the epoch."""


class FiniteGuard:
    """Non-finite training losses: each epoch's (K,) mean losses are kept as they are (no work per
    epoch); `check`, a host read, looks at those since the last one and raises on the first
    non-finite value (earliest epoch, then first member)."""

    def __init__(self, name: str, seeds: list[int]):
        self.name, self.seeds = name, seeds
        self.pending: list[tuple[int, torch.Tensor]] = []

    def see(self, losses: torch.Tensor, epoch: int) -> None:
        self.pending.append((epoch, losses))

    def check(self) -> None:
        if not self.pending:
            return
        losses = torch.stack([v for _, v in self.pending])  # (epochs, K)
        epochs, self.pending = [e for e, _ in self.pending], []
        if bool(torch.isfinite(losses).all()):
            return
        e, k = (int(i) for i in (~torch.isfinite(losses)).nonzero()[0])  # row-major: earliest epoch first
        raise NonFiniteLossError(
            f"run {self.name!r}, seed {self.seeds[k]}: the training loss became {losses[e, k].item()} at "
            f"epoch {epochs[e]}; lower the learning rate or check the data"
        )


class Stopper:
    """`TrainOptions.stop_below`: which members have stopped, their parameters as they were.
    Every update is a masked select on the device (no host read); `all_stopped` reads the device."""

    def __init__(self, params: dict, stop_below: float | None, device):
        K = next(iter(params.values())).shape[0]
        self.below = stop_below
        self.frozen = torch.zeros(K, dtype=torch.bool, device=device)
        self.stop_epoch = torch.full((K,), -1.0, device=device)  # -1: still training
        self.keep = None if stop_below is None else {n: p.detach().clone() for n, p in params.items()}

    @staticmethod
    def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return mask.view((-1,) + (1,) * (like.ndim - 1))

    def hold(self, params: dict) -> None:
        """Put the stopped members' parameters back after a step moved them."""
        if self.keep is not None:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(torch.where(self._rows(self.frozen, p), self.keep[n], p))

    def mask(self, v: torch.Tensor, before: torch.Tensor, fill: float = float("nan")) -> torch.Tensor:
        """v with the members stopped before this epoch set to `fill`."""
        if self.below is None:
            return v
        return torch.where(self._rows(before, v), torch.full_like(v, fill), v)

    def update(self, mean: torch.Tensor, params: dict, epoch: int) -> None:
        """In place: a graphed step (`hold`) reads these tensors' storage."""
        if self.below is None:
            return
        newly = ~self.frozen & (mean <= self.below)
        for n, p in params.items():
            self.keep[n].copy_(torch.where(self._rows(newly, p), p.detach(), self.keep[n]))
        self.frozen |= newly
        self.stop_epoch.copy_(torch.where(newly, float(epoch), self.stop_epoch))

    def tensors(self) -> list[torch.Tensor]:
        return [self.frozen, self.stop_epoch, *(self.keep or {}).values()]

    def all_stopped(self) -> bool:
        return self.below is not None and bool(self.frozen.all())

    def last_epochs(self, epochs: int) -> torch.Tensor:
        return torch.where(self.stop_epoch < 0, float(epochs - 1), self.stop_epoch)

    def pad(self, rec: dict, epochs: int, regular: list[int], eval_keys: list[str], K: int, device) -> None:
        """After an early end, the history to its full length: nan for the epochs not run, and
        for the regular evaluations not made (the last column is added after)."""
        nan = torch.full((K,), float("nan"), device=device)
        for key in [k for k in ("loss", "acc") if k in rec]:
            rec[key] += [nan] * (epochs - len(rec[key]))
        if eval_keys:
            for e in regular[len(rec.get("eval_epoch", [])) :]:
                for key in eval_keys:
                    rec.setdefault(key, []).append(nan)
                rec.setdefault("eval_epoch", []).append(torch.full((K,), float(e), device=device))
