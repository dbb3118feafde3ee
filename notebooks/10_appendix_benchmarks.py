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
# # Appendix A — Performance
#
# The paper's Table 1 (App. C.3) states the cost of GRACE: computing the projected gradient features
# takes "≈ 10 minutes" per teacher on an H100 and the metric itself "< 10 seconds". This appendix
# measures the corresponding pieces of `grace` on the book's CPU and compares them with the targets
# set for the package:
#
# | piece | benchmark | target |
# |---|---|---|
# | per-sample gradients | `benchmarks/bench_projection.py` | use the faster of `vmap(grad)` and a per-sample loop by default |
# | dense projection (b), the paper's $\Pi\in\{\pm1/\sqrt D\}^{d\times D}$ | same | adds ≤ 0.25× the gradient time at $d=512$, ≥ 20× faster than the naive baseline (a) |
# | structured projection (c), sparse JL | same | adds ≤ 0.05× at $d=512$ |
# | scores | `benchmarks/bench_scores.py` | GRACE ≥ 4× faster than a naive per-fold inverse; all scores of one teacher ≤ 0.3 s; 100 teachers ≤ 30 s |
# | fidelity of (c) | `benchmarks/bench_fidelity.py` | Spearman(GRACE from (b), GRACE from (c)) ≥ 0.95 across the study's configurations |
#
# Every number below is read from the benchmarks' JSON result files (`bench_dir`); a file that is
# missing is produced now by running its benchmark in its smallest mode, and the provenance table
# says which. Targets are evaluated by code from the numbers, never typed. Timings come from a shared
# 2-core machine and vary by tens of percent between runs; ratios measured in the same run are the
# stable quantities.

# %% tags=["parameters"]
profile = "smoke"
out_dir = "artifacts/smoke/notebooks/10_appendix_benchmarks"
bench_dir = "artifacts/bench"  # where benchmark JSON files are read from
run_missing = True  # run a benchmark (smallest mode) when its JSON is missing; results go to out_dir/bench
projection_args = ["--quick", "--sizes", "0.5M", "--dims", "512", "--naive-cols", "65536"]
scores_args = ["--n-prompts", "256", "--teachers", "5", "--repeats", "5"]
fidelity_args = ["--max-configs", "6", "--distortion-samples", "32", "--lora", "8"]
timeout_s = 900  # per benchmark run

# %% tags=["hide-input"]
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from grace import benchmarks as BM
from grace import claims
from grace import plots as P
from grace.features import AUTO_METHOD_CPU
from grace.io import read_json
from grace.notebook import Chapter, fmt, met

# %% tags=["hide-input"]
ch = Chapter("10_appendix_benchmarks", profile, out_dir)  # the fidelity benchmark reads the profile's study
study_dir = ch.study_dir
V: dict = {}  # every value quoted in the prose; glued once, in the last cell
STRING_KEYS = {"grad_default": "n/a", "proj_size": "n/a", "fid_profile": "n/a", "sc_load": "n/a",
               "claim_metric_verdict": "not testable",
               "c_miss_md": Markdown("*(no projection benchmark with a read floor)*")}

# %% [markdown]
# ## A.1 The result files
#
# For the fidelity benchmark a file in `bench_dir` is used only if it was computed on this profile's
# study (it is study-specific); otherwise it is recomputed on the study this book build uses.

# %%
args = {"projection": projection_args, "scores": scores_args,
        "fidelity": [*fidelity_args, "--study", str(study_dir)]}
bench, prov = {}, []
for name, a in args.items():
    bench[name], p = BM.load_or_run(name, a, bench_dir, ch.out / "bench", ch.prof["name"], run_missing, timeout_s)
    prov.append(p)
prov = pd.DataFrame(prov)
V["bench_run_seconds"] = float(np.nansum(prov.run_s))
prov

# %% [markdown]
# Benchmarks run by this build took {glue:text}`bench_run_seconds:.0f` s in total (0 when every
# file was already present).
#
# ## A.2 Per-sample gradients: `vmap(grad)` against a loop
#
# `grace.features.compute_features` can take per-sample gradients one forward/backward at a time or
# with `torch.func.vmap(grad(...))` over a padded batch (both tested to agree). The benchmark times
# both on randomly initialised Llama students (vocabulary 1024, $T=96$ tokens, the last two thirds
# supervised), one thread.

# %%
proj = bench["projection"]
if proj is None:
    display(Markdown("*No projection benchmark available (run_missing is off).*"))
else:
    grads = BM.gradient_table(proj, AUTO_METHOD_CPU)
    V.update(vmap_speedup_min=float(grads["loop / vmap"].min()), vmap_speedup_max=float(grads["loop / vmap"].max()),
             grad_default=AUTO_METHOD_CPU)
    display(grads.round(3))

# %% [markdown]
# Per sample, the loop takes between {glue:text}`vmap_speedup_min:.2f`× and
# {glue:text}`vmap_speedup_max:.2f`× the time of `vmap` over the student sizes measured; the package default on CPU (`method="auto"`) is {glue:text}`grad_default`, and
# the last column checks it against this run.
#
# ## A.3 Projecting the gradients
#
# Three ways to compute $\Pi\mathbf g$ for a batch of gradients:
#
# * **(a) naive**: per sample, regenerate every chunk of $\Pi$ with `torch.randint` (timed on a column
#   slice and scaled to all $D$ columns);
# * **(b)** `RademacherProjector` — the paper's $\Pi$, entries a counter-based hash of (seed, row,
#   column), generated once per *batch* and cached as floats or packed bits when memory allows;
# * **(c)** `SparseJLProjector` — a sparse JL transform with `nnz` non-zeros per column: the textbook
#   SJLT (`block = 1`) and the blocked variant (columns in a block share their rows, keep their own
#   signs), which reduces a batch to block sums in one pass.
#
# Times are ms per sample (medians); ratios divide by the faster gradient path of the same run.

# %%
at512, proj_targets = pd.DataFrame(), pd.DataFrame()
if proj is not None:
    display(BM.projection_table(proj).round(3))
    rows = pd.DataFrame(proj["rows"])
    at512 = rows[rows.d == 512].copy()
    proj_targets = BM.projection_targets(at512, proj["config"]["block"])
    display(proj_targets.round(3))

# %%
if proj is not None and len(at512):
    big = at512.sort_values("params").iloc[-1]
    V.update(proj_size=str(big["size"]), rad_ratio_512=float(big.rademacher_ratio),
             naive_speedup_512=float(big.speedup_vs_naive), sjlt_block_ratio_512=float(big.sparse_jl_block_ratio),
             sjlt_ratio_512=float(big.sparse_jl_ratio), floor_ratio_512=float(big.gemm_floor_ratio),
             block=int(proj["config"]["block"]))
    ch.show(P.plot_projection_ratios(at512, proj["config"]["block"]), "projection_ratios.png")

# %% [markdown]
# At $d=512$ on the largest student measured ({glue:text}`proj_size`), the paper's projection (b)
# adds {glue:text}`rad_ratio_512:.2f`× the gradient time and is {glue:text}`naive_speedup_512:.0f`×
# faster than the naive baseline; the blocked sparse JL (c) (block {glue:text}`block`) adds
# {glue:text}`sjlt_block_ratio_512:.3f`× and the textbook SJLT {glue:text}`sjlt_ratio_512:.3f`×.
#
# ### Why (b) cannot reach 0.25× here: the GEMM floor
#
# However $\Pi$ is generated, applying it is a dense matrix product: $2Dd$ floating-point operations
# per sample. The gradient itself costs about $6DT$ (forward + backward over $T$ tokens). So
#
# $$\frac{t_{\Pi}}{t_{\mathbf g}}\;\ge\;\frac{2Dd/r_{\rm GEMM}}{6DT/r_{\mathbf g}}
#   \;=\;\frac{d}{3T}\cdot\frac{r_{\mathbf g}}{r_{\rm GEMM}},$$
#
# where $r_{\rm GEMM}$ is the machine's fp32 GEMM rate and $r_{\mathbf g}=6DT/t_{\mathbf g}$ the
# effective rate of the gradient computation. $D$ cancels. With $d=512$ and the benchmark's
# $T=$ {glue:text}`bench_T` the FLOP ratio alone is $d/(3T)=$ {glue:text}`flop_ratio:.2f`: whenever it
# exceeds 1, even a perfect projection costs more than the gradient unless the GEMM runs faster than
# the gradient code. The table computes each factor from the benchmark's own numbers
# (`grace.costs.projection_over_gradient`), and the GEMM rate that *would* be needed for 0.25×.

# %%
if proj is not None and len(at512):
    floor = BM.floor_table(proj, at512)  # raises if it disagrees with the JSON's floor
    big_f = floor.sort_values("D").iloc[-1]
    V.update(flop_ratio=float(big_f["d/(3T)"]), bench_T=int(proj["config"]["T"]),
             grad_gflops=float(big_f["gradient GFLOP/s (6DT/t)"]), gemm_gflops=float(big_f["GEMM GFLOP/s"]),
             gemm_needed=float(big_f["GEMM GFLOP/s needed for 0.25×"]), b_over_floor=float(big_f["(b) / floor"]))
    display(floor.round(3))

# %%
bd = BM.breakdown_table(proj) if proj is not None and len(at512) else pd.DataFrame()
if len(bd):
    display(Markdown("**Profile of one Rademacher chunk without cache** (fraction of time in each step; "
                     "`bench_projection.rademacher_breakdown`):"))
    display(bd.round(3))
    V["gemm_frac"] = float(bd[bd.d == 512].gemm_frac.median()) if (bd.d == 512).any() else np.nan

# %% [markdown]
# For {glue:text}`proj_size` the gradient code runs at {glue:text}`grad_gflops:.1f` GFLOP/s and the
# fp32 GEMM at {glue:text}`gemm_gflops:.1f` GFLOP/s, so the floor is
# {glue:text}`flop_ratio:.2f` × (gradient rate / GEMM rate) = {glue:text}`floor_ratio_512:.2f`× the
# gradient; (b) measures {glue:text}`b_over_floor:.2f`× that floor, and without its cache the GEMM is
# {glue:text}`gemm_frac:.0%` of a chunk's time (hashing and bit-unpacking the rest). Meeting 0.25×
# would need a GEMM at {glue:text}`gemm_needed:.0f` GFLOP/s on one core. The target is therefore
# missed for a reason no implementation of the *same* $\Pi$ can remove on this CPU; the ways out are
# a smaller $d$ (the ratio is linear in $d$), longer sequences ($T$ in the denominator: GSM8K
# responses are ≈ 300 tokens, Appendix B), faster matrix units (Appendix B estimates the H100), or a
# structured $\Pi$ — option (c), whose cost does not grow with $d$.
#
# ### Where the sparse projection (c) spends its time
#
# A sparse JL transform does $O(D\cdot\text{nnz})$ work, so its floor is not arithmetic but memory:
# it must read every gradient entry at least once. The benchmark measures that floor in the same run
# as one `G.sum(dim=1)` pass over the batch of gradients (`read_floor_ms`), and, with `--profile`,
# records `torch.profiler`'s top operations for one warm projection of each kind at the largest size.

# %%
if proj is not None and len(at512) and "read_floor_ratio" in at512.columns:
    rf = BM.read_floor_table(at512)
    display(rf.round(3))
    big_r = rf.sort_values("params").iloc[-1]
    V.update(read_ratio_512=float(big_r["read floor / grad"]), c_over_read=float(big_r["(c) / read floor"]))
    missed = at512[at512.sparse_jl_block_ratio > 0.05]
    STRING_KEYS["c_miss_md"] = Markdown(
        "(c) meets 0.05× at every size measured." if missed.empty else
        f"(c) misses 0.05× at {', '.join(missed['size'])} (measured "
        f"{', '.join(f'{v:.3f}×' for v in missed.sparse_jl_block_ratio)}).")

# %%
if proj is not None and proj.get("profile"):
    display(Markdown("**torch.profiler, one warm projection** (top operations by self CPU time):"))
    display(BM.profiler_table(proj).round(3))
    ops = proj["profile"].get("sparse_jl_block", {}).get("ops", [])
    V["c_top_share"] = float(sum(o["self_cpu_frac"] for o in ops if o["op"] in ("aten::mul", "aten::sum")))

# %% [markdown]
# {glue:md}`c_miss_md` On the largest student, one read of the gradients alone costs
# {glue:text}`read_ratio_512:.3f`× the gradient time, and the blocked sparse JL (c) takes
# {glue:text}`c_over_read:.1f`× that read: its first step, the signed block sums, is an elementwise
# sign multiply into a scratch buffer followed by a strided sum — {glue:text}`c_top_share:.0%` of its
# profiled time — so it passes over the gradients three times (read, write, read). A fused kernel that
# multiplies and sums in one pass would approach the read floor; PyTorch has no such op on CPU. The
# default stays (b), the paper's $\Pi$, regardless: (c) is opt-in.
#
# ## A.4 Scores
#
# `bench_scores.py` scores one seeded, structured Gaussian feature matrix of $N=n\cdot m$ rows and
# $d$ columns with every function, next to naive references in the same run (round-robin, medians),
# then times `all_scores` over many "teachers". Wall time is what a user waits; CPU time is what the
# process itself computed (the machine is shared).

# %%
sc = bench["scores"]
if sc is None:
    display(Markdown("*No scores benchmark available.*"))
else:
    cfg = sc["config"]
    display(BM.score_timings(sc).round(2))
    sc_targets = BM.score_targets(sc)
    display(sc_targets.round(3))
    if sc.get("profile"):
        display(Markdown("**cProfile of 3 × `all_scores`** (recorded because a target was missed or `--profile`):"))
        print(sc["profile"])

# %% tags=["hide-input"]
if sc is not None:
    many, timings = sc["all_scores_many"], sc["timings"]
    one_wall = timings["all_scores (one teacher)"]["wall"]["median_s"]
    V.update(sc_N=int(cfg["n_prompts"] * cfg["m"]), sc_d=int(cfg["d"]),
             grace_speedup=float(timings["grace (eq. 4)"]["wall"]["speedup_vs_naive"]),
             grace_speedup_cpu=float(timings["grace (eq. 4)"]["cpu"]["speedup_vs_naive"]), all_one_ms=1e3 * one_wall,
             all_one_cpu_ms=1e3 * timings["all_scores (one teacher)"]["cpu"]["median_s"],
             n_teachers=int(many["teachers"]), many_wall_s=float(many["wall_total_s"]),
             per100_wall_s=float(many["wall_total_s"]) * 100 / many["teachers"],
             sc_load=fmt((sc["machine"].get("loadavg") or [np.nan])[0], ".1f", nan="nan"))

# %% [markdown]
# With $N=$ {glue:text}`sc_N` rows and $d=$ {glue:text}`sc_d`, GRACE (eq. 4, Cholesky/Woodbury per
# fold on a shared Gram) is {glue:text}`grace_speedup:.1f`× faster than the naive per-fold inverse in
# wall time ({glue:text}`grace_speedup_cpu:.1f`× in CPU time). All sixteen scores of one teacher take
# {glue:text}`all_one_ms:.0f` ms wall ({glue:text}`all_one_cpu_ms:.0f` ms CPU), and
# {glue:text}`n_teachers` teachers {glue:text}`many_wall_s:.1f` s, i.e. {glue:text}`per100_wall_s:.0f` s
# per 100 teachers (load average at the start: {glue:text}`sc_load`). When a wall-clock target is
# missed while the CPU-time one is met, the gap is other processes on the shared cores, not the code;
# the cProfile above (when present) shows the time is in the LAPACK calls (`_cholesky`,
# `_tri_solve`, `_gram_lower`), i.e. the $O(C\,d^3 + N d^2)$ floor of the method.
#
# ## A.5 Does the structured projection (c) keep GRACE's ranking?
#
# `bench_fidelity.py` rebuilds each configuration's scoring subset from the study's generations
# (checking that the per-sample losses match the saved features to $10^{-5}$), recomputes the
# features in one gradient pass with the study's own $\Pi$ (b) and with the sparse JL projector (c)
# (same seed and $d$), scores both exactly as the study does, and compares the rankings. A second
# part compares inner products of projected and *exact* gradients of the study's student.

# %%
fid = bench["fidelity"]
if fid is None:
    display(Markdown("*No fidelity benchmark available.*"))
else:
    F, st = fid["fidelity"], fid["study"]
    display(BM.fidelity_configs(F).round(4))
    display(BM.fidelity_summary(F))
    display(Markdown("Per score (Spearman across configurations; the `*_vs_avg_at_k` columns are *oriented*: "
                     "+1 = ranks teachers the right way):"))
    display(pd.DataFrame(F["per_score"]).T.round(3))

# %% tags=["hide-input"]
if fid is not None:
    rho_bc = F["spearman_grace_b_vs_c"]
    V.update(fid_profile=st["profile"], fid_configs=int(F["n_configs"]), fid_D=int(st["params"]), fid_d=int(st["d"]),
             fid_rho_bc=float(rho_bc), fid_rho_bc1=float(F.get("spearman_grace_b_vs_c_block1", np.nan)),
             fid_rho_b_y=float(F["spearman_grace_b_vs_avg_at_k"]), fid_rho_c_y=float(F["spearman_grace_c_vs_avg_at_k"]),
             fid_loss_diff=float(F["max_loss_abs_diff"]))
    if not np.isfinite(rho_bc):
        V["fid_verdict"] = Markdown("**cannot be judged** on this study: the rank correlation is undefined (a "
                                    "constant score or fewer than 3 configurations). The default stays the paper's Π (b)")
    elif rho_bc >= 0.95:
        V["fid_verdict"] = Markdown("**met**: (c) ranks the configurations like (b). (b) nevertheless stays the "
                                    "default, because it is the paper's Π; (c) is an opt-in (`features.projector: sparse_jl`)")
    else:
        V["fid_verdict"] = Markdown("**missed**: (c) loses fidelity on this study, so (b), the paper's Π, stays the "
                                    "default and (c) remains opt-in")

# %% [markdown]
# On the {glue:text}`fid_profile` study ({glue:text}`fid_configs` configurations, a student with
# $D=$ {glue:text}`fid_D` parameters, $d=$ {glue:text}`fid_d`) the recomputed losses match the saved
# ones to {glue:text}`fid_loss_diff:.1e`. Spearman between GRACE from (b) and from (c) is
# {glue:text}`fid_rho_bc:.3f` (textbook SJLT, block 1: {glue:text}`fid_rho_bc1:.3f`); against the
# students' avg@k GRACE (b) has $\rho=$ {glue:text}`fid_rho_b_y:.3f` and GRACE (c)
# {glue:text}`fid_rho_c_y:.3f` (raw: GRACE is lower-is-better, so negative is good). The ≥ 0.95
# target is {glue:md}`fid_verdict`. Smoke-profile studies have few configurations and nearly constant
# students, so their correlations are not evidence either way.
#
# ### Inner-product distortion against exact gradients
#
# For a few dozen scoring examples the benchmark also keeps the *exact* gradients
# (`IdentityProjector`) and compares, at $d\in\{128, 512\}$: the squared-norm ratio
# $\|\Pi x\|^2/\|x\|^2$ (the Rademacher (b) rescaled by $\sqrt{D/d}$, since its entries are
# $\pm1/\sqrt D$), the inner-product error $|\langle\Pi x,\Pi y\rangle-\langle x,y\rangle|/(\|x\|\|y\|)$,
# the cosine error (what GRACE's normalised $\tilde\Sigma$ sees) and the relative Frobenius error of
# the Gram matrix. A dense JL map has norm error of order $\sqrt{2/d}$.

# %%
if fid is not None and fid.get("distortion"):
    dis = pd.DataFrame(fid["distortion"]["rows"])
    display(dis[["projector", "d", "jl_reference_sqrt_2_over_d", "norm_sq_median", "norm_sq_max", "inner_median",
                 "inner_p95", "cosine_median", "cosine_max", "gram_fro", "abs_cos_exact_median"]].round(4))
    g512 = dis[dis.d == dis.d.max()].set_index("projector").gram_fro
    V.update(dis_samples=int(fid["distortion"]["samples"]), dis_dmax=int(dis.d.max()),
             dis_gram_b=float(g512.filter(like="rademacher").iloc[0]), dis_gram_c=float(g512.filter(like="(c)").iloc[0]),
             dis_gram_c1=float(g512.get("sparse_jl block=1", np.nan)))

# %% [markdown]
# On {glue:text}`dis_samples` examples at $d=$ {glue:text}`dis_dmax`, the Gram matrix of exact
# gradients is reproduced with relative Frobenius error {glue:text}`dis_gram_b:.3f` by (b),
# {glue:text}`dis_gram_c:.3f` by the blocked (c) and {glue:text}`dis_gram_c1:.3f` by the textbook
# SJLT. The blocked variant's extra error comes from coordinates of a block always landing in the
# same rows: its excess variance is small only when the gradient's mass is spread over many blocks
# (`SparseJLProjector` docstring: ≈ block·d/D), which a small student with concentrated gradients
# (few embedding rows per sample, low-rank per-layer outer products) does not satisfy.
#
# ## A.6 Summary and the paper's Table 1

# %%
summary = []
if proj is not None and len(at512):
    summary += proj_targets.assign(benchmark="projection").to_dict(orient="records")
if sc is not None:
    summary += sc_targets.assign(benchmark="scores", size=f"N={cfg['n_prompts'] * cfg['m']}, d={cfg['d']}").to_dict(
        orient="records")
if fid is not None:
    summary.append({"benchmark": "fidelity", "size": fid["study"]["profile"], "target": "Spearman (b) vs (c) ≥ 0.95",
                    "value": fid["fidelity"]["spearman_grace_b_vs_c"], "met": met(fid["fidelity"]["target"]["met"])})
summary = pd.DataFrame(summary)[["benchmark", "size", "target", "value", "met"]] if summary else pd.DataFrame()
ch.done({"profile": profile, "provenance": prov.to_dict(orient="records"),
         "targets": summary.to_dict(orient="records")}, filename="summary.json")

# %%
V["n_met"] = int((summary.met == "met").sum()) if len(summary) else 0
V["n_targets"] = int(summary.met.isin(["met", "MISSED"]).sum()) if len(summary) else 0
if sc is not None:  # the paper's Table 1: "metric computation < 10 seconds" (n·m = 2048, d = 512)
    v, rule = claims.verdict_bool(one_wall < 10.0, rule=f"reproduced if all scores of one teacher (N = "
                                  f"{cfg['n_prompts'] * cfg['m']} rows, d = {cfg['d']}) take < 10 s wall on the book's CPU")
    ch.claim(id="table1_metric_seconds", claim="Computing GRACE (the metric) from the gradient features takes < 10 "
             "seconds (Table 1)", paper="< 10 s", value=float(one_wall), verdict=v, rule=rule)
    V["claim_metric_verdict"] = v
summary

# %% tags=["hide-input"]
GLUE_KEYS = """all_one_cpu_ms all_one_ms b_over_floor bench_T bench_run_seconds block claim_metric_verdict dis_dmax dis_gram_b
dis_gram_c dis_gram_c1 dis_samples fid_D fid_configs fid_d fid_loss_diff fid_profile fid_rho_b_y fid_rho_bc fid_rho_bc1
fid_rho_c_y fid_verdict floor_ratio_512 flop_ratio gemm_frac gemm_gflops gemm_needed grace_speedup grace_speedup_cpu
grad_default grad_gflops many_wall_s n_met n_targets n_teachers naive_speedup_512 per100_wall_s proj_size rad_ratio_512
sc_N sc_d sc_load sjlt_block_ratio_512 sjlt_ratio_512 vmap_speedup_max vmap_speedup_min read_ratio_512 c_over_read
c_top_share c_miss_md""".split()
V.setdefault("fid_verdict", Markdown("*not available (no fidelity results)*"))
ch.glue(why="the projection benchmark's result file has no profiler record",
        **{k: V.get(k, STRING_KEYS.get(k, np.nan)) for k in GLUE_KEYS})

# %% [markdown]
# {glue:text}`n_met` of the {glue:text}`n_targets` computed target checks are met; every miss is
# explained above: the GEMM floor for (b); the extra passes over the gradients for (c) where it
# misses, and the transpose copy that dominates the textbook SJLT (`aten::copy_` in its profile),
# which is why the blocked variant is the (c) the targets are checked on; shared cores for wall-clock
# score timings when their CPU time meets the target; and, where it misses, the blocked sparse JL's
# fidelity on the study's small student. The paper's Table 1
# statement that the metric takes under 10 seconds is recorded in the claims ledger as
# **{glue:text}`claim_metric_verdict`**: on this CPU all scores of one teacher with $N=$
# {glue:text}`sc_N` rows and $d=$ {glue:text}`sc_d` take {glue:text}`all_one_ms:.0f` ms (the paper's
# size is $N=2048$, $d=512$). Appendix B estimates what the gradient features cost at the paper's
# scale.

# %% [markdown]
# ## A.7 A real student: SmolLM2-135M on real GSM8K solutions
#
# Every number above is measured on the miniature students (at most a few million parameters). At
# the scale of a real LM the balance changes: `benchmarks/bench_real.py` takes SmolLM2-135M-Instruct
# (`smollm2-135m-instruct`, $D = 1.345\cdot10^8$, installed with `make real`) and real GSM8K train
# solutions, runs each method in its own process and reports its time per example as a ratio to one
# plain forward + backward per example measured in the same run, and its peak memory beyond the
# loaded model against the bound $4\cdot D\cdot 4$ bytes. It is not run by the book build (it needs the
# model and about five minutes): its JSON is read from `bench_dir/real.json`
# (`python benchmarks/bench_real.py --quick --out artifacts/bench/real.json`).

# %%
real_path, real_fid_path = Path(bench_dir) / "real.json", Path(bench_dir) / "real_fidelity.json"
real = read_json(real_path) if real_path.exists() else None
real_fid = read_json(real_fid_path) if real_fid_path.exists() else None  # bench_real.py --fidelity
V.update(BM.real_values(real, real_fid))
if real is None:
    display(Markdown(f"*No `{real_path.name}` in `bench_dir`: run `make real` and `python benchmarks/bench_real.py --quick --out "
                     f"{real_path}` to fill this section.*"))
ch.glue(why=f"no {real_fid_path.name} in bench_dir: bench_real.py --fidelity was not run for this build",
        **{k: V.get(k, np.nan) for k in ("real_fid_rho", "real_fid_sets", "real_fid_gram_dense",
                                         "real_fid_gram_factored")})
ch.glue(why=f"no {real_path.name} in bench_dir: bench_real.py was not run for this build",
        **{k: V.get(k, np.nan) for k in ("real_D", "real_bound_mb", "real_floor_ratio", "real_vmap_ratio",
                                         "real_dense_ratio", "real_sparse_jl_ratio", "real_factored_ratio",
                                         "real_factored_exact_ratio", "real_floor_tail_ratio", "real_pi_floor_s",
                                         "real_dense_s")})
BM.real_table(real) if real is not None else pd.DataFrame()

# %% [markdown]
# With the result file present: the factored projector (`grace.factored`, LoGra-style: per linear
# layer the input activations and output gradients are projected by two small sign matrices, so no
# per-sample gradient is formed and no weight gradient is computed) costs
# {glue:text}`real_factored_ratio:.2f`× the floor with its default $\lVert g\rVert$ (the sketch
# $\lVert z\rVert$, free; GRACE never reads it) and {glue:text}`real_factored_exact_ratio:.2f`× with the
# exact one (`norms="exact"`, token Gram matrices). Part of its lead is the output layer alone: the
# plain floor asked for the scored positions' logits only (`floor_tail`, as the factored path does)
# costs {glue:text}`real_floor_tail_ratio:.2f`×. The paper's dense Π costs
# {glue:text}`real_dense_ratio:.1f`× — {glue:text}`real_dense_s:.0f` s per example against its own
# floor of {glue:text}`real_pi_floor_s:.0f` s ($2\cdot D\cdot d$ multiply-adds plus $D\cdot d$ sign draws,
# one gradient per draw under the memory bound); `vmap` costs {glue:text}`real_vmap_ratio:.1f`× and
# the blocked sparse JL path {glue:text}`real_sparse_jl_ratio:.2f`×. The factored path's own floor in
# multiply-adds is one frozen forward and one activations-only backward, $2F$ against the plain
# floor's $3F$ (two thirds); the exact $\lVert g\rVert$ adds the token Grams
# ($T^2\sum_\ell(\mathrm{in}_\ell + \mathrm{out}_\ell)$, one Gram per layer input), about three quarters
# at GSM8K lengths, whatever the host.
#
# Fidelity on the real student (`bench_real.py --fidelity`, JSON `bench_dir/real_fidelity.json`):
# across {glue:text}`real_fid_sets` candidate sets of chapter 10, *A real student* (human solutions, three damaged
# copies, the model's own answers at four temperatures) the Spearman correlation of GRACE from the
# factored projector with GRACE from the dense Π is {glue:text}`real_fid_rho:.3f`, and on exact
# gradients the relative Frobenius error of the Gram matrix at $d=512$ is
# {glue:text}`real_fid_gram_factored:.3f` (dense Π: {glue:text}`real_fid_gram_dense:.3f`).

# %% [markdown]
# ## A.8 On a GPU, and with LoRA adapters
#
# On a GPU the balance changes again: a batched forward + backward is cheap, and what is left of the
# dense Π is the projection itself. `benchmarks/gpu_check.sh` runs `benchmarks/bench_gpu.py` on a random
# Llama-3.2-1B-shaped student ($D = 1.24\cdot10^9$, $d = 512$, ~200-token sequences) and writes its JSON;
# copied to `bench_dir/gpu.json` it fills this section. Its rows are the feature paths of the library:
# the dense Π through the fused Triton kernel (`grace.kernels`: signs hashed in registers, never stored)
# with the per-sample gradients of one batched pass (`grace.persample`), the same with the per-example
# loop, and the torch path that first writes Π's chunks to memory. The README's *On a GPU box* table
# holds one such run on an H200.

# %%
gpu_path, real_lora_path = Path(bench_dir) / "gpu.json", Path(bench_dir) / "real_lora.json"
pool_lora_path = Path(bench_dir) / "pool_lora.json"
gpu = read_json(gpu_path) if gpu_path.exists() else None  # bash benchmarks/gpu_check.sh, on a GPU
real_lora = read_json(real_lora_path) if real_lora_path.exists() else None  # bench_real.py --lora 8
pool_lora = read_json(pool_lora_path) if pool_lora_path.exists() else None  # bench_fidelity.py --lora 8, full size
ch.md(gpu_text=BM.gpu_summary(gpu), real_lora_text=BM.real_lora_summary(real_lora),
      pool_lora_text=BM.pool_lora_summary(pool_lora))
BM.gpu_table(gpu) if gpu is not None else None

# %% [markdown]
# {glue:md}`gpu_text`
#
# ### LoRA gradient features
#
# The paper's release and LESS can take the student's gradients with respect to LoRA adapters instead
# of all its weights (`features.lora` in a profile, `--lora-rank` on the command line; `grace.lora`,
# with peft). At initialisation the adapters change nothing ($B = 0$), so the losses are the student's;
# only $D$ shrinks, from every weight to the adapters' $r\,(\mathrm{in}+\mathrm{out})$ per target
# layer. Does GRACE keep its ranking? `bench_fidelity.py --lora 8` (in A.5's run) scores every
# configuration of the study with both; `bench_real.py --lora 8` does the same on chapter 10's
# candidate sets of the real student.

# %%
V.update(BM.lora_values(None, fid["fidelity"] if fid is not None else None))
ch.glue(why="the fidelity benchmark of this build ran without --lora",
        **{k: V.get(k, np.nan) for k in ("lora_rho", "lora_configs", "lora_rank", "lora_D", "lora_ms", "lora_full_ms",
                                         "lora_rho_y", "lora_rho_b_y")})

# %% [markdown]
# On this build's study ({glue:text}`lora_configs` configurations) GRACE from rank-{glue:text}`lora_rank`
# adapters ($D=$ {glue:text}`lora_D`) has Spearman {glue:text}`lora_rho:.3f` with GRACE from the full
# gradient and the study's Π; against the students' avg@k, oriented (+ ranks teachers the right way),
# {glue:text}`lora_rho_y:.3f` for LoRA and {glue:text}`lora_rho_b_y:.3f` for the full gradient. Its
# pass costs {glue:text}`lora_ms:.1f` ms an example, against {glue:text}`lora_full_ms:.1f` ms for the
# full gradients' pass projected by every variant of A.5 at once.
#
# {glue:md}`pool_lora_text`
#
# {glue:md}`real_lora_text`


# %% [markdown]
# ## A.9 Exercises
#
# Answers are checked with `grace.course.check(id, answer)`, which says right or wrong (and why) without showing the expected value. The coded ones run in seconds on a laptop CPU with the smoke world (`python book/build.py --profile smoke` builds it).

# %% [markdown]
# ::::{exercise} How big are the stored features?
# :label: ch10-ex1
#
# By hand: the smoke world stores, per configuration, $n\cdot m$ rows of $d$ fp32 numbers (its profile's
# `features` section). How many bytes is that? Check your formula against the array on disk.
# ::::
#
# ::::{solution-start} ch10-ex1
# :class: dropdown
# ::::
#
# $n\cdot m\cdot d\cdot4$ bytes: the features are tiny next to the gradients they summarise, which is what
# makes every ablation of chapter 7 a matter of seconds. (`grace.costs.feature_storage` does the same
# arithmetic at the paper's scale: 4.3 MB in Table 1.)

# %% tags=["solution"]
from grace import course
from grace.features import Features

f = ch.prof["features"]
nbytes = f["n"] * f["m"] * f["d"] * 4
on_disk = Features.load(ch.study_dir / "features" / ch.results["config"].iloc[0] / "features.npz").H.nbytes
print("formula:", nbytes, "bytes | the array on disk:", on_disk, "bytes")
assert course.check("ch10-ex1", nbytes, study_dir=ch.study_dir)

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} A loop against vmap
# :label: ch10-ex2
#
# §A.2 computes per-sample gradients with `torch.func.vmap(grad(...))` and with a plain loop. Why is the
# vmap version faster on a small model, and what does it cost in memory?
# ::::
#
# ::::{solution} ch10-ex2
# :class: dropdown
#
# vmap batches the per-sample backward passes into one set of larger matrix products, so the fixed cost of
# each small kernel launch and each Python step is paid once per batch instead of once per sample. The price
# is memory: it materialises one full gradient per sample of the batch at once ($B\cdot D$ numbers), where the
# loop holds one; for a 1B-parameter student that forces small batches (Appendix B).
# ::::
