"""Data: the target functions of HW1-1 and MNIST, verified before first use.

MNIST ships inside the repository (``data/mnist/*.gz``, CC BY-SA 3.0, Y. LeCun, C. Cortes,
C.J.C. Burges). Its four files are checked against the MD5 sums of the original uncompressed IDX
files, decompressed once (atomically) into a cache folder, and read through
``torchvision.datasets.MNIST``. ``HW1_MNIST_DIR`` points the project at a user's own copy (a folder
holding the four files, gzipped or not). Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = REPO_ROOT / "data" / "mnist"
CACHE_DIR = Path(os.environ.get("HW1_CACHE_DIR", REPO_ROOT / ".cache"))

# MD5 of the *uncompressed* IDX files: the sums every MNIST loader checks.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class DataError(RuntimeError):
    """Missing or corrupted data; the message says what is wrong and how to fix it."""


# ---------------------------------------------------------------- target functions


@dataclass(frozen=True)
class Target:
    name: str
    formula: str
    domain: tuple[float, float]
    fn: Callable[[torch.Tensor], torch.Tensor]


def _sinc(x: torch.Tensor) -> torch.Tensor:
    z = 5 * math.pi * x
    safe = torch.where(z == 0, torch.ones_like(z), z)
    return torch.where(z == 0, torch.ones_like(z), torch.sin(safe) / safe).abs()


TARGETS = {
    "sinc": Target("sinc", "|sin(5πx)/(5πx)|", (0.0, 1.0), _sinc),
    "sincos": Target(
        "sincos",
        "sin(3πx)+cos(6πx)",
        (0.0, 1.0),
        lambda x: torch.sin(3 * math.pi * x) + torch.cos(6 * math.pi * x),
    ),
    "square": Target(
        "square", "sign(sin(5πx))", (0.0, 1.0), lambda x: torch.sign(torch.sin(5 * math.pi * x))
    ),
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise ValueError(f"unknown target function {name!r}; choose one of {sorted(TARGETS)}")
    return TARGETS[name]


def sample_target(name: str, n: int, *, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n points of a target on its domain: an even grid (seed=None) or uniform draws. -> x, y (n, 1)."""
    t = get_target(name)
    lo, hi = t.domain
    if seed is None:
        x = torch.linspace(lo, hi, n)
    else:
        g = torch.Generator().manual_seed(seed)
        x = lo + (hi - lo) * torch.rand(n, generator=g)
    x = x.unsqueeze(1)
    return x, t.fn(x)


# ---------------------------------------------------------------- MNIST


def _md5(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    h = hashlib.md5()
    try:
        with opener(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except (OSError, EOFError) as e:  # truncated or not gzip at all
        raise DataError(
            f"MNIST file {path} cannot be read ({e}); restore it from the repository "
            f"(git checkout -- data/mnist) or point HW1_MNIST_DIR at a good copy"
        ) from e
    return h.hexdigest()


def mnist_source() -> Path:
    return Path(os.environ.get("HW1_MNIST_DIR", MNIST_DIR))


def verify_mnist(src: Path | None = None) -> dict[str, Path]:
    """Check the four MNIST files in `src` (gzipped or not) against their MD5 sums. -> name: path."""
    src = Path(src or mnist_source())
    found = {}
    for name, md5 in MNIST_MD5.items():
        cands = [p for p in (src / name, src / f"{name}.gz") if p.is_file()]
        if not cands:
            raise DataError(
                f"MNIST file {name}(.gz) is missing from {src}; restore data/mnist from the "
                f"repository (git checkout -- data/mnist) or set HW1_MNIST_DIR to a folder "
                f"holding the four MNIST IDX files"
            )
        got = _md5(cands[0])
        if got != md5:
            raise DataError(
                f"MNIST file {cands[0]} is corrupted: md5 of its contents is {got}, expected "
                f"{md5}; restore it (git checkout -- data/mnist) or fix HW1_MNIST_DIR"
            )
        found[name] = cands[0]
    return found


def _unpack_mnist(src: Path, root: Path) -> Path:
    """Decompress verified files into root/MNIST/raw, one atomic rename per file."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, path in verify_mnist(src).items():
        dest = raw / name
        if dest.is_file() and _md5(dest) == MNIST_MD5[name]:
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        fd, tmp = tempfile.mkstemp(dir=raw, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as out, opener(path, "rb") as f:
            shutil.copyfileobj(f, out)
        os.replace(tmp, dest)
    return root


@lru_cache(maxsize=4)
def _mnist_tensors(train: bool, src: str) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import MNIST

    root = _unpack_mnist(Path(src), CACHE_DIR / "mnist")
    ds = MNIST(str(root), train=train, download=False)
    x = (ds.data.float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)).unsqueeze(1)
    return x, ds.targets.clone()


def load_mnist(
    train: bool = True, *, limit: int | None = None, seed: int = 0, src: Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as normalised tensors. -> x (N, 1, 28, 28) float32, y (N,) int64.

    `limit` takes a class-stratified random subset of that size (seeded), so small subsets keep the
    label histogram.
    """
    x, y = _mnist_tensors(train, str(src or mnist_source()))
    if limit is None or limit >= len(y):
        return x, y
    g = torch.Generator().manual_seed(seed)
    per_class = [torch.nonzero(y == k).squeeze(1) for k in range(10)]
    take = []
    for k, idx in enumerate(per_class):
        share = round(limit * len(idx) / len(y)) if k < 9 else limit - sum(len(t) for t in take)
        take.append(idx[torch.randperm(len(idx), generator=g)[:share]])
    idx = torch.cat(take)
    idx = idx[torch.randperm(len(idx), generator=g)]
    return x[idx], y[idx]
