"""Unit and property tests of hw1.landscape: Hessians, minimal ratios, sphere sampling, projections,
hidden-unit alignment and the gradient-norm phase."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from hw1 import landscape
from hw1.ensemble import Ensemble, flat_params, init_params
from hw1.models import Arch
from hw1.train import predict

TINY = Arch("dnn", (3, 2), activation="tanh")  # 1->3->2->1: 17 parameters, smooth


def _tiny(seeds=(0,)):
    params = {n: p.double() for n, p in init_params(TINY, list(seeds)).items()}
    x = torch.linspace(-1, 1, 9, dtype=torch.float64)[:, None]
    return params, x, torch.sin(3 * x)


@given(st.integers(1, 6), st.integers(0, 10_000))
@settings(max_examples=20, deadline=None)
def test_hessian_of_quadratic_is_its_matrix(n, seed):
    # f(θ) = ½ θᵀAθ + bᵀθ has Hessian A everywhere
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    a, b = m + m.T, torch.randn(n, generator=g, dtype=torch.float64)
    theta = torch.randn(n, generator=g, dtype=torch.float64)
    h = landscape.hessian_matrix(lambda t: 0.5 * t @ a @ t + b @ t, theta)
    torch.testing.assert_close(h, a)


def test_hessian_of_tiny_network_matches_finite_differences():
    # central differences of the exact gradient, column by column
    params, x, y = _tiny()
    shapes = landscape.param_shapes(params)
    f = landscape.flat_loss_fn(TINY, x, y, shapes)
    theta = flat_params(params)[0]
    h = landscape.hessian_matrix(f, theta)
    grad = torch.func.grad(f)
    eps, cols = 1e-5, []
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[i] = eps
        cols.append((grad(theta + e) - grad(theta - e)) / (2 * eps))
    torch.testing.assert_close(h, torch.stack(cols, 1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h, h.T)


def test_hessian_eigenvalues_match_per_member_hessians():
    params, x, y = _tiny(seeds=(0, 1))
    ens = Ensemble(TINY, [0, 1], params, {}, "mse")
    ev = landscape.hessian_eigenvalues(ens, x, y)
    f = landscape.flat_loss_fn(TINY, x, y, landscape.param_shapes(params))
    for k, theta in enumerate(ens.flat()):
        torch.testing.assert_close(ev[k], torch.linalg.eigvalsh(landscape.hessian_matrix(f, theta)))


@given(st.integers(0, 8), st.integers(0, 8), st.integers(0, 8), st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_minimal_ratio_counts_a_known_spectrum(n_pos, n_neg, n_zero, seed):
    if n_pos + n_neg == 0:
        n_pos = 1
    rng = np.random.default_rng(seed)
    ev = np.concatenate(
        [rng.uniform(1, 10, n_pos), -rng.uniform(1, 10, n_neg), rng.uniform(-1e-9, 1e-9, n_zero)]
    )
    ev = rng.permutation(ev)
    P = ev.size
    r = landscape.minimal_ratio(ev, rel_tol=1e-6)
    assert r["ratio"][0] == pytest.approx(n_pos / (n_pos + n_neg))
    assert r["negative"][0] == pytest.approx(n_neg / P)
    assert r["near_zero"][0] == pytest.approx(n_zero / P)
    assert r["ratio_all"][0] == pytest.approx((ev > 0).sum() / P)


def test_minimal_ratio_tolerance_decides_the_near_zero_eigenvalues():
    ev = np.array([[10.0, 1.0, 1e-7, -1e-7, -1e-3]])
    assert landscape.minimal_ratio(ev, rel_tol=0)["ratio"][0] == pytest.approx(3 / 5)
    assert landscape.minimal_ratio(ev, rel_tol=1e-5)["ratio"][0] == pytest.approx(2 / 3)
    assert landscape.minimal_ratio(ev, rel_tol=1e-3)["ratio"][0] == 1.0
    assert landscape.minimal_ratio(ev, rel_tol=1e-3)["near_zero"][0] == pytest.approx(3 / 5)
    # default: P x float32 eps relative to the largest |eigenvalue|
    assert landscape.minimal_ratio(ev)["tol"][0] == pytest.approx(10 * 5 * np.finfo(np.float32).eps)
    with pytest.raises(ValueError, match="rel_tol"):
        landscape.minimal_ratio(ev, rel_tol=-1)


def test_minimal_ratio_of_an_all_zero_spectrum_is_nan():
    r = landscape.minimal_ratio(np.zeros((1, 4)), rel_tol=1e-6)
    assert np.isnan(r["ratio"][0]) and r["near_zero"][0] == 1.0


def _sphere_loop(ens, x, y, radii, n_dirs, seed):
    """The member-by-member, radius-by-radius loop sphere_losses replaced."""
    shapes, theta = landscape.param_shapes(ens.params), ens.flat()
    out = np.zeros((len(theta), len(radii), n_dirs))
    for k, t in enumerate(theta):
        for i, r in enumerate(radii):
            pts = landscape.sample_sphere(t, float(r), n_dirs, seed=seed * 1_000_003 + k * 1009 + i)
            out[k, i] = landscape.losses_at(ens.build, pts, x, y, shapes, ens.loss).numpy()
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sphere_losses_batched_over_spheres_match_the_loop(dtype):
    """Default (CPU): one sphere per call, the loop's numbers bit for bit. Several spheres per call
    (what CUDA does): the same draws, the same losses to float rounding (rtol 1e-10 in float64)."""
    params, x, y = _tiny(seeds=(0, 1, 2))
    params, x, y = ({n: p.to(dtype) for n, p in params.items()}, x.to(dtype), y.to(dtype))
    ens = Ensemble(TINY, [0, 1, 2], params, {}, "mse")
    radii = np.array([0.0, 0.1, 0.5, 2.0])
    loop = _sphere_loop(ens, x, y, radii, 6, seed=3)
    got = landscape.sphere_losses(ens, x, y, radii, 6, seed=3)
    assert got.dtype == loop.dtype == np.float64 and np.array_equal(got, loop)  # means taken in float64
    for per_call in (2, 5, 12):  # 12 = every sphere at once; 5 leaves a short last call
        got = landscape.sphere_losses(ens, x, y, radii, 6, seed=3, spheres_per_call=per_call)
        np.testing.assert_allclose(got, loop, rtol=1e-10 if dtype == torch.float64 else 1e-5)


@given(st.integers(1, 50), st.floats(0.0, 10.0), st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_sphere_sampler_samples_at_distance_r(dim, radius, seed):
    center = torch.randn(dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    pts = landscape.sample_sphere(center, radius, 16, seed)
    assert pts.shape == (16, dim)
    torch.testing.assert_close((pts - center).norm(dim=1), torch.full((16,), radius, dtype=torch.float64))


def test_sphere_sampler_is_uniform_in_direction():
    # the mean direction of many draws is ~0 and each coordinate has variance 1/P
    d = landscape.sample_sphere(torch.zeros(5, dtype=torch.float64), 1.0, 20_000, seed=0)
    assert d.mean(0).abs().max() < 0.02
    torch.testing.assert_close(d.var(0), torch.full((5,), 0.2, dtype=torch.float64), atol=0.01, rtol=0)


@given(st.integers(1, 4), st.integers(2, 8), st.sampled_from(["pca", "tsne"]))
@settings(max_examples=6, deadline=None)
def test_projection_gives_one_point_per_snapshot_per_run(K, T, method):
    snaps = np.random.default_rng(K * 10 + T).normal(size=(K, T, 12))
    z = landscape.project_trajectories(snaps, method, seed=0)
    assert z.shape == (K, T, 2) and np.all(np.isfinite(z))


def test_projection_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="projection"):
        landscape.project_trajectories(np.zeros((1, 3, 2)), "umap")


def test_alignment_undoes_a_hidden_unit_permutation_and_keeps_the_function():
    params, x, _ = _tiny()
    shapes = landscape.param_shapes(params)
    theta = flat_params(params)[0]
    p = {n: t[0].clone() for n, t in params.items()}
    perm = torch.tensor([2, 0, 1])
    p["0.weight"], p["0.bias"], p["2.weight"] = p["0.weight"][perm], p["0.bias"][perm], p["2.weight"][:, perm]
    shuffled = torch.cat([p[n].flatten() for n in shapes])
    aligned = landscape.align_hidden_units(theta, shuffled, shapes)
    torch.testing.assert_close(aligned, theta)
    out = [predict(TINY, landscape.unflatten(t[None], shapes), x) for t in (theta, shuffled)]
    torch.testing.assert_close(out[0], out[1])


def test_endpoint_distances_shapes_and_travel():
    params, _, _ = _tiny(seeds=(0, 1, 2))
    shapes = landscape.param_shapes(params)
    start = flat_params(params)
    final = start + 0.5 * torch.ones_like(start) / start.shape[1] ** 0.5
    d = landscape.endpoint_distances(start, final, shapes)
    np.testing.assert_allclose(d["moved"], 0.5, rtol=1e-6)
    assert d["apart"].shape == (3, 3) and np.all(np.isinf(np.diag(d["apart"])))


def test_layer_slice_and_unflatten_round_trip():
    params, _, _ = _tiny()
    shapes = landscape.param_shapes(params)
    theta = flat_params(params)[0]
    back = landscape.unflatten(theta, shapes)
    for n in shapes:
        torch.testing.assert_close(back[n], params[n][0])
    sl = landscape.layer_slice(shapes, "2")
    torch.testing.assert_close(theta[sl], torch.cat([params["2.weight"][0].flatten(), params["2.bias"][0]]))
    with pytest.raises(ValueError, match="no layer"):
        landscape.layer_slice(shapes, "9")


def test_quiet_loss_change_on_a_plateau_that_still_falls():
    epochs = np.arange(200)
    g = np.where(epochs < 50, 1.0, 1e-3)[None]  # near zero after epoch 50
    loss = np.exp(-epochs / 100)[None]  # falls the whole time
    change = landscape.quiet_loss_change(g, loss, quiet=0.01, window=10)
    mask = landscape.quiet_mask(g, quiet=0.01, window=10)
    assert mask[0, :59].sum() == 0 and mask[0, 59:].all()  # the 10-epoch mean clears at epoch 59
    assert change[0] == pytest.approx(np.log10(loss[0, -1] / loss[0, 58]))
    flat = landscape.quiet_loss_change(np.ones((1, 200)), loss, quiet=0.01, window=10)
    assert np.isnan(flat[0])  # never near zero: no evidence


def test_minimize_grad_norm_shrinks_the_gradient():
    params, x, y = _tiny(seeds=(0, 1))
    ens = Ensemble(TINY, [0, 1], {n: p.float() for n, p in params.items()}, {}, "mse")
    _, hist = landscape.minimize_grad_norm(ens, x.float(), y.float(), epochs=200, lr=1e-2)
    assert hist["grad_norm"].shape == (2, 201)
    assert torch.all(hist["grad_norm"][:, -1] < 0.5 * hist["grad_norm"][:, 0])


def test_filter_normalized_direction_matches_row_norms():
    params, _, _ = _tiny()
    shapes = landscape.param_shapes(params)
    theta = flat_params(params)[0]
    d = landscape.unflatten(landscape.filter_normalized_direction(theta, shapes, seed=3), shapes)
    t = landscape.unflatten(theta, shapes)
    for n in shapes:
        if n.endswith("weight"):
            torch.testing.assert_close(d[n].norm(dim=1), t[n].norm(dim=1))
        else:
            assert torch.all(d[n] == 0)


def test_same_order_pairs_compares_disjoint_pairs_within_a_decade():
    from hw1.landscape import same_order_pairs

    got = same_order_pairs([1e-3, 5e-3, 1e-4, 2e-2, 1.0, 0.5, 7.0])  # the 7th has no partner
    assert got.tolist() == [True, False, True]
