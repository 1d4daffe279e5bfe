"""Frozen configuration per scale: `smoke` (exercise the code), `ci` (the default CPU scale, with
the power to decide every claim) and `paper` (the report's settings, for a GPU).

Each section of the report has its own dataclass; a `Scale` bundles them. Vary one with
`dataclasses.replace` (or `--set` items: `hw1.overrides`); `Scale.to_dict()` is saved beside every
result it produced.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction

from . import catalogue
from .provenance import tf32
from .stats import StagePlan

OPTIMIZERS = ("adam", "sgd")  # hw1.train.make_optimizer; sgd: SGD with momentum 0.9
BS_LR_SCALINGS = {"fixed": 0.0, "sqrt": 0.5, "linear": 1.0}  # GenConfig.bs_lr_scaling: exponent of b / ref

# Fields that no producer reads (seed counts, decision thresholds): left out of run-cache keys, so
# `--set gen.seeds=12` or a new threshold reuses every run trained so far.
_NOT_TRAINING = {"not_in_run_key": True}  # hw1.cache.NOT_IN_KEY


def _design(default):
    return field(default=default, metadata=_NOT_TRAINING)


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
    optimizer: str = "adam"  # or "sgd" (momentum 0.9): OPTIMIZERS
    seeds: int = _design(8)
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
    optimizer: str = "adam"  # or "sgd" (momentum 0.9): OPTIMIZERS
    seeds: int = _design(5)
    cnn_budget: int = 90_000
    cnn_depths: tuple[int, ...] = (1, 2, 4)
    dnn_budget: int = 50_000
    dnn_depths: tuple[int, ...] = (1, 4, 8)


@dataclass(frozen=True)
class OptConfig:
    """HW1-2 optimization. Trajectories and the gradient norm reuse the HW1-1 fit runs (FitConfig);
    the minimal-ratio runs and the error-surface probes are set here."""

    seeds: int = _design(8)  # HW1-2 runs that reuse the HW1-1 fit runs (trajectories, gradient norm, surface)
    # minimal ratio: one-hidden-layer DNNs, `ratio_runs` seeds as one ensemble, MSE then ||grad L||^2
    ratio_runs: int = _design(100)
    ratio_target: str = "sinc"
    ratio_budget: int = 1000  # parameters (the HW1-1 one-layer model: 333 units)
    n_points: int = 256
    mse_epochs: int = 9500
    gn_epochs: int = 500
    lr: float = 1e-3
    optimizer: str = "adam"  # or "sgd" (momentum 0.9): OPTIMIZERS
    gn_lr: float = 1e-4
    # |eigenvalue| <= eig_rel_tol x the largest |eigenvalue| counts as zero; None = P x float32 eps
    eig_rel_tol: float | None = None
    # gradient norm: 'near zero' = smoothed norm below quiet x the run's largest, over `window` epochs
    quiet: float = 0.01
    window: int = 20
    # error surface: loss at `n_dirs` random points on spheres of radius r (fractions of ||theta*||)
    radii: tuple[float, ...] = (0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1)
    n_dirs: int = 200
    grid: int = 41  # 2-D view: grid x grid points on [-span, span]^2 (filter-normalised directions)
    span: float = 1.0


@dataclass(frozen=True)
class GenConfig:
    """HW1-3 generalization: random labels, #parameters, flatness (interpolation, sensitivity,
    sharpness). Owned by the HW1-3 work. Defaults are the report's settings (`paper`); channels=()
    makes a "CNN" an MLP (the `ci` scale: conv nets are ~50x dearer on one CPU core).

    Data sizes None = all of MNIST (60k / 10k). lr is Adam's, everywhere (the report: 1e-3).
    """

    seeds: int = _design(5)
    pg_seeds: int = _design(5)  # the size family is the dearest part: 5 seeds (Wilcoxon min p 1/32)
    lr: float = 1e-3
    optimizer: str = "adam"  # or "sgd" (momentum 0.9): OPTIMIZERS
    # random-labels: 1 conv layer + 1 dense layer of 512 (filters not stated: 32), 1000 epochs
    rl_train_size: int | None = None
    rl_test_size: int | None = None
    rl_channels: tuple[int, ...] = (32,)
    rl_widths: tuple[int, ...] = (512,)
    rl_epochs: int = 1000
    rl_batch: int = 128
    rl_eval_every: int = 1  # both sets evaluated after the first epoch, every this many and the last
    # params-vs-generalization: 4 conv (10, 39, 39, 38) + 4 dense layers of width w, 50 epochs
    pg_train_size: int | None = None
    pg_test_size: int | None = None
    pg_channels: tuple[int, ...] = (10, 39, 39, 38)
    pg_depth: int = 4
    pg_widths: tuple[int, ...] = (16, 32, 64, 128, 256, 384, 512, 768, 1024, 1290)  # up to ~5M
    pg_epochs: int = 50
    pg_batch: int = 128
    # batch-size runs (interpolation endpoints, sensitivity, sharpness): 1 conv + 4 dense on MNIST
    bs_train_size: int | None = None
    bs_test_size: int | None = None
    bs_channels: tuple[int, ...] = (16,)
    bs_widths: tuple[int, ...] = (128, 128, 128, 128)
    bs_epochs: int = 20
    bs_min_steps: int = 1000  # and at least this many steps: large batches too reach a minimum
    # MNIST batch-size runs trained to a comparable state: each member stops when its epoch's mean
    # training loss reaches bs_target_loss (Keskar et al. train every batch size to ~100% training
    # accuracy), the epochs rule above times bs_cap being a cap. None: the epochs rule alone. At
    # the report's 60k images every batch size gets the same 20 epochs; on a small ci subset the
    # steps minimum takes over for large batches, and the batch at the crossing (100 at ci) got
    # the fewest epochs *and* the fewest steps (training loss 0.06 against <= 0.014 elsewhere).
    bs_target_loss: float | None = None
    bs_cap: int = 4
    # The learning rate of the batch-size runs at batch b: `lr` at every batch size ("fixed", the
    # report's), or scaled with b around the batch bs_lr_ref, which keeps `lr`: lr * sqrt(b / ref)
    # ("sqrt", Adam's square-root rule, Malladi et al. 2022) or lr * b / ref ("linear", SGD's
    # rule, Goyal et al. 2017). BS_LR_SCALINGS; `hw1.generalization.batch_lr`.
    bs_lr_scaling: str = "fixed"
    bs_lr_ref: int = 100
    batch_sizes: tuple[int, ...] = (10, 50, 100, 500, 1000)
    interp_batches: tuple[int, int] = (50, 1000)  # theta_1, theta_2
    n_alphas: int = 31  # alpha on an even grid over [-1, 2] (step 0.1 at 31)
    # function-fitting task of HW1-1 (sensitivity, sharpness)
    fit_target: str = "sincos"
    fit_depth: int = 3
    fit_budget: int = 1000
    fit_points: int = 1000  # training points (uniform draws); the test set is an even grid
    fit_epochs: int = 2000
    fit_min_steps: int = 5000
    # measurements
    sens_points: int | None = None  # test points for the MNIST sensitivities (None = all)
    sharp_points: int | None = 10_000  # training points for the sharpness losses (None = all)
    sharp_sigma: float = 1e-2  # report's Gaussian sharpness: N(0, sigma^2) on every parameter
    sharp_n: int = 20
    keskar_eps: float = 1e-3
    keskar_iters: int = 10
    # criteria, fixed before any run: "barely changes" = test-accuracy spread across sizes below
    # acc_spread; "at chance" = test accuracy within chance_margin of the chance level
    acc_spread: float = _design(0.03)
    chance_margin: float = _design(0.03)
    rl_train_acc: float = _design(0.99)  # "fits": training accuracy above this


# Seeds in stages (hw1.stats.staged), fixed before any run; `describe_plan` says what a plan does.
STAGED = StagePlan(multipliers=(1, 2, 4), spend=(0.5, 0.75, 1.0), futility=0.05)
SINGLE = StagePlan(multipliers=(1,), spend=(1.0,), futility=0.0)


@dataclass(frozen=True)
class Scale:
    name: str
    decides: bool  # False: verdicts are reported as inconclusive (the scale only exercises code)
    alpha: float = 0.05
    stages: StagePlan = STAGED
    fit: FitConfig = field(default_factory=FitConfig)
    mnist: MnistConfig = field(default_factory=MnistConfig)
    opt: OptConfig = field(default_factory=OptConfig)
    gen: GenConfig = field(default_factory=GenConfig)
    overrides: tuple[str, ...] = ()  # the --set items that made this scale from a named one

    def to_dict(self) -> dict:
        return asdict(self)


# The report's own settings: what `departures` measures every scale against.
REPORT = Scale("paper", decides=True)
# The paper scale is the report's settings, but for how often the random-label runs evaluate both
# sets: the claim reads the first and last evaluations and the figure a curve, so every 20th epoch
# of 1000 (the full 70k images each time were about a fifth of the paper suite's arithmetic).
PAPER = replace(REPORT, gen=replace(REPORT.gen, rl_eval_every=20))

CI = Scale(
    "ci",
    decides=True,
    fit=FitConfig(epochs=2000, seeds=8, snapshot_every=20, crossover_budgets=(40, 160, 1000)),
    # 90k-parameter CNNs cost ~7 ms per image-step on one CPU core: at CI scale a 20k budget.
    mnist=MnistConfig(train_size=4000, test_size=2000, epochs=3, seeds=5, cnn_budget=20_000),
    # HW1-2: 200-parameter one-layer nets for the minimal ratio (a 200 x 200 Hessian is cheap)
    opt=OptConfig(ratio_runs=40, ratio_budget=200, mse_epochs=3000, gn_epochs=300, n_dirs=100, grid=31),
    # HW1-3 at CI: MLPs (channels=()) on MNIST subsets, fewer epochs; see GenConfig
    gen=GenConfig(
        seeds=6,
        rl_train_size=500,
        rl_test_size=1000,
        rl_channels=(),
        rl_widths=(256,),
        rl_epochs=60,
        rl_batch=50,
        pg_seeds=5,
        pg_train_size=1000,
        pg_test_size=1000,
        pg_channels=(),
        pg_depth=2,
        pg_widths=(8, 12, 16, 24, 32, 48, 64, 96, 128, 192),
        pg_epochs=20,
        pg_batch=50,
        bs_train_size=1000,
        bs_test_size=1000,
        bs_channels=(),
        bs_widths=(64, 64, 64, 64),
        bs_epochs=20,
        bs_min_steps=200,
        bs_target_loss=0.01,
        fit_epochs=60,
        fit_min_steps=2000,
        sens_points=500,
        sharp_points=1000,
    ),
)

SMOKE = Scale(
    "smoke",
    decides=False,
    stages=SINGLE,
    fit=FitConfig(epochs=60, seeds=2, n_points=64, snapshot_every=10, crossover_budgets=(40, 1000)),
    mnist=MnistConfig(train_size=256, test_size=256, epochs=1, seeds=2, batch_size=64, cnn_budget=5_000),
    opt=OptConfig(
        seeds=2, ratio_runs=4, ratio_budget=40, n_points=64, mse_epochs=60, gn_epochs=10, n_dirs=8, grid=7
    ),
    gen=GenConfig(
        seeds=2,
        pg_seeds=2,
        rl_train_size=100,
        rl_test_size=200,
        rl_channels=(),
        rl_epochs=3,
        rl_batch=50,
        pg_train_size=200,
        pg_test_size=200,
        pg_channels=(),
        pg_depth=2,
        pg_widths=(8, 16, 32),
        pg_epochs=2,
        pg_batch=50,
        bs_train_size=200,
        bs_test_size=200,
        bs_channels=(),
        bs_widths=(16, 16),
        bs_epochs=2,
        bs_min_steps=2,
        fit_min_steps=5,
        batch_sizes=(50, 200),
        interp_batches=(50, 200),
        n_alphas=7,
        fit_points=200,
        fit_epochs=3,
        sens_points=50,
        sharp_points=100,
        sharp_n=3,
        keskar_iters=2,
    ),
)

SCALES = {s.name: s for s in (SMOKE, CI, PAPER)}


def _fraction(x: float) -> str:
    f = Fraction(x).limit_denominator(64)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def describe_plan(plan: StagePlan, alpha: float) -> str:
    """The stage plan in words, for legends and notes: what a run of this plan did.

    describe_plan(CI.stages, 0.05) -> "Seeds come in 3 stages: a case not decided by its first
    stage gets 2×, then 4× the seeds, with α = 0.05 spent 1/2, 1/4, 1/4 over the stages ..."."""
    if len(plan.multipliers) == 1:
        return f"Seeds come in one stage, tested at α = {alpha * plan.spend[0]:g}."
    more = ", then ".join(f"{m / plan.multipliers[0]:g}×" for m in plan.multipliers[1:])
    spent = ", ".join(_fraction(x / alpha) for x in plan.levels(alpha))
    futility = (
        (
            f", and an early stop from stage {plan.futility_from} on when even "
            f"{plan.multipliers[-1] / plan.multipliers[0]:g}× the seeds would reach significance "
            f"either way with a chance under {plan.futility:.0%} (futility)"
        )
        if plan.futility > 0
        else ""
    )
    return (
        f"Seeds come in {len(plan.multipliers)} stages: a case not decided by its first stage "
        f"gets {more} the seeds, with α = {alpha:g} spent {spent} over the stages in each direction "
        "(by the union bound a false *reproduced* stays ≤ α, and so does a false *contradicted*; "
        f"the two together up to 2α){futility}. A direction whose design cannot reach a stage's "
        "level (too few units for its test) decides nothing there, and its α for that stage goes on "
        "to its later stages (fixed by the design before any data; `*` in the stage tables), so "
        "the claim and the opposite can be tested at different levels."
    )


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; choose one of {', '.join(SCALE_NAMES)}")
    return SCALES[name]


def seeds_for(n: int, offset: int = 0) -> list[int]:
    """The n seeds of a run, shifted by the user's --seed offset."""
    return list(range(offset, offset + n))


def pooled_seeds(n: int, offsets) -> list[int]:
    """n seeds drawn in turn from the seed sets at `offsets` (--seed-sets): with n = k m for k sets,
    the first m seeds of each set, so a pooled stage is the union of the sets' own stages."""
    offsets = list(offsets)
    return [offsets[i % len(offsets)] + i // len(offsets) for i in range(n)]


# ------------------------------------------------------------------------------ departures
# The settings each claim reads (globs over "section.field"; claims/catalogue.toml): departures
# from the report are derived from these and the configs, never written by hand.
CLAIM_SETTINGS = {c.id: c.settings for c in catalogue.claims().values()}


def settings_read(claim: str, case: str = "") -> tuple[str, ...]:
    """The settings (globs) a case reads: its task's in the catalogue, else its claim's."""
    return catalogue.get(claim).settings_read(case) if claim in CLAIM_SETTINGS else ()


# Settings whose cut to under half the report's plausibly decides an outcome.
DECISIVE = {
    "training": ("*epochs*", "*min_steps*"),
    "data": ("*train_size*", "*n_points*", "*fit_points*"),
    "model": ("*channels*", "*budget*"),
}
_NOT_SETTINGS = ("*.seeds", "*_seeds")  # our statistical design, not a departure from the report


def _flat(scale: Scale) -> dict:
    out = {"alpha": scale.alpha}
    for sec in ("fit", "mnist", "opt", "gen"):
        out.update({f"{sec}.{k}": v for k, v in asdict(getattr(scale, sec)).items()})
    return out


def _size(v, key: str):
    """A comparable magnitude of a setting (None = all of MNIST)."""
    if v is None:
        return 60_000 if "train" in key else 10_000 if "test" in key else None
    if isinstance(v, (list, tuple)):
        return sum(x for x in v if isinstance(x, (int, float))) or len(v)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def departures(scale: Scale, claim: str, report: Scale | None = None, case: str = "") -> list[dict]:
    """How `scale` departs from the report's setting (`paper`) in what `claim` (its `case`) reads.

    -> [{'field', 'value', 'report', 'ratio' (value/report size or None), 'decisive'}]; 'decisive'
    names what a cut to under half the report's plausibly decides with ('training', 'data',
    'model'), else ''.
    """
    report = report or REPORT
    mine, theirs = _flat(scale), _flat(report)
    globs = settings_read(claim, case)
    out = []
    for key in mine:
        if (
            not any(fnmatch.fnmatch(key, g) for g in globs)
            or mine[key] == theirs[key]
            or any(fnmatch.fnmatch(key, g) for g in _NOT_SETTINGS)
        ):
            continue
        a, b = _size(mine[key], key), _size(theirs[key], key)
        ratio = a / b if a is not None and b else None
        kind = next((k for k, gs in DECISIVE.items() if any(fnmatch.fnmatch(key, g) for g in gs)), "")
        decisive = kind if ratio is not None and ratio < 0.5 else ""
        out.append(
            {"field": key, "value": mine[key], "report": theirs[key], "ratio": ratio, "decisive": decisive}
        )
    if tf32():  # a numeric knob, not a setting: TF32 products where the report computed in float32
        out.append(
            {
                "field": "numerics.tf32 (HW1_TF32)",
                "value": True,
                "report": False,
                "ratio": None,
                "decisive": "",
            }
        )
    return out


__all__ = [
    "FitConfig",
    "MnistConfig",
    "OptConfig",
    "GenConfig",
    "Scale",
    "SCALES",
    "get_scale",
    "seeds_for",
    "replace",
    "departures",
    "StagePlan",
    "describe_plan",
]
