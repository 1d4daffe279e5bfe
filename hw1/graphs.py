"""A training step replayed as CUDA graphs: capture once per batch shape, replay every later step.

`train_ensemble` uses them on CUDA with Adam when HW1_CUDA_GRAPH is set (`uses_graphs`), or when
`TrainOptions.graph` asks; the CPU tests put a stand-in backend in CudaGraphs' place.
"""

from __future__ import annotations

from typing import Callable

import torch

from . import provenance

GRAPH_WARMUP = 3  # eager steps of each batch shape before its graph is captured


def uses_graphs(device: torch.device | str, optimizer: str = "adam") -> bool:
    """Whether a run whose `TrainOptions.graph` is None replays its steps as CUDA graphs:
    HW1_CUDA_GRAPH set, a CUDA device, and Adam (SGD, a multiverse variant, stays eager)."""
    return torch.device(device).type == "cuda" and optimizer == "adam" and provenance.cuda_graphs()


class CudaGraphs:
    """Capture and replay on one CUDA device: warm-up steps and captures on one side stream (lazy
    library handles are made on the stream that captures). Each graph has its own memory pool: a
    shared pool is safe only for graphs replayed in their capture order, and the batch and tail
    graphs of an epoch are not (the tail's is captured later but replayed after the batch's)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.stream = torch.cuda.Stream(device)

    def warm(self, fn: Callable[[], None]) -> None:
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.stream):
            fn()
        torch.cuda.current_stream(self.device).wait_stream(self.stream)

    def capture(self, fn: Callable[[], None]):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            fn()  # recorded, not run
        return graph


class StepGraphs:
    """A training step replayed as one graph per batch shape (`HW1_CUDA_GRAPH=1`, Adam on CUDA).

    Each shape's first GRAPH_WARMUP steps run eagerly on the backend's stream (lazy set-up: cuBLAS
    handles, the optimizer's state); the next is captured (capture runs nothing) and replayed, and
    so is every later step of that shape, after its indices are copied into the graph's own index
    tensor. So the steps, their data and their order are the eager loop's, one for one. A minibatch
    epoch has at most two shapes (the batch and the tail), a full-batch run one.

    A replay reads and writes the addresses it was captured with, so every tensor the step uses
    must keep its storage for the whole run (updated in place, never rebound): `verify`, run at
    each host read, checks that against the tensors' storage at capture."""

    def __init__(self, step: Callable, backend, fixed: Callable[[], list[torch.Tensor]]):
        self.step, self.backend, self.fixed = step, backend, fixed
        self.seen: dict = {}
        self.graphs: dict = {}
        self.storage: list[int] | None = None

    def __call__(self, idx: torch.Tensor | None) -> None:
        shape = None if idx is None else tuple(idx.shape)
        if shape in self.graphs:
            graph, own = self.graphs[shape]
            if own is not None:
                own.copy_(idx)
            graph.replay()
            return
        self.seen[shape] = self.seen.get(shape, 0) + 1
        if self.seen[shape] <= GRAPH_WARMUP:
            self.backend.warm(lambda: self.step(idx))
            return
        own = None if idx is None else idx.clone()
        graph = self.backend.capture(lambda: self.step(own))
        self.graphs[shape] = (graph, own)
        self.storage = self.storage or self._storage()
        graph.replay()

    def _storage(self) -> list[int]:
        return [t.untyped_storage().data_ptr() for t in self.fixed()]

    def verify(self) -> None:
        """Raise if a tensor the captured steps use has been given other storage since capture."""
        if self.storage is not None and self._storage() != self.storage:
            raise RuntimeError(
                "a tensor of the captured training step was rebound after capture: its graph would "
                "read stale memory (update it in place)"
            )
