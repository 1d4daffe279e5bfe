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


@pytest.mark.claim("function-depth")
@pytest.mark.parametrize("target", ["sinc", "sincos"])
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
        # The second part was revised after data was seen (claims/catalogue.toml, revisions).
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


@pytest.mark.claim("small-budget-crossover")
@pytest.mark.parametrize("target", ["sinc", "sincos"])
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


@pytest.mark.claim("cnn-depth")
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


@pytest.mark.claim("dnn-depth")
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
