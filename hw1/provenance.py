"""Where a run came from: the CPU, the vector code torch runs on it, the BLAS libraries, versions.

Float results differ between CPUs (Intel Xeon vs AMD EPYC, AVX-512 vs AVX2) because torch's BLAS
(MKL) and its own vector kernels (ATen) pick a code path per CPU, and thousands of training steps
amplify the last bits. Two knobs pin that choice, `MKL_CBWR` and `ATEN_CPU_CAPABILITY` (both read
when torch loads). They were measured (benchmarks/README.md, "Same bits on every CPU"): on this
project's Intel Xeon no setting reproduces the parameters that the same settings give on AMD
EPYC, so the project sets neither, and its ledger pins only what a machine cannot change
(outcomes and the figures' structure). A user who sets either knob gets it recorded here and in
the run cache's key.

Two knobs are for GPUs, both off by default and both recorded the same way (they enter the run key):
- `HW1_TF32=1`: TF32 matrix products and convolutions on CUDA (cuDNN's convolutions included;
  `hw1.train.set_precision`). Every claim lists it as a departure from the report's float32.
- `HW1_CUDA_GRAPH=1`: each Adam training step on CUDA is one CUDA graph, with fused, capturable Adam
  (`hw1.train.CudaGraphs`). The same algorithm and float32; the fused Adam kernel rounds
  differently from the eager (foreach) one, so the bits and the run key differ. No effect on CPU.
"""

from __future__ import annotations

import os
import platform

KNOBS = ("MKL_CBWR", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "HW1_TF32", "HW1_CUDA_GRAPH")
_SWITCHES = ("HW1_TF32", "HW1_CUDA_GRAPH")  # on/off knobs: recorded only when on


def knobs() -> dict:
    """The numeric knobs set in this process's environment, {name: value}."""
    return {k: os.environ[k] for k in KNOBS if os.environ.get(k) and (k not in _SWITCHES or _on(k))}


def _on(name: str) -> bool:
    """Whether an on/off knob is set to anything but '', 0, false, no, off."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def tf32() -> bool:
    """Whether TF32 is asked for (HW1_TF32)."""
    return _on("HW1_TF32")


def cuda_graphs() -> bool:
    """Whether CUDA graphs are asked for (HW1_CUDA_GRAPH)."""
    return _on("HW1_CUDA_GRAPH")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_blas() -> str:
    import torch

    cfg = torch.__config__.show()
    for part in cfg.replace(",", "\n").splitlines():
        if "BLAS_INFO=" in part:
            blas = part.split("=", 1)[1].strip()
            break
    else:
        blas = "unknown"
    for line in cfg.splitlines():
        if "Math Kernel Library Version" in line:
            return f"{blas} ({line.split('Version', 1)[1].split('Product')[0].strip(' -')})"
    return blas


def _numpy_blas() -> str:
    import numpy as np

    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{cfg.get('name', '?')} {cfg.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        return "unknown"


def numerics() -> dict:
    """What decides this process's float results on the CPU: the CPU model, the vector capability
    torch uses (`torch.backends.cpu.get_cpu_capability()`), the BLAS of torch and of numpy, their
    versions, any numeric knob set in the environment, and the GPU's name where CUDA is present."""
    import numpy as np
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_blas": _torch_blas(),
        "numpy_blas": _numpy_blas(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "knobs": knobs(),
        **({"accelerator": gpu} if gpu else {}),
    }


def describe(info: dict) -> str:
    """One line for an index header: 'Intel(R) Xeon(R) Processor; torch 2.14.1 with AVX512 kernels
    and mkl (2024.2); numpy 2.4.6 with scipy-openblas 0.3.31'."""
    knob = "; " + ", ".join(f"{k}={v}" for k, v in info["knobs"].items()) if info.get("knobs") else ""
    gpu = f"{info['accelerator']} with " if info.get("accelerator") else ""
    return (
        f"{gpu}{info.get('cpu', '?')}; torch {info.get('torch', '?')} with {info.get('cpu_capability', '?')} "
        f"kernels and {info.get('torch_blas', '?')}; numpy {info.get('numpy', '?')} with "
        f"{info.get('numpy_blas', '?')}{knob}"
    )
