"""Why does `cnn-depth` not reproduce at the ci scale? Vary the training length (images x epochs)
at the ci budget and decide each variant with the claim's own test (training loss vs depth).

Run: python -m benchmarks.experiments.cnn_depth_budget  (about 10 minutes on one CPU core).
Writes benchmarks/experiments/cnn_depth_budget.json.
"""

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hw1 import stats
from hw1.config import CI
from hw1.experiments import mnist_runs

VARIANTS = [  # (train images, epochs, lr, seeds)
    (2000, 10, 1e-3, 4),
    (4000, 3, 3e-3, 4),
    (4000, 8, 1e-3, 4),
]


def main() -> None:
    torch.set_num_threads(1)
    out = []
    for n_img, epochs, lr, n in VARIANTS:
        cfg = replace(CI.mnist, train_size=n_img, epochs=epochs, lr=lr)
        t = time.time()
        runs = [mnist_runs(cfg, "cnn", d, list(range(n))) for d in cfg.cnn_depths]
        loss = np.stack([r.history["train_loss"][:, -1].numpy() for r in runs], 1)
        v = stats.trend_test(loss, direction="decreasing")
        row = {
            "train_size": n_img,
            "epochs": epochs,
            "lr": lr,
            "seeds": n,
            "status": v.status,
            "p": v.p_value,
            "tau": v.effect,
            "median_loss_by_depth": np.median(loss, 0).tolist(),
            "median_test_acc_by_depth": np.median(
                np.stack([r.history["test_acc"][:, -1].numpy() for r in runs], 1), 0
            ).tolist(),
            "seconds": time.time() - t,
        }
        print(row, flush=True)
        out.append(row)
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
