"""Why is `function-depth` fragile on the smooth sinc target? Vary training length, learning rate
and the number of seeds, and decide each variant with the claim's own test.

Run: python -m benchmarks.experiments.sinc_fragility  (about 10 minutes on one CPU core).
Writes benchmarks/experiments/sinc_fragility.json.
"""

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hw1 import stats
from hw1.config import CI
from hw1.experiments import fit_runs

VARIANTS = [  # (epochs, lr, seeds)
    (2000, 1e-3, 8),
    (2000, 1e-3, 16),
    (2000, 3e-3, 8),
    (5000, 1e-3, 8),
    (5000, 3e-3, 8),
]


def main() -> None:
    torch.set_num_threads(1)
    out = []
    for target in ("sinc", "sincos"):
        for epochs, lr, n in VARIANTS:
            cfg = replace(CI.fit, epochs=epochs, lr=lr)
            t = time.time()
            loss = np.stack(
                [
                    fit_runs(cfg, target, d, cfg.budget, list(range(n))).history["loss"][:, -1].numpy()
                    for d in cfg.depths
                ],
                1,
            )
            v = stats.trend_test(np.log10(loss), direction="decreasing")
            row = {
                "target": target,
                "epochs": epochs,
                "lr": lr,
                "seeds": n,
                "status": v.status,
                "p": v.p_value,
                "tau": v.effect,
                "median_loss_by_depth": np.median(loss, 0).tolist(),
                "seconds": time.time() - t,
            }
            print(row, flush=True)
            out.append(row)
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
