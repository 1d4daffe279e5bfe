"""Experiments behind measured ci outcomes: each varies the training of one claim and decides every
variant with the claim's own test. `run` times the variants and writes <script>.json beside them."""

import json
import time
from pathlib import Path

import torch


def run(script: str, variants, measure) -> None:
    """measure(*variant) -> the variant's row; each row gets its seconds; all go to <script>.json."""
    torch.set_num_threads(1)
    out = []
    for v in variants:
        t = time.time()
        out.append({**measure(*v), "seconds": time.time() - t})
        print(out[-1], flush=True)
    Path(script).with_suffix(".json").write_text(json.dumps(out, indent=1))


def decided(v) -> dict:
    """The fields of a verdict that a row keeps."""
    return {"status": v.status, "p": v.p_value, "tau": v.effect}
