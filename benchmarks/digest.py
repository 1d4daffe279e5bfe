"""Do two machines train the same bits? A few small runs and a digest of their parameters.

    python -m benchmarks.digest --compare        # torch's defaults and the MKL_CBWR+ATEN pin, compared
                                                 # with the digests of benchmarks/results/digests.json
    python -m benchmarks.digest --all --repeats 3 --record   # every setting, timed; store this machine's

Each setting runs in a fresh interpreter (the knobs are read when torch loads), one torch thread,
with the run cache off. The runs are the three of the first cross-CPU digest experiment:

- fit:  fit_target(dnn([14, 14, 8]), "sinc", seeds=[0, 1], epochs=300)
- dnn:  fit_mnist(dnn([64, 64], n_in=784, n_out=10), seeds=[0], train_size=500, test_size=100, epochs=2)
- cnn:  fit_mnist(cnn([4, 8]), seeds=[0], train_size=300, test_size=100, epochs=1)

A digest is the first 12 hex digits of the SHA-256 over the `params` tensors' bytes, taken in
sorted key order. Whoever runs this on another CPU kind compares against the committed digests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "digests.json"
# The settings compared: name -> environment (None = leave the knob unset).
SETTINGS = {
    "default": {"MKL_CBWR": None, "ATEN_CPU_CAPABILITY": None},
    "MKL_CBWR=AVX2 ATEN_CPU_CAPABILITY=avx2": {"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    "MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=avx2": {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "avx2"},
    "MKL_CBWR=AVX2": {"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": None},
    "ATEN_CPU_CAPABILITY=avx2": {"MKL_CBWR": None, "ATEN_CPU_CAPABILITY": "avx2"},
    "ONEDNN_MAX_CPU_ISA=AVX2": {"MKL_CBWR": None, "ATEN_CPU_CAPABILITY": None, "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def digest(params: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(params):
        h.update(params[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def run_here(deterministic: bool = False) -> dict:
    """The three runs in this interpreter -> {'digests': {run: hex}, 'seconds': {run: s}, 'env'}."""
    import torch

    from hw1 import cnn, dnn, fit_mnist, fit_target
    from hw1.provenance import numerics

    torch.set_num_threads(1)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    runs = {
        "fit": lambda: fit_target(dnn([14, 14, 8]), "sinc", seeds=[0, 1], epochs=300),
        "dnn": lambda: fit_mnist(
            dnn([64, 64], n_in=784, n_out=10), seeds=[0], train_size=500, test_size=100, epochs=2
        ),
        "cnn": lambda: fit_mnist(cnn([4, 8]), seeds=[0], train_size=300, test_size=100, epochs=1),
    }
    out = {"digests": {}, "seconds": {}}
    for name, run in runs.items():
        t = time.perf_counter()
        out["digests"][name] = digest(run().params)
        out["seconds"][name] = round(time.perf_counter() - t, 3)
    out["env"] = numerics()
    out["stages"] = stage_digests()
    return out


def stage_digests() -> dict:
    """Digests of what goes into the runs, to find where two machines part: the sinc targets, the
    MNIST subset, the fit nets' initial parameters, the fit after 1 and after 10 epochs."""
    from hw1 import dnn, fit_target
    from hw1.data import load_mnist, sample_target
    from hw1.train import init_params

    arch = dnn([14, 14, 8])
    x, y = sample_target("sinc", 256)
    xm, ym = load_mnist(True, limit=300)
    return {
        "sinc_target": digest({"x": x, "y": y}),
        "mnist_subset": digest({"x": xm, "y": ym.float()}),
        "fit_init": digest(init_params(arch, [0, 1])),
        "fit_1_epoch": digest(fit_target(arch, "sinc", seeds=[0, 1], epochs=1).params),
        "fit_10_epochs": digest(fit_target(arch, "sinc", seeds=[0, 1], epochs=10).params),
    }


def run_setting(env: dict, deterministic: bool = False) -> dict:
    """The runs in a fresh interpreter with the knobs of `env` set (None: unset)."""
    full = {**os.environ, "HW1_NO_CACHE": "1"}
    for k, v in env.items():
        full.pop(k, None)
        if v is not None:
            full[k] = v
    code = (
        "import json, sys; from benchmarks.digest import run_here; "
        f"print(json.dumps(run_here({deterministic!r})))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=HERE.parent, env=full, capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.digest", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--all", action="store_true", help="every setting (default: torch's and the MKL_CBWR+ATEN pin)"
    )
    ap.add_argument("--repeats", type=int, default=1, help="time each setting this many times")
    ap.add_argument("--deterministic", action="store_true", help="also torch.use_deterministic_algorithms")
    ap.add_argument("--record", action="store_true", help=f"store this machine's digests in {RESULTS.name}")
    ap.add_argument("--compare", action="store_true", help=f"compare with {RESULTS.name}")
    args = ap.parse_args(argv)
    from hw1.provenance import cpu_model

    names = list(SETTINGS) if args.all else ["default", "MKL_CBWR=AVX2 ATEN_CPU_CAPABILITY=avx2"]
    base = run_setting(SETTINGS["default"])["env"]
    here = {"cpu": cpu_model(), "capability": base["cpu_capability"], "torch": base["torch"], "settings": {}}
    for name in names:
        rows = [run_setting(SETTINGS[name], args.deterministic) for _ in range(args.repeats)]
        same = len({json.dumps(r["digests"], sort_keys=True) for r in rows}) == 1
        secs = {k: sorted(r["seconds"][k] for r in rows)[len(rows) // 2] for k in rows[0]["seconds"]}
        here["settings"][name] = dict(
            digests=rows[0]["digests"], stages=rows[0]["stages"], seconds=secs, repeatable=same
        )
        digests, times = (" ".join(f"{k} {v}" for k, v in d.items()) for d in (rows[0]["digests"], secs))
        print(f"{name:48s} {digests}   {times} s" + ("" if same else "  NOT REPEATABLE"))
    known = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"machines": []}
    if args.compare:
        for m in known["machines"]:
            for name, s in here["settings"].items():
                if theirs := m["settings"].get(name):
                    agree = "same bits" if theirs["digests"] == s["digests"] else "DIFFERENT"
                    print(f"vs {m['cpu']} ({m['capability']}), {name}: {agree}")
    if args.record:
        others = [
            m for m in known["machines"] if (m["cpu"], m["capability"]) != (here["cpu"], here["capability"])
        ]
        known["machines"] = others + [here]
        RESULTS.write_text(json.dumps(known, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
