"""Frozen configuration per scale: `smoke` (exercise the code), `ci` (the default CPU scale, with
the power to decide every claim) and `paper` (the report's settings, for a GPU).

Each section of the report has its own dataclass; a `Scale` bundles them. Vary one with
`dataclasses.replace`; `Scale.to_dict()` is saved beside every result it produced.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

SCALE_NAMES = ("smoke", "ci", "paper")


@dataclass(frozen=True)
class FitConfig:
    """HW1-1 function fitting (also feeds HW1-2 trajectories): full-batch Adam on a grid of points."""

    targets: tuple[str, ...] = ("sinc", "sincos")
    depths: tuple[int, ...] = (1, 3, 6)
    budget: int = 1000
    n_points: int = 256
    epochs: int = 5000
    lr: float = 1e-3
    seeds: int = 8
    snapshot_every: int = 50
    crossover_budgets: tuple[int, ...] = (40, 80, 160, 400, 1000)


@dataclass(frozen=True)
class MnistConfig:
    """HW1-1 'train on an actual task': CNNs and DNNs of equal budget on MNIST."""

    train_size: int | None = None  # None = all 60k
    test_size: int | None = None  # None = all 10k
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    seeds: int = 5
    cnn_budget: int = 90_000
    cnn_depths: tuple[int, ...] = (1, 2, 4)
    dnn_budget: int = 50_000
    dnn_depths: tuple[int, ...] = (1, 4, 8)


@dataclass(frozen=True)
class OptConfig:
    """HW1-2 optimization (gradient norm, minimal ratio, error surface). Owned by the HW1-2 work."""

    seeds: int = 8


@dataclass(frozen=True)
class GenConfig:
    """HW1-3 generalization. Owned by the HW1-3 work."""

    seeds: int = 3


@dataclass(frozen=True)
class Scale:
    name: str
    decides: bool  # False: verdicts are reported as inconclusive (the scale only exercises code)
    alpha: float = 0.05
    fit: FitConfig = field(default_factory=FitConfig)
    mnist: MnistConfig = field(default_factory=MnistConfig)
    opt: OptConfig = field(default_factory=OptConfig)
    gen: GenConfig = field(default_factory=GenConfig)

    def to_dict(self) -> dict:
        return asdict(self)


PAPER = Scale("paper", decides=True)

CI = Scale(
    "ci", decides=True,
    fit=FitConfig(epochs=2000, seeds=8, snapshot_every=20),
    # 90k-parameter CNNs cost ~7 ms per image-step on one CPU core: at CI scale a 20k budget.
    mnist=MnistConfig(train_size=4000, test_size=2000, epochs=3, seeds=5, cnn_budget=20_000),
)

SMOKE = Scale(
    "smoke", decides=False,
    fit=FitConfig(epochs=60, seeds=2, n_points=64, snapshot_every=10, crossover_budgets=(40, 1000)),
    mnist=MnistConfig(train_size=256, test_size=256, epochs=1, seeds=2, batch_size=64, cnn_budget=5_000),
    opt=OptConfig(seeds=2),
    gen=GenConfig(seeds=2),
)

SCALES = {s.name: s for s in (SMOKE, CI, PAPER)}


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; choose one of {', '.join(SCALE_NAMES)}")
    return SCALES[name]


def seeds_for(n: int, offset: int = 0) -> list[int]:
    """The n seeds of a run, shifted by the user's --seed offset."""
    return list(range(offset, offset + n))


__all__ = ["FitConfig", "MnistConfig", "OptConfig", "GenConfig", "Scale", "SCALES", "get_scale",
           "seeds_for", "replace"]
