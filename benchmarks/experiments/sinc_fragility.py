"""Why is `function-depth` fragile on the smooth sinc target? Vary training length, learning rate
and the number of seeds, and decide each variant with the claim's own test.

Run: python -m benchmarks.experiments.sinc_fragility  (about 10 minutes on one CPU core).
Writes benchmarks/experiments/sinc_fragility.json.
"""

from dataclasses import replace

import numpy as np

from hw1 import stats
from hw1.config import CI
from hw1.experiments import fit_runs

from . import decided, run

# (epochs, lr, seeds)
VARIANTS = [(2000, 1e-3, 8), (2000, 1e-3, 16), (2000, 3e-3, 8), (5000, 1e-3, 8), (5000, 3e-3, 8)]


def measure(target: str, epochs: int, lr: float, n: int) -> dict:
    cfg = replace(CI.fit, epochs=epochs, lr=lr)
    runs = [fit_runs(cfg, target, d, cfg.budget, list(range(n))) for d in cfg.depths]
    loss = np.stack([r.history["loss"][:, -1].numpy() for r in runs], 1)  # (seeds, depths)
    v = stats.trend_test(np.log10(loss), direction="decreasing")
    row = {"target": target, "epochs": epochs, "lr": lr, "seeds": n, **decided(v)}
    return {**row, "median_loss_by_depth": np.median(loss, 0).tolist()}


if __name__ == "__main__":
    run(__file__, [(t, *v) for t in ("sinc", "sincos") for v in VARIANTS], measure)
