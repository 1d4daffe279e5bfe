"""What `paper` scale (the report's settings, hw1.config.PAPER) costs: measured per-step time x steps.

HW1-1 families: function fitting (depths x budgets, full batch, one step per epoch, with the
recording that `fit_runs` does) and MNIST (CNNs and DNNs, minibatches of 128 plus the per-epoch
evaluation on the train and test sets). Each ensemble of seeds is timed for a few steps on data of
the real shapes; the estimate multiplies by the paper's number of steps.
"""
from __future__ import annotations

import math
import os
from dataclasses import replace

import torch

from hw1.config import PAPER
from hw1.experiments import fit_runs, mnist_arch
from hw1.train import evaluate, train_ensemble

from .common import timed


def _fit_rows(device, epochs: int) -> list[dict]:
    cfg, seeds = PAPER.fit, list(range(PAPER.fit.seeds))
    short = replace(cfg, epochs=epochs)
    rows = []
    combos = sorted({(b, d) for b in cfg.crossover_budgets for d in cfg.depths} |
                    {(cfg.budget, d) for d in cfg.depths})
    for budget, depth in combos:
        fit_runs(replace(cfg, epochs=2), "sinc", depth, budget, seeds, device)  # warm-up
        t = timed(lambda: fit_runs(short, "sinc", depth, budget, seeds, device), device) / epochs
        n_ens = len(cfg.targets)  # one ensemble per target; function-depth shares crossover's runs
        rows.append({"family": "fit (function-depth, small-budget-crossover)",
                     "what": f"DNN depth {depth}, budget {budget}, {len(seeds)} seeds",
                     "s_per_step": t, "steps": cfg.epochs, "ensembles": n_ens,
                     "total_s": t * cfg.epochs * n_ens})
    return rows


def _mnist_rows(device, steps: int) -> list[dict]:
    cfg = PAPER.mnist
    seeds = list(range(cfg.seeds))
    n_train, n_test = cfg.train_size or 60_000, cfg.test_size or 10_000
    paper_steps = cfg.epochs * math.ceil(n_train / cfg.batch_size)
    g = torch.Generator().manual_seed(0)
    rows = []
    for kind, depths in (("cnn", cfg.cnn_depths), ("dnn", cfg.dnn_depths)):
        for depth in depths:
            arch = mnist_arch(cfg, kind, depth)
            x = torch.randn(cfg.batch_size * steps, 1, 28, 28, generator=g)
            y = torch.randint(0, 10, (len(x),), generator=g)
            if kind == "dnn":
                x = x.flatten(1)
            vec = kind == "dnn" or device.type == "cuda"  # as mnist_runs trains them
            run = lambda n: train_ensemble(arch, seeds, x[: cfg.batch_size * n], y[: cfg.batch_size * n],
                                           epochs=1, lr=cfg.lr, loss="ce", batch_size=cfg.batch_size,
                                           device=device, vectorize=vec)
            run(1)  # warm-up
            t_step = (timed(lambda: run(steps), device) - timed(lambda: run(1), device)) / (steps - 1)
            ens = run(1)
            params = {n: p.to(device) for n, p in ens.params.items()}
            xe, ye = x[:1000], y[:1000]
            if vec:
                t_eval = timed(lambda: evaluate(arch, params, xe, ye, "ce"), device) / len(xe)
            else:  # members evaluated one by one, as the unvectorized training does
                t_eval = sum(timed(lambda: evaluate(arch, {n: p[k:k + 1] for n, p in params.items()},
                                                    xe, ye, "ce"), device) for k in range(len(seeds))) / len(xe)
            eval_s = t_eval * (n_train + n_test) * cfg.epochs
            rows.append({"family": f"MNIST {kind}-depth", "what": f"{kind.upper()} depth {depth}, "
                         f"{arch.n_params} params, {len(seeds)} seeds, batch {cfg.batch_size}",
                         "s_per_step": t_step, "steps": paper_steps, "ensembles": 1,
                         "eval_s": eval_s, "total_s": t_step * paper_steps + eval_s})
    return rows


def estimate_paper(device: torch.device, fit_epochs: int = 20, mnist_steps: int = 4) -> dict:
    """Rows of measured per-step costs and the paper-scale totals (seconds), per family."""
    old = os.environ.get("HW1_NO_CACHE")
    os.environ["HW1_NO_CACHE"] = "1"  # time the training itself, never a cache hit
    try:
        rows = _fit_rows(device, fit_epochs) + _mnist_rows(device, mnist_steps)
    finally:
        if old is None:
            os.environ.pop("HW1_NO_CACHE")
        else:
            os.environ["HW1_NO_CACHE"] = old
    families: dict[str, float] = {}
    for r in rows:
        families[r["family"]] = families.get(r["family"], 0.0) + r["total_s"]
        print(f"  {r['what']:48s} {r['s_per_step']*1e3:8.1f} ms/step x {r['steps']} steps "
              f"x {r['ensembles']} -> {r['total_s']/3600:6.2f} h", flush=True)
    return {"rows": rows, "families": families, "total_s": sum(families.values())}
