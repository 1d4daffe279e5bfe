"""Evaluation cadence of the batch-size runs: both sets evaluated after every epoch (the baseline)
vs about `hw1.generalization.EVALS` times a run (`eval_every`, what `batch_runs` does), same runs.

Training is untouched by evaluating (no randomness, no parameter change), so both sides must end
with bit-identical parameters; each row says whether they did.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from hw1 import generalization as G
from hw1.config import CI
from hw1.train import TrainOptions, train_ensemble

from .common import spread, timed

CASES = (("fit", 1000), ("fit", 500), ("mnist", 1000), ("mnist", 500))


def bench_eval_cadence(device, repeats: int = 3, seeds: int = 6) -> list[dict]:
    cfg, rows = CI.gen, []
    for task, batch in CASES:
        (x, y), (xt, yt) = G.task_data(cfg, task)
        arch, epochs = G.batch_arch(cfg, task), G.batch_epochs(cfg, task, batch)
        every, out, sets = G.eval_every(epochs), {}, {"train": (x, y), "test": (xt, yt)}
        loss, name, members = G.task_loss(task), f"bench {task} {batch}", list(range(seeds))
        opts = TrainOptions(epochs, cfg.lr, loss, batch, name=name, device=device)

        def run(k):
            out[k] = train_ensemble(arch, members, x, y, replace(opts, eval_every=k), eval_sets=sets)

        base, ours = [], []
        for r in range(repeats):  # alternate which side goes first
            for k in (1, every) if r % 2 == 0 else (every, 1):
                (base if k == 1 else ours).append(timed(lambda: run(k), device))
        same = all(torch.equal(out[1].params[n], out[every].params[n]) for n in out[1].params)
        row = dict(task=task, batch=batch, epochs=epochs, eval_every=every, seeds=seeds)
        row.update(
            base_s=spread(base), ours_s=spread(ours), ratio=spread([b / o for b, o in zip(base, ours)])
        )
        rows.append({**row, "identical_params": same})
        t = [row[k]["median"] for k in ("base_s", "ours_s")]
        print(
            f"  {task} batch {batch}: every epoch {t[0]:.1f} s, every {every}: {t[1]:.1f} s, same: {same}",
            flush=True,
        )
    return rows
