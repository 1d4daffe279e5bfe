"""Unit tests of the HW1-3 measurements (hw1.generalization): fast, no training beyond a few steps."""

import numpy as np
import pytest
import torch
from torch import nn

from hw1 import generalization as G
from hw1.models import dnn_arch
from hw1.train import Ensemble, init_params


def test_permuted_labels_keep_histogram_and_break_the_tie():
    y = torch.randint(0, 10, (5000,), generator=torch.Generator().manual_seed(0))
    yp = G.permute_labels(y, seed=3)
    assert torch.equal(torch.bincount(y, minlength=10), torch.bincount(yp, minlength=10))
    agree = float((yp == y).float().mean())
    chance = G.chance_accuracy(yp, y)  # sum_k p_k^2 here, ~0.1
    assert abs(agree - chance) < 4 * np.sqrt(chance * (1 - chance) / len(y))
    assert torch.equal(yp, G.permute_labels(y, seed=3))  # seeded
    assert not torch.equal(yp, G.permute_labels(y, seed=4))


def test_chance_accuracy_of_a_constant_predictor_is_its_class_frequency():
    y = torch.tensor([0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    assert G.chance_accuracy(torch.zeros(10, dtype=torch.long), y) == pytest.approx(0.3)
    assert G.chance_accuracy(torch.full((10,), 9), y) == 0.0


def _ensemble(arch, seeds):
    return Ensemble(arch, seeds, init_params(arch, seeds), loss="ce")


def test_interpolation_returns_the_endpoints_exactly():
    arch = G.ConvDenseArch((), (8,))
    r1, r2 = _ensemble(arch, [0, 1]), _ensemble(arch, [2, 3])
    for a, ref in ((0.0, r1), (1.0, r2)):
        got = G.interpolation_params(r1, r2, a)
        assert all(torch.equal(got[n], ref.params[n]) for n in got)
    x, y = torch.randn(20, 1, 28, 28), torch.randint(0, 10, (20,))
    curve = G.interpolate(r1, r2, [-1.0, 0.0, 0.5, 1.0, 2.0], {"train": (x, y)})
    from hw1.train import evaluate

    assert np.array_equal(curve["train_loss"][:, 1], evaluate(arch, r1.params, x, y, "ce")["loss"].numpy())
    assert np.array_equal(curve["train_loss"][:, 3], evaluate(arch, r2.params, x, y, "ce")["loss"].numpy())
    assert curve["train_acc"].shape == (2, 5)


def test_sensitivity_of_a_linear_model_matches_its_closed_form():
    torch.manual_seed(0)
    lin = nn.Linear(3, 1)
    x, y = torch.randn(7, 3), torch.randn(7, 1)
    got = G.sensitivity(lin, x, y, "mse")
    W, b = lin.weight.detach(), lin.bias.detach()
    g = (2 * ((x @ W.T + b) - y) * W).norm(dim=1)  # d (w.x + b - y)^2 / dx = 2 r w
    assert got["loss_grad_max"] == pytest.approx(float(g.max()), rel=1e-5)
    assert got["loss_grad_mean"] == pytest.approx(float(g.mean()), rel=1e-5)
    assert "softmax_jac" not in got


def test_softmax_jacobian_of_a_linear_classifier_matches_its_closed_form():
    torch.manual_seed(1)
    lin = nn.Linear(4, 3)
    x, y = torch.randn(5, 4), torch.randint(0, 3, (5,))
    got = G.sensitivity(lin, x, y, "ce")
    W = lin.weight.detach()
    s = (x @ W.T + lin.bias.detach()).softmax(-1)
    J = (torch.diag_embed(s) - s[:, :, None] * s[:, None, :]) @ W  # (N, 3, 4)
    assert got["softmax_jac"] == pytest.approx(float(J.flatten(1).norm(dim=1).mean()), rel=1e-5)
    g = ((s - nn.functional.one_hot(y, 3)) @ W).norm(dim=1)  # d CE / dx = (s - e_y) W
    assert got["loss_grad_max"] == pytest.approx(float(g.max()), rel=1e-5)


def test_gaussian_sharpness_is_zero_without_noise():
    arch = G.ConvDenseArch((), (8,))
    m = _ensemble(arch, [0]).model(0)
    x, y = torch.randn(30, 1, 28, 28), torch.randint(0, 10, (30,))
    assert G.gaussian_sharpness(m, x, y, "ce", sigma=0.0, n=5, seed=0) == 0.0
    assert G.gaussian_sharpness(m, x, y, "ce", sigma=0.1, n=5, seed=0) > 0.0


def test_box_maximiser_never_leaves_the_box_and_climbs():
    x0 = np.array([0.0, 2.0, -3.0, 0.5])
    eps = 1e-2

    def f(v):  # unbounded above: the optimiser would run off without the box
        return float((v**2).sum() + 5 * v.sum()), 2 * v + 5

    y, top, base = G.box_maximise(f, x0, eps, iters=10)
    assert np.all(np.abs(y) <= eps * (np.abs(x0) + 1) + 1e-15)
    assert top > base
    # f is separable and monotone in each coordinate over the box: the maximum is the corner on
    # the side of each coordinate's gradient at x0 (2 x0 + 5: +, +, -, +)
    assert np.allclose(y, np.sign(2 * x0 + 5) * eps * (np.abs(x0) + 1))


def test_keskar_sharpness_is_nonnegative_and_grows_with_the_box():
    arch = G.ConvDenseArch((), (8,))
    m = _ensemble(arch, [0]).model(0)
    x, y = torch.randn(30, 1, 28, 28), torch.randint(0, 10, (30,))
    small = G.keskar_sharpness(m, x, y, "ce", eps=1e-4, iters=5)
    big = G.keskar_sharpness(m, x, y, "ce", eps=1e-2, iters=5)
    assert 0 <= small < big


def test_unknown_task_is_refused():
    from hw1.config import SMOKE

    with pytest.raises(ValueError, match="unknown task"):
        G.task_data(SMOKE.gen, "cifar")


def test_eval_every_makes_about_evals_evaluations_and_never_skips_short_runs():
    assert G.eval_every(20) == 1 and G.eval_every(G.EVALS) == 1
    assert G.eval_every(2000) == 2000 // G.EVALS
    for epochs in (1, 7, 49, 50, 51, 99, 100, 1000, 5000):
        k = G.eval_every(epochs)
        assert k >= 1 and -(-epochs // k) <= 2 * G.EVALS


def test_batch_runs_evaluate_less_often_without_changing_the_training(run_cache):
    """The cadence thins the curves; the parameters and the last evaluation (after the last epoch)
    are those of a run evaluated after every epoch."""
    from hw1.config import SMOKE, replace
    from hw1.train import TrainOptions, train_ensemble

    cfg = replace(SMOKE.gen, fit_epochs=120, fit_min_steps=1, fit_points=40)  # batch 40: 1 step an epoch
    run = G.batch_runs(cfg, "fit", 40, [0, 1])
    (x, y), (xt, yt) = G.task_data(cfg, "fit")
    opts = TrainOptions(epochs=120, lr=cfg.lr, batch_size=40, eval_every=1)
    every = train_ensemble(
        G.batch_arch(cfg, "fit"), [0, 1], x, y, opts, eval_sets={"train": (x, y), "test": (xt, yt)}
    )
    assert run.history["test_loss"].shape[1] == 120 // G.eval_every(120) < 120
    assert run.history["eval_epoch"][0, -1] == 119
    for name in run.params:
        assert torch.equal(run.params[name], every.params[name])
    assert torch.equal(run.history["test_loss"][:, -1], every.history["test_loss"][:, -1])


def test_batch_lr_is_fixed_by_default_and_scales_around_the_reference_batch():
    from hw1.config import CI, replace
    from hw1.overrides import OverrideError, apply_overrides

    assert all(G.batch_lr(CI.gen, b) == CI.gen.lr for b in CI.gen.batch_sizes)  # the report's
    sq = replace(CI.gen, bs_lr_scaling="sqrt", bs_lr_ref=100)
    assert G.batch_lr(sq, 100) == CI.gen.lr
    assert G.batch_lr(sq, 400) == pytest.approx(2 * CI.gen.lr) and G.batch_lr(sq, 25) == pytest.approx(
        CI.gen.lr / 2
    )
    lin = replace(CI.gen, bs_lr_scaling="linear", bs_lr_ref=50)
    assert G.batch_lr(lin, 1000) == pytest.approx(20 * CI.gen.lr)
    with pytest.raises(ValueError, match="bs_lr_scaling"):
        G.batch_lr(replace(CI.gen, bs_lr_scaling="cubic"), 10)
    with pytest.raises(OverrideError, match="unknown bs_lr_scaling"):
        apply_overrides(CI, ["gen.bs_lr_scaling=cubic"])
    with pytest.raises(OverrideError, match="unknown optimizer; use one of adam, sgd"):
        apply_overrides(CI, ["fit.optimizer=rmsprop"])  # the same check for every field of named values


def test_a_scaled_learning_rate_trains_each_batch_size_at_its_own_rate(run_cache):
    """gen.bs_lr_scaling reaches the training (the run at batch b is the one trained at
    batch_lr(b)) and keys the runs apart from the fixed rate's."""
    from hw1.config import SMOKE, replace
    from hw1.train import TrainOptions, train_ensemble

    fixed = replace(SMOKE.gen, fit_epochs=3, fit_min_steps=1, fit_points=40)
    scaled = replace(fixed, bs_lr_scaling="sqrt", bs_lr_ref=10)
    assert G.batch_runs.keys(fixed, "fit", 40, [0]) != G.batch_runs.keys(scaled, "fit", 40, [0])
    run = G.batch_runs(scaled, "fit", 40, [0])
    (x, y), _ = G.task_data(scaled, "fit")
    opts = TrainOptions(epochs=3, lr=2 * fixed.lr, batch_size=40)
    at_rate = train_ensemble(G.batch_arch(scaled, "fit"), [0], x, y, opts)
    for name in run.params:
        assert torch.equal(run.params[name], at_rate.params[name])


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_the_batched_sensitivity_is_the_member_by_member_one(loss):
    # what a GPU computes all at once (members x points, vmapped), here on CPU: the same numbers
    # to float32 rounding as sensitivity() member by member on CPU copies
    g = torch.Generator().manual_seed(4)
    if loss == "ce":
        arch = G.ConvDenseArch((3,), (8,))
        x, y = torch.randn(37, 1, 28, 28, generator=g), torch.randint(0, 10, (37,), generator=g)
    else:
        arch = dnn_arch(2, 60)
        x = torch.linspace(-1, 1, 37).unsqueeze(1)
        y = torch.sin(3 * x)
    run = Ensemble(arch, [0, 1, 2], init_params(arch, [0, 1, 2]), loss=loss)
    one = G.ensemble_sensitivity(run, x, y)
    every = G.batched_sensitivity(run, x, y, chunk=10)
    names = {"loss_grad_max", "loss_grad_mean"} | ({"softmax_jac"} if loss == "ce" else set())
    assert one.keys() == every.keys() == names
    for name in one:
        np.testing.assert_allclose(every[name], one[name], rtol=2e-5, err_msg=name)


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_the_batched_gaussian_sharpness_is_the_member_by_member_one(loss):
    # every member's own draws (numpy, seeded by its seed), all members x draws in one vmapped
    # float64 call: the report's sharpness to 1e-10 of the member-by-member value
    g = torch.Generator().manual_seed(8)
    if loss == "ce":
        arch = G.ConvDenseArch((), (6,))
        x, y = torch.randn(40, 1, 28, 28, generator=g), torch.randint(0, 10, (40,), generator=g)
    else:
        arch = dnn_arch(2, 60)
        x = torch.linspace(-1, 1, 40).unsqueeze(1)
        y = torch.sin(3 * x)
    run = Ensemble(arch, [3, 5], init_params(arch, [3, 5]), loss=loss)
    one = [
        G.gaussian_sharpness(run.model(k), x, y, loss, sigma=0.05, n=7, seed=s)
        for k, s in enumerate(run.seeds)
    ]
    every = G.batched_gaussian_sharpness(run, x, y, sigma=0.05, n=7, chunk=5)
    np.testing.assert_allclose(every, one, rtol=1e-10)
