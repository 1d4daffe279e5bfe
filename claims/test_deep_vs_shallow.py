"""HW1-1 Deep vs shallow: function fitting and MNIST at equal parameter budgets.

Each test: config -> train (hw1.experiments, cached and shared) -> measure -> decide (hw1.stats)
-> draw (hw1.plots) -> file and assert (the `claim` fixture).
"""

import numpy as np
import pytest
import torch

from hw1 import cache, stats
from hw1.data import get_target, sample_target
from hw1.experiments import fit_runs, mnist_runs
from hw1.plots import Panel, Series, band
from hw1.train import predict

SECTION = "HW1-1 Deep vs shallow"

# Measured outcomes other than 'reproduced' at the ci scale (benchmarks/experiments/ has the
# experiments behind the sinc and CNN findings).
CNN_UNDERTRAINED = pytest.mark.expect(
    "ci",
    "not shown",
    evidence=(
        "20k-param CNNs, 4000 images x 3 epochs, 20 seeds (stage 3, the last): final training loss vs "
        "1/2/4 conv blocks Page's L p = 0.95 (opposite 0.067), training accuracy p = 0.99 (opposite 0.016); "
        "mean tau -0.17 / -0.23: the shallower nets do a little better, and the opposite's Bonferroni p "
        "0.032 misses the last level 0.0125. Fragile across seed sets (figures/STABILITY.md). 2000 images "
        "x 10 epochs: p = 0.11"
    ),
)


# Measured at the paper scale (the report's settings: 5000 epochs; CPU, figures/paper/).
PAPER_FIT = {
    # function-depth was measured with its earlier second part (grid MSE), not re-run since the
    # largest-error part replaced it (issue 16): a paper run that decides otherwise fails and says so.
    ("function-depth", "sinc"): (
        "reproduced",
        "16 seeds (stage 2), Page's L p = 0.0078, mean tau 0.33 "
        "[0.08, "
        "0.54] (with the earlier grid-MSE part)",
    ),
    ("function-depth", "sincos"): (
        "reproduced",
        "8 seeds, Page's L p = 7.7e-5, mean tau 0.83 [0.58, 1] (with the earlier grid-MSE part)",
    ),
    ("small-budget-crossover", "sinc"): (
        "reproduced",
        "16 seeds (stage 2), p = 0.0011, median log10 difference -0.32 [-0.51, -0.11]",
    ),
    ("small-budget-crossover", "sincos"): (
        "reproduced",
        "32 seeds (stage 3), p = 2.4e-5, median log10 difference -0.26 at budget 40",
    ),
}


def _paper(claim_id: str, target: str):
    outcome, evidence = PAPER_FIT[claim_id, target]
    return pytest.mark.expect("paper", outcome, evidence=evidence)


def _depth_label(run) -> str:
    unit = "conv block" if run.build.kind == "cnn" else "hidden layer"
    return f"{run.build.depth} {unit}{'s' if run.build.depth > 1 else ''} ({run.build.n_params} params)"


def _loss_panel(runs: dict, key: str, title: str, ylabel: str, yscale: str = "log") -> Panel:
    series = []
    for run in runs.values():
        mid, lo, hi = band(run.history[key].numpy())
        series.append(Series(_depth_label(run), np.arange(1, len(mid) + 1), mid, lo, hi))
    return Panel(title, "epoch", ylabel, series, yscale=yscale)


def _prediction_panel(target: str, runs: dict, grid: torch.Tensor) -> Panel:
    t = get_target(target)
    series = [Series(f"ground truth {t.formula}", grid[:, 0], t.fn(grid)[:, 0], style="truth")]
    for run in runs.values():
        k = int(np.argsort(run.history["loss"][:, -1].numpy())[len(run.seeds) // 2])  # median seed
        series.append(
            Series(
                f"{_depth_label(run)}, median seed", grid[:, 0], predict(run.build, run.params, grid)[k, :, 0]
            )
        )
    return Panel(f"Predicted curves: {t.formula}", "x", "y", series)


def _max_error(target: str, run, grid: torch.Tensor) -> np.ndarray:
    """(K,) the largest |prediction - truth| of each member on a dense grid (16x the training
    density, so mostly points between the training points): the worst deviation of the drawn curve."""
    truth = get_target(target).fn(grid)
    return (predict(run.build, run.params, grid) - truth).abs().amax((1, 2)).numpy()


@pytest.mark.claim(
    "function-depth",
    section=SECTION,
    statement=(
        "At an equal number of trainable parameters, deeper DNNs reach lower training loss, and predict "
        "the function curve more precisely."
    ),
)
@pytest.mark.parametrize(
    "target", [pytest.param(t, marks=_paper("function-depth", t)) for t in ("sinc", "sincos")]
)
def test_function_depth(target, scale, device, claim):
    """Report: 可以發現在相同可訓練參數量下,層數越深,loss 的下降可以到越低。
    而且,深層的神經網路可以更精確的預測函數圖形."""
    cfg = scale.fit
    grid, _ = sample_target(target, 16 * cfg.n_points)

    def measure(s, alpha):
        runs = cache.each_free(cfg.depths, lambda d: fit_runs(cfg, target, d, cfg.budget, s, device))
        # (seeds, depths)
        train_loss = np.stack([runs[d].history["loss"][:, -1].numpy() for d in cfg.depths], 1)
        max_err = np.stack([_max_error(target, runs[d], grid) for d in cfg.depths], 1)
        # Criterion: Page's trend test over seeds (blocks) x depths, one-sided (decreasing), for the
        # final training loss AND the worst deviation of the predicted curve from the function on a
        # grid 16x denser than the training points; both must hold (intersection-union).
        # Changed after data was seen (issue 16): the second part was the MSE on a 4x grid, which
        # repeats the first (noise-free target, grid inside the training range: grid / training
        # MSE 0.90-1.00 per run, the same depth ranking in every seed), so "2/2 parts" counted one
        # piece of evidence twice. The largest error is what the prediction figure shows a reader,
        # is set by the hardest stretch of the curve rather than by the average, and can rank the
        # depths differently; chosen before any run of it.
        return stats.all_of(
            [
                stats.trend_test(
                    np.log10(train_loss),
                    direction="decreasing",
                    alpha=alpha,
                    claim="final training loss (log10) vs depth",
                ),
                stats.trend_test(
                    np.log10(max_err),
                    direction="decreasing",
                    alpha=alpha,
                    claim="largest |prediction - truth| on a 16x grid (log10) vs depth",
                ),
            ],
            claim=f"{target}: deeper is better at {cfg.budget} parameters",
        ), runs

    verdict, s, runs = claim.stage(measure, cfg.seeds)
    claim.figure(
        f"function-depth-{target}-loss",
        [
            _loss_panel(
                runs,
                "loss",
                f"Training loss, {get_target(target).formula} (median, IQR over {len(s)} seeds)",
                "MSE (training)",
            )
        ],
    )
    claim.figure(f"function-depth-{target}-prediction", [_prediction_panel(target, runs, grid)])
    claim.conclude(verdict, s)


@pytest.mark.claim(
    "small-budget-crossover",
    section=SECTION,
    statement=(
        "(the report's conjecture) When the parameter budget is very small, a wider, shallower model "
        "may beat a deeper one whose layers have very few units."
    ),
)
@pytest.mark.parametrize(
    "target", [pytest.param(t, marks=_paper("small-budget-crossover", t)) for t in ("sinc", "sincos")]
)
def test_small_budget_crossover(target, scale, device, claim):
    """Report: 如果總限制的 trainable variable 量其實很小,或許廣一點的 model 表現會比深一點但每層都只有
    極少數節點的 model 來得好."""
    cfg = scale.fit
    budgets, shallow, deep = cfg.crossover_budgets, min(cfg.depths), max(cfg.depths)

    tested = [(b, d) for b in (budgets[0], budgets[-1]) for d in (shallow, deep)]

    def measure(s, alpha):
        # Only the four tested (budget, depth) pairs grow with the stages; the figure's other
        # budgets and depths stay at the first stage's seeds (they decide nothing).
        final = {
            k: run.history["loss"][:, -1].numpy()
            for k, run in cache.each_free(
                tested, lambda k: fit_runs(cfg, target, k[1], k[0], s, device)
            ).items()
        }  # (seeds,) each
        # Criterion: Wilcoxon signed-rank over seeds, one-sided, at the smallest budget (shallow <
        # deep) AND at the largest (deep < shallow): a crossover needs both (intersection-union).
        return stats.all_of(
            [
                stats.paired_test(
                    np.log10(final[budgets[0], shallow]),
                    np.log10(final[budgets[0], deep]),
                    alternative="less",
                    alpha=alpha,
                    claim=f"budget {budgets[0]}: {shallow}-layer loss below {deep}-layer",
                ),
                stats.paired_test(
                    np.log10(final[budgets[-1], deep]),
                    np.log10(final[budgets[-1], shallow]),
                    alternative="less",
                    alpha=alpha,
                    claim=f"budget {budgets[-1]}: {deep}-layer loss below {shallow}-layer",
                ),
            ],
            claim=f"{target}: crossover between budgets {budgets[0]} and {budgets[-1]}",
        ), None

    verdict, s, _ = claim.stage(measure, cfg.seeds)
    first = s[: cfg.seeds]
    runs = cache.each_free(
        [(b, d) for b in budgets for d in cfg.depths],
        lambda k: fit_runs(cfg, target, k[1], k[0], first, device),
    )
    series = []
    for d in cfg.depths:
        mid, lo, hi = band(np.stack([runs[b, d].history["loss"][:, -1].numpy() for b in budgets], 1))
        n = [runs[b, d].build.n_params for b in budgets]
        series.append(Series(f"{d} hidden layer(s)", n, mid, lo, hi))
    claim.figure(
        f"small-budget-crossover-{target}",
        [
            Panel(
                f"Final training loss vs budget, {get_target(target).formula}",
                "number of parameters",
                f"final MSE (median, IQR over the first {len(first)} seeds)",
                series,
                xscale="log",
                yscale="log",
                text=f"the test (budgets {budgets[0]} and {budgets[-1]}, {shallow} vs {deep} layers) "
                f"used {len(s)} seeds",
            )
        ],
    )
    claim.conclude(verdict, s)


def _mnist_figures(claim, runs: dict, kind: str, n: int) -> None:
    what = "CNN conv blocks" if kind == "cnn" else "DNN hidden layers"
    claim.figure(
        f"{kind}-depth-loss",
        [
            _loss_panel(
                runs,
                "loss",
                f"MNIST {what}: training loss (median, IQR over {n} seeds)",
                "cross-entropy (running mean over the epoch)",
            )
        ],
    )
    claim.figure(
        f"{kind}-depth-accuracy",
        [
            _loss_panel(
                runs,
                "acc",
                f"MNIST {what}: training accuracy (median, IQR over {n} seeds)",
                "accuracy (running mean over the epoch)",
                yscale="linear",
            )
        ],
    )


@pytest.mark.claim(
    "cnn-depth",
    section=SECTION,
    statement=(
        "On MNIST at about equal parameters, CNNs with more conv layers (1, 2, 4 conv+max-pool blocks, "
        "then flatten + one dense layer) reach lower training loss and higher training accuracy."
    ),
)
@CNN_UNDERTRAINED
def test_cnn_depth(scale, device, claim):
    """Report: 對於 CNN 而言,在可訓練參數差不多的情況下,層數越多(越深),
    對於 Loss 的下降或是準確率的提升都能有幫助."""
    cfg = scale.mnist

    def measure(s, alpha):
        runs = cache.each_free(cfg.cnn_depths, lambda d: mnist_runs(cfg, "cnn", d, s, device))
        loss = np.stack([runs[d].history["train_loss"][:, -1].numpy() for d in cfg.cnn_depths], 1)
        acc = np.stack([runs[d].history["train_acc"][:, -1].numpy() for d in cfg.cnn_depths], 1)
        # Criterion: Page's trend test over seeds x depths, one-sided: final training loss
        # decreasing AND final training accuracy increasing with depth (intersection-union).
        return stats.all_of(
            [
                stats.trend_test(loss, direction="decreasing", alpha=alpha, claim="training loss vs depth"),
                stats.trend_test(
                    acc, direction="increasing", alpha=alpha, claim="training accuracy vs depth"
                ),
            ],
            claim=f"CNNs at ~{cfg.cnn_budget} parameters",
        ), runs

    verdict, s, runs = claim.stage(measure, cfg.seeds)
    _mnist_figures(claim, runs, "cnn", len(s))
    claim.conclude(verdict, s)


@pytest.mark.claim(
    "dnn-depth",
    section=SECTION,
    statement=(
        "(aside) For plain DNNs on MNIST, too many layers sometimes converge more slowly and reach worse "
        "accuracy."
    ),
)
def test_dnn_depth(scale, device, claim):
    """Report: 我們也嘗試過 DNN,但發現在 DNN 上面,太多層數有時候反而會讓收斂速度比較慢,準確率也會比較差."""
    cfg = scale.mnist

    def measure(s, alpha):
        runs = cache.each_free(cfg.dnn_depths, lambda d: mnist_runs(cfg, "dnn", d, s, device))
        # convergence speed = mean training loss over the epochs (area under the curve, lower = faster)
        auc = np.stack([runs[d].history["loss"].mean(1).numpy() for d in cfg.dnn_depths], 1)
        acc = np.stack([runs[d].history["train_acc"][:, -1].numpy() for d in cfg.dnn_depths], 1)
        # Criterion: Page's trend test over seeds x depths, one-sided: the area under the training-
        # loss curve increasing AND the final training accuracy decreasing with depth (IUT).
        return stats.all_of(
            [
                stats.trend_test(
                    auc,
                    direction="increasing",
                    alpha=alpha,
                    claim="area under the training-loss curve vs depth",
                ),
                stats.trend_test(
                    acc, direction="decreasing", alpha=alpha, claim="training accuracy vs depth"
                ),
            ],
            claim=f"DNNs at ~{cfg.dnn_budget} parameters",
        ), runs

    verdict, s, runs = claim.stage(measure, cfg.seeds)
    _mnist_figures(claim, runs, "dnn", len(s))
    claim.conclude(verdict, s)


# The figure files each test writes ({param} filled from its case): one producer per file
# (tests/test_figure_names.py; the harness refuses a figure that is not declared here).
FIGURES = {
    "test_function_depth": ("function-depth-{target}-loss", "function-depth-{target}-prediction"),
    "test_small_budget_crossover": ("small-budget-crossover-{target}",),
    "test_cnn_depth": ("cnn-depth-loss", "cnn-depth-accuracy"),
    "test_dnn_depth": ("dnn-depth-loss", "dnn-depth-accuracy"),
}
