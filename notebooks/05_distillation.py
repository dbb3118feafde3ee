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
# # 5. Distillation and evaluation
#
# GRACE is only worth computing if it predicts something expensive: the accuracy of a student
# *after* it has been fine-tuned on a teacher's generations. This chapter is about that expensive
# ground truth. Following paper §3 ("Settings"), for every teacher × temperature configuration the
# study samples $M$ responses for each of $N$ training prompts, fine-tunes a fresh copy of the
# pre-trained student on **all** $N\times M$ generations (no correctness filtering) with the
# standard response-only cross-entropy loss, and evaluates the result on held-out test prompts.
#
# We look at the recipe (`grace.distill.TrainConfig`) and how the miniature profile departs from
# the paper's, at the trained students, at the three accuracy metrics the paper reports (avg@k,
# greedy, best-of-k), at whether a stronger teacher gives a stronger student, and at the filtering
# ablation of Appendix D.1. All numbers come from the shared study of the chosen profile; the
# chapter only reads it. On the `smoke` profile the students are barely trained and nearly
# constant, so the correlations below may be undefined (the page then says *not measured here*
# and why) and the claims are then recorded as "not testable".

# %% tags=["parameters"]
profile = "smoke"
out_dir = "artifacts/smoke/notebooks/05_distillation"
n_boot = 1000  # bootstrap resamples (test prompts or configurations) for every CI
seed = 0
ci = 0.95  # confidence level of every CI
include_self = False  # the paper's teacher pool has no self-distillation teacher (§3.1)
weak_rho = 0.5  # "weak" correlation: reproduced if the CI's upper end is at most this

# %% tags=["hide-input"]
import math

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from grace import analysis as A
from grace import claims, distill
from grace import formatting as F
from grace import plots as P
from grace.io import read_json
from grace.notebook import Chapter

# %% tags=["hide-input"]
ch = Chapter("05_distillation", profile, out_dir)  # runs (or reuses) the profile's study
results, study_dir, prof = ch.results, ch.study_dir, ch.prof
pool = results if include_self else A.main_pool(results)  # no self-distillation or answer-only anecdote
check = ch.check  # a failing check raises, so the chapter never renders
ch.glue_paper()  # every claims.PAPER number as paper_<key>
ch.glue(profile=profile, n_configs=len(results), n_pool=len(pool), n_teachers=int(pool["teacher"].nunique()))
print(f"profile {profile}: {len(results)} configurations ({len(pool)} in the teacher pool) from {study_dir}")

# %% [markdown]
# ## 5.1 The recipe
#
# Paper §3: "Each distillation training run uses learning rate $10^{-5}$ and 4 epochs over the
# training set. We use the cosine learning rate schedule with 5% warmup, 0 weight decay, and batch
# size 64 … fine-tune the student on all generations without filtering for correctness." The study
# runner builds a `grace.distill.TrainConfig` from the profile's `distill` section and hands it to
# the Hugging Face `Trainer`; keys the profile leaves out take the `TrainConfig` defaults, which are
# the paper's (cosine, 5% warm-up, weight decay 0, no filtering).

# %%
recipe = distill.recipe_table(prof["distill"])
d = prof["distill"]
lr_profile, lr_paper = float(d["learning_rate"]), claims.PAPER_RECIPE["learning_rate"]
same_lr = math.isclose(lr_profile, lr_paper)
student_cfg = None
if ch.miniature:  # the miniature student's config.json holds its init scale
    student_cfg = read_json(study_dir / "world" / "bases" / prof["world"]["student"] / "config.json")
init_std = float((student_cfg or {}).get("initializer_range", 0.02))  # 0.02: the HF Llama default
recipe

# %% tags=["hide-input"]
ch.glue(lr_profile=lr_profile, lr_ratio=lr_profile / lr_paper, paper_lr=lr_paper, paper_N=claims.GSM8K_TRAIN,
        paper_M=claims.PAPER_M, paper_batch=claims.PAPER_RECIPE["batch_size"],
        paper_epochs=claims.PAPER_RECIPE["epochs"], init_std=init_std, n_recipe_same=int(recipe["same"].sum()),
        n_recipe=len(recipe))
ch.md(lr_md="It uses the paper's learning rate." if same_lr else
      f"The learning rate is the deliberate exception: {lr_profile:.0e} instead of {lr_paper:.0e}, a factor "
      f"{lr_profile / lr_paper:.0f} larger.",
      recipe_md="with the paper's recipe" if same_lr else
      "with the paper's recipe except for a learning rate scaled to the model's size")

# %% [markdown]
# The profile keeps {glue:text}`n_recipe_same` of the {glue:text}`n_recipe` settings.
# {glue:md}`lr_md` Why a tiny model needs a larger rate: Adam
# normalises each update, so one step moves a weight by at most about the current learning rate,
# and the sum of the schedule bounds how far any weight can travel during training. The paper's
# run is long — {glue:text}`paper_N` GSM8K training prompts × {glue:text}`paper_M` responses / batch
# {glue:text}`paper_batch` × {glue:text}`paper_epochs` epochs — so even at the small rate that budget
# is sizeable; the miniature trains for a few steps to a few hundred, and at the paper's rate its
# weights (initialised with standard deviation {glue:text}`init_std:.2g`) would hardly move. The table
# below computes the budget $\sum_t \eta_t$ of both schedules with `grace.distill.lr_schedule`
# (the formula the `Trainer` uses).

# %%
runs = A.student_runs(study_dir)
main_runs = runs[~runs["filtered"]]
steps_mini = int(main_runs["steps"].median())
budget = distill.lr_budget_table(d, steps_mini, profile)  # Σ_t η_t of the paper's and the miniature's schedule
budget

# %% tags=["hide-input"]
b = budget.iloc[:, 2]
ch.glue(steps_paper=budget.iloc[0, 1], steps_mini=steps_mini, budget_paper=b.iloc[0], budget_mini_paper_lr=b.iloc[1],
        budget_mini=b.iloc[2], budget_mini_paper_lr_rel=b.iloc[1] / init_std, budget_ratio=b.iloc[2] / b.iloc[0])

# %% [markdown]
# The paper's schedule lets a weight travel up to {glue:text}`budget_paper:.3f` over
# {glue:text}`steps_paper` steps. With the miniature's {glue:text}`steps_mini` steps (median over
# students) the same rate would allow only {glue:text}`budget_mini_paper_lr:.1e`, which is
# {glue:text}`budget_mini_paper_lr_rel:.1e` of the {glue:text}`init_std:.2g` scale of the initial
# weights, while the profile's rate allows {glue:text}`budget_mini:.3f`, or
# {glue:text}`budget_ratio:.2f` of the paper's budget. Scaling the rate is how the miniature keeps
# the *amount of training* in the paper's range with far fewer steps; GPU profiles use the paper's
# rate on the paper's models.
#
# ## 5.2 Training the students
#
# One student per configuration, each starting from the same pre-trained checkpoint. The runner
# records, in `students/<config>/done.json`, the optimizer steps, the number of training
# examples (all non-blank generations) and the mean training loss, next to the evaluation.

# %%
table = main_runs.merge(results[["config", "teacher", "family", "temperature"]], on="config", how="left")
table = table[["config", "teacher", "family", "temperature", "n_examples", "steps", "train_loss", "avg_at_k",
               "greedy", "best_of_k", "seconds"]].sort_values(["teacher", "temperature"])
for r in runs.itertuples():  # Trainer: max_steps = round(epochs * ceil(examples / batch))
    if r.n_examples > 0:
        expected = distill.expected_steps(d, r.n_examples)
        check(f"steps = epochs × ⌈examples / batch⌉ ({r.config})", r.steps == expected,
              f"{r.steps} recorded vs {expected} expected")

# %%
merged = results.set_index("config")
for r in main_runs.itertuples():
    check(f"done.json = results.csv ({r.config})",
          np.isclose(r.avg_at_k, merged.loc[r.config, "student_avg_at_k"])
          and np.isclose(r.train_loss, merged.loc[r.config, "student_train_loss"]),
          f"avg@k {r.avg_at_k} vs {merged.loc[r.config, 'student_avg_at_k']}")

# %%
loss_tab = A.spearman_table(pool, scores=["student_train_loss"], orientation={"student_train_loss": -1},
                            n_boot=n_boot, ci=ci, seed=seed)
ch.glue(rho_train_loss=float(loss_tab["rho"].iloc[0]), train_loss_min=float(table["train_loss"].min()),
        train_loss_max=float(table["train_loss"].max()), train_seconds=float(table["seconds"].sum()))
table.round(4)

# %% [markdown]
# The final training loss ranges from {glue:text}`train_loss_min:.2f` to
# {glue:text}`train_loss_max:.2f` nats per token across configurations (training all students
# took {glue:text}`train_seconds:.0f` s including evaluation). The loss measures how *easy the
# teacher's text is to imitate* (low-temperature samples are easier), not directly how well the
# student will solve new problems. Does a low loss go with a good student anyway? The Spearman
# correlation between the final training loss and student avg@k is
# {glue:text}`rho_train_loss:.2f` here (negative would mean lower loss, better student). The paper
# reports a weak correlation for a related quantity, the *base* student's loss on the teacher's
# generations ({glue:text}`paper_fig1_student_loss_rho:.2f` with Llama-1B; chapter 6, Fig. 1).
#
# ## 5.3 Three ways to score a student: avg@k, greedy, best-of-k
#
# For each test prompt the student samples $k$ responses at temperature 1.0 and one greedy
# response; an answer checker marks each correct or not (`grace.evaluation`).
#
# * **avg@k** (the paper's main metric, with $k$ = {glue:text}`paper_M`): the mean accuracy of the $k$ samples, averaged
#   over prompts — an estimate of the probability that one sampled answer is correct.
# * **greedy**: accuracy of the single temperature-0 answer (Fig. 11).
# * **best-of-k**: the fraction of prompts answered correctly at least once in $k$ samples (Fig. 12).
#
# avg@k is an average of $nk$ Bernoulli outcomes and so the least noisy of the three; greedy and
# best-of-k are one binary outcome per prompt. They are tied together by inequalities every
# student must satisfy: $\text{avg@}k\le\text{best-of-}k\le\min(1,k\cdot\text{avg@}k)$ (at least
# one of $k$ samples is correct at most $k$ times as often as one sample is). Greedy is not bound
# by either: it can beat avg@k (a sharp model whose mode is right) or fall below it.

# %%
k = int(prof["evaluation"]["k"])
for r in results.itertuples():
    a, b = r.student_avg_at_k, r.student_best_of_k
    check(f"avg@k ≤ best-of-k ≤ min(1, k·avg@k) ({r.config})", a - 1e-12 <= b <= min(1.0, k * a) + 1e-12,
          f"avg@k {a:.4f}, best-of-k {b:.4f}, k {k}")
corr = A.metric_correlations(pool)
ch.glue(k=k, rho_greedy_avg=float(corr.loc["avg@k", "greedy"]), rho_bok_avg=float(corr.loc["avg@k", "best-of-k"]),
        frac_greedy_above=float((pool["student_greedy"] > pool["student_avg_at_k"]).mean()))
ch.figure("metric_scatter", P.plot_metric_scatter(pool, k=k))
corr.round(3)

# %% [markdown]
# ```{glue:figure} metric_scatter
# :name: "fig-05-metrics"
#
# Greedy (left) and best-of-{glue:text}`k` (right) accuracy against avg@{glue:text}`k`, one point
# per student of the teacher pool ({glue:text}`n_pool` configurations, colour = family). The grey
# band is the region best-of-k is confined to. Spearman ρ with avg@k: greedy
# {glue:text}`rho_greedy_avg:.2f`, best-of-k {glue:text}`rho_bok_avg:.2f`.
# ```
#
# On the {glue:text}`profile` profile every student obeys the avg@k/best-of-k inequalities (checked
# above), and greedy beats avg@k for a fraction {glue:text}`frac_greedy_above:.0%` of the students.
# Where the metrics rank students differently, a score tuned to predict avg@k must do worse on the
# others; this is one reading of why the paper's correlations drop when it replaces avg@k by greedy
# or best-of-k (Figs. 11–12, chapter 6).
#
# ## 5.4 A stronger teacher is not always a better one
#
# The paper measures each teacher's own avg@16 on the test set and finds it correlates only weakly
# with the accuracy of the student it trains (Spearman {glue:text}`paper_fig1_teacher_rho:.2f` for
# Llama-1B on GSM8K): the strongest teacher, Llama-70B Instruct, yields a student
# {glue:text}`paper_strongest_teacher_gap:.3f` behind the best one. Here each teacher's own accuracy is measured the same way (its card: avg@k at
# temperature 1.0 on the test prompts); all temperatures of one teacher share that value. We also
# show the accuracy of the distillation generations themselves (`teacher_accuracy`, per
# temperature). CIs are percentile bootstraps over configurations.

# %%
tvs = A.spearman_table(pool, scores=["teacher_avg_at_k", "teacher_accuracy"], n_boot=n_boot, ci=ci, seed=seed)
tvs_i = tvs.set_index("score")
rho_t, lo_t, hi_t = (float(tvs_i.loc["teacher_avg_at_k", c]) for c in ("rho_oriented", "ci_low", "ci_high"))
strong = A.strongest_teacher(pool)
acc = A.per_prompt_matrix(study_dir, list(results["config"]))
gap_strong = A.prompt_bootstrap(acc, A.difference_stat(strong["overall_best_config"], strong["best_config"]),
                                n_boot=n_boot, seed=seed, ci=ci)
ch.figure("teacher_vs_student", P.plot_teacher_vs_student(pool))
tvs[["label", "n", "rho", "ci_low", "ci_high", "p_value"]].round(3)

# %%
v, rule = claims.verdict_at_most(rho_t, hi_t, weak_rho, partly=weak_rho)
ch.claim(id="teacher_vs_student_rho", claim="The teacher's own accuracy is a poor predictor of its student's avg@k: "
         "Spearman at most weak (§3.1; a negative value means stronger teachers give worse students)",
         paper=f"{claims.PAPER['fig1_teacher_rho']:.2f}", value=rho_t, ci_low=lo_t, ci_high=hi_t, verdict=v,
         rule=rule, glue_as="verdict_teacher")

# %% tags=["hide-input"]
ch.glue(rho_teacher=rho_t, rho_teacher_lo=lo_t, rho_teacher_hi=hi_t,
        rho_teacher_gen=float(tvs_i.loc["teacher_accuracy", "rho_oriented"]), strong_teacher=strong["teacher"],
        strong_teacher_acc=strong["teacher_value"], strong_student=strong["best_target"],
        best_student=strong["overall_best_target"], best_student_config=strong["overall_best_config"],
        strong_gap=gap_strong[0], strong_gap_lo=gap_strong[1], strong_gap_hi=gap_strong[2],
        weak_rho_txt=f"{weak_rho:g}")

# %% [markdown]
# ```{glue:figure} teacher_vs_student
# :name: "fig-05-teacher-student"
#
# Each teacher's own avg@k (x) against the avg@k of the student it trains (y); colour = family,
# marker = generation temperature. Spearman ρ = {glue:text}`rho_teacher:.2f`
# (95% CI {glue:text}`rho_teacher_lo:.2f` to {glue:text}`rho_teacher_hi:.2f`); paper:
# {glue:text}`paper_fig1_teacher_rho:.2f`.
# ```
#
# The strongest teacher here is **{glue:text}`strong_teacher`** (own avg@k
# {glue:text}`strong_teacher_acc:.3f`). Its best student — at its most favourable temperature —
# reaches {glue:text}`strong_student:.3f`, while the best student overall
# ({glue:text}`best_student_config`) reaches {glue:text}`best_student:.3f`: a gap of
# {glue:text}`strong_gap:.3f` (95% CI over test prompts {glue:text}`strong_gap_lo:.3f` to
# {glue:text}`strong_gap_hi:.3f`; the paper's example gap is
# {glue:text}`paper_strongest_teacher_gap:.3f`). The accuracy of the
# distillation generations themselves correlates with the student at ρ =
# {glue:text}`rho_teacher_gen:.2f`. Verdict on "the teacher's own performance correlates weakly
# with the student" — read as "it is a poor selection score": reproduced if the CI's upper end is at
# most {glue:text}`weak_rho_txt` (a negative correlation, stronger teachers giving worse students,
# counts as poor too): {glue:md}`verdict_teacher`.
#
# ## 5.5 Filtering for correctness (App. D.1, Fig. 15)
#
# The paper's students train on every generation, right or wrong. Appendix D.1 compares this with
# training only on correct responses (incorrect ones removed, correct ones resampled with
# replacement back to {glue:text}`paper_M` per prompt) and finds the **unfiltered** students better. The study runs
# this ablation for the temperatures listed under `filter_ablation.temperatures` in the profile,
# recording `student_avg_at_k_filtered`; the filtered students are trained by the same code
# (`TrainConfig(filter_correct=True)`, `grace.distill.filter_correct`).

# %%
filt, filt_all = A.filtering_table(pool), A.filtering_table(results)
diff = dlo = dhi = math.nan
v, rule = claims.verdict_bool(None, rule="needs student_avg_at_k_filtered (profile filter_ablation)")
if len(filt):
    diff, dlo, dhi = A.mean_ci(filt["difference"], n_boot=n_boot, seed=seed, ci=ci)
    holds = None if not np.isfinite(diff) else (bool(dlo > 0) if np.isfinite(dlo) else bool(diff > 0))
    v, rule = claims.verdict_bool(holds, partly=bool(diff > 0),
                                  rule="reproduced if the CI of mean(unfiltered − filtered avg@k) over configs is "
                                       "above 0; partly if the mean is above 0")
fig16 = A.filtered_score_rhos(pool) if len(filt) >= 3 else pd.DataFrame()  # Fig 16: filtered students tracked better?

# %%
ch.claim(id="d1_no_filtering_better", claim="Students trained without correctness filtering outperform students "
         "trained on filtered (correct-only) generations (App. D.1, Fig 15)", paper="unfiltered > filtered",
         value=diff, ci_low=dlo, ci_high=dhi, verdict=v, rule=rule, glue_as="verdict_filter")
display(filt.round(4) if len(filt) else Markdown("*(no filtered students in this study)*"))
fig16.round(3) if len(fig16) else None

# %% tags=["hide-input"]
if not len(filt):
    filt_md = (f"The {profile} profile ran no filtering ablation (its profile has no "
               "`filter_ablation.temperatures`, or no generations were correct), so there is no Fig. 15 "
               "here and the claim is recorded as *not testable*. The `full` and `gpu` profiles run it.")
else:
    filt_md = (f"The ablation covers {len(filt)} configurations. Unfiltered students are better in "
               f"{float((filt['difference'] > 0).mean()):.0%} of them; the mean advantage of not filtering is "
               f"{diff:+.3f} avg@k (95% CI {dlo:+.3f} to {dhi:+.3f}, bootstrap over configurations). Paper: "
               "unfiltered students outperform filtered ones.")
if len(fig16):
    filt_md += (" The second table is Fig. 16's question: the oriented Spearman ρ of GRACE, G-Var and G-Vendi "
                "with the unfiltered and with the filtered students of these configurations (the paper finds "
                "slightly higher correlations with the filtered ones).")
ch.md(filter_md=filt_md)

# %% [markdown]
# {glue:md}`filter_md` Verdict: {glue:md}`verdict_filter`.

# %%
if len(filt):
    display(Markdown("Student avg@k without (x) and with (y) correctness filtering, one point per configuration "
                     "(App. D.1, Fig. 15). Points below the diagonal favour training on everything."))
    ch.show(P.plot_filtering(filt), "filtering.png")

# %% [markdown]
# ## 5.6 Summary

# %% tags=["hide-input"]
ch.done({"profile": profile, "configurations": len(results), "pool": len(pool), "learning_rate": lr_profile,
         "median_steps": steps_mini, "lr_budget_paper": float(budget.iloc[0, 2]),
         "lr_budget_profile": float(budget.iloc[2, 2]), "rho_train_loss_vs_student": float(loss_tab["rho"].iloc[0]),
         "rho_greedy_vs_avg": float(corr.loc["avg@k", "greedy"]),
         "rho_best_of_k_vs_avg": float(corr.loc["avg@k", "best-of-k"]), "rho_teacher_vs_student": rho_t,
         "strongest_teacher": strong["teacher"], "strongest_teacher_gap": gap_strong[0],
         "filtering_mean_advantage": diff, "filtered_configs": len(filt_all), "checks": ch.checks,
         "claims": [c.__dict__ for c in ch.claims]})

# %% tags=["hide-input"]
teacher_summary = {
    "reproduced": "poorly, as in the paper — a stronger teacher is not a reliably better one here.",
    "partly": "poorly in the point estimate, but the CI cannot rule out a useful correlation.",
    "not reproduced": "better than the paper found: here the teacher's own accuracy does track the student.",
    "not testable": "not measurable on this profile (the teachers' accuracies or the students are constant).",
}[ch.claims[0].verdict]
ch.md(teacher_summary_md=f"{teacher_summary} (ρ = {F.number(rho_t, 'rho', ch.WHY)}; paper "
      f"{claims.PAPER['fig1_teacher_rho']:.2f}.)")
ch.glue(n_checks=len(ch.checks))
ch.ledger(["id", "paper", "value", "ci_low", "ci_high", "verdict", "rule"])

# %% [markdown]
# All {glue:text}`n_checks` pipeline checks hold (step counts follow the recipe, `done.json` agrees
# with `results.csv`, every student satisfies the avg@k/best-of-k inequalities). The claims above
# are in the ledger (chapter 9). What this chapter establishes for the next one: the students'
# avg@k is the ground truth GRACE has to predict, measured {glue:md}`recipe_md`. How well the teacher's own strength predicts it:
# {glue:md}`teacher_summary_md`


# %% [markdown]
# ## 5.7 Exercises
#
# Answers are checked with `grace.course.check(id, answer)`, which says right or wrong (and why) without showing the expected value. The coded ones run in seconds on a laptop CPU with the smoke world (`python book/build.py --profile smoke` builds it).

# %% [markdown]
# ::::{exercise} avg@k and best-of-k by hand
# :label: ch5-ex1
#
# A student answers 4 test prompts with $k=3$ samples each; the correctness matrix is
# `grace.course.CORRECTNESS_EXAMPLE`, rows = prompts: (✓ ✗ ✗), (✓ ✓ ✓), (✗ ✗ ✗), (✗ ✓ ✗). Compute
# best-of-k by hand (and avg@k for comparison).
# ::::
#
# ::::{solution-start} ch5-ex1
# :class: dropdown
# ::::
#
# avg@k is the mean over all 12 samples, $5/12\approx0.42$. best-of-k counts a prompt as solved when any of its
# $k$ samples is right: prompts 1, 2 and 4, so $3/4$. best-of-k ≥ avg@k always, which chapter 5 checks for
# every student.

# %% tags=["solution"]
from grace import course
from grace.evaluation import accuracy_metrics

assert course.check("ch5-ex1", 3 / 4)
accuracy_metrics(course.CORRECTNESS_EXAMPLE)

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} Does the most accurate teacher make the best student?
# :label: ch5-ex2
#
# In the main pool, find the configuration with the highest `teacher_accuracy` (ties: the first name in
# sort order) and compute the gap, in avg@k points, between the best student and that configuration's
# student.
# ::::
#
# ::::{solution-start} ch5-ex2
# :class: dropdown
# ::::
#
# A gap of 0 means the most accurate teacher also gives the best student. On the smoke world the students
# often tie, so the gap is usually 0 there; on the quick and full profiles it is the "stronger teacher is
# not always better" effect of §5.4.

# %% tags=["solution"]
from grace import course
from grace.analysis import main_pool

pool = main_pool(ch.results)
top = pool.sort_values(["teacher_accuracy", "config"], ascending=[False, True]).iloc[0]
gap_points = 100 * (pool["student_avg_at_k"].max() - top["student_avg_at_k"])
assert course.check("ch5-ex2", gap_points, study_dir=ch.study_dir)

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} Filtering for correctness
# :label: ch5-ex3
#
# §5.5 keeps only a teacher's correct responses before distilling. Give two reasons why this can fail to
# help the student, or even hurt it.
# ::::
#
# ::::{solution} ch5-ex3
# :class: dropdown
#
# (1) It shrinks the training set, most for the weakest teachers, so the students see fewer and less varied
# examples. (2) It keeps the teacher's *style* (format, length, reasoning pattern), which the student may
# fit badly whatever the answers' correctness; the paper's point is that how well the student can absorb the
# data matters more than its accuracy (App. D.1). (3) Correct answers with wrong reasoning stay in, so the
# filter is noisier than it looks.
# ::::
