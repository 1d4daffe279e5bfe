"""The report's MNIST CNN steps in torch's default (NCHW) memory format vs `channels_last` (NHWC).

    python -m benchmarks.channels_last [--repeats 5] [--steps 10] [--budget 90000]

Per depth (1, 2, 4 conv blocks at the report's 90k budget, `hw1.models.cnn_arch`): seconds per
training step (forward, backward, Adam) on a batch of 128, and per evaluation forward of 2000
images, each arm timed on the same model weights and data, repeats alternating which arm goes
first, so a load change hits both sides of a ratio alike. The first repeat also checks the two
arms compute the same loss (to float rounding: another kernel, another summation order).
Writes benchmarks/results/channels_last.json and rebuilds benchmarks/README.md, which shows the table.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from hw1.models import cnn_arch

from .common import label, machine, spread, timed
from .report import write_readme

OUT = Path(__file__).resolve().parent / "results" / "channels_last.json"


def _arm(model, x, y, fmt):
    m = copy.deepcopy(model).to(memory_format=fmt)
    xs = x.contiguous(memory_format=fmt)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(xs), y)
        loss.backward()
        opt.step()
        return float(loss)

    return m, step


def bench(depths=(1, 2, 4), budget=90_000, steps=10, repeats=5, eval_n=2000) -> list[dict]:
    device = torch.device("cpu")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(128, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (128,), generator=g)
    xe = torch.rand(eval_n, 1, 28, 28, generator=g)
    rows = []
    for d in depths:
        torch.manual_seed(d)
        model = cnn_arch(d, budget)()
        arms = {fmt: _arm(model, x, y, fmt) for fmt in (torch.contiguous_format, torch.channels_last)}
        first = {fmt: step() for fmt, (_, step) in arms.items()}  # warm-up, and the same loss
        same = abs(first[torch.contiguous_format] - first[torch.channels_last]) < 1e-4
        t = {"train": {f: [] for f in arms}, "eval": {f: [] for f in arms}}
        for r in range(repeats):
            order = list(arms) if r % 2 == 0 else list(arms)[::-1]
            for fmt in order:
                m, step = arms[fmt]
                t["train"][fmt].append(timed(lambda: [step() for _ in range(steps)], device) / steps)
                xs = xe.contiguous(memory_format=fmt)
                with torch.no_grad():
                    t["eval"][fmt].append(timed(lambda: m(xs), device))
        nchw, nhwc = torch.contiguous_format, torch.channels_last
        row = {"depth": d, "params": sum(p.numel() for p in model.parameters()), "same_first_loss": same}
        for part, arm in t.items():
            row.update({f"{part}_default_s": spread(arm[nchw]), f"{part}_channels_last_s": spread(arm[nhwc])})
            row[f"{part}_ratio"] = spread([a / b for a, b in zip(arm[nchw], arm[nhwc])])
        rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.channels_last", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--budget", type=int, default=90_000)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    info = machine(torch.device("cpu"))
    rows = bench(budget=args.budget, steps=args.steps, repeats=args.repeats)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    print(f"{label(info)}, load {info['load_avg_start']:.1f} at start; wrote {OUT} and {write_readme()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
