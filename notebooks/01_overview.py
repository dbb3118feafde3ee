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
# # 1. Overview and quickstart
#
# **The problem.** Distillation trains a small *student* language model on text sampled from a
# larger *teacher*. Many teachers are available, and the obvious choice — the strongest one — is
# often not the best: "a stronger-performing model is not always a better teacher" (paper §1). Finding
# out the usual way means generating a distillation set from every candidate, fine-tuning the student
# on each, and evaluating every student. The paper asks whether this can be predicted cheaply:
#
# > *Given a pool of candidates, can we efficiently identify the best teacher for a given student and task?*
#
# **The score, in one paragraph.** GRACE looks only at the *student's* gradients on a small sample of
# each teacher's generations: $n$ prompts with $m$ responses each, no verifier, no teacher logits, no
# test data. Each response $\mathbf y$ to a prompt $\mathbf x$ gives a processed gradient
# $\mathbf h(\mathbf x,\mathbf y)=\log|\mathbf y|\cdot\Pi\,\nabla\mathcal L(\mathbf y\mid\mathbf x;\Theta_S)$
# (a random projection $\Pi$ to $d$ dimensions, rescaled by the log of the response length). The
# prompts are split into $C$ folds; the gradients of each held-out fold $\mathcal D_i$, centred, are
# measured in the geometry of the *other* folds' normalised gradient second moment
# $\mathbf M(\mathcal D_{-i})=\tilde\Sigma(\mathcal D_{-i})+\frac{\nu}{d}I$ (paper eq. 4):
#
# $$\mathrm{GRACE}(\mathcal D)=\frac{1}{nm}\sum_{i=1}^{C}
#   \operatorname{Tr}\!\Big(\mathbf G_\mu(\mathcal D_i)\,\mathbf M(\mathcal D_{-i})^{-1}\,
#   \mathbf G_\mu(\mathcal D_i)^\top\Big).$$
#
# It is a gradient *variance* weighted by the inverse spectrum of the gradient directions: variance
# along directions the rest of the data rarely visits costs the most ({prf:ref}`lem-spectral`). **Lower
# is better.** Chapter 4 derives it and its link to leave-one-out conditional mutual information (the
# bound of {prf:ref}`thm-lemma-b1`, whose data-dependent part is GRACE by {prf:ref}`lem-c-equals-n`);
# chapters 3 and 5 build the inputs.
#
# **How this book checks it.** The paper's experiment (15 teachers × 8 temperatures, 1B–3B students on
# GSM8K/MATH) needs GPUs. This book runs the *same pipeline* in a **miniature world**: tiny Llama
# models trained from scratch on a synthetic GSM-style task, where a teacher is a small model
# fine-tuned to answer in one solution *style* — so the whole study (generate, score, distil,
# evaluate) runs on a CPU. The `gpu` profile runs it with the paper's Hub models instead. This chapter
# introduces the world and shows the one command a practitioner runs, `grace rank`.

# %% tags=["parameters"]
profile = "smoke"
out_dir = "artifacts/smoke/notebooks/01_overview"
rank_temperature = None  # sampling temperature whose generations are ranked (None: the highest)
rank_teacher_names = None  # teachers to rank (None: the first max_rank_teachers of the study)
max_rank_teachers = 4
rank_n = None  # prompts in the scoring subset (None: the study profile's features.n)
rank_m = None  # responses per prompt (None: features.m)
rank_d = None  # projection dimension (None: features.d)
rank_folds = None  # C (None: the profile's scores.n_folds)
rank_nu = None  # smoothing ν (None: the profile's scores.nu)
batch_size = 8
seed = 0

# %% tags=["hide-input"]
import contextlib
import io
import shlex
import warnings

import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from scipy.stats import spearmanr

from grace import analysis as A
from grace import cli, rank
from grace import plots as P
from grace.notebook import Chapter

# %% tags=["hide-input"]
ch = Chapter("01_overview", profile, out_dir)  # runs (or reuses) the profile's study
results, study_dir, prof = ch.results, ch.study_dir, ch.prof
ch.note()
print(f"study: {study_dir} ({len(results)} teacher × temperature configurations)")

# %% [markdown]
# {glue:md}`profile_note`
#
# ## 1.1 The miniature world
#
# The study of this profile was run (or reused from its cache) by `grace.study.ensure_study`.
# {glue:md}`study_log:myst` Its
# teachers, with their own accuracy on held-out test problems ("avg@k": mean accuracy of $k$ sampled
# answers per problem, paper §2), are listed below from the study's teacher cards
# (`study_dir/cards/*/done.json`).

# %%
order = list(dict.fromkeys(results.teacher))  # the profile's teacher order
cards = A.teacher_cards(study_dir, order)
if ch.miniature:  # the model shapes of the miniature world, and each teacher's solution style
    display(pd.DataFrame(prof["world"]["sizes"]).T.rename_axis("size"))
    styles = results.drop_duplicates("teacher").set_index("teacher")["style"]
    cards.insert(1, "style", styles.reindex(cards.index).values)
cards

# %% tags=["hide-input"]
student_path, student_params = ch.student_path, A.format_params(ch.student_params)
if ch.miniature:
    size = prof["world"]["student"]
    pre = prof["world"]["pretrain"]
    mix = ", ".join(f"`{k}` {v:.0%}" for k, v in (pre.get("worked_mix") or {}).items())
    corpus = (f"short narratives and arithmetic facts, {pre['worked_share']:.0%} of them worked solutions in "
              f"the surface forms of solution text in the wild ({mix})" if pre.get("worked_share")
              else "arithmetic facts and short narratives that contain no teacher style")
    ch.md(world_md=f"The student is the pretrained base model of size **{size}** ({student_params} parameters, "
          f"pretrained for {pre['steps'][size]} steps on {corpus}). Each teacher is a base model fine-tuned to "
          "answer in one solution style (chapter 2); the teacher called `student` is the student itself "
          "(self-distillation).")
else:
    ch.md(world_md=f"This is the `gpu` profile: the student is the Hub model `{student_path}` "
          f"({student_params} parameters) and the teachers are the Hub models below.")
ch.glue(n_teachers=len(cards), n_temperatures=len(prof["temperatures"]), n_configs=len(results))

# %% [markdown]
# {glue:md}`world_md`
#
# Every one of the {glue:text}`n_teachers` teachers generates a distillation set at each of
# {glue:text}`n_temperatures` temperatures, giving {glue:text}`n_configs` configurations; for each
# configuration the study distils a fresh copy of the student and measures its avg@k. This "ground
# truth" is what GRACE has to predict before any distillation is run.

# %%
best_per_teacher = results.groupby("teacher").student_avg_at_k.max()
own = cards["own avg@k"]
strongest = own.index[np.argmax(own.values)]
best_teacher = best_per_teacher.index[np.argmax(best_per_teacher.values)]
pd.DataFrame({"teacher's own avg@k": own, "best student avg@k over temperatures": best_per_teacher})

# %% tags=["hide-input"]
ch.md(strongest_teacher=f"`{strongest}`", best_teacher=f"`{best_teacher}`")
ch.glue(strongest_own=float(own.max()), best_student=float(best_per_teacher.max()),
        strongest_student=float(best_per_teacher.get(strongest, np.nan)))
if best_per_teacher.nunique() <= 1:
    ch.md(strongest_note="Here every student reaches the same avg@k, so this profile cannot tell teachers apart "
          "(expected for the `smoke` profile, whose models are barely trained).")
elif strongest == best_teacher:
    ch.md(strongest_note="In this world the strongest teacher also gives the best student.")
else:
    ch.md(strongest_note="In this world, as in the paper, the strongest teacher is **not** the one that gives the "
          "best student.")

# %% [markdown]
# The strongest teacher on its own is {glue:md}`strongest_teacher` (avg@k
# {glue:text}`strongest_own:.3f`); its best student reaches {glue:text}`strongest_student:.3f`, while
# the best student overall, {glue:text}`best_student:.3f`, comes from {glue:md}`best_teacher`.
# {glue:md}`strongest_note` Chapter 6 quantifies how well the teacher's own accuracy predicts the
# student, across all configurations.
#
# ## 1.2 Quickstart: ranking teachers with `grace rank`
#
# A practitioner has a student and one generations file per candidate teacher (JSON lines with
# `prompt_id`, `prompt`, `response`, optionally `correct`). `grace rank` computes the student's
# gradient features on an $n\times m$ subset of each file, every score, and a table ranked by GRACE.
# Here the candidates are a few of the study's teachers at one temperature, and the student is the
# study's student. Blank responses cannot be scored, so they are dropped first, keeping the prompts
# that still have $m$ responses from every candidate.

# %%
fcfg, scfg = prof["features"], prof["scores"]
n_, m_, d_ = int(rank_n or fcfg["n"]), int(rank_m or fcfg["m"]), int(rank_d or fcfg["d"])
C_ = int(rank_folds or scfg["n_folds"])
nu_ = float(rank_nu if rank_nu is not None else scfg["nu"])
T_rank = float(rank_temperature if rank_temperature is not None else max(prof["temperatures"]))
names = list(rank_teacher_names) if rank_teacher_names else order[:max_rank_teachers]
gen_files = rank.rank_candidates(study_dir, results.config, names, T_rank, m_, n_, ch.out)  # blank responses dropped

# %%
rank_out, device = ch.out / "rank", prof.get("device", "cpu")
table = rank.rank_teachers(student_path, {t: str(f) for t, f in gen_files.items()}, rank_out, n=n_, m=m_, d=d_,
                           n_folds=C_, nu=nu_, seed=seed, template=prof["template"], batch_size=batch_size,
                           device=device, progress=False, plot=True)

# %%
args = ["grace", "rank", "--student", student_path]
for t, f in gen_files.items():
    args += ["--teacher", f"{t}={f}"]
args += ["--n", str(n_), "--m", str(m_), "--d", str(d_), "--n-folds", str(C_), "--nu", f"{nu_:g}",
         "--template", prof["template"], "--batch-size", str(batch_size), "--device", device,
         "--seed", str(seed), "--out", str(rank_out)]
command = " ".join(shlex.quote(a) for a in args)
display(Markdown(f"```bash\n{command}\n```"))

# %% [markdown]
# The cell above called the Python API, `grace.rank.rank_teachers(student, {name: file}, out, ...)`;
# the printed shell command is its equivalent. To show they agree, the command is run below through
# the CLI entry point (`grace.cli.main`). It finds the features the API call just saved (same inputs,
# same fingerprint), so only the scores are recomputed; the two tables must match.

# %%
with contextlib.redirect_stdout(io.StringIO()) as cli_stdout:
    rc = cli.main(args[1:])
cli_table = pd.read_csv(rank_out / "ranking.csv", index_col="teacher")
if rc != 0 or list(cli_table.index) != list(table.index) or not np.allclose(
        cli_table["grace"], table["grace"], rtol=1e-10, equal_nan=True):
    raise AssertionError(f"`grace rank` (rc={rc}) disagrees with rank_teachers:\n{cli_stdout.getvalue()}")
cli_table  # the command's ranking.csv: the same ranking as the API call

# %% [markdown]
# Next to GRACE's ranking, the truth from the study: the avg@k of the student actually distilled on
# each teacher's full distillation set at this temperature, and the study's own GRACE (computed on its
# scoring subset with another projection seed, so the values differ slightly).

# %%
truth = results[results.temperature == T_rank].set_index("teacher")
ranked = pd.DataFrame({
    "GRACE rank": table["rank"],
    "GRACE (grace rank)": table["grace"],
    "GRACE (study)": truth["grace"].reindex(table.index),
    "student avg@k": truth["student_avg_at_k"].reindex(table.index),
    "teacher's own avg@k": truth["teacher_avg_at_k"].reindex(table.index),
}).rename_axis("teacher")
ranked["student rank"] = ranked["student avg@k"].rank(ascending=False, method="min").astype(int)

# %%
with warnings.catch_warnings():  # constant columns (smoke) give NaN correlations, reported as such
    warnings.simplefilter("ignore")
    rho_rank = spearmanr(-ranked["GRACE (grace rank)"], ranked["student avg@k"]).statistic
    rho_study = spearmanr(ranked["GRACE (grace rank)"], ranked["GRACE (study)"]).statistic
pick = ranked.index[0]
gap = float(ranked["student avg@k"].max() - ranked.loc[pick, "student avg@k"])
ch.glue(rank_T=T_rank, rank_n=n_, rank_m=m_, rank_d=d_, rank_gap=gap, rank_rho=float(rho_rank),
        rank_rho_study=float(rho_study), rank_k=len(ranked))
ch.md(rank_pick=f"`{pick}`")

# %% tags=["hide-input"]
if ranked["student avg@k"].nunique() <= 1:
    ch.md(rank_verdict="all these students score the same here, so there is nothing to pick (smoke profile)")
elif gap == 0:
    ch.md(rank_verdict="GRACE's first choice is also the teacher whose student is best")
else:
    ch.md(rank_verdict="GRACE's first choice is not the best teacher here")
if not np.isfinite(rho_study):
    ch.md(rank_stable="cannot be compared by rank here (constant values)")
elif rho_study >= 0.8:
    ch.md(rank_stable=f"agree with the study's own GRACE to a rank correlation of {rho_study:.2f} despite the "
          "different subset and projection: the ranking does not hinge on the particular draw")
else:
    ch.md(rank_stable=f"agree with the study's own GRACE only to a rank correlation of {rho_study:.2f}: with this "
          "few prompts the subset and the projection still move the ranking (the ablations chapter varies n, m, d)")

# %%
ch.show(P.plot_rank_vs_student(ranked, T_rank), "rank_vs_student.png")
ranked.round(4)

# %% [markdown]
# GRACE ranks the {glue:text}`rank_k` teachers at temperature {glue:text}`rank_T` from
# $n=${glue:text}`rank_n` prompts × $m=${glue:text}`rank_m` responses, projected to
# $d=${glue:text}`rank_d`, and picks {glue:md}`rank_pick`: {glue:md}`rank_verdict` (gap to the
# best student {glue:text}`rank_gap:.3f` avg@k; Spearman correlation between −GRACE and the student's
# avg@k over these teachers {glue:text}`rank_rho:.2f`, which with so few teachers is an illustration,
# not evidence). The `grace rank` values {glue:md}`rank_stable`. Chapter 6 measures the correlation
# over every configuration, with confidence intervals.
#
# ## 1.3 Map of the book
#
# | chapter | what it shows |
# |---|---|
# | 2. Generation | the task, the teachers, sampling at temperatures |
# | 3. Gradient features | response-only per-sample gradients, the $\log|\mathbf y|$ rescaling, the random projection |
# | 4. Derivation | eqs. 1–6 and the CMI argument, checked numerically |
# | 5 onward | the scores on the study, correlations with the distilled students, temperature and size guidance, ablations, and the claims ledger |

# %% tags=["hide-input"]
ch.done({"profile": profile, "study_dir": str(study_dir), "teachers": list(cards.index),
         "rank_temperature": T_rank, "rank_teachers": names, "n": n_, "m": m_, "d": d_, "n_folds": C_,
         "nu": nu_, "command": command, "ranking": ranked.reset_index().to_dict(orient="records"),
         "spearman_rank_vs_student": float(rho_rank), "gap": gap})

# %% [markdown]
# **Summary.** The teacher pool of this profile, the student it distils into, and a first ranking with
# `grace rank` next to the students actually distilled. Everything above was computed by the package
# from the study's files; the same command works on any student and any set of generations files.


# %% [markdown]
# ## 1.4 Exercises
#
# Answers are checked with `grace.course.check(id, answer)`, which says right or wrong (and why) without showing the expected value. The coded ones run in seconds on a laptop CPU with the smoke world (`python book/build.py --profile smoke` builds it).

# %% [markdown]
# ::::{exercise} GRACE's pick
# :label: ch1-ex1
#
# Using the study's results table (`ch.results`, or `artifacts/smoke/study/results.csv`), find the
# configuration of the main pool (`grace.analysis.main_pool`) that GRACE ranks best. Remember which
# direction is better.
# ::::
#
# ::::{solution-start} ch1-ex1
# :class: dropdown
# ::::
#
# GRACE is a variance weighted by the inverse spectrum: **lower is better**
# (`grace.scores.SCORE_ORIENTATION["grace"]` is −1). So the pick is the row with the smallest score.

# %% tags=["solution"]
from grace import course
from grace.analysis import main_pool

pool = main_pool(ch.results)
pick = pool.loc[pool["grace"].idxmin(), "config"]  # lowest GRACE = best teacher
assert course.check("ch1-ex1", pick, study_dir=ch.study_dir)

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} GRACE against G-Var
# :label: ch1-ex2
#
# *Predict first*: G-Var (eq. 3) measures the plain spread of the gradients, GRACE the spread weighted
# by the inverse spectrum. Should they rank the configurations alike? Then compute the Spearman
# correlation of the two columns over the main pool.
# ::::
#
# ::::{solution-start} ch1-ex2
# :class: dropdown
# ::::
#
# Both grow with the spread of the rows, so a positive ρ is expected; they part where the spread lies in
# directions the other folds rarely visit, which GRACE weights up ({prf:ref}`lem-spectral`). On the
# smoke world the pool is tiny, so read the number as an illustration only.

# %% tags=["solution"]
from scipy.stats import spearmanr

from grace import course
from grace.analysis import main_pool

pool = main_pool(ch.results)
rho = spearmanr(pool["grace"], pool["g_var"]).statistic
assert course.check("ch1-ex2", rho, study_dir=ch.study_dir)

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} Reading the ranking figure
# :label: ch1-ex3
#
# Look at the figure of §1.2 (the `grace rank` ranking against the students actually distilled). What
# would the figure look like for a score that ranked the teachers perfectly? For one that ranked them
# backwards? What does a flat row of students (all the same avg@k) tell you about the correlation?
# ::::
#
# ::::{solution} ch1-ex3
# :class: dropdown
#
# A perfect score puts the points on a monotone curve: the best-ranked teacher's student is the best
# student, and so on (Spearman ρ = 1 after orienting the score). A backwards score gives the mirror image
# (oriented ρ = −1). If every student has the same avg@k, the ranking of the students is a tie and the
# correlation is undefined: the book prints *not measured here* rather than a number. That is what the
# smoke world often shows; the quick and full profiles distil students that differ.
# ::::
