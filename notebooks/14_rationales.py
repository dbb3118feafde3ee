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
# # 12. Saliency rationales
#
# A third way to distil asks the teacher for its **gradients**. "Efficient Knowledge Distillation:
# Empowering Small Language Models with Teacher Model Insights" (arXiv 2409.12586) fine-tunes a teacher,
# ranks the input tokens by the gradient saliency of its answer, and keeps the top k = 5 as a *rationale*.
# The student learns a dual objective (the loss of Distilling step-by-step): one task prefix asks for the
# answer, another for the rationale, $\mathcal L = \mathcal L_{label} + \lambda\,\mathcal L_{rationale}$ with
# λ = 1 (`grace.methods.rationale`). Attribution is Captum's: `LLMGradientAttribution` around gradient ×
# input on the embedding layer (the saliency map), and `LayerIntegratedGradients` on the same layer, the
# source's proposed alternative (`grace.saliency`).
#
# **The source used T5 encoder–decoders** (a Flan-T5-3B teacher, T5-small students). This book's teachers
# and students are decoder-only Llama-style models: a task is a prompt prefix, the target follows the
# prompt, and the attribution target is the teacher's own sampled response (the miniature's teachers write
# a short chain of thought ending in `#### N`). The answer task's label is the gold `#### N`, as SVAMP's
# labels are the final number.
#
# The source reports gains over plain fine-tuning and over step-by-step distillation on ANLI, e-SNLI, CQA
# and SVAMP, and that 68 % of the extracted tokens belong to the ground truth; its own proposed checks are
# random tokens, Integrated Gradients and the value of k. All of them run below on the study's world, with
# CIs over training seeds, and then the book's question: does GRACE still rank the teachers when the
# students learn from their rationales?

# %% tags=["parameters"]
profile = "smoke"
out_dir = "artifacts/smoke/notebooks/14_rationales"
teacher = None  # the comparison's teacher (None: the main-pool teacher with the highest own avg@k)
temperature = 1.0  # the study temperature whose samples are the attribution targets and CoT rationales
ks = [1, 5]  # k of the saliency rationales (the source: 1 to 10, keeps 5)
n_seeds = 2  # training seeds per condition (CIs over seeds)
n_prompts = None  # training prompts (None: the study's N)
ig_steps = 16
max_target_tokens = 16  # attribute the first tokens of the teacher's response (None: all of it; cost ∝ tokens)
grace_teachers = True  # train a saliency k=5 student for every main-pool teacher (GRACE's ρ)
max_steps = None  # cap on each student's optimizer steps (None: the study's recipe)
n_test = None
real_model = None  # the real student (a grace.sources name; None: skip the section)
n_real = 32  # GSM8K problems for the real student's saliency
real_template = "Question: {prompt}\nAnswer:"
n_boot = 1000
ci = 0.95
seed = 0
threads = 2
world_profile = None  # the miniature study whose world the students come from (None: the chapter's profile)

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from grace import analysis as A
from grace import claims, sources
from grace import method_runs as MR
from grace import saliency as S
from grace.notebook import Chapter

# %% tags=["hide-input"]
ch = Chapter("14_rationales", world_profile or profile, out_dir)  # students need a miniature world
if world_profile and world_profile != profile:
    display(Markdown(f"**The students of this chapter are miniature models**, so this `{profile}` build trains them in "
                     f"the `{world_profile}` world; its numbers and claims belong to that profile."))
from grace.methods.rationale import RationaleConfig  # after Chapter: it imports tqdm quietly first

torch.set_num_threads(threads)
results, study_dir, check = ch.results, ch.study_dir, ch.check
w = MR.open_study(study_dir)
pool = A.main_pool(results)
check("k = 5 among the ks", 5 in ks, f"ks={ks}: the source's k = 5 must be one of them")
name = teacher or MR.strongest_teacher(pool)
config = MR.nearest_config(results, name, temperature)
prompts = MR.subsample(w.prompts, n_prompts, seed)
rcfg = RationaleConfig()
ch.glue(teacher_name=name, config=config, n_prompts=len(prompts), n_seeds=n_seeds, weight=rcfg.weight,
        ks_txt=", ".join(map(str, ks)))
ch.md(target_md="the whole of the teacher's response" if max_target_tokens is None else
      f"the first {max_target_tokens} tokens of the teacher's response (Captum runs one backward pass per target "
      "token; the full profile attributes the whole response)")
print(f"teacher {name}, configuration {config}, {len(prompts)} training prompts, {n_seeds} seeds")

# %% [markdown]
# The comparison uses one teacher, **{glue:text}`teacher_name`** (the main-pool teacher with the highest
# own accuracy, a choice that does not look at any score), and its samples of configuration
# {glue:text}`config`. The student trains on {glue:text}`n_prompts` prompts with the study's recipe;
# every condition is trained with {glue:text}`n_seeds` seeds (data order), so the CIs below are over seeds.
# The attribution target is {glue:md}`target_md`.
#
# ## 12.1 What the teacher's gradients point at

# %%
with ch.off_page("extraction_log.txt"):
    sal = MR.rationales_for(w, config, prompts, "saliency", ks, max_target_tokens=max_target_tokens)
    ig = MR.rationales_for(w, config, prompts, "integrated_gradients", ks, ig_steps=ig_steps,
                           max_target_tokens=max_target_tokens)
    rnd = MR.rationales_for(w, config, prompts, "random", ks, seed=seed)
    cot = MR.rationales_for(w, config, prompts, "cot", [0])
from grace.world import load_tokenizer

base_rate = MR.operand_base_rate(w, prompts, load_tokenizer(w.student_path))
share = pd.concat([sal.assign(method="saliency"), ig.assign(method="integrated gradients"),
                   rnd.assign(method="random")])
share_tab = share.pivot_table(index="k", columns="method", values="operand_share", aggfunc="mean")
examples = sal[sal["k"] == 5].head(4).merge(pd.DataFrame(prompts)[["prompt_id", "prompt"]], on="prompt_id")
ig5 = ig[ig["k"] == 5]
examples = examples.merge(ig5[["prompt_id", "rationale"]].rename(columns={"rationale": "IG rationale"}), on="prompt_id")
examples[["prompt", "rationale", "IG rationale"]].rename(columns={"rationale": "saliency rationale (k = 5)"})

# %%
share_tab

# %% tags=["hide-input"]
s5 = sal[sal["k"] == 5]["operand_share"].to_numpy(float)
m5, lo5, hi5 = A.mean_ci(s5, n_boot=n_boot, seed=seed, ci=ci)
v, rule = claims.verdict_at_least(m5, lo5, 0.68, partly=base_rate)
rule += f" (the random pick's expected share, {base_rate:.2f})"
ch.claim(id="rat_operand_share", claim="Most extracted tokens belong to the ground truth: 68 % in the source; here the "
         "share of saliency top-5 tokens that are operands of the gold solution (arXiv 2409.12586 §4)",
         paper="0.68", value=m5, ci_low=lo5, ci_high=hi5, verdict=v, rule=rule, glue_as="v_share", kind="acc")
ch.glue(base_rate=base_rate, share5=m5, share_ig5=float(ig5["operand_share"].mean()))

# %% [markdown]
# The first table shows four training prompts with the teacher's top-5 tokens by saliency and by
# Integrated Gradients, in prompt order. The second is the share of the chosen tokens that are operands of
# the gold solution (the numbers the solution computes with), by k and method. A random pick scores
# {glue:text}`base_rate:.2f` on average (the share of a question's tokens that are operands); saliency's
# top 5 score {glue:text}`share5:.2f` and Integrated Gradients' {glue:text}`share_ig5:.2f`.
#
# {glue:md}`v_share_line`
#
# ## 12.2 Students: rationales against the baselines

# %%
conditions = {"answer only": MR.rationale_records(prompts, None),
              "step-by-step (teacher's CoT)": MR.rationale_records(prompts, cot)}
conditions |= {f"saliency k = {k}": MR.rationale_records(prompts, sal, k) for k in ks}
conditions |= {"integrated gradients k = 5": MR.rationale_records(prompts, ig5),
               "random tokens k = 5": MR.rationale_records(prompts, rnd, 5)}
rows = []
with ch.off_page("training_log.txt"):
    for cond, recs in conditions.items():
        for s in range(n_seeds):
            slug = cond.replace(" ", "_").replace("'", "").replace("(", "").replace(")", "").replace("=", "")
            r = MR.run_student(w, ch.out / "students", f"{config}/{slug}/seed{s}", "rationale", rcfg, recs,
                               seed=s, max_steps=max_steps, n_test=n_test)
            rows.append({"condition": cond, "seed": s, **r})
runs = pd.DataFrame(rows)
comp = []
for cond, g in runs.groupby("condition", sort=False):
    m, lo, hi = MR.seed_ci(g["avg_at_k"].to_numpy(), ci)
    comp.append({"condition": cond, "avg@k": m, "ci_low": lo, "ci_high": hi, "greedy": g["greedy"].mean(),
                 "train_loss": g["train_loss"].mean(), "seeds": len(g)})
comp = pd.DataFrame(comp).set_index("condition")
comp

# %% tags=["hide-input"]
for cid, text, paper, a, b, glue_as in [
    ("rat_beats_finetuning", "Saliency rationales (k = 5) train a better student than plain fine-tuning on the answers "
     "(arXiv 2409.12586, Table 2)", "rationale > fine-tuning", "saliency k = 5", "answer only", "v_ft"),
    ("rat_beats_step_by_step", "Saliency rationales (k = 5) train a better student than the teacher's full chain of "
     "thought, Distilling step-by-step (arXiv 2409.12586, Table 2)", "rationale > step-by-step", "saliency k = 5",
     "step-by-step (teacher's CoT)", "v_sbs"),
    ("rat_beats_random", "Salient tokens beat random tokens as rationales (the source's proposed check)",
     "salient > random", "saliency k = 5", "random tokens k = 5", "v_rand"),
]:
    m, lo, hi = MR.paired_seed_diff(runs, a, b, ci)
    v, rule = MR.better_verdict(m, lo, f"avg@k({a}) − avg@k({b}) over seeds")
    ch.claim(id=cid, claim=text, paper=paper, value=m, ci_low=lo, ci_high=hi, verdict=v, rule=rule, glue_as=glue_as,
             kind="acc")
kmeans = comp.loc[[f"saliency k = {k}" for k in ks], "avg@k"]
best_k = int(kmeans.idxmax().split("= ")[1])
k5 = comp.loc["saliency k = 5"]
best = comp.loc[f"saliency k = {best_k}"]
overlap = bool(np.isfinite(k5["ci_high"]) and k5["ci_high"] >= best["ci_low"])
v, rule = claims.verdict_bool(None if len(ks) < 2 or kmeans.nunique() < 2 else best_k == 5, partly=overlap,
                              rule=f"reproduced if k = 5 has the highest mean avg@k among k ∈ {{{', '.join(map(str, ks))}}}; "
                                   "partly if its CI reaches the best one's; not testable if all k tie")
ch.claim(id="rat_k5_best", claim="k = 5 rationale tokens work best among the k tried (the source's ablation over k)",
         paper="k = 5", value=float(best_k), verdict=v, rule=rule, glue_as="v_k", kind="count")

# %% [markdown]
# Student avg@k (mean over seeds, t-interval over seeds), greedy accuracy and training loss per condition.
# The comparisons, each as a paired difference over seeds:
#
# {glue:md}`v_ft_line`
#
# {glue:md}`v_sbs_line`
#
# {glue:md}`v_rand_line`
#
# {glue:md}`v_k_line`
#
# ## 12.3 Which teacher? GRACE with rationale-trained students

# %%
g_rows = []
if grace_teachers:
    cfgs = [MR.nearest_config(pool, t, temperature) for t in sorted(pool["teacher"].unique())]
    with ch.off_page("grace_teachers_log.txt"):
        for c in cfgs:
            sal_c = sal if c == config else MR.rationales_for(w, c, prompts, "saliency", ks,
                                                              max_target_tokens=max_target_tokens)
            slug = "saliency_k__5"
            r = MR.run_student(w, ch.out / "students", f"{c}/{slug}/seed0", "rationale", rcfg, MR.rationale_records(prompts, sal_c, 5),
                               seed=0, max_steps=max_steps, n_test=n_test)
            g_rows.append({"config": c, "rationale student avg@k": r["avg_at_k"],
                           "operand share": float(sal_c[sal_c["k"] == 5]["operand_share"].mean())})
gt = pd.DataFrame(g_rows, columns=["config", "rationale student avg@k", "operand share"]).set_index("config")
gt["SFT student avg@k (study)"] = results.set_index("config").loc[gt.index, "student_avg_at_k"]
gt["GRACE"] = results.set_index("config").loc[gt.index, "grace"]
g_rat = MR.grace_rho(results, gt["rationale student avg@k"], n_boot, seed) if len(gt) else (np.nan,) * 3
g_sft = MR.grace_rho(results, gt["SFT student avg@k (study)"], n_boot, seed) if len(gt) else (np.nan,) * 3
agree = MR.rank_agreement(gt["SFT student avg@k (study)"], gt["rationale student avg@k"]) if len(gt) else {}
ch.glue(g_rat=g_rat[0], g_rat_lo=g_rat[1], g_rat_hi=g_rat[2], g_sft=g_sft[0], rank_rho=agree.get("rho", np.nan),
        n_grace=len(gt))
ch.md(best_md=(f"The best teacher by the study's SFT students is **{agree['best_a']}**, by the rationale students "
               f"**{agree['best_b']}**." if agree else "No teacher was compared on this build."))
gt

# %% [markdown]
# One saliency (k = 5) rationale student per main-pool teacher (seed 0), beside the study's SFT student of
# the same configuration and the study's GRACE score ({glue:text}`n_grace` configurations). {glue:md}`best_md`
# The two rankings agree with Spearman {glue:text}`rank_rho:.2f`. GRACE's oriented ρ is
# {glue:text}`g_rat:.2f` (CI {glue:text}`g_rat_lo:.2f` to {glue:text}`g_rat_hi:.2f`) with the rationale
# students and {glue:text}`g_sft:.2f` with the study's SFT students on these configurations. GRACE scores
# the teacher's *text*; a rationale student sees the text only through the tokens the teacher's gradients
# pick, so GRACE has no reason to track it.
#
# ## 12.4 A real student: SmolLM2-135M on GSM8K (no training)

# %%
from grace.data import default_data_dir

have_model = real_model is not None and (real_model not in sources.SOURCES or sources.available(real_model))
have_data = (default_data_dir() / "gsm8k" / "test.jsonl").exists()
real = pd.DataFrame()
if real_model is None:
    display(Markdown("**This build leaves the real student out** (`real_model` is None: the smoke build stays "
                     "short); `make run` runs this section when the model is installed."))
elif not have_model:
    display(Markdown(f"**`{real_model}` is not installed here** ({sources.SOURCES[real_model].install}); this "
                     "section computes nothing."))
elif not have_data:
    display(Markdown("**No GSM8K in the data folder** (`grace.data.default_data_dir()`); this section computes nothing."))
else:
    from grace.tasks import GSM8KTask
    from grace.world import load_model

    path = sources.resolve(real_model)
    rm, rt = load_model(path), load_tokenizer(path)
    gsm = GSM8KTask().test_prompts(n_real, seed)
    recs = [{"prompt_id": p["prompt_id"], "prompt": p["prompt"], "target": f" #### {p['answer']}",
             "gold": S.numbers(p["reference_solution"])} for p in gsm]
    with ch.off_page("real_log.txt"):
        real = pd.DataFrame(S.extract(rm, rt, recs, real_template, S.SaliencyConfig(k=5), lambda r: r["gold"]))
        base_real = float(np.mean([S.operand_base_rate(rt, r["prompt"], real_template, r["gold"]) for r in recs]))
    real["top-5 tokens"] = [" · ".join(t.strip() for t in toks) for toks in real["tokens"]]
    rm_share = A.mean_ci(real["operand_share"].to_numpy(float), n_boot=n_boot, seed=seed, ci=ci)
    ch.glue(real_share=rm_share[0], real_lo=rm_share[1], real_hi=rm_share[2], real_base=base_real, n_real=len(real))
    display(Markdown(f"Top-5 salient prompt tokens of {real_model} for its gold answer (`#### N`) on {len(real)} GSM8K "
                     f"test problems: {rm_share[0]:.2f} of them are numbers of the gold solution (95% CI "
                     f"{rm_share[1]:.2f} to {rm_share[2]:.2f}); a random pick of the question's tokens would give "
                     f"{base_real:.2f}. The first eight problems:"))
    display(real[["top-5 tokens", "operand_share"]].head(8).rename(columns={"operand_share": "share in gold"}))

# %% [markdown]
# The real model is not fine-tuned here, as the source's teacher was; the attribution target is the gold
# final answer given the question alone, the closest analogue of the source's label target.
#
# ## 12.5 Summary

# %% tags=["hide-input"]
ch.done({"profile": profile, "teacher": name, "config": config, "runs": runs.to_dict("records"),
         "operand_share": share_tab.to_dict(), "base_rate": base_rate, "grace": gt.reset_index().to_dict("records"),
         "grace_rho_rationale": g_rat, "grace_rho_sft": g_sft, "rank_agreement": agree,
         "real": real.drop(columns=["tokens"], errors="ignore").to_dict("records"), "checks": ch.checks,
         "claims": [c.__dict__ for c in ch.claims]})
ch.ledger(["id", "paper", "value", "ci_low", "ci_high", "verdict", "rule"])

# %% [markdown]
# The source's claims are in the ledger (chapter 9) with the rules that produced their verdicts. Of the
# three methods, this one asks the most of the teacher — a backward pass per answer token — and
# gives the student the least text.


# %% [markdown]
# ## 12.6 Exercises
#
# Answers are checked with `grace.course.check(id, answer)`, which says right or wrong (and why) without
# showing the expected value.

# %% [markdown]
# ::::{exercise} What a random rationale scores
# :label: ch14-ex1
#
# A question has 12 tokens, 3 of them numbers of the gold solution (`grace.course.RANDOM_PICK_EXAMPLE`).
# A random rationale picks $k = 5$ of the 12 without replacement. What share of the picked tokens are gold
# operands, in expectation? This is the bar the salient pick has to clear in §12.1.
# ::::
#
# ::::{solution-start} ch14-ex1
# :class: dropdown
# ::::
#
# Each of the 12 tokens is picked with probability $5/12$, so the expected number of operands picked is
# $3 \cdot 5/12 = 1.25$ (the hypergeometric mean) and the expected share is $1.25/5 = 3/12 = 0.25$: the
# operands' share of the question, whatever k is. The source's 68 % means something only next to this base
# rate, which is why the chapter prints it beside every share.

# %% tags=["solution"]
from scipy.stats import hypergeom

from grace import course

n, g, k = (course.RANDOM_PICK_EXAMPLE[key] for key in ("n", "operands", "k"))
assert course.check("ch14-ex1", hypergeom(n, g, k).mean() / k)

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} Integrated Gradients add up
# :label: ch14-ex2
#
# For the linear model $f(x) = w \cdot x$ with $w = (1, -2, 3)$ at $x = (1, 1, 1)$ and the baseline
# $x' = 0$ (`grace.course.IG_EXAMPLE`), compute each feature's Integrated-Gradients attribution
# $(x_i - x'_i)\int_0^1 \partial_i f(x' + a(x - x'))\,da$ by hand, and their sum. Then check it with Captum.
# ::::
#
# ::::{solution-start} ch14-ex2
# :class: dropdown
# ::::
#
# The gradient is $w$ everywhere, so the attributions are $(1, -2, 3)$ and they sum to
# $2 = f(x) - f(x')$: the completeness property that makes IG's scores add up to the change in the output.
# Ranking tokens for a rationale uses their magnitudes ($3, 2, 1$ here), but completeness holds for the
# signed sum, not for $6 = \sum_i |\cdot|$.

# %% tags=["solution"]
import torch
from captum.attr import IntegratedGradients

from grace import course

w, x = torch.tensor(course.IG_EXAMPLE["w"]), torch.tensor([course.IG_EXAMPLE["x"]])
attr = IntegratedGradients(lambda v: v @ w).attribute(x, baselines=torch.zeros_like(x), n_steps=64)
assert course.check("ch14-ex2", float(attr.sum()))

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} Decoder-only students
# :label: ch14-ex3
#
# The source trained T5 encoder–decoders: the rationale and the label are two *outputs* decoded from one
# encoded input. This chapter's students are decoder-only, and the rationale is text the student writes
# under its own task prefix. Name one way this can change whether rationales help, and say which of §12.2's
# comparisons would show it.
# ::::
#
# ::::{solution} ch14-ex3
# :class: dropdown
#
# In an encoder–decoder the two tasks share the encoder, so learning to emit the rationale shapes the input
# representation the label decoder reads. In a decoder-only student the two tasks share all the weights but
# never one sequence: the label is predicted without the rationale in its context, so the rationale helps
# only through what the shared weights learn. If that sharing carries little, salient-token students should
# match answer-only ones, and salient should not beat random tokens — the "rationale beats fine-tuning" and
# "salient beats random" rows of §12.2's comparisons, read with their CIs over seeds.
# ::::
