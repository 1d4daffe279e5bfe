"""Every `paper`-scale model and code path at its real size, on CPU, in a few steps.

The paper scale (hw1.config.PAPER) runs only on a GPU runner, for hours; a shape, dtype or memory
mistake in a path the ci scale never takes (90k-parameter CNNs, the 5M-parameter family, the
1000 x 1000 Hessian, vmapped convolutions, measurements on full-size MNIST batches) would show up
there, late. Here each producer and measurement runs with the real models on real data shapes
(MNIST images (N, 1, 28, 28) from hw1.data, real batch sizes) and K=2 seeds; `dataclasses.replace`
shrinks only epoch, step and point counts. The run cache is on, in a temporary folder, so that
storing and loading paper-sized runs is exercised too.
"""

import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmarks.common import PeakRSS  # peak growth of resident memory over a block
from hw1 import generalization as G, landscape
from hw1.config import PAPER
from hw1.data import load_mnist, sample_target
from hw1.experiments import fit_runs, mnist_arch, mnist_runs
from hw1.train import Ensemble, TrainOptions, evaluate, init_params, train_ensemble

SEEDS = [0, 1]  # K = 2
N_MNIST = 256  # two real minibatches of 128
# A paper claim case must fit in 16 GiB: the GPU memory of the smallest GitHub GPU runner (T4,
# 16 GB) and about half its host RAM (28 GB), leaving room for a second xdist worker.
MEMORY_BUDGET = 16 * 2**30


pytestmark = pytest.mark.usefixtures("run_cache")  # tests/conftest.py: an empty cache per test


def _finite(*tensors):
    for t in tensors:
        t = torch.as_tensor(t)
        assert torch.isfinite(t).all(), f"non-finite values in a tensor of shape {tuple(t.shape)}"


def _history_shapes(run: Ensemble, keys, columns: int):
    for k in keys:
        h = run.history[k]
        assert h.shape == (len(SEEDS), columns) and h.dtype == torch.float32, (k, h.shape, h.dtype)
        _finite(h)


def _params_shapes(run: Ensemble, arch):
    """The trained params are the architecture's, stacked over seeds, in float32."""
    ref = dict(arch().named_parameters())
    assert {n: p.shape for n, p in run.params.items()} == {n: (len(SEEDS), *p.shape) for n, p in ref.items()}
    assert all(p.dtype == torch.float32 for p in run.params.values())


# ------------------------------------------------------------------------------ the models


def test_every_paper_model_has_its_stated_size_and_output_shape():
    # budgets within 1% where the report states them; the size family spans up to ~5M parameters
    fit, mnist, opt, gen = PAPER.fit, PAPER.mnist, PAPER.opt, PAPER.gen
    from hw1.models import dnn_arch

    for depth in fit.depths:
        assert abs(dnn_arch(depth, fit.budget).n_params - fit.budget) <= 0.01 * fit.budget
        out = dnn_arch(depth, fit.budget)()(sample_target("sinc", fit.n_points)[0])
        assert out.shape == (fit.n_points, 1)
    x = load_mnist(True, limit=N_MNIST)[0]
    for kind, depths, budget in (
        ("cnn", mnist.cnn_depths, mnist.cnn_budget),
        ("dnn", mnist.dnn_depths, mnist.dnn_budget),
    ):
        for depth in depths:
            arch = mnist_arch(mnist, kind, depth)
            assert abs(arch.n_params - budget) <= 0.01 * budget, (kind, depth, arch.n_params)
            assert arch()(x if kind == "cnn" else x.flatten(1)).shape == (N_MNIST, 10)
    assert abs(landscape.ratio_arch(opt).n_params - opt.ratio_budget) <= 0.01 * opt.ratio_budget
    sizes = [G.size_arch(gen, w).n_params for w in gen.pg_widths]
    assert len(sizes) >= 10 and sizes == sorted(sizes) and 4.5e6 < sizes[-1] < 5.5e6, sizes
    for arch in (G.random_label_arch(gen), G.size_arch(gen, gen.pg_widths[-1]), G.batch_arch(gen, "mnist")):
        assert arch()(x).shape == (N_MNIST, 10)
    assert G.random_label_arch(gen).channels == (32,) and G.random_label_arch(gen).widths == (512,)


# ------------------------------------------------------------------------------ HW1-1


def test_fit_runs_at_every_depth_and_budget():
    cfg = replace(PAPER.fit, epochs=2)
    budgets = sorted(set(cfg.crossover_budgets) | {cfg.budget})
    for target in cfg.targets:
        for budget in budgets:
            for depth in cfg.depths:
                run = fit_runs(cfg, target, depth, budget, SEEDS)
                _history_shapes(run, ("loss", "grad_norm"), cfg.epochs)
                P = run.build.n_params
                assert run.history["snapshot"].shape == (len(SEEDS), 2, P)  # epochs 0 and the last
                _finite(run.flat())


@pytest.mark.parametrize("kind", ["cnn", "dnn"])
def test_mnist_runs_at_every_depth(kind):
    cfg = replace(PAPER.mnist, train_size=N_MNIST, test_size=N_MNIST, epochs=1)
    for depth in cfg.cnn_depths if kind == "cnn" else cfg.dnn_depths:
        run = mnist_runs(cfg, kind, depth, SEEDS)
        _params_shapes(run, mnist_arch(cfg, kind, depth))
        _history_shapes(run, ("loss", "acc", "train_loss", "train_acc", "test_loss", "test_acc"), 1)


def _conv_nets():
    gen = PAPER.gen
    return [
        pytest.param(mnist_arch(PAPER.mnist, "cnn", d), id=f"cnn-depth-{d}") for d in PAPER.mnist.cnn_depths
    ] + [
        pytest.param(G.random_label_arch(gen), id="random-labels"),
        pytest.param(G.size_arch(gen, gen.pg_widths[-1]), id="size-family-widest"),
        pytest.param(G.batch_arch(gen, "mnist"), id="batch-size-net"),
    ]


@pytest.mark.parametrize("arch", _conv_nets())
def test_vmapped_conv_path_of_a_gpu_trains_what_the_cpu_path_trains(arch):
    # On CUDA conv nets train vmapped (grouped convolutions); on CPU one seed after another. A
    # real minibatch of 128 through both paths must give the same nets: the same loss before and
    # after the step. (Not the same weights to float precision: Adam's first step is about
    # lr x sign(gradient), so a weight whose gradient rounds to the other sign moves 2 lr apart.)
    x, y = load_mnist(True, limit=128)
    start = init_params(arch, SEEDS)
    opts = TrainOptions(epochs=1, lr=1e-3, loss="ce", batch_size=128)
    runs = [
        train_ensemble(arch, SEEDS, x, y, replace(opts, vectorize=v), params=start) for v in (True, False)
    ]
    torch.testing.assert_close(runs[0].history["loss"], runs[1].history["loss"], rtol=1e-5, atol=1e-6)
    after = [evaluate(arch, r.params, x, y, "ce")["loss"] for r in runs]
    torch.testing.assert_close(after[0], after[1], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(after[0], runs[0].history["loss"][:, 0])  # it did train


# ------------------------------------------------------------------------------ HW1-2


def test_trajectories_and_gradient_norm_on_the_fit_runs():
    # the paper records every 50 of 5000 epochs: 101 snapshots; here every 2 of 200, as many
    cfg = replace(PAPER.fit, epochs=200, snapshot_every=2)
    run = fit_runs(cfg, "sincos", max(cfg.depths), cfg.budget, SEEDS)
    snap = run.history["snapshot"]
    T = PAPER.fit.epochs // PAPER.fit.snapshot_every + 1
    assert snap.shape == (len(SEEDS), T, run.build.n_params)
    shapes = landscape.param_shapes(run.params)
    dist = landscape.endpoint_distances(snap[:, 0], snap[:, -1], shapes)
    assert dist["moved"].shape == (2,) and dist["apart"].shape == (2, 2) and np.isfinite(dist["apart"][0, 1])
    layer = landscape.layer_slice(shapes, landscape.middle_layer(shapes))
    for part in (snap[..., layer], snap):
        for method in ("pca", "tsne"):
            z = landscape.project_trajectories(part.numpy(), method, seed=0)
            assert z.shape == (len(SEEDS), T, 2) and np.isfinite(z).all()
    opt = PAPER.opt
    shallow = fit_runs(replace(cfg, snapshot_every=PAPER.fit.snapshot_every), "sincos", 1, cfg.budget, SEEDS)
    g, loss = shallow.history["grad_norm"].numpy(), shallow.history["loss"].numpy()
    assert landscape.quiet_loss_change(g, loss, quiet=opt.quiet, window=opt.window).shape == (2,)
    assert landscape.quiet_mask(g, quiet=opt.quiet, window=opt.window).shape == g.shape


class PaperMemoryError(MemoryError):
    """A paper-scale step would need more memory than MEMORY_BUDGET."""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="measures memory through /proc")
def test_minimal_ratio_and_error_surface_at_the_real_1000_parameter_hessian():
    cfg = replace(PAPER.opt, mse_epochs=2, gn_epochs=2)
    with PeakRSS() as mem:
        out = landscape.ratio_runs(cfg, SEEDS[:1])  # one member: the Hessian is (P, P) per member
    P = landscape.ratio_arch(cfg).n_params
    assert out["eigvals"].shape == (1, P) and out["eigvals"].dtype == torch.float64
    assert out["gn_grad_norm"].shape == (1, cfg.gn_epochs + 1) and out["loss"].shape == (1,)
    _finite(out["eigvals"], out["gn_grad_norm"], out["loss"])
    r = landscape.minimal_ratio(out["eigvals"].numpy(), cfg.eig_rel_tol)
    assert r["ratio_all"].shape == (1,) and 0 <= r["ratio_all"][0] <= 1
    # the gradient-norm phase with K=2 at the real size; then the error surface around theta*
    x, y = sample_target(cfg.ratio_target, cfg.n_points)
    arch = landscape.ratio_arch(cfg)
    params, hist = landscape.minimize_grad_norm(
        Ensemble(arch, SEEDS, init_params(arch, SEEDS), {}, "mse"), x, y, epochs=2, lr=cfg.gn_lr
    )
    assert hist["grad_norm"].shape == (2, 3) and params["0.weight"].shape == (2, *arch()[0].weight.shape)
    ens = Ensemble(arch, SEEDS, params, {}, "mse")
    radii = np.asarray(cfg.radii) * float(ens.flat().norm(dim=1).median())
    probe = landscape.sphere_losses(ens, x, y, radii, n_dirs=4, seed=0)
    assert probe.shape == (2, len(cfg.radii), 4) and np.isfinite(probe).all()
    coords, surf = landscape.surface_2d(
        arch, ens.flat()[0], x, y, landscape.param_shapes(ens.params), cfg.span, 5, seed=0
    )
    assert coords.shape == (5,) and surf.shape == (5, 5) and np.isfinite(surf).all()
    # memory: the Hessian vmaps over `chunk` members at once, so the claim needs chunk x one member
    at_once = min(landscape.hessian_chunk(P, cfg.n_points), cfg.ratio_runs)
    need = mem.growth * at_once
    if need > MEMORY_BUDGET:
        raise PaperMemoryError(
            f"minimal-ratio: one member's Hessian took {mem.growth / 2**30:.1f} GiB, "
            f"{at_once} at once need ~{need / 2**30:.0f} GiB > "
            f"{MEMORY_BUDGET / 2**30:.0f} GiB"
        )


# ------------------------------------------------------------------------------ HW1-3


def test_random_label_runs():
    cfg = replace(PAPER.gen, rl_train_size=N_MNIST, rl_test_size=N_MNIST, rl_epochs=1)
    run = G.random_label_runs(cfg, SEEDS)
    _params_shapes(run, G.random_label_arch(cfg))
    _history_shapes(run, ("train_loss", "train_acc", "test_loss", "test_acc"), 1)
    xt, yt = load_mnist(False, limit=N_MNIST)
    pred = G.predict_classes(run, xt)
    assert pred.shape == (2, N_MNIST) and 0 <= G.chance_accuracy(pred[0], yt) <= 1


def test_size_family_at_every_width():
    cfg = replace(PAPER.gen, pg_train_size=N_MNIST, pg_test_size=N_MNIST, pg_epochs=1)
    for w in cfg.pg_widths:
        run = G.size_runs(cfg, w, SEEDS)
        _params_shapes(run, G.size_arch(cfg, w))
        _history_shapes(run, ("train_loss", "train_acc", "test_loss", "test_acc"), 1)


def test_batch_size_runs_and_the_flatness_measurements_on_mnist():
    # 1000 training images: every batch size (10..1000) takes real minibatches. Sensitivity and
    # sharpness on 100 points each, with tiny iteration counts (the memory on their full 10k
    # points is measured by `python -m benchmarks --only memory`).
    cfg = replace(
        PAPER.gen,
        bs_train_size=1000,
        bs_test_size=1000,
        bs_epochs=1,
        bs_min_steps=1,
        sens_points=100,
        sharp_points=100,
        sharp_n=2,
        keskar_iters=1,
        n_alphas=3,
    )
    m = G.batch_measurements(cfg, "mnist", SEEDS)
    B = len(cfg.batch_sizes)
    for k in (
        "train_loss",
        "test_loss",
        "train_acc",
        "test_acc",
        "loss_grad_max",
        "loss_grad_mean",
        "softmax_jac",
        "gaussian",
        "keskar",
    ):
        assert m[k].shape == (2, B) and np.isfinite(m[k]).all(), k
    assert list(m["batch"]) == list(cfg.batch_sizes)
    # interpolation between the batch-50 and batch-1000 minima (their runs come from the cache)
    r1, r2 = (G.batch_runs(cfg, "mnist", b, SEEDS) for b in cfg.interp_batches)
    (x, y), (xt, yt) = G.task_data(cfg, "mnist")
    c = G.interpolate(r1, r2, np.linspace(-1, 2, cfg.n_alphas), {"train": (x, y), "test": (xt, yt)})
    for k in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert c[k].shape == (2, cfg.n_alphas) and np.isfinite(c[k]).all(), k


def test_batch_size_runs_and_the_flatness_measurements_on_the_fit_task():
    cfg = replace(PAPER.gen, fit_epochs=1, fit_min_steps=1, sharp_n=2, keskar_iters=1)
    m = G.batch_measurements(cfg, "fit", SEEDS)  # real size: 1000 points, the 3-layer 1000-param DNN
    B = len(cfg.batch_sizes)
    for k in ("train_loss", "test_loss", "loss_grad_max", "loss_grad_mean", "gaussian", "keskar"):
        assert m[k].shape == (2, B) and np.isfinite(m[k]).all(), k
    assert "softmax_jac" not in m and "train_acc" not in m
