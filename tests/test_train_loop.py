"""The training loop's device contract: per-member labels, batch orders sliced on the device, no
host read inside the loop, and the same bits as the loop it replaced."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.func import functional_call, vmap
from torch.utils._python_dispatch import TorchDispatchMode

from hw1 import train as T
from hw1.api import _recorder
from hw1.data import sample_target
from hw1.ensemble import init_params
from hw1.models import Arch, ConvDenseArch, dnn_arch
from hw1.stopping import Stopper
from hw1.train import TrainOptions, batch_order, epoch_orders, evaluate, train_ensemble


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.integers(1, 70), st.integers(0, 10**6), st.integers(0, 500))
def test_the_device_orders_sliced_are_batch_order_tail_included(n, batch, seed, epoch):
    perm = epoch_orders([seed, seed + 1], n, epoch, torch.device("cpu"))
    assert perm.shape == (2, n)
    if batch >= n:
        return  # full batch: no order drawn
    for k, s in enumerate((seed, seed + 1)):
        got = [perm[k, i : i + batch] for i in range(0, n, batch)]
        ref = batch_order(s, n, batch, epoch)
        assert len(got) == len(ref) and all(torch.equal(a, b) for a, b in zip(got, ref))


def _classes(n=40, d=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, c, (n,), generator=g)


def _labels_for(seeds, y):
    return [y[torch.randperm(len(y), generator=torch.Generator().manual_seed(100 + s))] for s in seeds]


@pytest.mark.parametrize("batch_size", [None, 12])
def test_per_member_labels_train_each_member_as_if_alone(batch_size):
    x, y = _classes()
    arch, seeds = Arch("dnn", (7,), n_in=5, n_out=3), [0, 1, 2]
    labels = _labels_for(seeds, y)
    xt, yt = _classes(seed=1)
    opts = TrainOptions(epochs=4, lr=1e-2, loss="ce", batch_size=batch_size)
    ens = train_ensemble(arch, seeds, x, labels, opts, eval_sets={"train": (x, labels), "test": (xt, yt)})
    for k, s in enumerate(seeds):
        alone = train_ensemble(
            arch, [s], x, labels[k], opts, eval_sets={"train": (x, labels[k]), "test": (xt, yt)}
        )
        for name in alone.params:
            torch.testing.assert_close(ens.params[name][k], alone.params[name][0], rtol=1e-5, atol=1e-6)
        for key in alone.history:
            torch.testing.assert_close(ens.history[key][k], alone.history[key][0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ens.final["loss"][k], alone.final["loss"][0], rtol=1e-5, atol=1e-6)
    # its own labels, not the others': the training accuracy is against each member's permutation
    own = evaluate(arch, ens.params, x, labels, "ce")
    torch.testing.assert_close(own["acc"], ens.final["acc"])


def test_a_seeds_run_with_its_labels_does_not_depend_on_its_companions():
    x, y = _classes()
    arch = Arch("dnn", (6, 6), n_in=5, n_out=3)
    opts = TrainOptions(epochs=3, lr=1e-2, loss="ce", batch_size=10)
    a = train_ensemble(arch, [0, 1, 2], x, _labels_for([0, 1, 2], y), opts)
    b = train_ensemble(arch, [2, 5], x, _labels_for([2, 5], y), opts)
    for name in a.params:
        torch.testing.assert_close(a.params[name][2], b.params[name][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.history["loss"][2], b.history["loss"][0], rtol=1e-5, atol=1e-6)


def test_per_member_labels_one_member_at_a_time_is_the_vectorized_run():
    x, y = _classes()
    arch = Arch("dnn", (6,), n_in=5, n_out=3)
    labels = _labels_for([3, 4], y)
    opts, sets = (
        TrainOptions(epochs=3, lr=1e-2, loss="ce", batch_size=16),
        {"train": (x, labels), "test": (x, y)},
    )
    a = train_ensemble(arch, [3, 4], x, labels, replace(opts, vectorize=True), eval_sets=sets)
    b = train_ensemble(arch, [3, 4], x, labels, replace(opts, vectorize=False), eval_sets=sets)
    assert a.history.keys() == b.history.keys()
    for key in a.history:
        torch.testing.assert_close(a.history[key], b.history[key], rtol=1e-5, atol=1e-6)


def test_a_conv_net_is_evaluated_in_pieces_with_the_same_values(monkeypatch):
    # on CPU a conv net's forward pass runs in pieces of images: the same values as one pass over
    # each chunk, to float rounding (the bits are the kernels' business: the same on the Xeon we
    # measured from 16 images per piece up), and the same accuracy exactly
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(300, 1, 28, 28, generator=g), torch.randint(0, 10, (300,), generator=g)
    for arch in (Arch("cnn", (4, 6), n_out=10), ConvDenseArch((5,), (12,))):
        params = init_params(arch, [0, 1, 2])
        monkeypatch.setattr(T, "CPU_FORWARD_IMAGES", 10**9)
        whole = evaluate(arch, params, x, y, "ce", chunk=200)
        for images, least in ((1, 1), (7, 1), (128, 32), (300, 32)):
            monkeypatch.setattr(T, "CPU_FORWARD_IMAGES", images)
            monkeypatch.setattr(T, "CPU_PIECE_MIN", least)
            got = evaluate(arch, params, x, y, "ce", chunk=200)
            torch.testing.assert_close(got["loss"], whole["loss"], rtol=1e-6, atol=0)
            assert torch.equal(got["acc"], whole["acc"])


# ---------------------------------------------------------------- no host read in the loop


class HostReads(TorchDispatchMode):
    """Counts the operations that make the host wait for the device on an accelerator: reading a
    value (`.item()`, `bool(t)`: _local_scalar_dense), `nonzero` (and boolean-mask indexing, which
    calls it), `equal`, and copies between devices. Dispatch is the same on every backend, so
    counting on CPU counts what a GPU run would wait for. The optimizer's own step counters are
    host tensors on every device (non-capturable Adam reads them there), so reads of them are not
    counted."""

    READS = {
        torch.ops.aten._local_scalar_dense.default,
        torch.ops.aten.nonzero.default,
        torch.ops.aten.equal.default,
        torch.ops.aten.masked_select.default,
    }

    def __init__(self, host_tensors=()):
        super().__init__()
        self.host = host_tensors
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.READS:
            host = {h.data_ptr() for h in self.host()}
            self.count += not any(isinstance(a, torch.Tensor) and a.data_ptr() in host for a in args)
        elif func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default):
            src = args[1] if func is torch.ops.aten.copy_.default else args[0]
            dst = torch.device(
                args[0].device if func is torch.ops.aten.copy_.default else kwargs.get("device") or src.device
            )
            self.count += dst != src.device and "meta" not in (dst.type, src.device.type)  # meta: no data
        elif func is torch.ops.aten.index.Tensor and any(
            i is not None and i.dtype == torch.bool for i in args[1]
        ):
            self.count += 1
        return func(*args, **kwargs)


def _reads_in_training(epochs, monkeypatch, **options) -> int:
    steps = []
    real = torch.optim.Adam

    def adam(params, **a):  # remember the optimizer, to exempt its host-side step counters
        opt = real(params, **a)
        steps.append(opt)
        return opt

    monkeypatch.setattr(torch.optim, "Adam", adam)
    x, y = sample_target("sinc", 40)
    mode = HostReads(lambda: [s["step"] for o in steps for s in o.state.values()])
    opts = TrainOptions(epochs=epochs, lr=1e-2, sync_every=10**6, **options)
    with mode:
        train_ensemble(
            dnn_arch(2, 60), [0, 1, 2], x, y, opts, eval_sets={"train": (x, y), "test": (x[::3], y[::3])}
        )
    return mode.count


@pytest.mark.parametrize(
    "kw",
    [
        dict(batch_size=None),
        dict(batch_size=7),
        dict(batch_size=7, stop_below=1e-9),
        dict(batch_size=9, eval_every=2),
    ],
    ids=["full-batch", "minibatch", "stop-below", "evaluations"],
)
def test_no_host_read_per_step_or_per_epoch(kw, monkeypatch):
    # the host reads the device only every sync_every epochs and after the last: the count over a
    # whole run is the same for 2 epochs (12 steps) as for 6 (36 steps)
    short, long = _reads_in_training(2, monkeypatch, **kw), _reads_in_training(6, monkeypatch, **kw)
    assert short == long
    assert long <= 2  # the final read: non-finite losses (and whether every member stopped)


def test_the_counter_sees_the_reads_it_must_count():
    x = torch.randn(5)
    with HostReads(lambda: []) as mode:
        x.sum().item()
        bool((x > 0).any())
        _ = x[x > 0]
        torch.equal(x, x)
    assert mode.count == 4


# ---------------------------------------------------------------- the same bits as the old loop


def _old_loop(build, seeds, x, y, *, epochs, lr, loss, batch_size):
    """The training loop before batch orders were drawn on the device and host reads were batched
    (main at 89c4819), without stopping or evaluations."""
    params = {n: p.detach().clone().requires_grad_(True) for n, p in init_params(build, seeds).items()}
    base = build().to("meta")
    fwd = vmap(lambda p, xb: functional_call(base, p, (xb,)))
    batch_loss = vmap(T.LOSSES[loss])
    opt = torch.optim.Adam(list(params.values()), lr=lr, foreach=True)
    K, N = len(seeds), len(y)
    full = batch_size is None or batch_size >= N
    if full:
        xs, ys = x.expand(K, *x.shape), y.expand(K, *y.shape)
    history = []
    for epoch in range(epochs):
        orders = [[None]] if full else [batch_order(s, N, batch_size, epoch) for s in seeds]
        total = torch.zeros(K)
        for step in range(len(orders[0])):
            if not full:
                idx = torch.stack([o[step] for o in orders])
                xs, ys = x[idx], y[idx]
            losses = batch_loss(fwd(params, xs), ys)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            total += losses.detach()
        history.append(total / len(orders[0]))
    return {n: p.detach() for n, p in params.items()}, torch.stack(history, 1)


@pytest.mark.parametrize("loss, batch_size", [("mse", None), ("mse", 9), ("ce", 8)])
def test_the_loop_trains_the_same_bits_as_the_loop_it_replaced(loss, batch_size):
    if loss == "mse":
        x, y = sample_target("sincos", 40)
        arch = dnn_arch(3, 120)
    else:
        x, y = _classes(n=36)
        arch = Arch("dnn", (9, 9), n_in=5, n_out=3)
    kw = dict(epochs=5, lr=1e-2, loss=loss, batch_size=batch_size)
    params, history = _old_loop(arch, [0, 4], x, y, **kw)
    ens = train_ensemble(arch, [0, 4], x, y, TrainOptions(**kw))
    assert all(torch.equal(ens.params[n], params[n]) for n in params)
    assert torch.equal(ens.history["loss"], history)


# ---------------------------------------------------------------- TF32: an opt-in knob


@pytest.mark.parametrize("value, on", [(None, False), ("0", False), ("1", True), ("yes", True)])
def test_tf32_is_off_on_cuda_unless_asked_and_then_keyed_and_listed(value, on, monkeypatch):
    from hw1 import cache, config, provenance

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        monkeypatch.delenv("HW1_TF32", raising=False)
        base_key = cache.run_key({"fn": "f"}, "cpu")
        if value is not None:
            monkeypatch.setenv("HW1_TF32", value)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = not on  # the other way
        T.set_precision("cpu")  # nothing on CPU
        assert torch.backends.cudnn.allow_tf32 is (not on)
        T.set_precision("cuda")  # the flags are the process's; no GPU needed to set them
        assert torch.backends.cuda.matmul.allow_tf32 is on and torch.backends.cudnn.allow_tf32 is on
        assert provenance.tf32() is on and ("HW1_TF32" in provenance.knobs()) is on
        assert (cache.run_key({"fn": "f"}, "cpu") != base_key) is on
        listed = [d["field"] for d in config.departures(config.CI, "cnn-depth")]
        assert ("numerics.tf32 (HW1_TF32)" in listed) is on
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_sgd_with_momentum_is_the_other_optimizer_and_a_bad_name_is_refused():
    x, y = sample_target("sinc", 32)
    opts = TrainOptions(epochs=3, lr=1e-2)
    adam = train_ensemble(dnn_arch(2, 60), [0, 1], x, y, opts)
    sgd = train_ensemble(dnn_arch(2, 60), [0, 1], x, y, replace(opts, optimizer="sgd"))
    assert not torch.equal(adam.flat(), sgd.flat())
    model = dnn_arch(2, 60)
    torch.manual_seed(1)
    ref = model()
    opt = torch.optim.SGD(ref.parameters(), lr=1e-2, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        ((ref(x) - y) ** 2).mean().backward()
        opt.step()
    flat = torch.cat([p.detach().flatten() for p in ref.parameters()])
    torch.testing.assert_close(sgd.flat()[1], flat, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        train_ensemble(dnn_arch(1, 20), [0], x, y, replace(opts, optimizer="rmsprop"))


def test_xdist_workers_on_one_gpu_each_get_a_share_of_its_memory(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, i: calls.append((f, i)))
    assert T.share_gpu("cpu", 8) is None and T.share_gpu("cuda", 1) is None and not calls
    assert T.share_gpu("cuda:1", 8) == pytest.approx(T.GPU_SHARE / 8)
    assert calls == [(pytest.approx(T.GPU_SHARE / 8), 1)]


# ---------------------------------------------------------------- the step as a CUDA graph


class Recorder:
    """CPU stand-in for `CudaGraphs`: `warm` runs the step, `capture` runs nothing and returns a
    graph whose replay runs the recorded step again. The step reads the graph's own index tensor,
    so a replay sees only what was copied into it, as a CUDA graph does."""

    def __init__(self):
        self.warmed = self.captured = self.replays = 0

    def warm(self, fn):
        self.warmed += 1
        fn()

    def capture(self, fn):
        self.captured += 1
        recorder = self

        class Graph:
            def replay(self):
                recorder.replays += 1
                fn()

        return Graph()


def _graph_cases():
    """name -> (build, seeds, x, y, options, the other arguments of train_ensemble)."""
    x, y = sample_target("sincos", 60)
    xc, yc = _classes(n=50)
    g = torch.Generator().manual_seed(3)
    ys = [torch.randint(0, 3, (50,), generator=g) for _ in range(2)]
    dense = Arch("dnn", (9, 9), n_in=5, n_out=3)
    return {
        "full-batch": (dnn_arch(3, 120), [0, 3], x, y, TrainOptions(epochs=8, lr=1e-2), {}),
        "minibatch-tail": (
            dnn_arch(3, 120),
            [0, 3, 5],
            x,
            y,
            TrainOptions(epochs=6, lr=1e-2, batch_size=7),
            {},
        ),
        "stop-below": (
            dnn_arch(2, 60),
            [0, 1],
            x,
            y,
            TrainOptions(epochs=40, lr=3e-2, batch_size=11, stop_below=0.05, sync_every=1),
            {},
        ),
        "ce-own-labels": (
            dense,
            [0, 4],
            xc,
            ys,
            TrainOptions(loss="ce", epochs=6, lr=1e-2, batch_size=8, eval_every=2),
            dict(eval_sets={"train": (xc, ys)}),
        ),
        "ce-shared": (dense, [0, 4], xc, yc, TrainOptions(loss="ce", epochs=5, lr=1e-2, batch_size=16), {}),
        # reads the gradients after each epoch's last step (a replayed tail from epoch 4 on): on a
        # GPU, p.grad must be the tensor the replayed graph writes
        "grad-norm-recorder": (
            dnn_arch(2, 60),
            [0, 1],
            x,
            y,
            TrainOptions(epochs=8, lr=1e-2, batch_size=7),
            dict(on_epoch=_recorder(8, True, 0, 2)),
        ),
    }


@pytest.mark.parametrize("case", list(_graph_cases()))
def test_the_graphed_step_replays_the_eager_steps_bit_for_bit(case):
    # the graph path's bookkeeping (warm-up, capture per shape, indices copied into the graph's
    # own tensor, sums and stopper updated in place), with a stand-in for CUDA's capture: on CPU
    # it must train the same bits as the eager loop, and it must really replay
    build, seeds, x, y, opts, kw = _graph_cases()[case]
    eager = train_ensemble(build, seeds, x, y, opts, **kw)
    rec = Recorder()
    graphed = train_ensemble(build, seeds, x, y, replace(opts, graph=rec), **kw)
    assert rec.captured >= 1 and rec.replays > rec.warmed
    for field in ("params", "history", "final"):
        a, b = getattr(eager, field), getattr(graphed, field)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[n], b[n]) for n in a if not a[n].isnan().any()), field
        assert all(torch.equal(a[n].isnan(), b[n].isnan()) for n in a), field


def test_a_tensor_rebound_after_capture_is_caught(monkeypatch):
    # what a real graph would silently get wrong (it writes the old addresses): the stopper once
    # rebound its tensors each epoch; the check at each host read refuses that
    def rebinding_update(self, mean, params, epoch):
        newly = ~self.frozen & (mean <= self.below)
        self.frozen = self.frozen | newly

    build, seeds, x, y, opts, kw = _graph_cases()["stop-below"]
    monkeypatch.setattr(Stopper, "update", rebinding_update)
    with pytest.raises(RuntimeError, match="rebound after capture"):
        train_ensemble(build, seeds, x, y, replace(opts, graph=Recorder()), **kw)


def test_graphs_are_asked_for_on_cuda_with_adam_only(monkeypatch):
    from hw1 import cache, provenance

    x, y = sample_target("sinc", 16)
    monkeypatch.delenv("HW1_CUDA_GRAPH", raising=False)
    base_key = cache.run_key({"fn": "f"}, "cpu")
    monkeypatch.setenv("HW1_CUDA_GRAPH", "1")
    assert provenance.cuda_graphs() and "HW1_CUDA_GRAPH" in provenance.knobs()
    assert cache.run_key({"fn": "f"}, "cpu") != base_key  # recorded and keyed, like HW1_TF32
    assert T.uses_graphs("cuda") and not T.uses_graphs("cpu") and not T.uses_graphs("cuda", "sgd")
    opts = TrainOptions(epochs=2, lr=1e-2)
    train_ensemble(dnn_arch(1, 10), [0], x, y, opts)  # CPU: the knob changes nothing
    with pytest.raises(T.DeviceError, match="CUDA graphs need a CUDA device"):
        train_ensemble(dnn_arch(1, 10), [0], x, y, replace(opts, graph=True))
    monkeypatch.setenv("HW1_CUDA_GRAPH", "0")
    assert not provenance.cuda_graphs() and "HW1_CUDA_GRAPH" not in provenance.knobs()


def test_no_host_read_per_step_with_the_graphed_step(monkeypatch):
    kw = dict(batch_size=7, graph=Recorder())
    assert _reads_in_training(2, monkeypatch, **kw) == _reads_in_training(6, monkeypatch, **kw) <= 2


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
@pytest.mark.parametrize("case", list(_graph_cases()))
def test_cuda_graphs_replay_the_same_kernels_as_eager_fused_adam(case, monkeypatch):
    # on a GPU: the captured step and the same step run eagerly with the same (fused, capturable)
    # Adam launch the same kernels on the same data, so they must give the same bits
    build, seeds, x, y, opts, kw = _graph_cases()[case]
    graphed = train_ensemble(build, seeds, x, y, replace(opts, device="cuda", graph=True), **kw)
    real = T.make_optimizer
    monkeypatch.setattr(T, "make_optimizer", lambda n, p, lr, graphed=False: real(n, p, lr, graphed=True))
    eager = train_ensemble(build, seeds, x, y, replace(opts, device="cuda", graph=False), **kw)
    assert all(torch.equal(eager.params[n], graphed.params[n]) for n in eager.params)
    torch.testing.assert_close(eager.history, graphed.history, rtol=0, atol=0, equal_nan=True)


@needs_cuda
@pytest.mark.parametrize("case", list(_graph_cases()))
def test_cuda_graphs_train_what_the_eager_loop_trains_to_float_rounding(case):
    # fused Adam rounds differently from foreach Adam: the same training to a stated tolerance
    build, seeds, x, y, opts, kw = _graph_cases()[case]
    graphed = train_ensemble(build, seeds, x, y, replace(opts, device="cuda", graph=True), **kw)
    eager = train_ensemble(build, seeds, x, y, replace(opts, device="cuda", graph=False), **kw)
    torch.testing.assert_close(graphed.final, eager.final, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(graphed.flat(), eager.flat(), rtol=1e-3, atol=1e-5)
