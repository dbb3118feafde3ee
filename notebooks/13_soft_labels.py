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
# # 11. Soft labels and temperature
#
# The paper distils by supervised fine-tuning: the student sees only the tokens the teacher *wrote*
# (chapter 5). The classic alternative, reviewed by Omar & Gholami ("Can a student Large Language Model
# perform as well as its teacher?"), hands the student the teacher's whole next-token distribution,
# softened by a temperature τ (Hinton et al., 2015). Per response token
#
# $$\mathcal L = \alpha\,\tau^2\,\mathrm{KL}\big(\mathrm{softmax}(z_T/\tau)\,\|\,\mathrm{softmax}(z_S/\tau)\big) + (1-\alpha)\,\mathrm{CE}(z_S, y),$$
#
# where $y$ is the token the teacher sampled (so $\alpha = 0$ *is* the paper's SFT) and $\tau^2$ keeps the
# soft term's gradients the same size as τ changes (`grace.methods.soft`; the KL term is TRL's generalized
# JSD loss at β = 0). This needs the teacher's **logits**, not only its text, and one vocabulary shared by
# teacher and student — true in the miniature, where every model uses the world's tokenizer.
#
# The overview makes four claims; each is measured here on the study's own teachers, texts, student and
# test prompts, and goes to the claims ledger (chapter 9):
#
# 1. soft labels carry more than the argmax (a soft-label student beats the SFT student);
# 2. τ reveals the teacher's "dark knowledge" (the soft labels' entropy grows with τ, and τ > 1 helps);
# 3. the balance α of soft and hard losses must be tuned (it moves accuracy beyond evaluation noise);
# 4. a strong teacher helps only up to the student's capacity (the student/teacher accuracy ratio falls
#    as the teacher grows).
#
# And the book's own question: does the best teacher change when the student learns from soft labels,
# and does GRACE — computed from the student's gradients on the teacher's *text* (the study's
# `results.csv`, not recomputed) — still rank the teachers?

# %% tags=["parameters"]
profile = "smoke"
out_dir = "artifacts/smoke/notebooks/13_soft_labels"
temperatures = None  # generation temperatures whose texts are distilled (None: every one of the study)
taus = [1.0, 2.0]  # soft-label temperatures τ of the grid
alphas = [0.0, 0.5, 1.0]  # weights α of the soft term (0: SFT)
entropy_taus = [0.5, 1.0, 2.0, 4.0]  # τ of the entropy curve (no training: cheap)
default_tau = 2.0  # the cell every claim is read at, fixed before any run (SoftLabelConfig's defaults)
default_alpha = 0.5
max_steps = None  # cap on each student's optimizer steps (None: the study's recipe)
n_test = None  # test prompts per student (None: the study's)
n_boot = 1000
ci = 0.95
seed = 0
threads = 2
world_profile = None  # the miniature study whose world the students come from (None: the chapter's profile)

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from grace import analysis as A
from grace import claims
from grace import method_runs as MR
from grace.notebook import Chapter

# %% tags=["hide-input"]
ch = Chapter("13_soft_labels", world_profile or profile, out_dir)  # students need a miniature world
if world_profile and world_profile != profile:
    display(Markdown(f"**The students of this chapter are miniature models**, so this `{profile}` build trains them in "
                     f"the `{world_profile}` world; its numbers and claims belong to that profile."))
torch.set_num_threads(threads)
results, study_dir = ch.results, ch.study_dir
check = ch.check
w = MR.open_study(study_dir)
pool = A.main_pool(results)
temps = sorted(pool["temperature"].unique()) if temperatures is None else [float(t) for t in temperatures]
pool = pool[pool["temperature"].isin(temps)].sort_values(["teacher", "temperature"]).reset_index(drop=True)
configs = list(pool["config"])
check("default cell in the grid", default_tau in taus and default_alpha in alphas and 0.0 in alphas,
      f"τ={default_tau}, α={default_alpha} and α=0 must be grid values (taus={taus}, alphas={alphas})")
ch.glue(n_configs=len(configs), n_teachers=int(pool["teacher"].nunique()),
        temps_txt=", ".join(f"{t:g}" for t in temps), default_tau=default_tau, default_alpha=default_alpha)
print(f"{len(configs)} configurations of the main pool: {', '.join(configs)}")

# %% [markdown]
# The grid covers {glue:text}`n_configs` configurations ({glue:text}`n_teachers` teachers at generation
# temperature(s) {glue:text}`temps_txt`). Each cell trains a fresh copy of the study's student on the
# configuration's texts with the study's recipe and evaluates it on the study's test prompts, as the
# study's own students are (chapter 5). The claims are read at one cell fixed before any run,
# τ = {glue:text}`default_tau`, α = {glue:text}`default_alpha` (the defaults of `SoftLabelConfig`;
# the overview itself prints no values).
#
# ## 11.1 The teacher's soft labels: entropy against τ

# %%
with ch.off_page("entropy_log.txt"):
    ent = MR.entropy_by_tau(w, results, configs, [float(t) for t in entropy_taus])
ent.columns = [f"τ = {t:g}" for t in ent.columns]
ent_increasing = bool((np.diff(ent.to_numpy(), axis=1) > 0).all())
fig, ax = plt.subplots(figsize=(6, 3.5))
for config, row in ent.iterrows():
    ax.plot(entropy_taus, row.to_numpy(), marker="o", label=config)
ax.set(xscale="log", xlabel="temperature τ", ylabel="mean entropy of soft labels (nats)")
ax.legend(fontsize=7, ncol=2)
ch.show(fig, "entropy_vs_tau.png")
ent

# %% tags=["hide-input"]
ch.glue(ent_min=float(ent.iloc[:, 0].mean()), ent_max=float(ent.iloc[:, -1].mean()),
        tau_lo=float(entropy_taus[0]), tau_hi=float(entropy_taus[-1]))
ch.md(ent_md="rises with τ for every teacher" if ent_increasing else "does **not** rise with τ for every teacher")

# %% [markdown]
# Mean entropy per response token of softmax($z_T/\tau$) on the teacher's own text: from
# {glue:text}`ent_min:.2f` nats at τ = {glue:text}`tau_lo` to {glue:text}`ent_max:.2f` at
# τ = {glue:text}`tau_hi` (mean over teachers). It {glue:md}`ent_md`. At τ = 1 this is how sure the
# teacher is of its own tokens; a larger τ spreads probability onto the tokens it did not write — what
# the overview calls dark knowledge.
#
# ## 11.2 The grid: SFT against soft labels

# %%
with ch.off_page("training_log.txt"):
    grid = MR.soft_label_grid(w, results, configs, [float(t) for t in taus], [float(a) for a in alphas],
                              ch.out / "students", seed=seed, max_steps=max_steps, n_test=n_test)
grid["cell"] = [("SFT (α = 0)" if m == "sft" else f"τ = {t:g}, α = {a:g}")
                for m, t, a in zip(grid["method"], grid["tau"], grid["alpha"], strict=True)]
wide = grid.pivot(index="config", columns="cell", values="avg_at_k")
wide = wide[["SFT (α = 0)"] + [c for c in wide.columns if c != "SFT (α = 0)"]]
k = int(w.typed.evaluation.k)
n_eval = int(n_test or len(w.test_prompts))
check("every cell trained", len(grid) == len(configs) * len(MR.grid_cells(taus, alphas)), f"{len(grid)} students")
wide

# %% tags=["hide-input"]
cell_means = grid.groupby("cell")["avg_at_k"].mean().sort_values(ascending=False)
ch.glue(n_students=len(grid), train_seconds=float(grid["seconds"].sum()), k=k, n_eval=n_eval,
        best_cell_mean=float(cell_means.iloc[0]), sft_mean=float(cell_means["SFT (α = 0)"]))
ch.md(best_cell=f"**{cell_means.index[0]}**")

# %% [markdown]
# Student avg@{glue:text}`k` on {glue:text}`n_eval` test prompts, one row per configuration, one column
# per cell ({glue:text}`n_students` students, {glue:text}`train_seconds:.0f` s of training). Averaged over
# configurations the best cell is {glue:md}`best_cell` ({glue:text}`best_cell_mean:.3f`; SFT
# {glue:text}`sft_mean:.3f`). That cell was picked after the fact, so the claims below do not use it:
# they read the fixed cell.
#
# ## 11.3 The overview's claims

# %%
sft = grid[grid["method"] == "sft"].set_index("config")["avg_at_k"]
soft_default = MR.grid_cell(grid, default_tau, default_alpha)
d1 = (soft_default - sft).dropna()
m1, lo1, hi1 = A.mean_ci(d1.to_numpy(), n_boot=n_boot, seed=seed, ci=ci)
v, rule = MR.better_verdict(m1, lo1, f"mean(soft − SFT avg@k) over configurations at τ = {default_tau:g}, "
                                     f"α = {default_alpha:g}")
ch.claim(id="kd_soft_beats_hard", claim="Soft labels give the student more than the argmax: a soft-label student "
         "beats the SFT student on the same teacher text (overview, soft labels)", paper="soft > hard",
         value=m1, ci_low=lo1, ci_high=hi1, verdict=v, rule=rule, glue_as="v_soft", kind="acc")

# %%
t_hi = [t for t in taus if t > 1]
diffs = []
for a in [x for x in alphas if x > 0]:
    if 1.0 in taus and t_hi:
        diffs.append((MR.grid_cell(grid, max(t_hi), a) - MR.grid_cell(grid, 1.0, a)).dropna())
d2 = pd.concat(diffs) if diffs else pd.Series(dtype=float)
m2, lo2, hi2 = A.mean_ci(d2.to_numpy(), n_boot=n_boot, seed=seed, ci=ci)
holds = None if not np.isfinite(m2) else bool(ent_increasing and (lo2 > 0 if np.isfinite(lo2) else m2 > 0))
v, rule = claims.verdict_bool(holds, partly=bool(ent_increasing or (np.isfinite(m2) and m2 > 0)),
                              rule=f"reproduced if the soft labels' entropy rises with τ for every teacher and the CI "
                                   f"of mean(avg@k at τ = {max(t_hi) if t_hi else float('nan'):g} − at τ = 1) over "
                                   "configurations and α > 0 is above 0; partly if only one of the two holds")
ch.claim(id="kd_temperature_dark_knowledge", claim="Temperature scaling reveals the teacher's dark knowledge and so "
         "helps the student: softer labels (τ > 1) train better students than τ = 1 (overview, temperature)",
         paper="τ > 1 helps", value=m2, ci_low=lo2, ci_high=hi2, verdict=v, rule=rule, glue_as="v_tau", kind="acc")

# %%
se = math.sqrt(max(float(grid["avg_at_k"].mean()), 1e-9) * (1 - float(grid["avg_at_k"].mean())) / (n_eval * k))
spread = []
for config in configs:
    vals = [sft.get(config, np.nan)] + [MR.grid_cell(grid, default_tau, a).get(config, np.nan) for a in alphas if a > 0]
    spread.append(np.nanmax(vals) - np.nanmin(vals))
m3, lo3, hi3 = A.mean_ci(spread, n_boot=n_boot, seed=seed, ci=ci)
v, rule = claims.verdict_bool(None if not np.isfinite(m3) else bool(np.isfinite(lo3) and lo3 > 2 * se),
                              partly=bool(np.isfinite(m3) and m3 > 2 * se),
                              rule=f"reproduced if the CI low of the mean range of avg@k over α (τ = {default_tau:g}) "
                                   f"exceeds twice one avg@k's sampling SE ({2 * se:.3f}); partly if the mean does")
ch.claim(id="kd_alpha_must_be_tuned", claim="The balance of soft and hard losses matters and must be tuned: "
         "changing α moves the student's accuracy beyond evaluation noise (overview, hyperparameters)",
         paper="α matters", value=m3, ci_low=lo3, ci_high=hi3, verdict=v, rule=rule, glue_as="v_alpha", kind="acc")

# %%
teachers_tab = pool.groupby("teacher").agg(size=("size_params", "first"), teacher_acc=("teacher_avg_at_k", "first"))
ratio = pd.DataFrame({
    "SFT": sft.groupby(pool.set_index("config")["teacher"]).mean(),
    "soft": soft_default.groupby(pool.set_index("config")["teacher"]).mean(),
})
teachers_tab["student SFT / teacher"] = ratio["SFT"] / teachers_tab["teacher_acc"].replace(0, np.nan)
teachers_tab["student soft / teacher"] = ratio["soft"] / teachers_tab["teacher_acc"].replace(0, np.nan)
teachers_tab = teachers_tab.sort_values("size")
fin = teachers_tab[["size", "student soft / teacher"]].dropna()
rho4 = A.series_spearman(fin["size"], fin["student soft / teacher"]) if len(fin) >= 3 else float("nan")
lo4, hi4 = (A.spearman_ci(fin["size"].to_numpy(float), fin["student soft / teacher"].to_numpy(float), -1, n_boot,
                          ci, seed) if np.isfinite(rho4) else (math.nan, math.nan))
v, rule = claims.verdict_at_least(-rho4 if np.isfinite(rho4) else rho4, lo4, 0.0, partly=0.0)
rule = ("on −ρ(teacher size, student/teacher accuracy ratio) over teachers, soft cell: " + rule)
ch.claim(id="kd_capacity_gap", claim="A strong teacher helps only up to the student's capacity: the student/teacher "
         "accuracy ratio falls as the teacher grows (overview, teacher-student pairs)", paper="ratio falls with size",
         value=-rho4 if np.isfinite(rho4) else rho4, ci_low=lo4, ci_high=hi4, verdict=v, rule=rule,
         glue_as="v_capacity")
teachers_tab

# %% [markdown]
# {glue:md}`v_soft_line`
#
# {glue:md}`v_tau_line`
#
# {glue:md}`v_alpha_line`
#
# {glue:md}`v_capacity_line`
#
# The table lists each teacher's size (parameters), its own avg@k (its card, chapter 5) and the ratio of
# its students' avg@k to it, for SFT and for the fixed soft cell (averaged over temperatures). A ratio
# near or above 1 means the student matches its teacher; the capacity claim expects it to fall as the
# teacher grows. With few teachers and two sizes the rank correlation is coarse.
#
# ## 11.4 Which teacher? SFT against soft labels, and GRACE

# %%
by_teacher = pd.DataFrame({"SFT": sft.groupby(pool.set_index("config")["teacher"]).mean(),
                           "soft": soft_default.groupby(pool.set_index("config")["teacher"]).mean()})
agree = MR.rank_agreement(by_teacher["SFT"], by_teacher["soft"])
g_sft = MR.grace_rho(results, sft, n_boot, seed)
g_soft = MR.grace_rho(results, soft_default, n_boot, seed)
g_study = MR.grace_rho(results, pool.set_index("config")["student_avg_at_k"], n_boot, seed)
rank_tab = pd.DataFrame([
    {"students": "study's SFT students (results.csv)", "GRACE ρ": g_study[0], "ci_low": g_study[1], "ci_high": g_study[2]},
    {"students": "SFT students of this chapter", "GRACE ρ": g_sft[0], "ci_low": g_sft[1], "ci_high": g_sft[2]},
    {"students": f"soft-label students (τ = {default_tau:g}, α = {default_alpha:g})", "GRACE ρ": g_soft[0],
     "ci_low": g_soft[1], "ci_high": g_soft[2]},
]).set_index("students")
ch.glue(rank_rho=agree["rho"], n_rank=agree["n"], g_soft=g_soft[0], g_sft=g_sft[0])
ch.md(best_md=(f"The best teacher is **{agree['best_a']}** under SFT and **{agree['best_b']}** under soft labels"
               + (" — the same." if agree["same_best"] else " — it changes with the method.")))
display_tab = by_teacher.sort_values("SFT", ascending=False)
display_tab

# %%
rank_tab

# %% [markdown]
# Teachers ranked by their students' avg@k (mean over temperatures). {glue:md}`best_md` The Spearman
# correlation between the two rankings over {glue:text}`n_rank` teachers is {glue:text}`rank_rho:.2f`.
# The second table is GRACE's oriented ρ (paper §3.1; the study's scores, computed on the student's
# gradients on each configuration's *text*) with each set of students, over configurations: GRACE never
# sees the teacher's logits, so nothing guarantees it still ranks the teachers when the student learns
# from them. Here its ρ is {glue:text}`g_soft:.2f` with the soft-label students and
# {glue:text}`g_sft:.2f` with the SFT students trained beside them.

# %% [markdown]
# ## 11.5 Summary

# %% tags=["hide-input"]
ch.done({"profile": profile, "configs": configs, "grid": grid.drop(columns=["cell"]).to_dict("records"),
         "entropy": ent.to_dict(), "rank_agreement": {k: v for k, v in agree.items()},
         "grace_rho": {"study_sft": g_study, "sft": g_sft, "soft": g_soft}, "checks": ch.checks,
         "claims": [c.__dict__ for c in ch.claims]})
ch.ledger(["id", "paper", "value", "ci_low", "ci_high", "verdict", "rule"])

# %% [markdown]
# The four claims above are in the ledger (chapter 9) with the rules that produced their verdicts.
# Soft labels need what the paper's setting does not give: the teacher's logits over the student's
# vocabulary. The next chapter asks for even more of the teacher — its input gradients.


# %% [markdown]
# ## 11.6 Exercises
#
# Answers are checked with `grace.course.check(id, answer)`, which says right or wrong (and why) without
# showing the expected value.

# %% [markdown]
# ::::{exercise} The soft term by hand
# :label: ch13-ex1
#
# One response token, a vocabulary of three tokens: the teacher's logits are $z_T = (2, 1, 0)$, the
# student's $z_S = (0, 0, 0)$ (`grace.course.SOFT_EXAMPLE`). Compute the loss above at $\alpha = 1$,
# $\tau = 2$ by hand: soften both, take $\mathrm{KL}(p_T \,\|\, p_S)$, and do not forget the factor in
# front.
# ::::
#
# ::::{solution-start} ch13-ex1
# :class: dropdown
# ::::
#
# $z_T/\tau = (1, 0.5, 0)$, so $p_T \approx (0.507, 0.307, 0.186)$; $p_S$ is uniform, $1/3$ each.
# $\mathrm{KL}(p_T\|p_S) = \sum_i p_{T,i}\ln(3p_{T,i}) \approx 0.078$, and $\tau^2 = 4$ times that is about
# $0.314$. Without $\tau^2$ the answer is four times too small; with the two distributions swapped
# ($\mathrm{KL}(p_S\|p_T)$, the "reverse" KL) it is about 4 % too large.

# %% tags=["solution"]
import torch

from grace import course
from grace.methods.soft import SoftLabelConfig, soft_label_loss

t, s = torch.tensor([[course.SOFT_EXAMPLE["teacher"]]]), torch.tensor([[course.SOFT_EXAMPLE["student"]]])
loss = soft_label_loss(s, t, torch.tensor([[0]]), SoftLabelConfig(temperature=2.0, alpha=1.0))["loss"]
assert course.check("ch13-ex1", float(loss))

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} Why τ²?
# :label: ch13-ex2
#
# Show that the gradient of $\mathrm{KL}(\mathrm{softmax}(z_T/\tau)\,\|\,\mathrm{softmax}(z_S/\tau))$ with
# respect to the student's logits $z_S$ is $\frac1\tau(p_S - p_T)$, and argue that for large τ and
# logits of mean zero it is about $\frac{1}{V\tau^2}(z_S - z_T)$. What would happen to the balance between the
# soft and hard terms as τ grows without the $\tau^2$ factor?
# ::::
#
# ::::{solution} ch13-ex2
# :class: dropdown
#
# The gradient of cross-entropy $-\sum_i p_{T,i} \log \mathrm{softmax}(u)_i$ in $u$ is $\mathrm{softmax}(u) - p_T$, and
# $u = z_S/\tau$ adds a factor $1/\tau$. For large τ, $\mathrm{softmax}(z/\tau)_i \approx \frac1V(1 + z_i/\tau)$
# when the logits have mean zero, so $p_S - p_T \approx \frac{1}{V\tau}(z_S - z_T)$ and the gradient is
# $\approx \frac{1}{V\tau^2}(z_S - z_T)$ (Hinton et al., 2015, §2.1). Without the $\tau^2$ factor the soft term's
# gradients shrink like $1/\tau^2$ and at τ = 4 the hard term would dominate 16 times more than at τ = 1,
# whatever α says; the factor keeps α meaning the same thing at every τ.
# ::::

# %% [markdown]
# ::::{exercise} Reading the entropy table
# :label: ch13-ex3
#
# In §11.1's table of the teachers' soft-label entropy, which teacher's soft labels are closest to
# one-hot at τ = 1, and which value does every row approach as τ grows? Why does a teacher whose labels are
# nearly one-hot give a soft-label student little beyond SFT?
# ::::
#
# ::::{solution} ch13-ex3
# :class: dropdown
#
# The row with the smallest entropy at τ = 1 is the most confident teacher. Every row approaches $\ln V$,
# the entropy of the uniform distribution over the world's vocabulary, because $z/\tau \to 0$. A one-hot
# soft label is exactly the hard label the SFT student already gets: the "dark knowledge" is the mass on the
# other tokens, and a teacher that puts almost none there has little to add, which is why τ > 1 is tried.
# ::::
