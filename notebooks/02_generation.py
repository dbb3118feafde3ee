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
# task and its solution styles come from `grace.tasks`.

# %% tags=["parameters"]
profile = "smoke"
out_dir = "artifacts/smoke/notebooks/02_generation"
n_examples = 3  # task examples shown in 2.1
example_seed = 0
n_style_problems = 200  # problems used to measure each style's length and correctness
n_show_prompts = 1  # prompts whose generations are shown at the lowest and highest temperature
max_records_per_config = None  # cap on responses tokenised per configuration (None: all)
seed = 0

# %%
import random
import re
import textwrap
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from grace import analysis, data, plots, synthetic, tasks
from grace.io import read_json, read_jsonl, write_json
from grace.notebook import profile_note
from grace.study import ensure_study, make_task
from grace.world import load_tokenizer

t_start = time.time()
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
results, study_dir = ensure_study(profile)
prof = read_json(study_dir / "profile.json")
miniature = "world" in prof
task = make_task(prof["task"])
temps = sorted(float(t) for t in prof["temperatures"])
T_lo, T_hi = temps[0], temps[-1]
teachers = list(dict.fromkeys(results.teacher))
tok_path = study_dir / "world" / "tokenizer" if miniature else prof["models"]["student"]
tokenizer = load_tokenizer(tok_path)
print(f"study: {study_dir}; task: {prof['task']}; temperatures {temps}; teachers {teachers}")
glue("profile_note", Markdown(profile_note(profile)), display=False)


def show(text: str, indent: str = "    ") -> str:
    """A response as an indented block (newlines kept, long lines wrapped)."""
    lines = [textwrap.fill(line, 100, subsequent_indent="  ") or "" for line in text.split("\n")]
    return textwrap.indent("\n".join(lines), indent) if text.strip() else indent + "(blank)"


# %% [markdown]
# {glue:md}`profile_note`
#
# ## 2.1 The task
#
# The paper distils on GSM8K and MATH. The miniature world replaces them with a procedurally
# generated GSM-style task (`grace.tasks.SyntheticTask`): a person starts with some items, 1–4
# exact integer steps ($+,-,\times,\div$) change the count, and the question asks for the final
# number. Answers end with a GSM8K-style `#### N` line and are checked by extracting that number.
# Each miniature teacher is trained to write solutions in one **style** (`grace.synthetic.STYLES`):
# `calc` is the GSM8K reference format with calculator annotations, `verbose` explains each step,
# `terse` writes bare equations, `answer` gives only the number, and `slip` is the calculator format
# with occasional arithmetic slips that propagate — a fluent but unreliable teacher.

# %%
if miniature:
    problems = task.problems("train", n_examples, seed=example_seed)
    for p in problems:
        print(f"PROBLEM ({p.n_steps} step{'s' if p.n_steps > 1 else ''}, answer {p.answer}): {p.question}")
        for style in synthetic.STYLES:
            print(f"  [{style}]")
            print(show(synthetic.render_solution(p, style), indent="    "))
        print()
else:
    gsm_path = prof["task"].get("path")
    if gsm_path is None and (data.default_data_dir() / "gsm8k").is_dir():
        gsm_path = data.default_data_dir() / "gsm8k"
    rows = data.load_gsm8k("train", gsm_path)
    for r in random.Random(example_seed).sample(rows, n_examples):
        print(f"PROBLEM {r['prompt_id']} (answer {r['answer']}): {r['prompt']}")
        print("  [reference solution]")
        print(show(r["reference_solution"], indent="    "))
        print()

# %% [markdown]
# How long is each style, and how often is a perfectly executed style right? Lengths are counted
# with the student's tokenizer (the unit of the gradient features of chapter 3).

# %%
if miniature:
    style_problems = task.problems("train", n_style_problems, seed=example_seed + 1)
    rng = random.Random(seed)
    style_rows = []
    for style in synthetic.STYLES:
        sols = [synthetic.render_solution(p, style, rng) for p in style_problems]
        style_rows.append({
            "style": style,
            "mean tokens": np.mean([len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in sols]),
            "correct": np.mean([task.is_correct(s, str(p.answer)) for s, p in zip(sols, style_problems, strict=True)]),
        })
    style_table = pd.DataFrame(style_rows).set_index("style")
    glue("slip_correct", float(style_table.loc["slip", "correct"]), display=False)
    glue("style_note", Markdown(
        "Every style but `slip` is always right when written out faithfully; the `slip` style is right "
        f"on {style_table.loc['slip', 'correct']:.0%} of these problems. Style lengths differ several-fold, "
        "which matters for the gradient features (chapter 3)."), display=False)
    display(style_table.round(3))
else:
    glue("slip_correct", float("nan"), display=False)
    glue("style_note", Markdown("GSM8K reference solutions are the only 'style' here; the teachers are "
                                "instruct models with their own formats."), display=False)

# %% [markdown]
# {glue:md}`style_note`
#
# ## 2.2 The teacher pool
#
# The study's teachers, with their own avg@k on the test problems (from the teacher cards) and the
# accuracy of the responses they generated for distillation, averaged over temperatures.

# %%
cards = {p.parent.name: read_json(p)["summary"] for p in study_dir.glob("cards/*/done.json")}
pool = (results.groupby("teacher", sort=False)
        .agg(family=("family", "first"), style=("style", "first"), size=("size_label", "first"),
             params=("size_params", "first"), steps=("teacher_steps", "first"),
             generation_accuracy=("teacher_accuracy", "mean")))
pool["params"] = [analysis.format_params(v) for v in pool["params"]]
pool = pool.rename(columns={"generation_accuracy": "generation accuracy (mean over τ)"})
pool.insert(5, "own avg@k", [cards[t]["avg_at_k"] for t in pool.index])
pool.insert(6, "own greedy", [cards[t]["greedy"] for t in pool.index])
pool

# %% [markdown]
# ## 2.3 Sampling at temperatures
#
# Sampling is pure temperature sampling (no top-$k$ or top-$p$; `grace.generation`). Below, the first
# responses of every teacher to the same prompt at the lowest and the highest temperature of this
# profile.

# %%
gens = {}  # config -> records
for c in results.config:
    gens[c] = read_jsonl(study_dir / "generations" / c / "generations.jsonl")
first = gens[results.config.iloc[0]]
show_ids = list(dict.fromkeys(r["prompt_id"] for r in first))[:n_show_prompts]
for pid in show_ids:
    rec = next(r for r in first if r["prompt_id"] == pid)
    print(f"PROMPT {pid}: {rec['prompt']}\n")
    for t in teachers:
        for T in (T_lo, T_hi):
            rs = [r for r in gens[f"{t}@{T:g}"] if r["prompt_id"] == pid]
            r0 = min(rs, key=lambda r: r.get("sample", 0))
            print(f"  {t} @ T={T:g}  ({'correct' if r0.get('correct') else 'wrong'})")
            print(show(r0["response"], indent="      "))
        print()

# %% [markdown]
# ## 2.4 Teacher accuracy against temperature
#
# The accuracy of the distillation responses themselves (`teacher_accuracy` in the results table:
# the fraction of a configuration's $N\times M$ responses that are correct).

# %%
acc = results.pivot(index="temperature", columns="teacher", values="teacher_accuracy")[teachers]
fig, ax = plt.subplots(figsize=(6, 3.8))
pal = plots.family_palette(teachers)
for t in teachers:
    ax.plot(acc.index, acc[t], marker="o", color=pal[t], label=t)
ax.set(xlabel="sampling temperature τ", ylabel="accuracy of the generated responses",
       title="Teacher accuracy vs temperature")
ax.legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
fig.tight_layout()
fig.savefig(out / "teacher_accuracy_vs_temperature.png", dpi=120)
plt.show()

non_self = [t for t in teachers if not results.loc[results.teacher == t, "is_self"].iloc[0]] or teachers
drop = acc.loc[T_lo, non_self] - acc.loc[T_hi, non_self]
glue("acc_lo", float(acc.loc[T_lo, non_self].mean()), display=False)
glue("acc_hi", float(acc.loc[T_hi, non_self].mean()), display=False)
glue("T_lo", T_lo, display=False)
glue("T_hi", T_hi, display=False)
glue("n_acc_drop", int((drop > 0).sum()), display=False)
glue("n_non_self", len(non_self), display=False)
acc.round(3)

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
FINAL_ANSWER = re.compile(r"####\s*\$?-?\d")  # a GSM8K-style final-answer line
len_rows = []
rng = np.random.default_rng(seed)
for c, recs in gens.items():
    if max_records_per_config is not None and len(recs) > max_records_per_config:
        recs = [recs[i] for i in sorted(rng.choice(len(recs), max_records_per_config, replace=False))]
    row = results.loc[results.config == c].iloc[0]
    lengths = [len(tokenizer(r["response"], add_special_tokens=False)["input_ids"]) for r in recs]
    len_rows.append({"config": c, "teacher": row.teacher, "temperature": row.temperature,
                     "mean length": float(np.mean(lengths)), "median length": float(np.median(lengths)),
                     "at budget": float(np.mean(np.asarray(lengths) >= int(prof["generation"]["max_new_tokens"]))),
                     "has final answer": float(np.mean([FINAL_ANSWER.search(r["response"]) is not None
                                                        for r in recs]))})
lens = pd.DataFrame(len_rows)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for t in teachers:
    d = lens[lens.teacher == t].sort_values("temperature")
    axes[0].plot(d.temperature, d["mean length"], marker="o", color=pal[t], label=t)
    axes[1].plot(d.temperature, d["has final answer"], marker="o", color=pal[t], label=t)
axes[0].set(xlabel="sampling temperature τ", ylabel="mean response length (student tokens)",
            title="Response length vs temperature")
axes[1].set(xlabel="sampling temperature τ", ylabel="share with a '#### N' answer", title="Answer format",
            ylim=(-0.02, 1.02))
axes[1].legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
fig.tight_layout()
fig.savefig(out / "length_vs_temperature.png", dpi=120)
plt.show()

by_T = lens.groupby("temperature")[["mean length", "at budget", "has final answer"]].mean()
glue("len_lo", float(by_T.loc[T_lo, "mean length"]), display=False)
glue("len_hi", float(by_T.loc[T_hi, "mean length"]), display=False)
glue("fmt_lo", float(by_T.loc[T_lo, "has final answer"]), display=False)
glue("fmt_hi", float(by_T.loc[T_hi, "has final answer"]), display=False)
glue("budget_hi", float(by_T.loc[T_hi, "at budget"]), display=False)
glue("max_new_tokens", int(prof["generation"]["max_new_tokens"]), display=False)
glue("tok_note", Markdown(
    "Teachers and student share one tokenizer in the miniature world, so 'at budget' is exact."
    if miniature else
    "The teachers' tokenizers differ from the student's, so 'at budget' (in student tokens) is only indicative."),
    display=False)
lens.pivot(index="teacher", columns="temperature", values="mean length").loc[teachers].round(1)

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
blank = pd.DataFrame({
    "config": list(gens),
    "responses": [len(gens[c]) for c in gens],
    "blank (files)": [sum(1 for r in gens[c] if not r["response"].strip()) for c in gens],
}).set_index("config")
blank["blank (results table)"] = results.set_index("config")["empty_responses"].reindex(blank.index)
blank["share"] = blank["blank (files)"] / blank["responses"]
if not (blank["blank (files)"] == blank["blank (results table)"]).all():
    raise AssertionError(f"blank-response counts disagree with results.csv:\n{blank}")
glue("n_blank", int(blank["blank (files)"].sum()), display=False)
glue("n_responses", int(blank["responses"].sum()), display=False)
glue("max_blank_share", float(blank["share"].max()), display=False)
blank[blank["blank (files)"] > 0] if (blank["blank (files)"] > 0).any() else blank.head(len(blank))

# %% [markdown]
# Of {glue:text}`n_responses` generated responses, {glue:text}`n_blank` are blank (at most
# {glue:text}`max_blank_share:.1%` of any configuration), and the counts in the results table match
# the files.

# %%
write_json(out / "results.json", {
    "profile": profile, "study_dir": str(study_dir), "temperatures": temps,
    "teacher_accuracy": acc.reset_index().to_dict(orient="records"),
    "lengths": lens.to_dict(orient="records"), "blank": blank.reset_index().to_dict(orient="records"),
    "seconds": time.time() - t_start,
})
print(f"done in {time.time() - t_start:.1f} s; results in {out / 'results.json'}")

# %% [markdown]
# **Summary.** The task, the styles that make the miniature teachers differ, and the study's
# distillation sets as the temperature changes: accuracy, length, answer format and blank responses,
# all read from the generation files. Whether any of this predicts the distilled student is the
# subject of chapter 6 and the chapters after it; chapter 3 turns the responses into the student's gradient features.
