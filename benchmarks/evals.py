"""Evaluation cadence of the batch-size runs: both sets evaluated after every epoch (the baseline)
vs about `hw1.generalization.EVALS` times a run (`eval_every`, what `batch_runs` does), same runs.

Training is untouched by evaluating (no randomness, no parameter change), so both sides must end
with bit-identical parameters; each row says whether they did.
"""

from __future__ import annotations

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
        every = G.eval_every(epochs)
        out = {}

        def run(k):
            opts = TrainOptions(
                epochs=epochs,
                lr=cfg.lr,
                loss=G.task_loss(task),
                batch_size=batch,
                eval_every=k,
                name=f"bench {task} {batch}",
                device=device,
            )
            out[k] = train_ensemble(
                arch, list(range(seeds)), x, y, opts, eval_sets={"train": (x, y), "test": (xt, yt)}
            )

        base, ours = [], []
        for r in range(repeats):  # alternate which side goes first
            for k in (1, every) if r % 2 == 0 else (every, 1):
                (base if k == 1 else ours).append(timed(lambda: run(k), device))
        same = all(torch.equal(out[1].params[n], out[every].params[n]) for n in out[1].params)
        rows.append(
            {
                "task": task,
                "batch": batch,
                "epochs": epochs,
                "eval_every": every,
                "seeds": seeds,
                "base_s": spread(base),
                "ours_s": spread(ours),
                "ratio": spread([b / o for b, o in zip(base, ours)]),
                "identical_params": same,
            }
        )
        print(
            f"  {task} batch {batch}: every epoch {spread(base)['median']:.1f} s, every {every}: "
            f"{spread(ours)['median']:.1f} s, identical parameters: {same}",
            flush=True,
        )
    return rows
