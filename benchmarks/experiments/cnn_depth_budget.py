"""Why does `cnn-depth` not reproduce at the ci scale? Vary the training length (images x epochs)
at the ci budget and decide each variant with the claim's own test (training loss vs depth).

Run: python -m benchmarks.experiments.cnn_depth_budget  (about 10 minutes on one CPU core).
Writes benchmarks/experiments/cnn_depth_budget.json.
"""

from dataclasses import replace

import numpy as np

from hw1 import stats
from hw1.config import CI
from hw1.experiments import mnist_runs

from . import decided, run

VARIANTS = [(2000, 10, 1e-3, 4), (4000, 3, 3e-3, 4), (4000, 8, 1e-3, 4)]  # (train images, epochs, lr, seeds)


def measure(n_img: int, epochs: int, lr: float, n: int) -> dict:
    cfg = replace(CI.mnist, train_size=n_img, epochs=epochs, lr=lr)
    runs = [mnist_runs(cfg, "cnn", d, list(range(n))) for d in cfg.cnn_depths]
    last = lambda key: np.stack([r.history[key][:, -1].numpy() for r in runs], 1)  # (seeds, depths)
    v = stats.trend_test(last("train_loss"), direction="decreasing")
    row = {"train_size": n_img, "epochs": epochs, "lr": lr, "seeds": n, **decided(v)}
    medians = {"median_loss_by_depth": "train_loss", "median_test_acc_by_depth": "test_acc"}
    return {**row, **{k: np.median(last(key), 0).tolist() for k, key in medians.items()}}


if __name__ == "__main__":
    run(__file__, VARIANTS, measure)
