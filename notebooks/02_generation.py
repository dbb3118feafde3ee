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
# # 2. The task, the teachers, and sampling at temperatures
#
# Distillation in the paper (§2) works on text only: for each of $N$ training prompts $\mathbf x$ a
# teacher $\pi_{\mathcal T}$ generates $M$ responses $\mathbf y_1,\dots,\mathbf y_M$ — the
# distillation set $\mathcal D^{\text{distill}}_{\mathcal T}$ — and the student is fine-tuned on all
# of them with the ordinary next-token cross-entropy, whether the final answer is right or not. "This
# distribution encodes the temperature": the same model sampled at $\tau=0.3$ and at $\tau=1.0$ is two
# different teachers, and the paper sweeps $\tau$ from 0.3 to 1.0 (§3, "Settings"). Performance, for
# teachers and students alike, is *avg@k*: the accuracy of $k$ sampled answers per test problem,
# averaged.
#
# This chapter looks at the inputs of the study: the task, the teacher pool, and what the teachers'
# generations look like as the temperature changes. Everything is read from the study's files; the
# task comes from `grace.tasks` and its solution styles from `grace.synthetic`.

# %% tags=["parameters"]
profile = "smoke"
out_dir = "artifacts/smoke/notebooks/02_generation"
n_examples = 3  # task examples shown in 2.1
example_seed = 0
n_style_problems = 200  # problems used to measure each style's length and correctness
n_show_prompts = 1  # prompts whose generations are shown at the lowest and highest temperature
max_records_per_config = None  # cap on responses tokenised per configuration (None: all)
seed = 0

# %% tags=["hide-input"]
import random

from IPython.display import display

from grace import analysis as A
from grace import data, synthetic
from grace import plots as P
from grace.notebook import Chapter, text_block
from grace.study import make_task
from grace.world import load_tokenizer

# %% tags=["hide-input"]
ch = Chapter("02_generation", profile, out_dir)  # runs (or reuses) the profile's study
results, study_dir, prof = ch.results, ch.study_dir, ch.prof
task = make_task(prof["task"])
temps = sorted(float(t) for t in prof["temperatures"])
T_lo, T_hi = temps[0], temps[-1]
teachers = list(dict.fromkeys(results.teacher))
tokenizer = load_tokenizer(study_dir / "world" / "tokenizer" if ch.miniature else prof["models"]["student"])
ch.note()
print(f"study: {study_dir}; task: {prof['task']}; temperatures {temps}; teachers {teachers}")

# %% [markdown]
# {glue:md}`profile_note`
#
# ## 2.1 The task
#
# The paper distils on GSM8K and MATH. The miniature world replaces them with a procedurally
# generated GSM-style task (`grace.tasks.SyntheticTask`): a person starts with some items, a few
# exact integer steps ($+,-,\times,\div$) change the count (the profile sets how many: two in the
# default world), and the question asks for the final number. Answers end with a GSM8K-style `#### N`
# line and are checked by extracting that number. Each miniature teacher is trained to write solutions
# in one **style**. The first group (`grace.synthetic.STYLES`) are the forms of solution text in the
# wild: `calc` is the GSM8K reference format with calculator annotations, `verbose` explains each step,
# `terse` writes bare equations, `answer` gives only the number, and `slip` is the calculator format
# with occasional arithmetic slips that propagate — a fluent but unreliable teacher. The second group
# (`grace.synthetic.FIT_STYLES`) are the strong-teacher world's families, each always right but each
# changing one property that makes a solution harder for a small student to learn from: `fused` writes
# the whole computation in one expression, `prefix` uses function notation the student rarely read,
# `distract` adds sentences that play no part in the answer, and `resfirst` writes each result before
# the operation that produces it. The styles this study's teachers write are marked below.

# %%
if ch.miniature:
    used_styles = set(results["style"])
    for p in task.problems("train", n_examples, seed=example_seed):
        print(f"PROBLEM ({p.n_steps} step{'s' if p.n_steps > 1 else ''}, answer {p.answer}): {p.question}")
        for style in list(synthetic.STYLES) + list(synthetic.FIT_STYLES):
            print(f"  [{style}]" + ("  <- a teacher of this study" if style in used_styles else ""))
            print(text_block(synthetic.render_solution(p, style), indent="    "))
        print()

# %%
if not ch.miniature:
    gsm_path = prof["task"].get("path")
    if gsm_path is None and (data.default_data_dir() / "gsm8k").is_dir():
        gsm_path = data.default_data_dir() / "gsm8k"
    for r in random.Random(example_seed).sample(data.load_gsm8k("train", gsm_path), n_examples):
        print(f"PROBLEM {r['prompt_id']} (answer {r['answer']}): {r['prompt']}")
        print("  [reference solution]")
        print(text_block(r["reference_solution"], indent="    "))
        print()

# %% [markdown]
# How long is each style, and how often is a perfectly executed style right? Lengths are counted
# with the student's tokenizer (the unit of the gradient features of chapter 3).

# %%
if ch.miniature:
    style_problems = task.problems("train", n_style_problems, seed=example_seed + 1)
    style_table = synthetic.style_table(task, tokenizer, style_problems, random.Random(seed))
    display(style_table.round(3).assign(**{"a teacher here": ["yes" if s in used_styles else ""
                                                               for s in style_table.index]}))

# %% tags=["hide-input"]
if ch.miniature:
    slip = float(style_table.loc["slip", "correct"])
    ch.md(style_note="Every style but `slip` is always right when written out faithfully; the `slip` style is "
          f"right on {slip:.0%} of these problems. Style lengths differ several-fold, which matters for the "
          "gradient features (chapter 3).")
else:
    slip = float("nan")
    ch.md(style_note="GSM8K reference solutions are the only 'style' here; the teachers are instruct models "
          "with their own formats.")
ch.glue(slip_correct=slip)

# %% [markdown]
# {glue:md}`style_note`
#
# ## 2.2 The teacher pool
#
# The study's teachers, with their own avg@k on the test problems (from the teacher cards) and the
# accuracy of the responses they generated for distillation, averaged over temperatures.

# %%
A.generation_pool(results, study_dir)

# %% [markdown]
# ## 2.3 Sampling at temperatures
#
# Sampling is pure temperature sampling (no top-$k$ or top-$p$; `grace.generation`). Below, the first
# responses of every teacher to the same prompt at the lowest and the highest temperature of this
# profile.

# %%
gens = A.load_generations(study_dir, results.config)  # config -> records
first = gens[results.config.iloc[0]]
for pid in list(dict.fromkeys(r["prompt_id"] for r in first))[:n_show_prompts]:
    print(f"PROMPT {pid}: {next(r for r in first if r['prompt_id'] == pid)['prompt']}\n")
    for t in teachers:
        for T in (T_lo, T_hi):
            r0 = min((r for r in gens[f"{t}@{T:g}"] if r["prompt_id"] == pid), key=lambda r: r.get("sample", 0))
            print(f"  {t} @ T={T:g}  ({'correct' if r0.get('correct') else 'wrong'})")
            print(text_block(r0["response"], indent="      "))
        print()

# %% [markdown]
# ## 2.4 Teacher accuracy against temperature
#
# The accuracy of the distillation responses themselves (`teacher_accuracy` in the results table:
# the fraction of a configuration's $N\times M$ responses that are correct).

# %%
acc = results.pivot(index="temperature", columns="teacher", values="teacher_accuracy")[teachers]
ch.show(P.plot_teacher_accuracy(acc, teachers), "teacher_accuracy_vs_temperature.png")
acc.round(3)

# %% tags=["hide-input"]
non_self = [t for t in teachers if not results.loc[results.teacher == t, "is_self"].iloc[0]] or teachers
drop = acc.loc[T_lo, non_self] - acc.loc[T_hi, non_self]
ch.glue(acc_lo=float(acc.loc[T_lo, non_self].mean()), acc_hi=float(acc.loc[T_hi, non_self].mean()),
        T_lo=T_lo, T_hi=T_hi, n_acc_drop=int((drop > 0).sum()), n_non_self=len(non_self))

# %% [markdown]
# Averaged over the non-self teachers, the responses are correct {glue:text}`acc_lo:.1%` of the time
# at $\tau=${glue:text}`T_lo` and {glue:text}`acc_hi:.1%` at $\tau=${glue:text}`T_hi`; accuracy is
# lower at the highest temperature for {glue:text}`n_acc_drop` of the {glue:text}`n_non_self`
# teachers. Sampling hotter generally trades accuracy for diversity, the trade-off GRACE is meant to
# arbitrate (a later chapter asks whether it picks the right temperature).
#
# ## 2.5 Response length against temperature
#
# Lengths $|\mathbf y|$ in student tokens (the tokenizer of the gradient features), and the share of
# responses that contain a GSM8K-style final answer line `#### N` at all (answer checking falls back
# to the last number in the text when it is missing).

# %%
budget = int(prof["generation"]["max_new_tokens"])
lens = A.length_table(gens, results, tokenizer, budget, max_records_per_config, seed=seed)
ch.show(P.plot_length_vs_temperature(lens, teachers), "length_vs_temperature.png")
lens.pivot(index="teacher", columns="temperature", values="mean length").loc[teachers].round(1)

# %% tags=["hide-input"]
by_T = lens.groupby("temperature")[["mean length", "at budget", "has final answer"]].mean()
ch.glue(len_lo=float(by_T.loc[T_lo, "mean length"]), len_hi=float(by_T.loc[T_hi, "mean length"]),
        fmt_lo=float(by_T.loc[T_lo, "has final answer"]), fmt_hi=float(by_T.loc[T_hi, "has final answer"]),
        budget_hi=float(by_T.loc[T_hi, "at budget"]), max_new_tokens=budget)
ch.md(tok_note="Teachers and student share one tokenizer in the miniature world, so 'at budget' is exact."
      if ch.miniature else "The teachers' tokenizers differ from the student's, so 'at budget' (in student "
      "tokens) is only indicative.")

# %% [markdown]
# Averaged over all teachers, responses are {glue:text}`len_lo:.1f` tokens long at
# $\tau=${glue:text}`T_lo` and {glue:text}`len_hi:.1f` at $\tau=${glue:text}`T_hi`; the share that
# ends in a `#### N` answer goes from {glue:text}`fmt_lo:.1%` to {glue:text}`fmt_hi:.1%`, and
# {glue:text}`budget_hi:.1%` of the responses at the highest temperature reach the generation budget
# of {glue:text}`max_new_tokens` tokens (they were cut off). {glue:md}`tok_note` Length matters
# beyond cost: the student's gradient norm depends on it, which is why the paper rescales gradients
# by $\log|\mathbf y|$ (chapter 3).
#
# ## 2.6 Blank responses
#
# A response that is empty or whitespace-only has no token to learn from and no gradient to score.
# The study suppresses the end-of-sequence token for the first few generated tokens
# (`generation.min_new_tokens`), counts the blank responses that remain (`empty_responses` in the
# results table) and skips them in scoring (`grace.study.scoring_subset`) and in distillation. The
# counts are re-derived from the generation files below and must match the table.

# %%
blank = A.blank_table(gens, results)  # raises if the files and results.csv disagree
ch.glue(n_blank=int(blank["blank (files)"].sum()), n_responses=int(blank["responses"].sum()),
        max_blank_share=float(blank["share"].max()))
blank[blank["blank (files)"] > 0] if (blank["blank (files)"] > 0).any() else blank.head(len(blank))

# %% [markdown]
# Of {glue:text}`n_responses` generated responses, {glue:text}`n_blank` are blank (at most
# {glue:text}`max_blank_share:.1%` of any configuration), and the counts in the results table match
# the files.

# %% tags=["hide-input"]
ch.done({"profile": profile, "study_dir": str(study_dir), "temperatures": temps,
         "teacher_accuracy": acc.reset_index().to_dict(orient="records"),
         "lengths": lens.to_dict(orient="records"), "blank": blank.reset_index().to_dict(orient="records")})

# %% [markdown]
# **Summary.** The task, the styles that make the miniature teachers differ, and the study's
# distillation sets as the temperature changes: accuracy, length, answer format and blank responses,
# all read from the generation files. Whether any of this predicts the distilled student is the
# subject of chapter 6 and the chapters after it; chapter 3 turns the responses into the student's gradient features.


# %% [markdown]
# ## 2.7 Exercises
#
# Answers are checked with `grace.course.check(id, answer)`, which says right or wrong (and why) without showing the expected value. The coded ones run in seconds on a laptop CPU with the smoke world (`python book/build.py --profile smoke` builds it).

# %% [markdown]
# ::::{exercise} Which temperature makes the teachers more accurate?
# :label: ch2-ex1
#
# From the results table, average `teacher_accuracy` over the main-pool teachers at each temperature
# and answer with the temperature that has the higher mean.
# ::::
#
# ::::{solution-start} ch2-ex1
# :class: dropdown
# ::::
#
# A group-by over the temperature column of the main pool, then the index of the largest mean.
# Lower temperatures usually make a teacher more accurate (less random sampling), but the miniature
# teachers are small, so check rather than assume.

# %% tags=["solution"]
from grace import course
from grace.analysis import main_pool

acc_by_T = main_pool(ch.results).groupby("temperature")["teacher_accuracy"].mean()
assert course.check("ch2-ex1", float(acc_by_T.idxmax()), study_dir=ch.study_dir)

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} The limit of zero temperature
# :label: ch2-ex2
#
# By hand: as the temperature goes to 0, all $m$ generations of a prompt become the same greedy response.
# What happens then to (a) the within-prompt part of G-Var, (b) GRACE with one prompt per fold and fold
# centring, and (c) GRACE with $C<n$ folds?
# ::::
#
# ::::{solution} ch2-ex2
# :class: dropdown
#
# (a) Every row of a prompt equals the prompt's mean, so the within-prompt spread is 0; G-Var keeps only the
# spread of the prompt means. (b) With $C=n$ a fold is one prompt; fold centring subtracts the prompt mean
# from identical rows, so every centred row is 0 and the score is 0 (the $m=1$ case of
# {prf:ref}`lem-c-equals-n`). (c) With fewer folds, a fold holds several prompts, and eq. 4 still sees the
# spread between the prompts of a fold: the score does not vanish, but it no longer measures anything about
# sampling diversity.
# ::::

# %% [markdown]
# ::::{exercise} Reading the accuracy figure
# :label: ch2-ex3
#
# In the figure of §2.4 (teacher accuracy against temperature), which teacher's accuracy changes fastest
# with temperature? If you had to pick one temperature for every teacher, what would the figure tell you,
# and what would it not?
# ::::
#
# ::::{solution} ch2-ex3
# :class: dropdown
#
# Read the slope of each line between the temperatures; the steepest one is the teacher whose samples
# degrade fastest. The figure tells you how accurate each teacher's *distillation data* is; it does not tell
# you which data makes the best *student* — that is chapter 6's question, and in the paper accuracy alone
# predicts the student poorly (chapter 5, §5.4).
# ::::
