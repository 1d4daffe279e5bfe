"""Shared helpers: the machine's description, a timer, a peak-memory probe and robust summaries of
repeated ratios."""

from __future__ import annotations

import os
import platform
import threading
import time
from typing import Callable

import numpy as np
import torch

from hw1.provenance import cpu_model


def machine(device: torch.device) -> dict:
    """What the numbers were measured on: CPU model and cores, threads, torch, GPU, load average."""
    info = dict(
        cpu=cpu_model(), cores=os.cpu_count(), torch_threads=torch.get_num_threads(), torch=torch.__version__
    )
    info.update(python=platform.python_version(), device=str(device))
    info["load_avg_start"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {**info, "gpu": torch.cuda.get_device_name(device)} if device.type == "cuda" else info


def label(info: dict) -> str:
    if info.get("gpu"):
        return f"{info['gpu']} (torch {info['torch']})"
    return f"{info['cores']}-core {info['cpu']}, {info['torch_threads']} torch thread(s)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of fn() (CUDA work finished included)."""
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def spread(values) -> dict:
    """Median and inter-quartile range of repeated measurements."""
    v = np.asarray(values, float)
    q25, median, q75 = (float(np.percentile(v, q)) for q in (25, 50, 75))
    return {"median": median, "q25": q25, "q75": q75, "n": len(v), "values": [float(x) for x in v]}


def fmt_spread(s: dict, unit: str = "x", digits: int = 1) -> str:
    return f"{s['median']:.{digits}f}{unit} [{s['q25']:.{digits}f}, {s['q75']:.{digits}f}]"


class PeakRSS:
    """Peak growth of this process's resident memory over a block, sampled every 2 ms (Linux).

    torch's CPU allocator hands large blocks back to the system when they are freed, so the growth
    over a block is the block's own peak of live tensors (plus allocator slack).

        with PeakRSS() as mem:
            step()
        mem.growth  # bytes
    """

    def __enter__(self):
        self.base = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.growth = max(self.peak - self.base, 0)

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.002)


def rss_bytes() -> int:
    """Resident memory of this process now (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
