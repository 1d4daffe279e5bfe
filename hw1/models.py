"""Model builders that hit a parameter budget at a given depth.

Depth and budget fix the shape: every hidden layer (or conv block) gets the same width `w` except
the last, whose width `v` is solved so that the parameter count lands as close to the budget as the
integers allow (the count is linear in the last width once the others are fixed). Where no uniform
`w` can reach the budget (tiny deep nets), the layers just before the last get `w + 1`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def dnn_param_count(widths: list[int], n_in: int = 1, n_out: int = 1) -> int:
    sizes = [n_in, *widths, n_out]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def cnn_param_count(channels: list[int], n_classes: int = 10, side: int = 28) -> int:
    c_in, total = 1, 0
    for c in channels:
        total += 9 * c_in * c + c
        c_in, side = c, side // 2
    return total + c_in * side * side * n_classes + n_classes


def _closest_last(head: list[int], budget: int, count, v_lo: int, v_hi: int):
    """The last width v in [v_lo, v_hi] that brings count(head + [v]) closest to the budget.

    -> (widths, |count - budget|, whether some v in the range lands on either side of the budget).
    """
    p1, p2 = count(head + [1]), count(head + [2])  # count is linear in v: p1 + (v - 1)(p2 - p1)
    v = min(max(round((budget - p1) / (p2 - p1)) + 1, v_lo), v_hi)
    covered = count(head + [v_lo]) <= budget <= count(head + [v_hi])
    return head + [v], abs(count(head + [v]) - budget), covered


def fit_widths(depth: int, budget: int, count: Callable[[list[int]], int]) -> list[int]:
    """Widths [w]*(depth-1) + [v] whose count(widths) is closest to `budget` (v within [w/2, 2w]).

    For small deep nets the counts that consecutive w can reach leave gaps (depth 8: w = 5 reaches
    at most 261 parameters, w = 6 at least 273), and a budget inside one was missed by up to 5%. Then
    the j = 1, 2, ... layers just before the last one get width w + 1, the most uniform widths that
    reach it: the first j whose range covers the budget, so the miss is at most half a step of v.
    Budgets that uniform widths cover keep exactly the widths they had.
    """
    if depth < 1 or budget < 1:
        raise ValueError(f"depth and budget must be positive, got depth={depth}, budget={budget}")
    if depth == 1:
        return _closest_last([], budget, count, 1, budget)[0]
    best, best_err = None, None
    for j in range(depth - 1):
        covered = False
        for w in range(1, budget + 1):
            head = [w] * (depth - 1 - j) + [w + 1] * j
            if best is not None and count(head + [1]) > budget:
                break
            widths, err, hit = _closest_last(head, budget, count, max(1, w // 2), 2 * w)
            covered |= hit
            if best_err is None or err < best_err:
                best, best_err = widths, err
        if covered:
            break
    return best


def build_dnn(widths: list[int], n_in: int = 1, n_out: int = 1, activation: str = "relu") -> nn.Sequential:
    act = ACTIVATIONS[activation]
    layers, c = [], n_in
    for w in widths:
        layers += [nn.Linear(c, w), act()]
        c = w
    return nn.Sequential(*layers, nn.Linear(c, n_out))


def build_convdense(
    channels: tuple[int, ...], widths: tuple[int, ...] = (), n_classes: int = 10, side: int = 28
) -> nn.Sequential:
    """The conv family's one builder: Conv3x3(pad 1)+ReLU+MaxPool2 blocks, flatten, ReLU dense
    layers, a linear head. Input (N, 1, side, side). widths=() is the report's HW1-1 CNN (blocks,
    flatten, one dense layer); channels=() an MLP on the flattened image.
    """
    layers, c_in = [], 1
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c_in, side = c, side // 2
    layers.append(nn.Flatten())
    n = c_in * side * side
    for w in widths:
        layers += [nn.Linear(n, w), nn.ReLU()]
        n = w
    return nn.Sequential(*layers, nn.Linear(n, n_classes))


def dnn_for_budget(depth: int, budget: int, n_in: int = 1, n_out: int = 1) -> list[int]:
    return fit_widths(depth, budget, lambda ws: dnn_param_count(ws, n_in, n_out))


def cnn_for_budget(depth: int, budget: int) -> list[int]:
    return fit_widths(depth, budget, cnn_param_count)


@dataclass(frozen=True)
class Arch:
    """A serialisable architecture: kind 'dnn' (widths of hidden layers) or 'cnn' (channels per block).

    Calling it builds a fresh module, so an Arch is the `build` of `train_ensemble`.
    """

    kind: str
    widths: tuple[int, ...]
    n_in: int = 1
    n_out: int = 1
    activation: str = "relu"

    def __call__(self) -> nn.Module:
        if self.kind == "dnn":
            return build_dnn(list(self.widths), self.n_in, self.n_out, self.activation)
        if self.kind == "cnn":
            return build_convdense(tuple(self.widths), (), self.n_out)
        raise ValueError(f"unknown architecture kind {self.kind!r}; use 'dnn' or 'cnn'")

    @property
    def n_params(self) -> int:
        if self.kind == "cnn":
            return cnn_param_count(list(self.widths), self.n_out)
        return dnn_param_count(list(self.widths), self.n_in, self.n_out)

    @property
    def depth(self) -> int:
        return len(self.widths)

    def to_dict(self) -> dict:
        return asdict(self)


def dnn_arch(depth: int, budget: int, n_in: int = 1, n_out: int = 1, activation: str = "relu") -> Arch:
    return Arch("dnn", tuple(dnn_for_budget(depth, budget, n_in, n_out)), n_in, n_out, activation)


def cnn_arch(depth: int, budget: int, n_classes: int = 10) -> Arch:
    return Arch("cnn", tuple(cnn_for_budget(depth, budget)), 1, n_classes)


@dataclass(frozen=True)
class ConvDenseArch:
    """A serialisable conv+dense net (the report's HW1-3 models); calling it builds a fresh one.
    (`Arch('cnn', channels)` is the same network as `ConvDenseArch(channels, ())`.)"""

    channels: tuple[int, ...]
    widths: tuple[int, ...]
    n_classes: int = 10
    kind: str = "convdense"

    def __call__(self) -> nn.Module:
        return build_convdense(self.channels, self.widths, self.n_classes)

    @property
    def n_params(self) -> int:
        return count_params(self())

    @property
    def is_mlp(self) -> bool:
        return not self.channels

    def to_dict(self) -> dict:
        return asdict(self)
