"""HW1-2 Optimization: parameter trajectories, the gradient norm, the minimal ratio, the error surface.

Each test: config -> train (hw1.experiments / hw1.landscape, cached and shared) -> measure
(hw1.landscape) -> decide (hw1.stats) -> draw (hw1.plots) -> file and assert (the `claim` fixture).
The trajectories and the gradient norm reuse the HW1-1 fit runs; they are not trained again.
"""

import numpy as np
import pytest

from hw1 import landscape, plots, stats
from hw1.data import get_target, sample_target
from hw1.experiments import fit_runs
from hw1.plots import Panel, Series, band
from hw1.train import Ensemble

SECTION = "HW1-2 Optimization"


def _ratio_ensemble(cfg, seeds, device) -> tuple[dict, Ensemble]:
    out = landscape.ratio_runs(cfg, seeds, device)
    params = {n[6:]: t for n, t in out.items() if n.startswith("param.")}
    return out, Ensemble(landscape.ratio_arch(cfg), list(seeds), params, {}, "mse")


@pytest.mark.expect(
    "ci",
    "not shown",
    evidence=(
        "16 seeds, 2000 epochs (stage 1's 4 pairs cannot reach 0.025 in the claimed direction, so the "
        "claim's stage-1 alpha goes on and stage 2 tests it at 0.025, the opposite at 0.0125; futility at "
        "stage 2: the exact binomial chance that 16 pairs reach significance is 0.023): 5/8 disjoint pairs "
        "of runs end within a factor of 10 in final loss, binomial p = 0.36; the ends are far apart (p = "
        "1.5e-5, ends 1.7x as far apart as the aligned starts); final losses 6.6e-5..1.9e-2"
    ),
)
@pytest.mark.expect(
    "paper",
    "not shown",
    evidence=(
        "5000 epochs, 16 seeds (futility at stage 2): final losses 5e-5..4e-3; 10/16 runs within half a "
        "decade of the median: sign test p = 0.23, opposite 0.89; the ends are far apart (p = 1.5e-5). "
        "Measured with the earlier criterion (runs around the median), not re-run since the pairs "
        "criterion replaced it"
    ),
)
@pytest.mark.claim(
    "trajectories-diverge",
    section=SECTION,
    statement=(
        "Over 8 trainings from random initialisations the final losses are of the same order of "
        "magnitude, yet the parameters end at different places: the start decides which minimum is reached."
    ),
)
def test_trajectories_diverge(scale, device, claim):
    """Report: 訓練八次,每次 5000 個 epochs,loss 下降的數量級非常接近,但是參數的更新卻大不相同,
    隨著每次訓練 initialization 的不同,gradient descent 所走的路徑是非常不同的; ...
    我們可以推測 loss function 存在許多個 local minimum,對於參數一開始如果起始點設定不同,
    之後也很有可能會到達不同的 local minimum 位置."""
    cfg = scale.fit

    def measure(s, alpha):
        run = fit_runs(cfg, "sincos", 6, cfg.budget, s, device)  # the HW1-1 deep model, reused
        shapes = landscape.param_shapes(run.params)
        snap = run.history["snapshot"]  # (K, T, P), epoch 0 first, the final parameters last
        final_loss = run.history["loss"][:, -1].numpy()
        dist = landscape.endpoint_distances(snap[:, 0], snap[:, -1], shapes)
        # "far": the nearest other run's end (hidden units aligned to this run's by the Hungarian
        # algorithm, layer by layer) lies farther away than this run travelled from its own start
        far = np.log10(dist["apart"].min(1) / dist["moved"])
        close = landscape.same_order_pairs(final_loss)
        # Criterion: more than half of disjoint pairs of runs (seeds 2i, 2i+1) end within a factor
        # of 10 of each other in final loss, |log10 a - log10 b| < 1 (exact binomial, rate > 0.5;
        # the pairs are independent, so the count is binomial) AND log10(nearest aligned end / own
        # travel) > 0 (Wilcoxon signed-rank over seeds, one-sided); intersection-union.
        # Changed after data was seen (issue 16): the earlier part, "more than half of the runs
        # within half a decade of the sample median", sat at its population value (53.6% over 192
        # ci runs), so its outcome was a coin toss; and counting around a sample median is not
        # binomial (with n even the two middle runs are in or out together). The report says the
        # losses reach "a very close order of magnitude": pairs within one decade, margin fixed
        # before any run of this test. 8 seeds make 4 pairs, whose smallest p (1/16) cannot reach
        # the first stage's level in the claimed direction: the claim's alpha of that stage goes to
        # its later stages, while the opposite (reachable) keeps the plan's (hw1.stats.staged).
        return stats.all_of(
            [
                stats.proportion_test(
                    int(close.sum()),
                    len(close),
                    p0=0.5,
                    alternative="greater",
                    alpha=alpha,
                    claim="share of disjoint pairs of runs whose final losses lie within a factor of 10",
                ),
                stats.one_sample_test(
                    far,
                    alternative="greater",
                    alpha=alpha,
                    claim="runs end farther apart (aligned) than they travelled",
                    effect_name="median log10(nearest aligned end / distance travelled)",
                ),
            ],
            claim=f"{len(s)} runs of the 6-hidden-layer DNN on sin(3πx)+cos(6πx)",
        ), (run, dist)

    verdict, s, (run, dist) = claim.stage(measure, cfg.seeds)
    # The figure draws the first stage's runs (the report's 8 trainings): later stages' extra runs
    # would repeat colours and bury the paths; the test used all of them.
    shown = min(len(s), cfg.seeds)
    shapes, snap = landscape.param_shapes(run.params), run.history["snapshot"][:shown]
    final_loss = run.history["loss"][:, -1].numpy()
    loss_at = run.history["loss"].numpy()[:shown, run.history["snapshot_epoch"][0].long().numpy()]
    labels = [f"seed {k} (final loss {v:.2g})" for k, v in zip(s[:shown], final_loss)]
    layer = landscape.middle_layer(shapes)
    for what, part in (("layer", snap[..., landscape.layer_slice(shapes, layer)]), ("model", snap)):
        proj = {m: landscape.project_trajectories(part.numpy(), m, seed=0) for m in ("pca", "tsne")}
        title = (
            f"hidden layer {int(layer) // 2 + 1} ({part.shape[-1]} params)"
            if what == "layer"
            else f"whole model ({part.shape[-1]} params)"
        )
        claim.draw(
            f"trajectories-diverge-{what}",
            plots.draw_trajectories,
            proj,
            loss_at,
            labels,
            suptitle=f"Parameter trajectories of {shown} runs ({len(s)} tested), {title}, every "
            f"{cfg.snapshot_every} epochs",
        )
    ratio0 = dist["apart"].min(1) / dist["apart_start"].min(1)
    claim.conclude(
        verdict,
        s,
        note=(
            f"Final losses {final_loss.min():.2g}..{final_loss.max():.2g}. Each run travelled "
            f"{np.median(dist['moved']):.3g} (median L2) from its start; the nearest other end, after "
            f"aligning hidden units (Hungarian matching of incoming weights + bias, layer by layer), lies "
            f"{np.median(dist['apart'].min(1)):.3g} away; ends are {np.median(ratio0):.2f}x as far apart as "
            f"the (aligned) starts. ReLU rescaling symmetry is not removed."
            + (
                " At ci (2000 epochs) the runs have not converged: trained once to the report's 5000 "
                "epochs (seeds 0-7) the losses spanned 7e-5..2.2e-3 and 7/8 runs lay within half a "
                "decade of the median."
                if scale.name == "ci"
                else ""
            )
        ),
    )


@pytest.mark.expect(
    "paper",
    "reproduced",
    evidence=(
        "5000 epochs, 8 seeds: Wilcoxon p = 0.0039, median log10 loss change over the near-zero-gradient "
        "epochs -0.59 decades [-1.37, -0.29]"
    ),
)
@pytest.mark.claim(
    "gradient-norm",
    section=SECTION,
    statement=(
        "When the gradient norm is almost zero the loss still keeps going down: the loss surface is "
        "flat there, and a fixed learning rate converges slowly."
    ),
)
def test_gradient_norm(scale, device, claim):
    """Report: 當 梯度范數 (Gradient Norm)接近 0 的時候,我們可以發現 Loss 其實還是不斷的下降,
    這告訴了我們其實 Loss function 已經到達了相對平緩的地區,
    如果單純只靠梯度乘上固定的 leaning rate,收斂的速度可能會很慢."""
    cfg, opt = scale.fit, scale.opt

    def measure(s, alpha):
        run = fit_runs(cfg, "sincos", 1, cfg.budget, s, device)  # the HW1-1 shallow model, reused
        g, loss = run.history["grad_norm"].numpy(), run.history["loss"].numpy()
        change = landscape.quiet_loss_change(g, loss, quiet=opt.quiet, window=opt.window)
        ok = np.isfinite(change)
        # Criterion: Wilcoxon signed-rank over the runs that have near-zero stretches (gradient
        # norm, averaged over `window` epochs, below `quiet` x its first value), one-sided: the
        # summed log10 loss change over those epochs < 0 (the loss still fell there).
        return stats.one_sample_test(
            change[ok],
            alternative="less",
            alpha=alpha,
            claim=(
                f"loss change while ||grad|| < {opt.quiet:g} x its start "
                f"({int(ok.sum())}/{len(s)} runs had such stretches)"
            ),
            effect_name="median log10 loss change over the near-zero-gradient epochs (decades)",
        ), (run, change)

    verdict, s, (run, change) = claim.stage(measure, cfg.seeds)
    g, loss = run.history["grad_norm"].numpy(), run.history["loss"].numpy()
    quiet = landscape.quiet_mask(g, quiet=opt.quiet, window=opt.window)
    ok = np.isfinite(change)
    epochs = np.arange(1, g.shape[1] + 1)
    k = int(np.argsort(loss[:, -1])[len(s) // 2])  # the median seed, drawn on its own
    panels = []
    for what, v, ylabel in (
        ("Gradient norm", g, "||∇L|| (L2, all parameters)"),
        ("Loss", loss, "MSE (training)"),
    ):
        mid, lo, hi = band(v)
        panels.append(
            Panel(
                f"{what} vs iteration (full batch: 1 iteration = 1 epoch)",
                "iteration",
                ylabel,
                [
                    Series(f"median, IQR over {len(s)} seeds", epochs, mid, lo, hi),
                    Series(f"seed {s[k]} (median final loss)", epochs, v[k], style="dashed"),
                    Series(
                        f"seed {s[k]}: near-zero gradient epochs",
                        epochs[quiet[k]],
                        v[k][quiet[k]],
                        style="points",
                    ),
                ],
                xscale="log",
                yscale="log",
                text=f"near zero: {opt.window}-epoch mean of ||∇L|| < {opt.quiet:g} x its first value",
            )
        )
    claim.figure(
        "gradient-norm",
        panels,
        suptitle=f"1-hidden-layer DNN ({run.build.n_params} params) on {get_target('sincos').formula}",
    )
    claim.conclude(
        verdict,
        s,
        note=(
            f"{int(ok.sum())}/{len(s)} runs had >= {opt.window} near-zero-gradient epochs (median "
            f"{int(np.median(quiet.sum(1)))} of {g.shape[1]}); over them the loss changed by "
            + (f"{change[ok].min():.3g}..{change[ok].max():.3g} decades." if ok.any() else "(no run).")
        ),
    )


@pytest.mark.expect(
    "ci",
    "contradicted",
    evidence=(
        "40 runs, 199 params: counting only |λ| > P x float32 eps x max|λ|, 3/40 runs have ratio < 1 (rate "
        "0.075 [0.016, 0.20]; binomial test of rate > 0.9: opposite p = 7e-34): the runs are minima by "
        "this tolerance; counting all eigenvalues every ratio is 0.50..0.57, but ~95% of them are near "
        "zero. Kendall tau(loss, ratio) = -0.27, p = 0.02 (the cluster part holds)"
    ),
)
@pytest.mark.expect(
    "paper",
    "contradicted",
    evidence=(
        "run on CPU, 100 runs, 1000 params: 0/100 runs have ratio < 1 counting |λ| > P x float32 eps x "
        "max|λ| (rate 0 [0, 0.036]; binomial test of rate > 0.9: opposite p = 1e-100); every ratio is 1, "
        "so Kendall tau(loss, ratio) is undefined (inconclusive part)"
    ),
)
@pytest.mark.claim(
    "minimal-ratio",
    section=SECTION,
    statement=(
        "At points where the gradient is ≈0 the minimal ratio (fraction of positive Hessian eigenvalues) "
        "is below 1 in every run: saddle points or flat regions, not strict minima; runs with a higher "
        "minimal ratio tend to have lower loss."
    ),
)
def test_minimal_ratio(scale, device, claim):
    """Report: 在上圖中,我們很容易發現在圖的右下角有一個 cluster,代表 min ratio 高而且 loss 不高的狀況;
    ... 100 次結果中沒有一次的 minimum ratio 接近 1 的(看起來最後仍然是在鞍點)."""
    cfg = scale.opt

    def measure(s, alpha):
        out, ens = _ratio_ensemble(cfg, s, device)
        loss, ev = out["loss"].numpy(), out["eigvals"].numpy()
        r = landscape.minimal_ratio(ev, cfg.eig_rel_tol)
        # Criterion: counting only eigenvalues with |λ| > rel_tol x max|λ| (the near-zero ones are
        # where the measure lies, Frye et al.): exact binomial test that more than 90% of runs have
        # ratio < 1 (not strict minima) AND Kendall tau(loss, ratio) < 0, one-sided (IUT).
        return stats.all_of(
            [
                stats.proportion_test(
                    int((r["ratio"] < 1).sum()),
                    len(s),
                    p0=0.9,
                    alternative="greater",
                    alpha=alpha,
                    claim="runs with minimal ratio < 1",
                ),
                stats.correlation_test(
                    loss, r["ratio"], alternative="less", alpha=alpha, claim="loss vs minimal ratio"
                ),
            ],
            claim=(
                f"{len(s)} one-hidden-layer DNNs ({ens.build.n_params} params) on "
                f"{get_target(cfg.ratio_target).formula}"
            ),
        ), (out, loss, ev, r)

    verdict, s, (out, loss, ev, r) = claim.stage(measure, cfg.ratio_runs)
    rel_tol = cfg.eig_rel_tol or landscape.default_rel_tol(ev.shape[1])
    g0, g1 = out["gn_grad_norm"][:, 0].numpy(), out["grad_norm"].numpy()
    steps = np.arange(out["gn_grad_norm"].shape[1])
    mid, lo, hi = band(out["gn_grad_norm"].numpy())
    claim.figure(
        "minimal-ratio",
        [
            Panel(
                "Minimal ratio vs loss, one point per run",
                "training MSE at the end",
                "minimal ratio",
                [
                    Series(
                        f"|λ| > tol only (tol = {rel_tol:.2g} x max|λ|)", loss, r["ratio"], style="points"
                    ),
                    Series("all eigenvalues (λ > 0 over P)", loss, r["ratio_all"], style="points"),
                ],
                xscale="log" if loss.max() > 10 * loss.min() else "linear",
                text=f"TA: no run above ≈0.56; {len(s)} runs, P = {ev.shape[1]}",
            ),
            Panel(
                f"Adam on ||∇L||² after {cfg.mse_epochs} epochs on MSE",
                "step of the gradient-norm phase",
                "||∇L|| (L2, all parameters)",
                [Series(f"median, IQR over {len(s)} runs", steps, mid, lo, hi)],
                yscale="log",
            ),
        ],
    )
    claim.conclude(
        verdict,
        s,
        note=(
            f"tol = {rel_tol:.2g} x max|λ|. Ratio over |λ| > tol: range {np.nanmin(r['ratio']):.3f}.."
            f"{np.nanmax(r['ratio']):.3f}, median {np.nanmedian(r['ratio']):.3f}; counting all "
            f"eigenvalues: {r['ratio_all'].min():.3f}..{r['ratio_all'].max():.3f}, median "
            f"{np.median(r['ratio_all']):.3f} (TA <= 0.56). Near-zero eigenvalues: median "
            f"{np.median(r['near_zero']):.2f} of P; negative beyond tol: median {np.median(r['negative']):.3f}. "
            f"The gradient-norm phase took ||∇L|| from median {np.median(g0):.2g} to {np.median(g1):.2g} "
            f"(median ratio {np.median(g1 / g0):.2g}). Runs with ratio < 1 by tolerance: "
            + ", ".join(
                f"{t:g}: {int((landscape.minimal_ratio(ev, t)['ratio'] < 1).sum())}/{len(s)}"
                for t in (0, 1e-8, 1e-6, rel_tol, 1e-4)
            )
            + "."
        ),
    )


@pytest.mark.claim(
    "error-surface",
    section=SECTION,
    statement=(
        "(bonus) The mean loss over random points at equal distance r from a found minimum θ* grows with "
        "r², and this 1-D curve shows how sharp the minimum is."
    ),
)
def test_error_surface(scale, device, claim):
    """Report: 以 θ^* 為中心,把所有歐氏方向上的等距位置(Hyper-ball)的 Loss 取期望值 ...
    並對歐氏距離的平方作圖得到的結果; 我們認為這樣簡單的做法也能夠看出 Loss Function 的 Sharpness 程度."""
    cfg = scale.opt
    x, y = sample_target(cfg.ratio_target, cfg.n_points)

    def measure(s, alpha):
        _, ens = _ratio_ensemble(cfg, s, device)  # θ*: the end points of minimal-ratio runs (shared)
        norm = float(ens.flat().norm(dim=1).median())
        radii = np.asarray(cfg.radii) * norm
        probe = landscape.sphere_losses(
            ens, x, y, radii, cfg.n_dirs, seed=0, device=device
        )  # (seeds, radii, dirs)
        # Criterion: Page's trend test over seeds x radii, one-sided: the mean loss over the sphere
        # rises with r.
        return stats.trend_test(
            probe.mean(2),
            direction="increasing",
            alpha=alpha,
            claim="mean loss on the sphere of radius r vs r",
        ), (ens, norm, radii, probe)

    verdict, s, (ens, norm, radii, probe) = claim.stage(measure, cfg.seeds)
    n, mean = len(s), probe.mean(2)
    k = int(np.argsort(mean[:, 0])[n // 2])
    mid, lo, hi = band(mean)
    claim.figure(
        "error-surface-radius",
        [
            Panel(
                f"Mean loss at {cfg.n_dirs} random points at distance r from θ*",
                "r² (r in parameter L2)",
                "training MSE",
                [
                    Series(f"median over {n} runs (IQR band)", radii**2, mid, lo, hi),
                    Series(
                        f"seed {s[k]}: mean, 10-90% over directions",
                        radii**2,
                        mean[k],
                        np.quantile(probe[k], 0.1, axis=1),
                        np.quantile(probe[k], 0.9, axis=1),
                        style="dashed",
                    ),
                ],
                yscale="log",
                text=f"r up to {cfg.radii[-1]:g} x ||θ*|| (median ||θ*|| = {norm:.3g})",
            )
        ],
    )
    shapes = landscape.param_shapes(ens.params)
    coords, surf = landscape.surface_2d(ens.build, ens.flat()[k], x, y, shapes, cfg.span, cfg.grid, seed=0)
    claim.draw(
        "error-surface-2d",
        plots.draw_contour,
        coords,
        surf,
        f"Loss around θ* (seed {s[k]}), filter-normalised directions",
        "α (direction 1)",
        "β (direction 2)",
        "training MSE (log colour)",
    )
    claim.conclude(
        verdict,
        s,
        note=(
            f"θ* = the end points of the minimal-ratio runs (after the gradient-norm phase); mean loss "
            f"rose from {np.median(mean[:, 0]):.2g} at r = 0 to {np.median(mean[:, -1]):.2g} at r = "
            f"{radii[-1]:.3g} (medians over {n} runs). Caveat: near a minimum the sphere mean grows like "
            f"L(θ*) + r²·tr(H)/(2P) (the gradient term averages out), so this claim holds wherever the "
            f"Hessian's trace is positive: it confirms the report's curve rather than testing much."
        ),
    )


# The figure files each test writes ({param} filled from its case): one producer per file
# (tests/test_figure_names.py; the harness refuses a figure that is not declared here).
FIGURES = {
    "test_trajectories_diverge": ("trajectories-diverge-layer", "trajectories-diverge-model"),
    "test_gradient_norm": ("gradient-norm",),
    "test_minimal_ratio": ("minimal-ratio",),
    "test_error_surface": ("error-surface-radius", "error-surface-2d"),
}
