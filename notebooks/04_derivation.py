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

# %% [markdown]
# :::{prf:lemma} The normalized Gram matrix has unit trace
# :label: lem-trace-one
#
# If every row of $\tilde{\mathbf G}\in\mathbb R^{nm\times d}$ has unit norm, then
# $\operatorname{Tr}\tilde\Sigma=1$, the eigenvalues $\lambda_1,\dots,\lambda_d$ of $\tilde\Sigma$ form a
# probability vector, and G-Vendi (eq. 2) satisfies $0\le-\sum_k\lambda_k\log\lambda_k\le\log d$.
# :::
#
# :::{prf:proof}
# $\operatorname{Tr}\tilde\Sigma=\frac{1}{nm}\operatorname{Tr}(\tilde{\mathbf G}^\top\tilde{\mathbf G})
# =\frac{1}{nm}\sum_{j=1}^{nm}\|\tilde{\mathbf g}_j\|^2=1$. $\tilde\Sigma$ is a Gram matrix, hence
# positive semi-definite, so its eigenvalues are $\ge0$; they sum to the trace, 1. The Shannon entropy of
# a probability vector on $d$ outcomes lies in $[0,\log d]$, with $\log d$ exactly for the uniform vector,
# i.e. $\tilde\Sigma=I/d$.
# :::
#
# Numeric check of {prf:ref}`lem-trace-one` on the draw above, and of the package's G-Vendi against the
# inline entropy:

# %%
check("eq. 1: Tr Σ̃ = 1", abs(np.trace(Sigma) - 1) < 1e-12, f"Tr Σ̃ = {np.trace(Sigma):.15f}")
check("eq. 2: 0 ≤ G-Vendi ≤ log d", 0 <= gvendi_inline <= np.log(D), f"{gvendi_inline:.6g} ≤ log {D} = {np.log(D):.6g}")
check("eq. 2: G-Vendi, package = inline", rel(scores.g_vendi(H), gvendi_inline) < 1e-10,
      f"{scores.g_vendi(H):.12g} vs {gvendi_inline:.12g}")

# %% [markdown]
# :::{prf:lemma} The two forms of G-Var
# :label: lem-gvar-forms
#
# With $\mathbf G_\mu=\mathbf G-\mathbf 1\mu^\top$,
# $\frac{1}{nm}\operatorname{Tr}(\mathbf G_\mu\mathbf G_\mu^\top)=\frac{1}{nm}\sum_j\|\mathbf h_j-\mu\|^2$:
# the trace and the sum written in eq. 3 are the same number, the mean squared distance of the rows from
# their mean.
# :::
#
# :::{prf:proof}
# The $j$-th diagonal entry of $\mathbf G_\mu\mathbf G_\mu^\top$ is the inner product of row $j$ with
# itself, $\|\mathbf h_j-\mu\|^2$; the trace sums the diagonal.
# :::
#
# Numeric check of {prf:ref}`lem-gvar-forms`:

# %%
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
# `np.linalg.inv`, and against the eigen-decomposition form (`grace.scores.grace_spectral`), which rests
# on the following identity.
#
# :::{prf:lemma} Spectral form of one fold's term
# :label: lem-spectral
#
# Let $\tilde\Sigma(\mathcal D_{-i})=\sum_k\lambda_k\mathbf u_k\mathbf u_k^\top$ with orthonormal
# $\mathbf u_k$. Then for any rows $\mathbf X$ (one per row of $\mathcal D_i$, centred as the variant says)
#
# $$\operatorname{Tr}\big(\mathbf X\,\mathbf M(\mathcal D_{-i})^{-1}\mathbf X^\top\big)
#   =\sum_{k=1}^d\frac{\|\mathbf X\mathbf u_k\|^2}{\lambda_k+\nu/d}.$$
#
# In particular a held-out direction with $\lambda_k=0$ (outside the span of the other folds) is weighted
# by $d/\nu$.
# :::
#
# :::{prf:proof}
# $\mathbf M(\mathcal D_{-i})=\sum_k(\lambda_k+\nu/d)\mathbf u_k\mathbf u_k^\top$ has the same eigenvectors,
# so $\mathbf M^{-1}=\sum_k(\lambda_k+\nu/d)^{-1}\mathbf u_k\mathbf u_k^\top$ (all eigenvalues are
# $\ge\nu/d>0$). Then $\operatorname{Tr}(\mathbf X\mathbf M^{-1}\mathbf X^\top)=\sum_k(\lambda_k+\nu/d)^{-1}
# \operatorname{Tr}(\mathbf X\mathbf u_k\mathbf u_k^\top\mathbf X^\top)$ and
# $\operatorname{Tr}(\mathbf X\mathbf u_k\mathbf u_k^\top\mathbf X^\top)=\|\mathbf X\mathbf u_k\|^2$.
# :::
#
# The next cells compute every reading, then check the package against the plain inverse and against
# {prf:ref}`lem-spectral` (summed over folds, with the same centring).

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

# %% [markdown]
# Why global centring can only raise the score:
#
# :::{prf:proposition} Global centring = fold centring + a between-fold term
# :label: prop-global-fold
#
# Let $\mu_i$ be the mean of fold $\mathcal D_i$'s rows, $r_i$ their number and $\mu=\mu(\mathcal D)$.
# With the same matrices $\mathbf M(\mathcal D_{-i})$,
#
# $$\mathrm{GRACE}_{\text{global}}=\mathrm{GRACE}_{\text{fold}}+B,\qquad
#   B=\frac{1}{nm}\sum_{i=1}^C r_i\,(\mu_i-\mu)^\top\mathbf M(\mathcal D_{-i})^{-1}(\mu_i-\mu)\ \ge 0,$$
#
# where $\mathrm{GRACE}_{\text{fold}}$ is eq. 4 and $\mathrm{GRACE}_{\text{global}}$ is eq. 5 with
# $\mathbf M(\mathcal D_{-i})$.
# :::
#
# :::{prf:proof}
# For a row $\mathbf h$ of fold $i$ write $\mathbf h-\mu=(\mathbf h-\mu_i)+(\mu_i-\mu)$ and let
# $\mathbf A=\mathbf M(\mathcal D_{-i})^{-1}$. Summing the quadratic form over the fold,
#
# $$\sum_{\mathbf h\in\mathcal D_i}(\mathbf h-\mu)^\top\mathbf A(\mathbf h-\mu)
#   =\sum_{\mathbf h\in\mathcal D_i}(\mathbf h-\mu_i)^\top\mathbf A(\mathbf h-\mu_i)
#   +2\Big(\sum_{\mathbf h\in\mathcal D_i}(\mathbf h-\mu_i)\Big)^{\!\top}\mathbf A(\mu_i-\mu)
#   +r_i(\mu_i-\mu)^\top\mathbf A(\mu_i-\mu).$$
#
# The middle sum is zero because $\mu_i$ is the fold's mean. Dividing by $nm$ and summing over folds
# gives the identity; $B\ge0$ because $\mathbf A$ is positive definite.
# :::
#
# Numeric check of {prf:ref}`prop-global-fold` (the table below then lists every reading against eq. 4):

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
# response per prompt; the algebra below allows $m$ responses per prompt, the same for every prompt.
# Write $\mathbf g_x$ for prompt $x$'s mean gradient, $\mu$ for the mean of all rows, and
# $\mu_{-x}$, $\mathbf M_{-x}$ for the mean and the preconditioner of $\mathcal D$ without prompt $x$.
#
# :::{prf:definition} Leave-one-prompt-out CMI of one noisy step
# :label: def-loo-cmi
#
# Drop prompt $\hat{\mathbf x}$ (all its responses) and take one preconditioned step (eq. 7):
#
# $$\Theta_{-\hat{\mathbf x}}=\Theta_S+\delta_{-\hat{\mathbf x}}+\epsilon,\qquad
#   \delta_{-\hat{\mathbf x}}=-\eta\,\mathbf M_{-\hat{\mathbf x}}\,\mu_{-\hat{\mathbf x}},\qquad
#   \epsilon\sim\mathcal N(0,\sigma^2 I).$$
#
# With $U$ uniform over the $n$ prompts, $\Theta\mid\mathcal D$ is the uniform mixture of the Gaussians
# $\mathcal N(\delta_u,\sigma^2I)$, and the leave-one-prompt-out CMI is
#
# $$I(\Theta;U\mid\mathcal D)=\hat{\mathbb E}_u\,\mathrm{KL}\Big(\mathcal N(\delta_u,\sigma^2I)\,\Big\|\,
#   \tfrac1n\textstyle\sum_v\mathcal N(\delta_v,\sigma^2I)\Big)\le\log n .$$
# :::
#
# `theory.cmi_monte_carlo` estimates it (stratified over $u$, log-sum-exp). The bounds on it are stated
# and proved below ({prf:ref}`lem-jensen`, {prf:ref}`prop-maxent`, {prf:ref}`thm-lemma-b1`); the paper's
# Lemma B.1 keeps two of the proof's three terms,
#
# $$I\lesssim\underbrace{\frac{3\eta^2}{\sigma^2n^2}\hat{\mathbb E}_x\|\mathbf M_{-x}\bar{\mathbf g}_x\|^2}_{\text{gradient term}}
#  +\underbrace{\frac{3\eta^2}{\sigma^2}\hat{\mathbb E}_x\|(\mathbf M_{-x}-\hat{\mathbb E}\mathbf M)\mu_{-x}\|^2}_{\text{preconditioner sensitivity}},
#  \qquad \bar{\mathbf g}_x=\mathbf g_x-\mu_{-x}.$$
#
# **Connection to GRACE.** The appendix's preconditioner is $\mathbf M=\tilde\Sigma^{-1/2}$, while
# eq. 4's $\mathbf M$ is $\tilde\Sigma+\frac\nu dI$ used as $\mathbf M^{-1}$ in a quadratic form; so
# with $\mathbf M_{-x}=(\tilde\Sigma_{-x}+\frac\nu dI)^{-1/2}$, $\|\mathbf M_{-x}\bar{\mathbf g}_x\|^2$ *is*
# eq. 4's quadratic form, and the gradient term is a GRACE score ({prf:ref}`lem-c-equals-n`).
#
# First a sanity check of the Monte Carlo estimator against numerical integration in 1-D.

# %%
d1 = np.array([[-1.0], [0.2], [1.5]])
mc1, se1 = theory.cmi_monte_carlo(d1, 0.8, n_samples=max(n_mc, 2000) * 5, seed=seed)
quad1 = theory.cmi_quadrature_1d(d1, 0.8)
check("Monte Carlo CMI = quadrature (1-D, 3 components)", abs(mc1 - quad1) < 4 * se1 + 1e-4,
      f"MC {mc1:.4f} ± {se1:.4f} vs quadrature {quad1:.4f}")

# %% [markdown]
# :::{prf:lemma} The gradient term is leave-one-prompt-out GRACE
# :label: lem-c-equals-n
#
# Let every prompt have $m$ responses, $\mathbf A_{-x}=\tilde\Sigma(\mathcal D\setminus x)+\frac\nu dI$ and
# $\mathbf M_{-x}=\mathbf A_{-x}^{-1/2}$. With one prompt per fold ($C=n$),
#
# $$\frac{3\eta^2}{\sigma^2n^2}\hat{\mathbb E}_x\|\mathbf M_{-x}\bar{\mathbf g}_x\|^2
#   =\frac{3\eta^2}{\sigma^2(n-1)^2}\big(\mathrm{GRACE}_{\text{global}}-\mathrm{GRACE}_{\text{fold}}\big),$$
#
# and for $m=1$ the fold-centred score is 0, so the gradient term is
# $\frac{3\eta^2}{\sigma^2(n-1)^2}\mathrm{GRACE}_{\text{global}}(C=n)$.
# :::
#
# :::{prf:proof}
# Equal counts give $\mu_{-x}=(n\mu-\mathbf g_x)/(n-1)$, hence
# $\bar{\mathbf g}_x=\mathbf g_x-\mu_{-x}=\frac{n}{n-1}(\mathbf g_x-\mu)$ and
# $\|\mathbf M_{-x}\bar{\mathbf g}_x\|^2=\frac{n^2}{(n-1)^2}(\mathbf g_x-\mu)^\top\mathbf A_{-x}^{-1}(\mathbf g_x-\mu)$.
# With $C=n$ the fold of prompt $x$ is its $m$ rows, its mean is $\mathbf g_x$ and
# $\mathbf M(\mathcal D_{-x})=\mathbf A_{-x}$, so the between-fold term of {prf:ref}`prop-global-fold` is
# $B=\frac{1}{nm}\sum_x m(\mathbf g_x-\mu)^\top\mathbf A_{-x}^{-1}(\mathbf g_x-\mu)
# =\hat{\mathbb E}_x(\mathbf g_x-\mu)^\top\mathbf A_{-x}^{-1}(\mathbf g_x-\mu)$. Multiplying by
# $\frac{3\eta^2}{\sigma^2n^2}\cdot\frac{n^2}{(n-1)^2}$ and using $B=\mathrm{GRACE}_{\text{global}}-
# \mathrm{GRACE}_{\text{fold}}$ gives the identity. For $m=1$ each row is its fold's mean, so every
# fold-centred row is zero.
# :::
#
# Numeric check of {prf:ref}`lem-c-equals-n` with the package's GRACE (its folds need ≥ 2 rows, so $m=2$):

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

# %% [markdown]
# :::{prf:corollary} Gradient descent gives G-Var
# :label: cor-identity
#
# With $\mathbf M=I$ (plain gradient descent) the sensitivity term is 0 and the gradient term is
# $\frac{3\eta^2}{\sigma^2(n-1)^2}\,\text{G-Var}(\mathbf g_1,\dots,\mathbf g_n)$, G-Var (eq. 3) of the prompt means.
# :::
#
# :::{prf:proof}
# $\mathbf M_{-x}=I$ for every $x$, so $\mathbf M_{-x}-\hat{\mathbb E}\mathbf M=0$. As in the proof of
# {prf:ref}`lem-c-equals-n`, $\frac{1}{n^2}\|\bar{\mathbf g}_x\|^2=\frac{1}{(n-1)^2}\|\mathbf g_x-\mu\|^2$, and
# $\hat{\mathbb E}_x\|\mathbf g_x-\mu\|^2$ is G-Var of the prompt means (their mean is $\mu$ when counts
# are equal; {prf:ref}`lem-gvar-forms`).
# :::
#
# Numeric check of {prf:ref}`cor-identity`:

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
# The bounds on the CMI. The first is the rigorous first step of the paper's proof of Lemma B.1.
#
# :::{prf:lemma} Jensen bound
# :label: lem-jensen
#
# In the setting of {prf:ref}`def-loo-cmi`, with $\bar\delta=\hat{\mathbb E}_v\delta_v$,
#
# $$I(\Theta;U\mid\mathcal D)\le\frac{1}{2\sigma^2}\hat{\mathbb E}_u\hat{\mathbb E}_v\|\delta_u-\delta_v\|^2
#   =\frac{1}{\sigma^2}\hat{\mathbb E}_u\|\delta_u-\bar\delta\|^2 .$$
# :::
#
# :::{prf:proof}
# Let $p_v$ be the density of $\mathcal N(\delta_v,\sigma^2I)$. Then
# $\mathrm{KL}(p_u\|\hat{\mathbb E}_vp_v)=\mathbb E_{X\sim p_u}[\log p_u(X)-\log\hat{\mathbb E}_vp_v(X)]$, and
# $\log$ is concave, so $\log\hat{\mathbb E}_vp_v\ge\hat{\mathbb E}_v\log p_v$ (Jensen). Hence
# $\mathrm{KL}(p_u\|\hat{\mathbb E}_vp_v)\le\hat{\mathbb E}_v\mathrm{KL}(p_u\|p_v)=
# \hat{\mathbb E}_v\frac{\|\delta_u-\delta_v\|^2}{2\sigma^2}$ (the KL of two Gaussians with the same
# covariance; the normalising constants cancel). Averaging over $u$ gives the first form. For the second,
# expand $\delta_u-\delta_v=(\delta_u-\bar\delta)-(\delta_v-\bar\delta)$: the cross term averages to zero,
# so $\hat{\mathbb E}_u\hat{\mathbb E}_v\|\delta_u-\delta_v\|^2=2\hat{\mathbb E}_u\|\delta_u-\bar\delta\|^2$.
# :::
#
# The Jensen step always gives away at least a factor 2 (this bound is not in the paper):
#
# :::{prf:proposition} Maximum-entropy bound
# :label: prop-maxent
#
# With $\operatorname{Cov}(\delta_U)=\hat{\mathbb E}_u(\delta_u-\bar\delta)(\delta_u-\bar\delta)^\top$,
#
# $$I(\Theta;U\mid\mathcal D)\le\tfrac12\log\det\big(I+\operatorname{Cov}(\delta_U)/\sigma^2\big)
#   \le\frac{1}{2\sigma^2}\operatorname{Tr}\operatorname{Cov}(\delta_U),$$
#
# which is half the bound of {prf:ref}`lem-jensen`.
# :::
#
# :::{prf:proof}
# $\Theta=\Theta_S+\delta_U+\epsilon$ with $\epsilon$ independent of $U$, so
# $I(\Theta;U\mid\mathcal D)=h(\Theta)-h(\Theta\mid U)=h(\Theta)-h(\epsilon)$. $\operatorname{Cov}(\Theta)=
# \operatorname{Cov}(\delta_U)+\sigma^2I$, and among densities with a given covariance the Gaussian has the
# largest entropy: $h(\Theta)\le\frac12\log\det\big(2\pi e(\operatorname{Cov}(\delta_U)+\sigma^2I)\big)$, while
# $h(\epsilon)=\frac12\log\det(2\pi e\,\sigma^2I)$. Subtracting gives the first inequality. For the second,
# $\log(1+\lambda)\le\lambda$ for every eigenvalue $\lambda\ge0$ of $\operatorname{Cov}(\delta_U)/\sigma^2$,
# and $\operatorname{Tr}\operatorname{Cov}(\delta_U)=\hat{\mathbb E}_u\|\delta_u-\bar\delta\|^2$.
# :::
#
# :::{prf:theorem} Three-term bound (the proof of Lemma B.1)
# :label: thm-lemma-b1
#
# With $\mathbf M_x:=\mathbf M_{-x}$, $a_x=\frac{n}{n-1}(\mathbf M_x-\hat{\mathbb E}\mathbf M)\mu$,
# $b_x=\frac{1}{n-1}\mathbf M_x(\mathbf g_x-\mu)$ and $c_x=\frac{1}{n-1}\hat{\mathbb E}_v(\mathbf M_x-\mathbf M_v)\mathbf g_v$,
#
# $$I(\Theta;U\mid\mathcal D)\le\frac{\eta^2}{\sigma^2}\hat{\mathbb E}_x\|a_x-b_x-c_x\|^2
#   \le\frac{3\eta^2}{\sigma^2}\hat{\mathbb E}_x\big(\|a_x\|^2+\|b_x\|^2+\|c_x\|^2\big).$$
#
# The $b$ part equals the gradient term of Lemma B.1 exactly; the paper's Lemma B.1 drops the $c$ part
# (of order $1/n^4$) and writes $a$ with $\mu_{-x}$ in place of $\frac{n}{n-1}\mu$, which is why it is an
# approximate ($\lesssim$), not a proven, bound.
# :::
#
# :::{prf:proof}
# $\delta_x-\bar\delta=-\eta(\mathbf M_x\mu_{-x}-\hat{\mathbb E}_v\mathbf M_v\mu_{-v})$. Substitute
# $\mu_{-x}=\frac{n\mu-\mathbf g_x}{n-1}$:
# $\mathbf M_x\mu_{-x}-\hat{\mathbb E}_v\mathbf M_v\mu_{-v}=\frac{n}{n-1}(\mathbf M_x-\hat{\mathbb E}\mathbf M)\mu
# -\frac{1}{n-1}\big(\mathbf M_x\mathbf g_x-\hat{\mathbb E}_v\mathbf M_v\mathbf g_v\big)$, and
# $\mathbf M_x\mathbf g_x-\hat{\mathbb E}_v\mathbf M_v\mathbf g_v=\mathbf M_x(\mathbf g_x-\mu)+
# \hat{\mathbb E}_v(\mathbf M_x-\mathbf M_v)\mathbf g_v$ because $\hat{\mathbb E}_v\mathbf g_v=\mu$. So
# $\delta_x-\bar\delta=-\eta(a_x-b_x-c_x)$ exactly, and {prf:ref}`lem-jensen` gives the first inequality.
# The second is $\|a-b-c\|^2\le3(\|a\|^2+\|b\|^2+\|c\|^2)$ (Cauchy–Schwarz on three terms). Finally
# $\frac{3\eta^2}{\sigma^2}\|b_x\|^2=\frac{3\eta^2}{\sigma^2(n-1)^2}\|\mathbf M_x(\mathbf g_x-\mu)\|^2=
# \frac{3\eta^2}{\sigma^2n^2}\|\mathbf M_x\bar{\mathbf g}_x\|^2$, the gradient term.
# :::
#
# Now the grid checks {prf:ref}`lem-jensen`, {prf:ref}`prop-maxent` and {prf:ref}`thm-lemma-b1` numerically:
# for each $n$ and each preconditioner, $\sigma$ is set to a multiple of the spread
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
# maximum-entropy bound ({prf:ref}`prop-maxent`, `theory.gaussian_bound`, not in the paper) holds at every grid point and is
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
# dependence on the data matters, and that term is exactly GRACE with $C=n$ ({prf:ref}`lem-c-equals-n`).
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


# %% [markdown]
# ## 4.6 Exercises
#
# Answers are checked with `grace.course.check(id, answer)`, which says right or wrong (and why) without showing the expected value. Everything here runs on synthetic gradients or small matrices, in seconds.

# %% [markdown]
# ::::{exercise} Eq. 5 from eq. 4 on a 2×2 example
# :label: ch4-ex1
#
# By hand: two prompts with two responses each, $d=2$, $\nu=0.2$, each prompt its own fold ($C=n=2$). Prompt
# 0's rows are $(2,0)$ and $(0,2)$, prompt 1's are $(1,1)$ and $(3,1)$
# (`grace.course.two_by_two_example()`). Using {prf:ref}`prop-global-fold`, compute eq. 5 (global centring)
# minus eq. 4 (fold centring).
# ::::
#
# ::::{solution-start} ch4-ex1
# :class: dropdown
# ::::
#
# $\mu=(1.5,1)$, $\mu_0=(1,1)$, $\mu_1=(2,1)$, so $\mu_0-\mu=(-0.5,0)$ and $\mu_1-\mu=(0.5,0)$.
# $\mathbf M(\mathcal D_{-0})$ is built from fold 1's unit rows $(1,1)/\sqrt2$ and $(3,1)/\sqrt{10}$:
# $\tilde\Sigma=\begin{pmatrix}0.7&0.4\\0.4&0.3\end{pmatrix}$, plus $\nu/d=0.1$ on the diagonal; its inverse is
# $\begin{pmatrix}2.5&-2.5\\-2.5&5\end{pmatrix}$, and the quadratic form at $(-0.5,0)$ is $0.625$.
# $\mathbf M(\mathcal D_{-1})$ comes from $(1,0)$ and $(0,1)$: $\tilde\Sigma=I/2$, plus $0.1$, inverse
# $I/0.6$, form $0.25/0.6\approx0.4167$. So $B=\frac14(2\cdot0.625+2\cdot0.4167)\approx0.521$.

# %% tags=["solution"]
from grace import course

assert course.check("ch4-ex1", (2 * 0.625 + 2 * 0.25 / 0.6) / 4)

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} When every held-out gradient lies in the training span
# :label: ch4-ex2
#
# By hand first: by {prf:ref}`lem-spectral`, what happens to GRACE as $\nu\to0$ when every held-out row lies
# in the span of the other folds' rows, and what when one does not? Then check on
# `grace.course.in_span_example(nu)` (16 prompts × 2 responses in $d=4$, every fold spans $\mathbb R^4$):
# answer with GRACE at $\nu=10^{-6}$ divided by GRACE at $\nu=10^{-3}$.
# ::::
#
# ::::{solution-start} ch4-ex2
# :class: dropdown
# ::::
#
# A held-out row in the span has no component along an eigenvector with $\lambda_k=0$, so every weight
# $1/(\lambda_k+\nu/d)$ it meets stays bounded as $\nu\to0$: GRACE converges (to the pseudo-inverse form) and
# the ratio is close to 1. A component outside the span is weighted by $d/\nu$, so that term grows like
# $1/\nu$ and the ratio approaches 1000 (`grace.course.outside_span_example` adds one such direction). This is
# why the world checks of chapter 6 measure the share of held-out gradient outside the span.

# %% tags=["solution"]
import pandas as pd

from grace import course

ratio_in = course.in_span_example(1e-6) / course.in_span_example(1e-3)
ratio_out = course.outside_span_example(1e-6) / course.outside_span_example(1e-3)
assert course.check("ch4-ex2", ratio_in)
pd.DataFrame({"GRACE at ν = 1e-6 over GRACE at ν = 1e-3": [ratio_in, ratio_out]},
             index=["every held-out row in the span", "one held-out direction outside it"]).round(3)

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} Change ν and predict the ranking
# :label: ch4-ex3
#
# *Predict before running*: eight synthetic teachers (`theory.synthetic_teacher_table(8, 32, 2, 8, 4, nu,
# seed=0)`) are ranked by eq. 4 at $\nu=10^{-3}$ and at $\nu=1$. Will the two rankings agree (Spearman ρ near 1)
# or not? Then compute ρ between the two `"eq. 4"` columns.
# ::::
#
# ::::{solution-start} ch4-ex3
# :class: dropdown
# ::::
#
# At $\nu=1$ the ridge $\nu/d=1/8$ is comparable to the eigenvalues of $\tilde\Sigma$ (they sum to 1), so the
# weights $1/(\lambda_k+\nu/d)$ flatten and GRACE moves towards a plain (fold-centred) variance; at
# $\nu=10^{-3}$ the small eigenvalues dominate. The two rankings can therefore differ a lot — here they do.

# %% tags=["solution"]
from scipy.stats import spearmanr

from grace import course, theory

small = theory.synthetic_teacher_table(8, 32, 2, 8, 4, 1e-3, seed=0)["eq. 4"]
large = theory.synthetic_teacher_table(8, 32, 2, 8, 4, 1.0, seed=0)["eq. 4"]
assert course.check("ch4-ex3", spearmanr(small, large).statistic)

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} The largest G-Vendi
# :label: ch4-ex4
#
# By hand: using {prf:ref}`lem-trace-one`, what is the largest G-Vendi a feature matrix with $d=16$ columns
# can have, and which rows reach it?
# ::::
#
# ::::{solution-start} ch4-ex4
# :class: dropdown
# ::::
#
# The eigenvalues of $\tilde\Sigma$ are a probability vector on 16 outcomes, whose entropy is at most
# $\log 16\approx2.77$ (natural logarithm), reached when $\tilde\Sigma=I/16$ — e.g. 16 orthonormal rows, or
# any set of unit rows whose directions are spread evenly.

# %% tags=["solution"]
import numpy as np

from grace import course, scores

assert course.check("ch4-ex4", np.log(16))
scores.g_vendi(np.eye(16))  # 16 orthonormal rows reach it

# %% [markdown]
# ::::{solution-end}
# ::::
