"""The vmapped ensemble is K separate trainings; bad runs and devices fail loudly."""

from dataclasses import replace

import pytest
import torch

from hw1 import progress
from hw1.data import sample_target
from hw1.ensemble import Ensemble, ensemble_of, grad_norms, init_params
from hw1.models import Arch, dnn_arch
from hw1.stopping import NonFiniteLossError
from hw1.train import (
    DeviceError,
    TrainOptions,
    batch_order,
    evaluate,
    predict,
    resolve_device,
    train_ensemble,
    train_model,
)


def _loop(arch, seeds, x, y, **kw):
    """The reference: one plain nn.Module per seed, trained by a Python loop."""
    finals, curves = [], []
    for s in seeds:
        torch.manual_seed(s)
        m = arch()
        curves.append(train_model(m, s, x, y, **kw))
        finals.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    return torch.stack(finals), torch.tensor(curves)


@pytest.mark.parametrize("depth", [1, 6])
def test_vmapped_ensemble_equals_loop_full_batch(depth):
    torch.set_default_dtype(torch.float64)
    try:
        arch, seeds = dnn_arch(depth, 300), [0, 1, 2]
        x, y = sample_target("sincos", 64)
        ens = train_ensemble(arch, seeds, x, y, TrainOptions(epochs=30, lr=1e-2))
        flat, curves = _loop(arch, seeds, x, y, epochs=30, lr=1e-2)
        torch.testing.assert_close(ens.flat(), flat, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(ens.history["loss"], curves, rtol=1e-9, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)


def test_vmapped_ensemble_equals_loop_minibatch_classification():
    torch.set_default_dtype(torch.float64)
    try:
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(40, 5, generator=g), torch.randint(0, 3, (40,), generator=g)
        arch, seeds = Arch("dnn", (8, 8), n_in=5, n_out=3), [3, 4]
        ens = train_ensemble(arch, seeds, x, y, TrainOptions(epochs=3, lr=1e-2, loss="ce", batch_size=16))
        flat, curves = _loop(arch, seeds, x, y, epochs=3, lr=1e-2, loss="ce", batch_size=16)
        torch.testing.assert_close(ens.flat(), flat, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(ens.history["loss"], curves, rtol=1e-9, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)


def test_sequential_members_equal_vectorized_members_for_cnns():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(24, 1, 28, 28, generator=g), torch.randint(0, 10, (24,), generator=g)
    arch = Arch("cnn", (2, 3), n_out=10)
    opts, sets = TrainOptions(epochs=2, lr=1e-3, loss="ce", batch_size=8), {"train": (x, y)}
    a = train_ensemble(arch, [0, 1], x, y, replace(opts, vectorize=True), eval_sets=sets)
    b = train_ensemble(arch, [0, 1], x, y, replace(opts, vectorize=False), eval_sets=sets)
    torch.testing.assert_close(a.flat(), b.flat(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a.history["train_acc"], b.history["train_acc"])


def test_members_start_from_their_seed():
    p = init_params(dnn_arch(3, 200), [5, 5, 6])
    w = next(iter(p.values()))
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])


def test_non_finite_loss_names_the_run_and_seed():
    x, y = sample_target("sincos", 16)
    y = y.clone()
    y[3] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"run 'broken', seed 7: .*epoch 0"):
        train_ensemble(dnn_arch(1, 50), [7], x, y, TrainOptions(epochs=3, lr=1e-3, name="broken"))


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(DeviceError, match="not there"):
        resolve_device("cuda:97")
    with pytest.raises(DeviceError):
        resolve_device("tpu")


def test_cache_tensors_round_trip_and_rebuild_the_ensemble():
    x, y = sample_target("sincos", 16)
    arch = dnn_arch(1, 30)
    ens = train_ensemble(arch, [1, 2], x, y, TrainOptions(epochs=2, lr=1e-2))
    tensors = ens.to_tensors()
    assert set(tensors) == (
        {f"param.{n}" for n in ens.params}
        | {f"hist.{n}" for n in ens.history}
        | {f"final.{n}" for n in ens.final}
    )
    for back in (
        Ensemble.from_tensors(arch, [1, 2], tensors, "mse"),
        ensemble_of("mse")(tensors, {"arch": arch, "seeds": [1, 2]}),
        ensemble_of("mse", lambda args: args["a"])(tensors, {"a": arch, "seeds": [1, 2]}),
    ):
        assert back.build is arch and back.seeds == [1, 2] and back.loss == "mse"
        for name in ("params", "history", "final"):
            got, ref = getattr(back, name), getattr(ens, name)
            assert got.keys() == ref.keys() and all(torch.equal(got[n], ref[n]) for n in ref)


def test_final_loss_is_the_loss_after_the_last_update_and_model_k_is_member_k():
    x, y = sample_target("sincos", 32)
    ens = train_ensemble(dnn_arch(2, 60), [0, 1], x, y, TrainOptions(epochs=3, lr=1e-2))
    for k in (0, 1):
        m = ens.model(k)
        torch.testing.assert_close(torch.cat([p.detach().flatten() for p in m.parameters()]), ens.flat()[k])
        torch.testing.assert_close(ens.final_loss[k], ((m(x) - y) ** 2).mean().detach())
    assert not torch.equal(ens.final_loss, ens.history["loss"][:, -1])  # before vs after the last step


def test_grad_norms_are_each_members_own():
    arch = dnn_arch(1, 20)
    params = {n: p.requires_grad_(True) for n, p in init_params(arch, [0, 1, 2]).items()}
    loss = sum(((p**2).flatten(1).sum(1) * torch.tensor([1.0, 2.0, 3.0])).sum() for p in params.values())
    loss.backward()
    expected = torch.stack(
        [
            torch.sqrt(sum(((2 * c * p[k].detach()) ** 2).sum() for p in params.values()))
            for k, c in enumerate((1.0, 2.0, 3.0))
        ]
    )
    torch.testing.assert_close(grad_norms(params), expected)


def test_devices_with_and_without_cuda(monkeypatch):
    assert resolve_device().type == resolve_device("auto").type
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match=r"unknown device 'tpu'; use auto, cpu, cuda"):
        resolve_device("tpu")
    with pytest.raises(DeviceError, match=r"device type 'meta' is not supported"):
        resolve_device("meta")
    for n, fine, missing in (
        (0, [], ["cuda", "cuda:0"]),
        (1, ["cuda", "cuda:0"], ["cuda:1"]),
        (2, ["cuda", "cuda:1"], ["cuda:2"]),
    ):
        monkeypatch.setattr(torch.cuda, "device_count", lambda n=n: n)
        monkeypatch.setattr(torch.cuda, "is_available", lambda n=n: n > 0)
        assert resolve_device("auto").type == ("cuda" if n else "cpu")
        assert [resolve_device(d) for d in fine] == [torch.device(d) for d in fine]
        for d in missing:
            with pytest.raises(DeviceError, match=rf"device '{d}' is not there \({n} CUDA"):
                resolve_device(d)


def test_evaluate_in_chunks_equals_one_pass():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(13, 4, generator=g), torch.randint(0, 3, (13,), generator=g)
    arch = Arch("dnn", (5,), n_in=4, n_out=3)
    params = init_params(arch, [0, 1])
    for k in (0, 1):
        out = Ensemble(arch, [0, 1], params).model(k)(x).detach()
        got = evaluate(arch, params, x, y, "ce", chunk=5)  # 5 + 5 + 3
        assert set(got) == {"loss", "acc"}
        torch.testing.assert_close(got["loss"][k], torch.nn.functional.cross_entropy(out, y))
        torch.testing.assert_close(got["acc"][k], (out.argmax(1) == y).float().mean())
    assert set(evaluate(arch, params, x, torch.randn(13, 3), "mse")) == {"loss"}


def test_final_metrics_reuse_only_an_eval_set_that_is_the_training_data():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g)
    x2, y2 = torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g)
    arch, opts = Arch("dnn", (5,), n_in=4, n_out=3), TrainOptions(epochs=3, lr=1e-2, loss="ce")
    for sets in ({"train": (x, y)}, {"a": (x, y2), "b": (x2, y)}, {"a": (x, y2), "train": (x, y)}):
        ens = train_ensemble(arch, [0, 1], x, y, opts, eval_sets=sets)
        ref = evaluate(arch, ens.params, x, y, "ce")
        assert set(ens.final) == {"loss", "acc"}
        for m in ("loss", "acc"):
            torch.testing.assert_close(ens.final[m], ref[m])


def test_members_one_after_another_from_given_parameters(monkeypatch, tmp_path):
    # the same ensemble as the vectorized one, from the parameters given, under one progress task
    monkeypatch.setenv("HW1_PROGRESS_DIR", str(tmp_path))
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(24, 3, generator=g), torch.randint(0, 3, (24,), generator=g)
    arch = Arch("dnn", (6,), n_in=3, n_out=3)
    start = {n: p[[0, 0]] for n, p in init_params(arch, [9]).items()}
    opts = TrainOptions(epochs=2, lr=1e-2, loss="ce", batch_size=8)
    a = train_ensemble(arch, [3, 4], x, y, replace(opts, vectorize=True), params=start)
    b = train_ensemble(arch, [3, 4], x, y, replace(opts, vectorize=False, name="one-by-one"), params=start)
    (state,) = progress.read_states(tmp_path)
    assert (state["name"], state["done"], state["total"], state["finished"]) == ("one-by-one", 4, 4, True)
    assert b.build is arch and b.seeds == [3, 4] and b.loss == "ce"
    torch.testing.assert_close(a.flat(), b.flat(), rtol=1e-4, atol=1e-5)
    assert a.history.keys() == b.history.keys() and a.final.keys() == b.final.keys()
    torch.testing.assert_close(a.final["loss"], b.final["loss"], rtol=1e-4, atol=1e-5)


def test_non_finite_loss_one_member_at_a_time_names_the_run():
    x, y = sample_target("sincos", 16)
    y = y.clone()
    y[3] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"run 'broken', seed 7"):
        opts = TrainOptions(epochs=2, lr=1e-3, name="broken", vectorize=False)
        train_ensemble(dnn_arch(1, 50), [7, 8], x, y, opts)


def test_batch_orders_are_the_recorded_ones():
    # recorded runs (figures/, the ledger) were trained with exactly these orders: a change of the
    # seeding changes every minibatch result, so it must be deliberate
    assert [b.tolist() for b in batch_order(0, 10, 4, 0)] == [[4, 1, 7, 5], [3, 9, 0, 8], [6, 2]]
    assert [b.tolist() for b in batch_order(2, 10, 4, 3)] == [[2, 8, 5, 7], [9, 6, 3, 4], [1, 0]]


def _reference_ce_run(arch, seed, x, y, epochs, lr, batch_size):
    """One member by hand: per-epoch mean of the batch losses and of the batch accuracies."""
    torch.manual_seed(seed)
    m = arch()
    opt = torch.optim.Adam(m.parameters(), lr=lr)
    losses, accs = [], []
    for epoch in range(epochs):
        batches = batch_order(seed, len(y), batch_size, epoch)
        lsum = asum = 0.0
        for idx in batches:
            out = m(x[idx])
            value = torch.nn.functional.cross_entropy(out, y[idx])
            asum += float((out.argmax(-1) == y[idx]).float().mean())
            opt.zero_grad()
            value.backward()
            opt.step()
            lsum += float(value.detach())
        losses.append(lsum / len(batches))
        accs.append(asum / len(batches))
    return torch.tensor(losses), torch.tensor(accs)


@pytest.mark.parametrize("vectorize", [True, False])
def test_history_of_a_classifier(vectorize, monkeypatch, tmp_path):
    # history: running loss and accuracy per epoch, eval sets every eval_every-th epoch and the
    # last, on_epoch's metrics every epoch; progress counts every epoch of every member
    monkeypatch.setenv("HW1_PROGRESS_DIR", str(tmp_path))
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(24, 3, generator=g), torch.randint(0, 3, (24,), generator=g)
    arch, seeds, epochs = Arch("dnn", (6,), n_in=3, n_out=3), [0, 1], 5
    first = next(iter(init_params(arch, [0])))
    seen = []

    def on_epoch(epoch, params):
        seen.append(epoch)
        return {"epoch": torch.full((params[first].shape[0],), float(epoch)), "w": params[first][:, 0, 0]}

    opts, sets = TrainOptions(epochs=epochs, lr=1e-2, loss="ce", batch_size=8), {"test": (x[:10], y[:10])}
    every_2nd = replace(opts, eval_every=2, vectorize=vectorize)
    ens = train_ensemble(arch, seeds, x, y, every_2nd, eval_sets=sets, on_epoch=on_epoch)
    assert (ens.build, ens.seeds, ens.loss) == (arch, seeds, "ce") and set(ens.final) == {"loss", "acc"}
    assert set(ens.history) == {"loss", "acc", "test_loss", "test_acc", "eval_epoch", "epoch", "w"}
    assert ens.history["eval_epoch"].tolist() == [[1.0, 3.0, 4.0]] * 2
    assert ens.history["epoch"].tolist() == [list(map(float, range(epochs)))] * 2
    torch.testing.assert_close(ens.history["w"][:, -1], ens.params[first][:, 0, 0])
    assert seen == list(range(epochs)) * (1 if vectorize else 2)
    for k, s in enumerate(seeds):
        loss, acc = _reference_ce_run(arch, s, x, y, epochs, 1e-2, 8)
        torch.testing.assert_close(ens.history["loss"][k], loss, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ens.history["acc"][k], acc, rtol=1e-4, atol=1e-5)
    (state,) = progress.read_states(tmp_path)
    assert (state["name"], state["done"], state["total"]) == (
        "run",
        epochs * (1 if vectorize else 2),
        epochs * (1 if vectorize else 2),
    )
    default = train_ensemble(arch, seeds, x, y, opts, eval_sets=sets)
    assert default.history["eval_epoch"].tolist() == [list(map(float, range(epochs)))] * 2
    assert progress.read_states(tmp_path)[0]["total"] == epochs  # vectorized unless asked otherwise


def _poison_after_first_epoch(epoch, params):
    if epoch == 0:
        with torch.no_grad():
            next(iter(params.values())).fill_(float("nan"))
    return {}


@pytest.mark.parametrize(
    "epochs, batch_size, sync_every", [(5, None, None), (60, None, 50), (5, 8, 1), (5, 8, 9)]
)
def test_a_non_finite_loss_names_its_first_epoch_whenever_the_host_reads_it(epochs, batch_size, sync_every):
    x, y = sample_target("sincos", 16)
    with pytest.raises(NonFiniteLossError, match=r"seed 7: the training loss became nan at epoch 1;"):
        opts = TrainOptions(epochs=epochs, lr=1e-3, batch_size=batch_size, sync_every=sync_every)
        train_ensemble(dnn_arch(1, 50), [7], x, y, opts, on_epoch=_poison_after_first_epoch)


def test_predict_gives_every_members_outputs():
    arch = Arch("dnn", (4,), n_in=2, n_out=3)
    params = init_params(arch, [0, 1, 2])
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(6))
    out = predict(arch, params, x)
    assert out.shape == (3, 5, 3)
    ens = Ensemble(arch, [0, 1, 2], params)
    for k in range(3):
        torch.testing.assert_close(out[k], ens.model(k)(x).detach())


def test_eval_every_third_epoch_and_the_last():
    x, y = sample_target("sincos", 16)
    opts = TrainOptions(epochs=7, lr=1e-3, eval_every=3)
    ens = train_ensemble(dnn_arch(1, 30), [0], x, y, opts, eval_sets={"t": (x, y)})
    assert ens.history["eval_epoch"].tolist() == [[2.0, 5.0, 6.0]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_and_evaluation_on_cuda_match_the_cpu():
    # every tensor of a run must follow `device`: on the CPU alone a forgotten .to(device) is invisible
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(24, 3, generator=g), torch.randint(0, 3, (24,), generator=g)
    arch = Arch("dnn", (6,), n_in=3, n_out=3)
    opts, sets = (
        TrainOptions(epochs=3, lr=1e-2, loss="ce", batch_size=8),
        {"train": (x, y), "half": (x[:12], y[:12])},
    )
    cpu = train_ensemble(arch, [0, 1], x, y, replace(opts, device="cpu"), eval_sets=sets)
    gpu = train_ensemble(arch, [0, 1], x, y, replace(opts, device="cuda"), eval_sets=sets)
    torch.testing.assert_close(gpu.flat(), cpu.flat(), rtol=1e-3, atol=1e-4)
    for name in cpu.history:
        torch.testing.assert_close(gpu.history[name], cpu.history[name], rtol=1e-3, atol=1e-4)
    on_gpu = {n: p.cuda() for n, p in cpu.params.items()}
    got = evaluate(arch, on_gpu, x, y, "ce")
    assert all(v.device.type == "cuda" for v in got.values())
    torch.testing.assert_close(got["loss"].cpu(), cpu.final["loss"], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ training to a target loss (stop_below)
def _mnist_small():
    from hw1.data import load_mnist
    from hw1.models import Arch

    x, y = load_mnist(True, limit=300)
    return Arch("dnn", (16,), 784, 10, "relu"), x.flatten(1), y


def test_a_member_stops_at_the_target_loss_and_keeps_those_parameters():
    arch, x, y = _mnist_small()
    opts, sets = TrainOptions(epochs=40, lr=3e-3, loss="ce", batch_size=50, eval_every=4), {"train": (x, y)}
    run = train_ensemble(arch, [0, 1, 2], x, y, replace(opts, stop_below=0.3), eval_sets=sets)
    stop = run.history["eval_epoch"][:, -1].long()
    assert (stop < 39).all() and (run.history["loss"][torch.arange(3), stop] <= 0.3).all()
    for k in range(3):  # the loss is nan after its stop, and the same run without the rule agrees
        assert torch.isnan(run.history["loss"][k, stop[k] + 1 :]).all()
        plain = train_ensemble(arch, [k], x, y, replace(opts, epochs=int(stop[k]) + 1), eval_sets=sets)
        for n, p in plain.params.items():
            torch.testing.assert_close(run.params[n][k : k + 1], p, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(
            run.history["train_loss"][k, -1], plain.history["train_loss"][0, -1], rtol=1e-4, atol=1e-6
        )


def test_a_stopped_members_result_does_not_depend_on_its_companions():
    arch, x, y = _mnist_small()
    opts = TrainOptions(epochs=40, lr=3e-3, loss="ce", batch_size=50, eval_every=4, stop_below=0.3)
    sets = {"train": (x, y)}
    group = train_ensemble(arch, [0, 1, 2], x, y, opts, eval_sets=sets)
    alone = train_ensemble(arch, [1], x, y, opts, eval_sets=sets)
    for key, v in alone.history.items():
        assert v.shape == group.history[key][1:2].shape, key
        torch.testing.assert_close(group.history[key][1:2], v, rtol=1e-4, atol=1e-6, equal_nan=True)


def test_stop_below_refuses_per_epoch_recordings():
    arch, x, y = _mnist_small()
    opts = TrainOptions(epochs=2, lr=1e-3, loss="ce", batch_size=50, stop_below=0.1)
    with pytest.raises(ValueError, match="stop_below"):
        train_ensemble(arch, [0], x, y, opts, on_epoch=lambda e, p: {})
