"""Appendix A's tables, read from the JSON files of ``benchmarks/bench_*.py`` (paper Table 1, App. C.3).

The benchmarks are scripts (``benchmarks/``); this module finds or produces their result files
(:func:`load_or_run`) and turns each into the tables Appendix A shows, with every target evaluated by
code from the numbers (``met``/``MISSED``), never typed. Nothing here runs a model itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grace.io import read_json
from grace.notebook import met

REPO = Path(__file__).resolve().parents[1]

#: Benchmark name -> its script in ``benchmarks/``.
SCRIPTS = {"projection": "bench_projection.py", "scores": "bench_scores.py", "fidelity": "bench_fidelity.py"}


def _usable(name: str, data: dict, study_profile: str) -> bool:
    """A fidelity result is study-specific: use it only if it was computed on this profile's study."""
    return name != "fidelity" or data.get("study", {}).get("profile") == study_profile


def load_or_run(name: str, args: Sequence[str], bench_dir: str | os.PathLike, out: str | os.PathLike,
                study_profile: str, run_missing: bool = True, timeout_s: float = 900) -> tuple[dict | None, dict]:
    """The benchmark's JSON from ``bench_dir``, else from ``out`` (an earlier run), else run it now with
    ``args`` into ``out`` (Appendix A.1). Returns ``(data or None, provenance row)``."""
    if name not in SCRIPTS:
        raise ValueError(f"unknown benchmark {name!r}; use one of {sorted(SCRIPTS)}")
    for source, path in (("bench_dir", Path(bench_dir) / f"{name}.json"), ("earlier run", Path(out) / f"{name}.json")):
        if path.exists():
            data = read_json(path)
            if _usable(name, data, study_profile):
                return data, {"benchmark": name, "source": source, "file": str(path), "run_s": np.nan}
    if not run_missing:
        return None, {"benchmark": name, "source": "missing", "file": "", "run_s": np.nan}
    path = Path(out) / f"{name}.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / SCRIPTS[name]), *args, "--out", str(path)]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    (Path(out) / f"{name}.log").write_text(proc.stdout + proc.stderr)
    return read_json(path), {"benchmark": name, "source": "run now (smallest mode)", "file": str(path),
                             "run_s": time.time() - t0}


# ----------------------------------------------------------------------------- A.2-A.3 projection


def gradient_table(proj: dict, default: str) -> pd.DataFrame:
    """Per-sample gradients, ``vmap(grad)`` against a loop, per student size, and whether the package's
    CPU default ``default`` is the faster one in this run (Appendix A.2)."""
    grads = pd.DataFrame(proj["gradients"]).T
    grads["faster"] = np.where(grads.vmap_ms < grads.loop_ms, "vmap", "loop")
    grads["loop / vmap"] = grads.loop_ms / grads.vmap_ms
    grads["package default"] = default
    grads["default is faster"] = [met(f == default) for f in grads.faster]
    return grads.sort_values("params")


def projection_table(proj: dict) -> pd.DataFrame:
    """Milliseconds per sample of the naive (a), dense (b) and sparse JL (c) projections, and their ratios
    to the gradient time (Appendix A.3)."""
    rows = pd.DataFrame(proj["rows"])
    tab = rows[["size", "params", "d", "grad_ms", "naive_ms", "rademacher_ms", "cache_mode", "sparse_jl_ms",
                "sparse_jl_block_ms", "gemm_floor_ms"]].copy()
    tab["(b) / grad"] = rows.rademacher_ratio
    tab["(a) / (b)"] = rows.speedup_vs_naive
    tab["(c, block 1) / grad"] = rows.sparse_jl_ratio
    tab[f"(c, block {proj['config']['block']}) / grad"] = rows.sparse_jl_block_ratio
    tab["GEMM floor / grad"] = rows.gemm_floor_ratio
    return tab


def projection_targets(at512: pd.DataFrame, block: int) -> pd.DataFrame:
    """The package's projection targets at d = 512, evaluated per student size (Appendix A.3)."""
    checks = []
    for r in at512.itertuples():
        checks += [
            {"size": r.size, "target": "(b) adds ≤ 0.25× gradient", "value": r.rademacher_ratio,
             "met": met(r.rademacher_ratio <= 0.25)},
            {"size": r.size, "target": "(b) ≥ 20× faster than (a)", "value": r.speedup_vs_naive,
             "met": met(r.speedup_vs_naive >= 20)},
            {"size": r.size, "target": f"(c, block {block}) adds ≤ 0.05×", "value": r.sparse_jl_block_ratio,
             "met": met(r.sparse_jl_block_ratio <= 0.05)},
            {"size": r.size, "target": "(c, block 1) adds ≤ 0.05×", "value": r.sparse_jl_ratio,
             "met": met(r.sparse_jl_ratio <= 0.05)},
        ]
    return pd.DataFrame(checks)


def floor_table(proj: dict, at512: pd.DataFrame) -> pd.DataFrame:
    """Why (b) cannot reach 0.25×: the GEMM floor ``d/(3T) · r_g / r_GEMM`` from the benchmark's own rates
    (``grace.costs.projection_over_gradient``), checked against the floor in the JSON (Appendix A.3)."""
    from grace import costs

    T = int(proj["config"]["T"])
    rows = []
    for r in at512.itertuples():
        r_grad = 6 * r.params * T / (r.grad_ms / 1e3)  # effective FLOP/s of the gradient code
        gflops = proj["gemm_gflops"]
        r_gemm = gflops[str(r.d)] * 1e9 if str(r.d) in gflops else gflops[r.d] * 1e9
        c = costs.projection_over_gradient(r.d, T, r_grad, r_gemm)
        rows.append({
            "size": r.size, "D": r.params, "d": r.d, "T": T, "d/(3T)": c["flop_ratio"],
            "gradient GFLOP/s (6DT/t)": r_grad / 1e9, "GEMM GFLOP/s": r_gemm / 1e9,
            "floor ratio = d/(3T)·r_g/r_GEMM": c["ratio"], "floor ratio in JSON": r.gemm_floor_ratio,
            "(b) measured": r.rademacher_ratio, "(b) / floor": r.rademacher_ratio / c["ratio"],
            "GEMM GFLOP/s needed for 0.25×": c["flop_ratio"] * r_grad / 0.25 / 1e9,
        })
    floor = pd.DataFrame(rows)
    if not np.allclose(floor["floor ratio = d/(3T)·r_g/r_GEMM"], floor["floor ratio in JSON"], rtol=1e-6):
        raise AssertionError("the GEMM floor recomputed from the JSON's rates differs from its gemm_floor_ratio; "
                             "was the projection benchmark's JSON edited or produced by another version?")
    return floor


def breakdown_table(proj: dict) -> pd.DataFrame:
    """Fraction of one uncached Rademacher chunk's time in each step, per size and d (Appendix A.3)."""
    rows = pd.DataFrame(proj["rows"])
    return pd.DataFrame([{"size": r.size, "d": r.d, **r.breakdown} for r in rows.itertuples()
                         if isinstance(getattr(r, "breakdown", None), dict)])


def read_floor_table(at512: pd.DataFrame) -> pd.DataFrame:
    """The sparse projection (c) against its memory floor, one read of the gradients (Appendix A.3)."""
    rf = at512[["size", "params", "grad_ms", "sparse_jl_block_ms", "read_floor_ms"]].copy()
    rf["(c) / grad"] = at512.sparse_jl_block_ratio
    rf["read floor / grad"] = at512.read_floor_ratio
    rf["(c) / read floor"] = at512.sparse_jl_block_ms / at512.read_floor_ms
    return rf


def profiler_table(proj: dict) -> pd.DataFrame:
    """``torch.profiler``'s top four operations of one warm projection of each kind (Appendix A.3)."""
    return pd.DataFrame([{"projector": name, "size": p["size"], "op": o["op"], "self CPU ms": o["self_cpu_ms"],
                          "share": o["self_cpu_frac"]} for name, p in proj["profile"].items() for o in p["ops"][:4]])


# ----------------------------------------------------------------------------- A.4 scores


def score_timings(sc: dict) -> pd.DataFrame:
    """Wall and CPU milliseconds of every score, and the speed-up over its naive reference (Appendix A.4)."""
    return pd.DataFrame([{"function": k, "wall ms": 1e3 * v["wall"]["median_s"], "cpu ms": 1e3 * v["cpu"]["median_s"],
                          "naive reference": v["naive"] or "", "× naive (wall)": v["wall"]["speedup_vs_naive"],
                          "× naive (cpu)": v["cpu"]["speedup_vs_naive"]} for k, v in sc["timings"].items()])


def score_targets(sc: dict) -> pd.DataFrame:
    """The scores' targets (``*_ge_*``: at least, otherwise at most), per clock (Appendix A.4)."""
    rows = []
    for kind, ts in sc["targets"].items():
        for k, v in ts.items():
            ok = v["value"] >= v["target"] if "_ge_" in k else v["value"] <= v["target"]
            rows.append({"clock": kind, "target": f"{k} ({kind})", "value": v["value"], "threshold": v["target"],
                         "met": met(ok)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- A.5 fidelity


def fidelity_summary(F: dict) -> pd.DataFrame:
    """Does the structured projection (c) keep GRACE's ranking: Spearman of (b) and (c), and the
    reproduction checks of the saved features (Appendix A.5)."""
    block1 = F.get("spearman_grace_b_vs_c_block1")
    return pd.DataFrame([
        {"quantity": "Spearman GRACE (b) vs (c)", "value": F["spearman_grace_b_vs_c"],
         "target": "≥ 0.95", "met": met(F["target"]["met"])},
        *([{"quantity": "Spearman GRACE (b) vs (c, block 1)", "value": block1,
            "target": "≥ 0.95", "met": met(block1 >= 0.95 if np.isfinite(block1) else None)}]
          if "spearman_grace_b_vs_c_block1" in F else []),
        {"quantity": "Spearman GRACE (b) vs student avg@k", "value": F["spearman_grace_b_vs_avg_at_k"], "target": "",
         "met": ""},
        {"quantity": "Spearman GRACE (c) vs student avg@k", "value": F["spearman_grace_c_vs_avg_at_k"], "target": "",
         "met": ""},
        {"quantity": "max |loss − saved loss|", "value": F["max_loss_abs_diff"], "target": "≤ 1e-5",
         "met": met(F["max_loss_abs_diff"] <= 1e-5)},
        {"quantity": "max rel. |H(b) − saved H|", "value": F["max_H_b_rel_diff"], "target": "same Π", "met": ""},
    ])


def fidelity_configs(F: dict) -> pd.DataFrame:
    """The fidelity benchmark's per-configuration rows, without the per-score columns (Appendix A.5)."""
    return pd.DataFrame([{k: r[k] for k in r if not k.startswith("scores_")} for r in F["configs"]])


# ----------------------------------------------------------------------------- A.7 a real student


def real_table(real: dict) -> pd.DataFrame:
    """Each method's time per example on SmolLM2-135M as a ratio to one forward + backward, and its peak
    memory beyond the model against 4·D·4 bytes (``benchmarks/bench_real.py``; Appendix A.7)."""
    r = real["results"]
    D_real = next(iter(r.values()))["D"]
    ms = {m: real["floor_ms"] if m == "floor" else v["ms_per_example"] for m, v in r.items()}  # floor: both runs
    return pd.DataFrame([{"method": m, "examples": v["n"], "ms per example": round(ms[m]),
                          "ratio to floor": round(_real_ratio(real, m), 2),
                          "one-time setup (ms)": round(v["setup_ms"]) if "setup_ms" in v else None,
                          "peak beyond model (MB)": round(v["beyond_model_mb"]),
                          "within 4·D·4": v["beyond_model_mb"] <= 4 * 4 * D_real / 2**20}
                         for m, v in r.items() if m != "floor_end"])


def _real_ratio(real: dict, m: str) -> float:
    """Method ``m``'s ratio to the floor on the same examples (files before that: to the mean floor)."""
    v = real["results"][m]
    return v.get("ratio_to_floor", v["ms_per_example"] / real["floor_ms"])


def real_values(real: dict | None, fidelity: dict | None) -> dict[str, Any]:
    """The numbers Appendix A.7 quotes from ``real.json`` and ``real_fidelity.json`` (absent ones left out)."""
    V: dict[str, Any] = {}
    if real is not None:
        r = real["results"]
        D_real = next(iter(r.values()))["D"]
        V["real_D"], V["real_bound_mb"] = D_real, 4 * 4 * D_real / 2**20
        for m in r:  # floor_end too: the floor measured again after the others
            V[f"real_{m}_ratio"] = _real_ratio(real, m)
        V["real_pi_floor_s"] = real["dense_floor"]["mac_s"] + real["dense_floor"]["signs_s"]
        V["real_dense_s"] = r.get("dense", {}).get("ms_per_example", np.nan) / 1000
    if fidelity is not None:
        V["real_fid_rho"], V["real_fid_sets"] = fidelity["spearman_grace_dense_vs_factored"], len(fidelity["sets"])
        V["real_fid_gram_dense"] = fidelity["distortion"]["dense"]["gram_fro"]
        V["real_fid_gram_factored"] = fidelity["distortion"]["factored"]["gram_fro"]
    return V


# ----------------------------------------------------------------------------- A.8 GPU and LoRA


def gpu_table(gpu: dict) -> pd.DataFrame:
    """Feature-path rows of ``benchmarks/bench_gpu.py`` (one GPU, a Llama-3.2-1B-shaped student): ms per
    example and ratio to the batched forward + backward floor measured in the same run (Appendix A.8)."""
    f, dn = gpu["floor_ms"], gpu["dense"]
    rows = [("batched forward + backward (the floor)", f),
            ("factored projector", gpu["factored_ms"]),
            ("dense Π, fused kernel (hooks gradients + projection)", dn["dense_fused_ms"]),
            ("dense Π, fused kernel, per-example loop gradients", dn["dense_fused_loop_ms"]),
            ("dense Π, torch path (Π in memory, then a GEMM)", dn["dense_torch_ms"])]
    rows += [(f"projection alone, precision {p}", r["ms_per_example"]) for p, r in dn.get("precisions", {}).items()]
    return pd.DataFrame([{"path": name, "ms per example": round(ms, 1), "ratio to floor": round(ms / f, 2)}
                         for name, ms in rows])


def gpu_values(gpu: dict | None) -> dict[str, Any]:
    """The numbers Appendix A.8 quotes from ``gpu.json`` (empty when it is absent)."""
    if gpu is None:
        return {}
    dn = gpu["dense"]
    return {"gpu_device": gpu["device"], "gpu_D": gpu["D"], "gpu_floor_ms": gpu["floor_ms"],
            "gpu_factored_ratio": gpu["factored_ms"] / gpu["floor_ms"], "gpu_dense_ms": dn["dense_fused_ms"],
            "gpu_torch_ms": dn["dense_torch_ms"], "gpu_bitwise": "yes" if all(gpu["bitwise"].values()) else "no",
            "gpu_novel_ratio": min(r["ratio"] for r in gpu["per_example"].values())}


def lora_values(real_lora: dict | None, fidelity: dict | None) -> dict[str, Any]:
    """LoRA-adapter GRACE against the full gradient's (Appendix A.8): on the study's configurations
    (``bench_fidelity.py --lora``) and on chapter 10's real-student candidate sets (``bench_real.py --lora``)."""
    V: dict[str, Any] = {}
    lo = (fidelity or {}).get("lora")
    if lo is not None:
        V.update(lora_rho=fidelity["spearman_grace_b_vs_lora"], lora_configs=fidelity["n_configs"],
                 lora_rank=lo["spec"]["rank"], lora_D=lo["D_lora"], lora_ms=lo["ms_per_example"],
                 lora_full_ms=lo["stacked_pass_ms_per_example"],
                 lora_rho_y=fidelity["per_score"]["grace"]["lora_vs_avg_at_k"],
                 lora_rho_b_y=fidelity["per_score"]["grace"]["b_vs_avg_at_k"])
    if real_lora is not None:
        ms = real_lora["ms_per_example"]
        V.update(real_lora_rho=real_lora["spearman_grace_full_vs_lora"], real_lora_sets=len(real_lora["sets"]),
                 real_lora_rank=real_lora["lora"]["rank"], real_lora_D=real_lora["D_lora"],
                 real_lora_ratio=ms["lora"] / ms["full_factored"])
    return V


def pool_lora_summary(pool: dict | None) -> str:
    """Appendix A.8's sentence on ``pool_lora.json``: ``bench_fidelity.py --lora`` on a full-size study's
    every configuration (Markdown), or what to run when it is absent."""
    if pool is None or (pool.get("fidelity") or {}).get("lora") is None:
        return ("*On a full-size pool: not measured in this build (no `pool_lora.json` with a LoRA run in "
                "`bench_dir`; run `python benchmarks/bench_fidelity.py --study artifacts/full/study --lora 8 "
                "--factored-k 0 --distortion-samples 0 --out artifacts/bench/pool_lora.json` after the "
                "`full` study).*")
    fid = pool["fidelity"]
    V, g = lora_values(None, fid), fid["per_score"]["grace"]
    return (f"On a full-size pool — every one of the {V['lora_configs']} configurations of the `{pool['study']['profile']}` "
            f"study, the teachers beside the main pool included — GRACE from rank-{V['lora_rank']} adapters "
            f"($D=$ {V['lora_D']:,} of {pool['study']['params']:,}) has Spearman {V['lora_rho']:.3f} with GRACE from "
            f"the full gradient; its oriented ρ with the students is {g['lora_vs_avg_at_k']:+.2f} against the full "
            f"gradient's {g['b_vs_avg_at_k']:+.2f}.")


def gpu_summary(gpu: dict | None) -> str:
    """Appendix A.8's paragraph on ``gpu.json`` (Markdown), or what to run when it is absent."""
    if gpu is None:
        return ("*Not measured in this build (no `gpu.json` in `bench_dir`; it needs a GPU). The README's "
                "table holds one run on an H200.*")
    V = gpu_values(gpu)
    return (f"On this file's device ({V['gpu_device']}, $D=$ {V['gpu_D']:,}) the floor costs "
            f"{V['gpu_floor_ms']:.1f} ms an example, the factored projector {V['gpu_factored_ratio']:.2f}× that, "
            f"and the paper's dense Π {V['gpu_dense_ms']:.1f} ms through the fused kernel against "
            f"{V['gpu_torch_ms']:.0f} ms through the torch path. The kernel's Π is bit-identical to the CPU's: "
            f"{V['gpu_bitwise']}. A sequence length never seen before costs {V['gpu_novel_ratio']:.2f}× a "
            "repeated one (lengths padded to multiples of 64, attention kernels that do not plan per shape).")


def real_lora_summary(real_lora: dict | None) -> str:
    """Appendix A.8's sentence on ``real_lora.json`` (``bench_real.py --lora``; Markdown)."""
    if real_lora is None:
        return ("*On the real student: not measured in this build (no `real_lora.json` in `bench_dir`; run "
                "`make real` and `python benchmarks/bench_real.py --lora 8 --out artifacts/bench/real_lora.json`).*")
    V = lora_values(real_lora, None)
    return (f"On the real student, across {V['real_lora_sets']} candidate sets of chapter 10, GRACE from "
            f"rank-{V['real_lora_rank']} adapters ($D=$ {V['real_lora_D']:,}) has Spearman "
            f"{V['real_lora_rho']:.3f} with GRACE from the full gradient (through the factored projector), at "
            f"{V['real_lora_ratio']:.2f}× its time on the CPU that ran it: adapters shrink what is projected, "
            "not the per-example forward and backward pass, while the factored projector forms no per-sample "
            "gradient at all.")

