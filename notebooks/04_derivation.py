# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. The GRACE score and its CMI derivation, checked numerically
#
# This chapter restates the definitions of paper §2.1–2.2 (eqs. 1–6) and the leave-one-prompt-out
# conditional-mutual-information (CMI) argument of Appendices A and B, and checks each step with
# numbers. Everything runs on synthetic gradient matrices (no model is needed), so the chapter is
# fast and exact. The logic lives in `grace.scores` (the scores) and `grace.theory` (the appendix);
# the cells below only call it, restate a few formulas in plain numpy for teaching, and compare.
#
# The notebook **raises** if a genuine identity or inequality fails. Claims that are empirical in
# the paper (the size of the preconditioner-sensitivity term) are measured and reported, not
# asserted.

# %% tags=["parameters"]
profile = "smoke"
out_dir = "artifacts/smoke/notebooks/04_derivation"
seed = 0
n_prompts = 48  # n, prompts in the scored sample
m = 4  # generations per prompt
D = 16  # projected-gradient dimension d
n_folds = 8  # C, the cross-validation folds of eq. 4
nu = 1e-3  # smoothing ν of M = Σ̃ + (ν/d) I
n_teachers = 6  # synthetic "teachers" for the rank comparison of the variants
lemma_ns = [6, 16]  # Lemma B.1 grid; n - 1 < lemma_D is rank-deficient
lemma_D = 8
lemma_m = 1  # responses per prompt in the appendix setting
sigma_rels = [0.3, 1.0, 3.0]  # σ / spread of the δ's
n_mc = 300  # Monte Carlo draws per mixture component
sweep_ns = [16, 32]
sweep_mean_scales = [0.0, 1.0, 3.0]
sweep_anisotropies = [0.0, 1.0, 2.0]
sweep_seeds = [0, 1]

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from IPython.display import display
from scipy.stats import spearmanr

from grace import plots as P
from grace import scores, theory
from grace.analysis import rel_diff as rel
from grace.notebook import Chapter

ch = Chapter("04_derivation", profile, out_dir, study=False)  # synthetic gradients only: no study
check = ch.check  # a failing check raises, so the chapter never renders

# %% [markdown]
# ## 4.1 Gradients, the normalized Gram matrix, G-Vendi and G-Var (eqs. 1–3)
#
# A teacher's scored sample has $n$ prompts with $m$ generations each. Row $(\mathbf{x},\mathbf{y})$
# of $\mathbf{G}\in\mathbb{R}^{nm\times d}$ is the processed gradient
# $\mathbf{h}=\log|\mathbf{y}|\cdot\Pi\mathbf{g}$; $\tilde{\mathbf{G}}$ holds the same rows scaled to
# unit norm. Eq. 1 defines
#
# $$\tilde\Sigma(\mathcal{D})=\frac{1}{nm}\tilde{\mathbf{G}}^\top\tilde{\mathbf{G}},\qquad
#   \mu(\mathcal{D})=\frac{1}{nm}\mathbf{G}^\top\mathbf{1}.$$
#
# Because every row of $\tilde{\mathbf G}$ has unit norm, $\operatorname{Tr}\tilde\Sigma=1$: the
# eigenvalues form a probability vector, and G-Vendi (eq. 2) is its entropy
# $-\sum_\lambda\lambda\log\lambda$. G-Var (eq. 3) is the mean squared distance of the raw rows from
# $\mu$, written in the paper both as a trace and as a sum. Here $\mathbf G$ is a synthetic draw
# from `grace.theory.synthetic_gradients` (a shared mean direction, a power-law spectrum, and
# within-prompt noise).

# %%
H, pid = theory.synthetic_gradients(n_prompts, m, D, anisotropy=1.0, seed=seed)
N = len(H)
Ht = H / np.linalg.norm(H, axis=1, keepdims=True)  # (N, d) eq. 1's G̃
Sigma = Ht.T @ Ht / N  # (d, d) Σ̃(D)
mu = H.mean(0)  # (d,) μ(D)
lam = np.linalg.eigvalsh(Sigma)
gvendi_inline = float(-(lam[lam > 0] * np.log(lam[lam > 0])).sum())
Gmu = H - mu  # (N, d) G_μ(D)
gvar_trace = float(np.trace(Gmu @ Gmu.T) / N)
gvar_sum = float(np.mean((Gmu**2).sum(1)))

# %%
check("eq. 1: Tr Σ̃ = 1", abs(np.trace(Sigma) - 1) < 1e-12, f"Tr Σ̃ = {np.trace(Sigma):.15f}")
check("eq. 2: G-Vendi, package = inline", rel(scores.g_vendi(H), gvendi_inline) < 1e-10,
      f"{scores.g_vendi(H):.12g} vs {gvendi_inline:.12g}")
check("eq. 3: G-Var trace form = sum form", rel(gvar_trace, gvar_sum) < 1e-12, f"{gvar_trace:.12g} vs {gvar_sum:.12g}")
check("eq. 3: G-Var, package = inline", rel(scores.g_var(H), gvar_sum) < 1e-12,
      f"{scores.g_var(H):.12g} vs {gvar_sum:.12g}")
pd.DataFrame({"package": [scores.g_vendi(H), scores.g_var(H)], "inline numpy": [gvendi_inline, gvar_sum]},
             index=["G-Vendi (eq. 2)", "G-Var (eq. 3)"])

# %% [markdown]
# ## 4.2 GRACE: eq. 4, eq. 5, eq. 6 and the released code
#
# Split the prompts into $C$ folds $\mathcal D_1,\dots,\mathcal D_C$ and let $\mathcal D_{-i}$ be the
# rest. With $\mathbf M(\mathcal D_{-i})=\tilde\Sigma(\mathcal D_{-i})+\frac{\nu}{d}I$, eq. 4 is
#
# $$\mathrm{GRACE}(\mathcal D)=\frac{1}{nm}\sum_{i=1}^C
#   \operatorname{Tr}\big(\mathbf G_\mu(\mathcal D_i)\,\mathbf M(\mathcal D_{-i})^{-1}\,
#   \mathbf G_\mu(\mathcal D_i)^\top\big),$$
#
# where $\mathbf G_\mu(\mathcal D_i)$ is the fold's rows centred at **the fold's own mean** (the
# definition below eq. 3). Eq. 5 rewrites it as a sum of
# $\|\mathbf M(\mathcal D_i)^{-1/2}(\mathbf h-\mu(\mathcal D))\|^2$: rows centred at the **global**
# mean, and $\mathbf M(\mathcal D_i)$ instead of $\mathbf M(\mathcal D_{-i})$. Eq. 6 is the spectral
# form for one partition $(\mathcal D_1,\mathcal D_2)$ with **uncentred** $\mathbf h$ and an average
# over $|\mathcal D_1|$. These are not the same number, so we compute each reading:
#
# | variant | centring | matrix | normalisation |
# |---|---|---|---|
# | eq. 4 | fold mean | $\mathbf M(\mathcal D_{-i})$ | $1/(nm)$ over all rows |
# | eq. 5 (global) | global mean | $\mathbf M(\mathcal D_{-i})$ | $1/(nm)$ |
# | eq. 5 literal | global mean | $\mathbf M(\mathcal D_{i})$ | $1/(nm)$ |
# | eq. 6 literal | none | $\mathbf M(\mathcal D_{-i})$ (eigenpairs) | mean over each fold, then over folds |
# | released code | none | $(1-s)\tilde\Sigma_{\rm train}+s\frac{\operatorname{Tr}}{d}I$ | 10 random 90/10 splits |
#
# First the package (`grace.scores.grace`, Cholesky/Woodbury) against a plain restatement with
# `np.linalg.inv`, and against the eigen-decomposition form (`grace.scores.grace_spectral`).

# %%
folds = scores.prompt_folds(pid, n_folds, seed)
kw = dict(nu=nu, folds=folds)
variants = {
    "eq. 4 (fold centring)": scores.grace(H, pid, center="fold", **kw),
    "eq. 5 (global centring, M(D_-i))": scores.grace(H, pid, center="global", **kw),
    "eq. 5 literal (M(D_i))": scores.grace_eq5_own_fold(H, pid, **kw),
    "eq. 6 literal (uncentred, per-fold mean)": scores.grace_eq6_printed(H, pid, **kw),
    "released code": scores.grace_release(H, m, n_splits=10, test_fraction=0.1, smooth=nu),
}
eq4, eq5 = variants["eq. 4 (fold centring)"], variants["eq. 5 (global centring, M(D_-i))"]

# %%
eq4_inline, eq5_inline = theory.grace_inline(H, folds, nu, "fold"), theory.grace_inline(H, folds, nu, "global")
eq6_fold = scores.grace_spectral(H, pid, center="fold", **kw)
eq6_glob = scores.grace_spectral(H, pid, center="global", **kw)
pkg_inline = max(rel(eq4, eq4_inline), rel(eq5, eq5_inline))
spectral_diff = max(rel(eq4, eq6_fold), rel(eq5, eq6_glob))
check("eq. 4: package = inline inverse", rel(eq4, eq4_inline) < 1e-8, f"rel. diff {rel(eq4, eq4_inline):.1e}")
check("eq. 5: package = inline inverse", rel(eq5, eq5_inline) < 1e-8, f"rel. diff {rel(eq5, eq5_inline):.1e}")
check("eq. 4 = its spectral form (eq. 6 with the same centring)", spectral_diff < 1e-8,
      f"rel. diff {spectral_diff:.1e}")

# %%
between = theory.between_fold_term(H, folds, nu)  # global centring adds the spread of the fold means
check("eq. 5 (global) = eq. 4 + between-fold term ≥ eq. 4", rel(eq5, eq4 + between) < 1e-8 and eq5 >= eq4,
      f"{eq5:.6g} = {eq4:.6g} + {between:.6g}")
table = pd.DataFrame({"score": variants})
table["relative difference to eq. 4"] = [rel(v, eq4) for v in variants.values()]
table

# %% tags=["hide-input"]
eq6_literal, release = variants["eq. 6 literal (uncentred, per-fold mean)"], variants["released code"]
ch.glue(max_pkg_inline_diff=max(pkg_inline, spectral_diff), eq5_vs_eq4_rel=rel(eq5, eq4),
        max_eq4_eq6_diff=rel(eq6_literal, eq4), eq5_literal_vs_eq4_rel=rel(variants["eq. 5 literal (M(D_i))"], eq4),
        release_vs_eq4_rel=rel(release, eq4), release_vs_eq6_rel=rel(release, eq6_literal))

# %% [markdown]
# The package and the plain restatements agree to a relative
# {glue:text}`max_pkg_inline_diff:.1e` (eq. 4, eq. 5 and the spectral form of each). The readings
# differ, though: on this draw global centring (eq. 5) is {glue:text}`eq5_vs_eq4_rel:.1%` above
# fold centring (eq. 4) — the gap is exactly the between-fold spread of the fold means, checked
# above — the literal eq. 5 with the fold's own $\mathbf M(\mathcal D_i)$ is off by
# {glue:text}`eq5_literal_vs_eq4_rel:.1%`, and the literal eq. 6 (uncentred rows) by
# {glue:text}`max_eq4_eq6_diff:.1%`. The released code, which also uses uncentred rows, lands
# {glue:text}`release_vs_eq6_rel:.1%` from the literal eq. 6 and {glue:text}`release_vs_eq4_rel:.1%`
# from eq. 4.
#
# A constant offset would not matter for teacher *selection*; what matters is whether the readings
# rank teachers the same way. Below, several synthetic "teachers" (different spectra, noise and mean
# strength) are scored with every reading, and the Spearman correlation to eq. 4 is reported.

# %%
teachers = theory.synthetic_teacher_table(n_teachers, n_prompts, m, D, n_folds, nu, seed)
rank_cols = ["eq. 5 (global)", "eq. 5 literal", "eq. 6 literal", "released code", "G-Var", "G-Vendi"]
rank_agreement = pd.Series({c: spearmanr(teachers["eq. 4"], teachers[c]).statistic for c in rank_cols},
                           name="Spearman ρ with eq. 4")
ch.glue(min_variant_spearman=float(rank_agreement[["eq. 5 (global)", "eq. 6 literal", "released code"]].min()))
display(teachers.round(3))
rank_agreement.to_frame().round(3)

# %% [markdown]
# Across these synthetic teachers, eq. 5 (global), the literal eq. 6 and the released code rank
# teachers with Spearman $\rho\ge$ {glue:text}`min_variant_spearman:.2f` against eq. 4. With only a
# handful of teachers this is indicative, not a test; chapter 8 compares the paper's and the
# released variants on real student gradients.
#
# ## 4.3 Appendix A: one noisy step and the leave-one-prompt-out CMI
#
# The appendix works in the raw gradient space (no $\log|\mathbf y|$ factor, no projection) with one
# response per prompt. Dropping prompt $\hat{\mathbf x}$ and taking one preconditioned step (eq. 7)
# gives
#
# $$\Theta_{-\hat{\mathbf x}}=\Theta_S+\delta_{-\hat{\mathbf x}}+\epsilon,\qquad
#   \delta_{-\hat{\mathbf x}}=-\eta\,\mathbf M_{-\hat{\mathbf x}}\,\mu_{-\hat{\mathbf x}},\qquad
#   \epsilon\sim\mathcal N(0,\sigma^2 I).$$
#
# With $U$ uniform over prompts, $\Theta\mid\mathcal D$ is a uniform mixture of $n$ Gaussians and
# $I(\Theta;U\mid\mathcal D)=\hat{\mathbb E}_u\,\mathrm{KL}\big(\mathcal N(\delta_u,\sigma^2I)\,\|\,
# \tfrac1n\sum_v\mathcal N(\delta_v,\sigma^2I)\big)\le\log n$. `theory.cmi_monte_carlo` estimates it
# (stratified over $u$, log-sum-exp). Jensen's inequality on the mixture's log-density gives the
# first, rigorous step of the proof of Lemma B.1:
#
# $$I\le\frac{1}{2\sigma^2}\hat{\mathbb E}_u\hat{\mathbb E}_v\|\delta_u-\delta_v\|^2
#   =\frac{1}{\sigma^2}\hat{\mathbb E}_u\|\delta_u-\bar\delta\|^2 .$$
#
# The proof then expands $\mathbf M_x\mu_x-\hat{\mathbb E}_v\mathbf M_v\mu_v=a_x-b_x-c_x$ exactly and
# uses $\|a-b-c\|^2\le3(\|a\|^2+\|b\|^2+\|c\|^2)$. Lemma B.1 keeps two of the three terms:
#
# $$I\lesssim\underbrace{\frac{3\eta^2}{\sigma^2n^2}\hat{\mathbb E}_x\|\mathbf M_{-x}\bar{\mathbf g}_x\|^2}_{\text{gradient term}}
#  +\underbrace{\frac{3\eta^2}{\sigma^2}\hat{\mathbb E}_x\|(\mathbf M_{-x}-\hat{\mathbb E}\mathbf M)\mu_{-x}\|^2}_{\text{preconditioner sensitivity}},
#  \qquad \bar{\mathbf g}_x=\mathbf g_x-\mu_{-x}.$$
#
# **Connection to GRACE.** The appendix's preconditioner is $\mathbf M=\tilde\Sigma^{-1/2}$, while
# eq. 4's $\mathbf M$ is $\tilde\Sigma+\frac\nu dI$ used as $\mathbf M^{-1}$ in a quadratic form; so
# $\|\tilde\Sigma_{-x}^{-1/2}\bar{\mathbf g}_x\|^2$ *is* eq. 4's quadratic form. Since
# $\bar{\mathbf g}_x=\frac{n}{n-1}(\mathbf g_x-\mu)$, the gradient term equals
# $\frac{3\eta^2}{\sigma^2(n-1)^2}\,\mathrm{GRACE}_{C=n}$ where, with one prompt per fold, the GRACE
# that matches is **global centring** minus fold centring (for $m=1$ the fold-centred score is 0,
# so it is just eq. 5 with $\mathbf M(\mathcal D_{-i})$). With $\mathbf M=I$ it is
# $\frac{3\eta^2}{\sigma^2(n-1)^2}\,$G-Var and the sensitivity term vanishes.
#
# First a sanity check of the Monte Carlo estimator against numerical integration in 1-D.

# %%
d1 = np.array([[-1.0], [0.2], [1.5]])
mc1, se1 = theory.cmi_monte_carlo(d1, 0.8, n_samples=max(n_mc, 2000) * 5, seed=seed)
quad1 = theory.cmi_quadrature_1d(d1, 0.8)
check("Monte Carlo CMI = quadrature (1-D, 3 components)", abs(mc1 - quad1) < 4 * se1 + 1e-4,
      f"MC {mc1:.4f} ± {se1:.4f} vs quadrature {quad1:.4f}")

# %%
# the C = n correspondence, checked with the package's GRACE (its folds need >= 2 rows, so m = 2 here)
eta_c, sigma_c, n_c = 0.5, 2.0, 12
Gc, pc = theory.synthetic_gradients(n_c, 2, lemma_D, seed=seed)
g_glob = scores.grace(Gc, pc, nu=nu, folds=pc, center="global")
g_fold = scores.grace(Gc, pc, nu=nu, folds=pc, center="fold")
lb_c = theory.lemma_bound(Gc, pc, "grace", eta_c, sigma_c, nu)
implied = 3 * eta_c**2 / (sigma_c**2 * (n_c - 1) ** 2) * (g_glob - g_fold)
check("gradient term = 3η²/(σ²(n−1)²)·[GRACE_global − GRACE_fold] with C = n",
      rel(lb_c["gradient_term"], implied) < 1e-8, f"{lb_c['gradient_term']:.8g} vs {implied:.8g}")

# %%
lb_i = theory.lemma_bound(Gc, pc, "identity", eta_c, sigma_c, nu)
gm = np.stack([Gc[pc == i].mean(0) for i in range(n_c)])
closed = 3 * eta_c**2 / (sigma_c**2 * (n_c - 1) ** 2) * scores.g_var(gm)
check("M = I: gradient term = 3η²/(σ²(n−1)²)·G-Var(prompt means), sensitivity = 0",
      rel(lb_i["gradient_term"], closed) < 1e-10 and lb_i["sensitivity_term"] == 0,
      f"{lb_i['gradient_term']:.8g} vs {closed:.8g}")
pd.DataFrame({"value": {"MC CMI (1-D)": mc1, "MC stderr": se1, "quadrature": quad1,
                        "gradient term (GRACE, C=n)": lb_c["gradient_term"], "3η²/(σ²(n−1)²)·ΔGRACE": implied}})

# %% [markdown]
# Now the grid: for each $n$ and each preconditioner, $\sigma$ is set to a multiple of the spread
# $\sqrt{\hat{\mathbb E}\|\delta_u-\bar\delta\|^2}$ of that draw's $\delta$'s (so both
# preconditioners see the same signal-to-noise ratios), and we compare the Monte Carlo CMI with the
# Jensen bound, Lemma B.1's two terms, and the proof's full three-term bound.

# %%
grid = pd.DataFrame(theory.lemma_grid(lemma_ns, sigma_rels, D=lemma_D, m=lemma_m, seed=seed, n_mc=n_mc, nu=nu))
for name, holds, detail in theory.lemma_grid_checks(grid):  # CMI ≤ Jensen ≤ three-term bound, CMI ≤ log n, ...
    check(name, holds, detail)
# (‖a‖² + ‖b‖² + ‖c‖²) / ‖a − b − c‖²: how much the proof's split loses to cancellation between the parts
grid["cancellation"] = grid.three_term / (3 * grid.jensen)
cols = ["preconditioner", "n", "sigma_rel", "cmi", "cmi_stderr", "log_n", "gaussian_bound", "jensen",
        "lemma_total", "three_term", "slack_jensen", "slack_lemma", "cancellation", "sensitivity_ratio"]
grid[cols].round(4)

# %% tags=["hide-input"]
lemma_holds = grid.lemma_total >= grid.cmi - 4 * grid.cmi_stderr
full_rank = (grid.n - 1) * lemma_m >= lemma_D  # the leave-one-out Gram matrix has full rank
g_full = grid[full_rank & (grid.preconditioner == "grace")]
ch.glue(gauss_slack_median=float((grid.gaussian_bound / grid.cmi).median()),
        cancellation_grace=float(g_full.cancellation.median()) if len(g_full) else float("nan"),
        lemma_slack_max_full=float(grid[full_rank].slack_lemma.max()) if full_rank.any() else float("nan"),
        jensen_slack_min=float(grid.slack_jensen.min()), jensen_slack_max=float(grid.slack_jensen.max()),
        lemma_slack_min=float(grid.slack_lemma.min()), lemma_slack_max=float(grid.slack_lemma.max()),
        lemma_holds_frac=float(lemma_holds.mean()),
        jensen_slack_low_snr=float(grid.loc[grid.sigma_rel == max(sigma_rels), "slack_jensen"].mean()))

# %%
ch.show(P.plot_cmi_bounds(grid, lemma_ns), "cmi_vs_bounds.png")

# %% [markdown]
# Every grid point satisfies the genuine inequalities (CMI ≤ Jensen bound ≤ three-term bound, CMI ≤
# $\log n$). The Jensen bound is loose by a factor {glue:text}`jensen_slack_min:.2f`–{glue:text}`jensen_slack_max:.1f`:
# at low signal-to-noise the CMI approaches *half* the Jensen bound (mean slack
# {glue:text}`jensen_slack_low_snr:.2f` at the largest $\sigma$), and at high signal-to-noise the CMI
# saturates at $\log n$ while the bound grows as $1/\sigma^2$. The factor 2 is never recovered:
# $I(\Theta;U\mid\mathcal D)=h(\Theta)-h(\epsilon)$ and the Gaussian maximises entropy at a given
# covariance, so $I\le\frac12\log\det\big(I+\mathrm{Cov}(\delta_U)/\sigma^2\big)\le
# \frac{1}{2\sigma^2}\operatorname{Tr}\mathrm{Cov}(\delta_U)$, which is half the Jensen bound. This
# maximum-entropy bound (`theory.gaussian_bound`, not in the paper) holds at every grid point and is
# within a median factor {glue:text}`gauss_slack_median:.2f` of the CMI. Lemma B.1's two-term expression is
# looser still (slack {glue:text}`lemma_slack_min:.1f`–{glue:text}`lemma_slack_max:.0f`, or up to
# {glue:text}`lemma_slack_max_full:.0f` where the leave-one-out Gram matrix has full rank; it is above
# the CMI at a fraction {glue:text}`lemma_holds_frac:.0%` of the grid points). For $\mathbf M=I$ the
# extra looseness is just the factor 3. For GRACE it comes from the proof's split of
# $a_x-b_x-c_x$: the sensitivity part $a_x$ and the gradient part $b_x$ largely cancel (dropping a
# prompt moves the mean and the whitening in compensating directions), so
# $\|a\|^2+\|b\|^2+\|c\|^2$ is a median {glue:text}`cancellation_grace:.1f`× larger than
# $\|a-b-c\|^2$. The preconditioned update is therefore *more* stable than either term suggests.
# When $n-1<d$ (one response per prompt) the leave-one-out Gram matrix is rank-deficient and only the
# $\nu/d$ ridge bounds $\tilde\Sigma_{-x}^{-1/2}$, which inflates both Lemma terms further; this is
# one reason the paper scores $nm\ge d$ generations. As a *ranking* device only the gradient term's
# dependence on the data matters, and that term is exactly GRACE with $C=n$ (checked above).
#
# ## 4.4 Is the preconditioner-sensitivity term 5–10× smaller?
#
# Appendix B states that with $\mathbf M=\tilde\Sigma^{-1/2}$ the sensitivity term "is 5–10 times
# smaller" than the gradient term in the paper's experiments, which is what lets GRACE stand in for
# the whole bound. Both terms scale as $\eta^2/\sigma^2$, so their ratio depends only on the
# gradients. We sweep the synthetic generator: the strength of the shared mean direction (the
# sensitivity term multiplies $\mu_{-x}$), the spectral decay, and $n$.

# %%
sweep = pd.DataFrame(theory.sensitivity_sweep(sweep_ns, sweep_mean_scales, sweep_anisotropies, sweep_seeds,
                                              D=lemma_D, nu=nu))
in_band = sweep.ratio.between(5, 10)
ch.show(P.plot_sensitivity_ratio(sweep, sweep_anisotropies, sweep_ns), "sensitivity_ratio.png")
sweep.groupby(["n", "mean_scale", "anisotropy"]).ratio.mean().unstack("anisotropy").round(2)

# %% tags=["hide-input"]
ch.glue(sens_ratio_min=float(sweep.ratio.min()), sens_ratio_max=float(sweep.ratio.max()),
        sens_ratio_median=float(sweep.ratio.median()), sens_in_band_frac=float(in_band.mean()))
if in_band.all():
    ch.md(sens_verdict="**reproduced** on every synthetic configuration")
elif in_band.any():
    ch.md(sens_verdict="**only partly reproduced**: the ratio depends strongly on the gradient distribution, "
          "and falls inside the 5–10 band only for some configurations")
else:
    ch.md(sens_verdict="**not reproduced** on these synthetic gradients")

# %% [markdown]
# The ratio ranges from {glue:text}`sens_ratio_min:.1f` to {glue:text}`sens_ratio_max:.1f` (median
# {glue:text}`sens_ratio_median:.1f`; {glue:text}`sens_in_band_frac:.0%` of configurations fall in
# the 5–10 band), so the appendix's claim is {glue:md}`sens_verdict`. This is a finding about the
# claim's generality, not a failed check: the paper measured the ratio on real student gradients,
# and chapter 9's claims ledger records it as such.
#
# ## 4.5 Summary of the checks

# %%
summary = pd.DataFrame(ch.checks)
ch.glue(n_checks=len(summary))
ch.done({"profile": profile, "variants": variants, "rank_agreement": rank_agreement.to_dict(),
         "lemma_grid": grid.to_dict(orient="records"), "sensitivity_sweep": sweep.to_dict(orient="records"),
         "checks": ch.checks})
summary.groupby(summary.check.str.split("(").str[0].str.strip()).passed.agg(["count", "all"])

# %% [markdown]
# All {glue:text}`n_checks` identities and inequalities above hold (the notebook raises otherwise).
# What the numbers say about the paper: the definitions in eqs. 4–6 are three different readings
# whose values differ but rank teachers alike; the CMI bound is a loose but valid upper bound whose
# data-dependent part is exactly leave-one-prompt-out GRACE (with global centring); and the
# "sensitivity term is 5–10× smaller" remark is a property of the gradients at hand, not of the
# construction.
