"""Benchmark: fidelity of the structured projector (c) against the paper's Π (b) (paper §2.1, App. C.3).

Given a finished study directory it

1. rebuilds, for every configuration, the exact scoring subset D_eval the study used (the prompts in
   ``features/<config>/features.npz``'s ``prompt_keys``, first ``m`` non-blank responses per prompt
   in sample order: :func:`grace.study.scoring_subset`), checks the row count and that the
   recomputed per-sample ``loss`` matches the saved one (≤ ``--loss-tol``);
2. recomputes the features with ONE gradient pass and two projectors side by side: (b) the study's
   own :class:`~grace.projection.RademacherProjector` (rebuilt from the saved sidecar, so the same
   Π; the recomputed ``H`` is compared with the saved one) and (c)
   :class:`~grace.projection.SparseJLProjector` (``--nnz``, ``--block``, same seed and ``d``; with
   ``--block`` > 1 also the textbook ``block=1`` SJLT, to separate "sparse" from "blocked");
3. scores both with :func:`grace.scores.all_scores` exactly as :func:`grace.study.run_study` does
   (the profile's ``n_folds``/``nu``, fold seed ``seed_for(seed, "folds")``) and reports
   Spearman(GRACE_b, GRACE_c) across configurations and each against ``student_avg_at_k``; the
   factored projector (:class:`grace.factored.FactoredProjector`, ``--factored-k``) is a
   third variant ``f``, applied to the same explicit gradients (its fast path gives the same map);
4. measures inner-product distortion against exact gradients (:class:`IdentityProjector`) on the
   study's student for ``--distortion-samples`` examples at d ∈ ``--distortion-dims``.

Target (the issue): Spearman(GRACE_b, GRACE_c) ≥ 0.95; if missed, (b) stays the default.

    python benchmarks/bench_fidelity.py --study artifacts/quick/study            # ~1-2 min
    python benchmarks/bench_fidelity.py --study artifacts/smoke/study --max-configs 4
    python benchmarks/bench_fidelity.py --study artifacts/full/study --lora 8 --factored-k 0   # LoRA vs full
"""

from __future__ import annotations

# ruff: noqa: E402  (thread limits must be set before numpy/torch are imported)
import argparse
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy: small LAPACK calls
    os.environ.setdefault(_k, "1")  # are fastest single-threaded on a shared machine (see bench_scores.py)

import numpy as np
import torch

from grace.factored import FactoredProjector
from grace.features import Features, compute_features
from grace.io import read_json, read_jsonl, write_json
from grace.projection import (
    IdentityProjector,
    Projector,
    RademacherProjector,
    SparseJLProjector,
)
from grace.projectors import projector_from_meta
from grace.scores import SCORE_ORIENTATION, all_scores
from grace.study import scoring_subset, seed_for

SPEARMAN_TARGET = 0.95


# ---------------------------------------------------------------------------------------------------
# One gradient pass, several projections
# ---------------------------------------------------------------------------------------------------
class StackedProjector(Projector):
    """Several projectors side by side: ``Π = [Π_1; Π_2; ...]``, output columns concatenated.

    Lets :func:`grace.features.compute_features` compute each per-sample gradient once and project it
    with every member (the length factor multiplies rows, so each column block is exactly what the
    member alone would give).
    """

    kind = "stacked"

    def __init__(self, parts: list[Projector]):
        dims_in = {p.dim_in for p in parts}
        if len(dims_in) != 1:
            raise ValueError(f"stacked projectors need one dim_in, got {sorted(dims_in)}; build all with the same D")
        super().__init__(dims_in.pop(), sum(p.dim_out for p in parts), device=parts[0].device)
        self.parts = parts
        self.bounds = np.cumsum([0] + [p.dim_out for p in parts]).tolist()

    def _accumulate(self, out: torch.Tensor, G_cols: torch.Tensor, start: int) -> None:
        for p, a, b in zip(self.parts, self.bounds[:-1], self.bounds[1:], strict=True):
            out[:, a:b] += p.project_partial(G_cols, start)

    def split(self, H: np.ndarray) -> list[np.ndarray]:
        """``H [N, sum d_k] → [H_1 [N, d_1], H_2 [N, d_2], ...]``."""
        return [H[:, a:b] for a, b in zip(self.bounds[:-1], self.bounds[1:], strict=True)]

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "parts": [p.meta() for p in self.parts]}


# ---------------------------------------------------------------------------------------------------
# Study plumbing
# ---------------------------------------------------------------------------------------------------
def student_path(profile: dict, study: Path) -> str:
    """Where the study's student lives: the world's base model (miniature) or the Hub id (gpu)."""
    if "world" in profile:
        return str(study / "world" / "bases" / profile["world"]["student"])
    return str(profile["models"]["student"])


def load_configs(study: Path, max_configs: int | None) -> list[dict[str, Any]]:
    """Rows of ``results.csv`` (config, student_avg_at_k, grace) in file order, optionally the first k."""
    import pandas as pd

    res = pd.read_csv(study / "results.csv")
    rows = res[["config", "student_avg_at_k", "grace"]].to_dict(orient="records")
    return rows[:max_configs] if max_configs else rows


def rebuild_subset(study: Path, config: str, feats: Features, m: int) -> list[dict[str, Any]]:
    """The scoring subset D_eval of ``config``: same prompts, first m non-blank responses in sample order."""
    recs = read_jsonl(study / "generations" / config / "generations.jsonl")
    subset = scoring_subset(recs, list(feats.prompt_keys), m)
    if len(subset) != len(feats):
        raise ValueError(f"{config}: rebuilt {len(subset)} examples but the saved features have {len(feats)} rows; "
                         "the study's generations changed since its features were computed — rerun the study")
    return subset


def spearman(x, y) -> float:
    """Spearman ρ, NaN when either side is constant or has < 3 values (smoke studies)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(x[ok], y[ok]).statistic)


# ---------------------------------------------------------------------------------------------------
# Part 1: GRACE from (b) vs (c) across configurations
# ---------------------------------------------------------------------------------------------------
def fidelity_across_configs(args, profile: dict, study: Path, model, tok, lora_model=None) -> dict[str, Any]:
    """Per configuration: rebuild D_eval, recompute features with (b), (c) [and (c) with block=1], score all.

    With ``lora_model`` (the student with LoRA adapters, :func:`grace.lora.lora_student`) a variant
    ``lora`` takes the gradient with respect to the adapters only, projected by a dense Π of their size,
    in its own pass (``seconds`` per variant pass are reported).
    """
    f, sc, seed = profile["features"], profile["scores"], int(profile["seed"])
    m, bs, n_folds, nu = int(f["m"]), int(f.get("batch_size", 8)), int(sc["n_folds"]), float(sc["nu"])
    fold_seed = seed_for(seed, "folds")
    configs = load_configs(study, args.max_configs)
    rows, t_grad, t_lora = [], 0.0, 0.0
    D_lora = sum(p.numel() for p in lora_model.parameters() if p.requires_grad) if lora_model is not None else 0
    for c in configs:
        name = c["config"]
        saved = Features.load(study / "features" / name / "features.npz")
        meta = saved.meta
        d = args.d or int(meta["projector"]["dim_out"])
        same_d = d == saved.H.shape[1]
        dev = args.device
        pb = projector_from_meta(meta["projector"], device=dev) if same_d else \
            RademacherProjector(meta["n_params"], d, seed=int(meta["projector"]["seed"]), device=dev)
        variants = {"b": pb, "c": SparseJLProjector(pb.dim_in, d, seed=pb.seed, nnz=args.nnz, block=args.block, device=dev)}
        if args.block != 1:  # the textbook SJLT too: separates "sparse" from "blocked"
            variants["c_block1"] = SparseJLProjector(pb.dim_in, d, seed=pb.seed, nnz=args.nnz, block=1, device=dev)
        if args.factored_k:  # the factored (LoGra-style) map, applied here to the explicit gradients
            variants["f"] = FactoredProjector(model, d, seed=pb.seed, k=args.factored_k, device=dev)
        stack = StackedProjector(list(variants.values()))
        subset = rebuild_subset(study, name, saved, m)
        t0 = time.perf_counter()
        new = compute_features(model, tok, subset, stack, length_scale=meta["length_scale"], template=meta["template"],
                               batch_size=bs, device=dev, progress=False, method=meta.get("method", "auto"),
                               max_length=meta.get("max_length"))  # fmt: skip
        t_grad += time.perf_counter() - t0
        loss_diff = float(np.max(np.abs(new.loss - saved.loss)))
        if loss_diff > args.loss_tol:
            raise ValueError(f"{name}: recomputed loss differs from the saved one by {loss_diff:.2e} > "
                             f"--loss-tol={args.loss_tol:g}; the student or the subset is not the study's")
        H = dict(zip(variants, stack.split(new.H), strict=True))
        h_diff = float(np.max(np.abs(H["b"] - saved.H)) / np.max(np.abs(saved.H))) if same_d else math.nan
        if same_d:
            H["b"] = saved.H  # score exactly what the study scored
        kw = dict(loss=new.loss, mean_prob=new.mean_prob, correct=new.correct, grad_norms=new.grad_norm,
                  n_folds=n_folds, nu=nu, seed=fold_seed)  # fmt: skip
        scores = {k: all_scores(h, new.prompt_ids, **kw) for k, h in H.items()}
        if lora_model is not None:  # adapters start at B = 0: the same outputs, so the same loss
            t0 = time.perf_counter()
            lo = compute_features(lora_model, tok, subset, RademacherProjector(D_lora, d, seed=pb.seed, device=dev),
                                  length_scale=meta["length_scale"], template=meta["template"], batch_size=bs,
                                  device=dev, progress=False, max_length=meta.get("max_length"))
            t_lora += time.perf_counter() - t0
            scores["lora"] = all_scores(lo.H, lo.prompt_ids, **kw)
        rows.append({"config": name, "rows": len(new), "d": d, "student_avg_at_k": c["student_avg_at_k"],
                     "grace_results_csv": c["grace"], **{f"grace_{k}": s["grace"] for k, s in scores.items()},
                     "loss_max_abs_diff": loss_diff, "H_b_max_rel_diff": h_diff,
                     **{f"scores_{k}": s for k, s in scores.items()}})  # fmt: skip
        print(f"  {name:>22s}: rows {len(new)}, loss diff {loss_diff:.1e}, H_b diff {h_diff:.1e}, GRACE "
              + ", ".join(f"{k} {s['grace']:.4g}" for k, s in scores.items()), flush=True)  # fmt: skip

    y = [r["student_avg_at_k"] for r in rows]
    names = [*variants, *(["lora"] if lora_model is not None else [])]
    g = {k: [r[f"grace_{k}"] for r in rows] for k in names}
    per_score = {}
    for k, sign in SCORE_ORIENTATION.items():
        if k not in rows[0]["scores_b"]:
            continue
        v = {name: [r[f"scores_{name}"][k] for r in rows] for name in names}
        per_score[k] = {"b_vs_c": spearman(v["b"], v["c"]),
                        **{f"{name}_vs_avg_at_k": sign * spearman(v[name], y) for name in names}}  # fmt: skip
        if "c_block1" in v:
            per_score[k]["b_vs_c_block1"] = spearman(v["b"], v["c_block1"])
        if "f" in v:
            per_score[k]["b_vs_f"] = spearman(v["b"], v["f"])
        if "lora" in v:
            per_score[k]["b_vs_lora"] = spearman(v["b"], v["lora"])
    rho_bc = spearman(g["b"], g["c"])
    out = {
        "configs": rows,
        "n_configs": len(rows),
        "variants": {k: p.meta() for k, p in variants.items()},
        "grad_seconds": t_grad,
        "spearman_grace_b_vs_c": rho_bc,
        **{f"spearman_grace_{k}_vs_avg_at_k": spearman(v, y) for k, v in g.items()},
        "orientation_note": "raw Spearman; GRACE is lower-is-better, so a good score correlates negatively "
                            "with avg@k. per_score values are oriented (+ = ranks teachers the right way).",
        "per_score": per_score,
        "grace_b_vs_results_csv_max_rel": float(np.max(np.abs(np.subtract(g["b"], [r["grace_results_csv"] for r in rows]))
                                                       / np.maximum(np.abs(g["b"]), 1e-300))) if same_d else math.nan,
        "max_loss_abs_diff": max(r["loss_max_abs_diff"] for r in rows),
        "max_H_b_rel_diff": max((r["H_b_max_rel_diff"] for r in rows if not math.isnan(r["H_b_max_rel_diff"])),
                                default=math.nan),
        "target": {"spearman_b_vs_c_ge": SPEARMAN_TARGET, "met": bool(rho_bc >= SPEARMAN_TARGET) if np.isfinite(rho_bc) else None},
    }  # fmt: skip
    if "c_block1" in g:
        out["spearman_grace_b_vs_c_block1"] = spearman(g["b"], g["c_block1"])
    if "f" in g:
        out["spearman_grace_b_vs_f"] = spearman(g["b"], g["f"])
    if "lora" in g:
        n_rows = sum(r["rows"] for r in rows)
        out["spearman_grace_b_vs_lora"] = spearman(g["b"], g["lora"])
        out["lora"] = {"spec": vars(args).get("lora_spec"), "D_lora": D_lora,
                       "ms_per_example": 1e3 * t_lora / n_rows,
                       "stacked_pass_ms_per_example": 1e3 * t_grad / n_rows}
    return out


# ---------------------------------------------------------------------------------------------------
# Part 2: inner-product distortion vs exact gradients
# ---------------------------------------------------------------------------------------------------
def distortion_stats(G: np.ndarray, P: np.ndarray) -> dict[str, float]:
    """How well ``P [n, d]`` preserves the geometry of exact gradients ``G [n, D]`` (JL, paper §2.1).

    * ``norm_sq``: ``|‖Πx‖²/‖x‖² − 1|`` per sample;
    * ``inner``: ``|<Πx,Πy> − <x,y>| / (‖x‖‖y‖)`` per pair i < j (inner-product error on the scale of
      the norms; the plain relative error is unbounded for near-orthogonal pairs);
    * ``cosine``: ``|cos(Πx,Πy) − cos(x,y)|`` per pair (what GRACE's unit-normalised Σ̃ sees);
    * ``gram_fro``: ``‖K̂ − K‖_F / ‖K‖_F`` of the Gram matrices.
    """
    G, P = G.astype(np.float64), P.astype(np.float64)
    K, Kh = G @ G.T, P @ P.T
    n = np.sqrt(np.diag(K))
    nh = np.sqrt(np.diag(Kh))
    iu = np.triu_indices(len(G), 1)
    norm_sq = np.abs(np.diag(Kh) / np.diag(K) - 1)
    inner = np.abs(Kh - K)[iu] / np.outer(n, n)[iu]
    cos = np.abs(Kh / np.outer(nh, nh) - K / np.outer(n, n))[iu]
    out = {"gram_fro": float(np.linalg.norm(Kh - K) / np.linalg.norm(K))}
    for name, v in (("norm_sq", norm_sq), ("inner", inner), ("cosine", cos)):
        out |= {f"{name}_median": float(np.median(v)), f"{name}_p95": float(np.quantile(v, 0.95)),
                f"{name}_max": float(v.max())}  # fmt: skip
    out["abs_cos_exact_median"] = float(np.median(np.abs(K / np.outer(n, n))[iu]))
    return out


def distortion(args, profile: dict, study: Path, model, tok, D: int) -> dict[str, Any]:
    f, seed = profile["features"], int(profile["seed"])
    configs = load_configs(study, args.max_configs)
    examples: list[dict[str, Any]] = []
    for c in configs:  # the first configurations' scoring subsets, up to --distortion-samples examples
        saved = Features.load(study / "features" / c["config"] / "features.npz")
        examples += rebuild_subset(study, c["config"], saved, int(f["m"]))
        if len(examples) >= args.distortion_samples:
            break
    examples = examples[: args.distortion_samples]
    pseed, dev = seed_for(seed, "proj"), args.device
    kinds: list[tuple[str, int, Projector]] = []
    for d in args.distortion_dims:
        kinds.append(("rademacher (b)", d, RademacherProjector(D, d, seed=pseed, device=dev)))
        kinds.append((f"sparse_jl block={args.block} (c)", d,
                      SparseJLProjector(D, d, seed=pseed, nnz=args.nnz, block=args.block, device=dev)))  # fmt: skip
        if args.block != 1:
            kinds.append(("sparse_jl block=1", d, SparseJLProjector(D, d, seed=pseed, nnz=args.nnz, device=dev)))
        if args.factored_k:
            kinds.append((f"factored k={args.factored_k}", d, FactoredProjector(model, d, seed=pseed, k=args.factored_k,
                                                                               device=dev)))
    stack = StackedProjector([IdentityProjector(D, device=dev)] + [p for _, _, p in kinds])
    t0 = time.perf_counter()
    feats = compute_features(model, tok, examples, stack, length_scale="none", template=profile["template"],
                             batch_size=int(f.get("batch_size", 8)), device=dev, progress=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    G, *Ps = stack.split(feats.H)
    rows = []
    for (name, d, p), P in zip(kinds, Ps, strict=True):
        scale = math.sqrt(D / d) if isinstance(p, RademacherProjector | FactoredProjector) else 1.0  # E‖Πx‖² = (d/D)‖x‖²
        rows.append({"projector": name, "d": d, "jl_reference_sqrt_2_over_d": math.sqrt(2 / d),
                     **distortion_stats(G, P * scale)})  # fmt: skip
        r = rows[-1]
        print(f"  {name:>24s} d={d:4d}: |‖Πx‖²/‖x‖²-1| median {r['norm_sq_median']:.3f} max {r['norm_sq_max']:.3f}; "
              f"inner err median {r['inner_median']:.3f} p95 {r['inner_p95']:.3f}; cos err median {r['cosine_median']:.3f}; "
              f"Gram {r['gram_fro']:.3f}", flush=True)  # fmt: skip
    return {"samples": len(examples), "params": D, "seconds": seconds, "rows": rows}


# ---------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------
def run(args) -> dict[str, Any]:
    from grace.world import load_model, load_tokenizer

    torch.set_num_threads(args.threads)
    study = Path(args.study)
    if not (study / "results.csv").exists():
        raise ValueError(f"--study {study} has no results.csv; pass a finished study directory "
                         "(e.g. $GRACE_ARTIFACTS/smoke/study after `grace study --profile smoke`)")
    profile = read_json(study / "profile.json")
    path = student_path(profile, study)
    args.device = args.device or profile.get("device", "cpu")
    model, tok = load_model(path, device=args.device), load_tokenizer(path)
    D = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"study {study} (profile {profile['name']}), student {path}: D = {D:,}; nnz={args.nnz}, block={args.block}")
    t0 = time.perf_counter()
    lora_model = None
    if args.lora:
        from grace.config import LoraSpec
        from grace.lora import lora_student

        spec = LoraSpec(rank=args.lora, alpha=2.0 * args.lora)
        args.lora_spec = spec.meta()
        lora_model = lora_student(load_model(path, device=args.device), spec, seed=0)
    fid = fidelity_across_configs(args, profile, study, model, tok, lora_model)
    print(f"Spearman GRACE (b) vs (c): {fid['spearman_grace_b_vs_c']:.3f} (target >= {SPEARMAN_TARGET}); "
          f"vs student avg@k: (b) {fid['spearman_grace_b_vs_avg_at_k']:.3f}, (c) {fid['spearman_grace_c_vs_avg_at_k']:.3f}; "
          f"(b) vs (c, block=1): {fid.get('spearman_grace_b_vs_c_block1', math.nan):.3f}; "
          f"(b) vs factored: {fid.get('spearman_grace_b_vs_f', math.nan):.3f}; "
          f"(b) vs LoRA: {fid.get('spearman_grace_b_vs_lora', math.nan):.3f} "
          f"[{fid['n_configs']} configs]", flush=True)  # fmt: skip
    dis = distortion(args, profile, study, model, tok, D) if args.distortion_samples > 0 else None
    return {
        "config": {k: v for k, v in vars(args).items()} | {"torch": torch.__version__,
                                                            "python": platform.python_version()},
        "study": {"dir": str(study), "profile": profile["name"], "student": path, "params": D,
                  "d": fid["configs"][0]["d"] if fid["configs"] else None,
                  "n": int(profile["features"]["n"]), "m": int(profile["features"]["m"]),
                  "n_folds": int(profile["scores"]["n_folds"]), "nu": float(profile["scores"]["nu"])},
        "fidelity": fid,
        "distortion": dis,
        "wall_s": time.perf_counter() - t0,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", required=True, help="a finished study directory (with results.csv, features/, generations/)")
    ap.add_argument("--nnz", type=int, default=4, help="non-zeros per column of the sparse JL projector (c)")
    ap.add_argument("--block", type=int, default=32, help="columns sharing a row pattern in (c) (1 = textbook SJLT)")
    ap.add_argument("--factored-k", type=int, default=16, help="factor width of the factored projector (0 = skip it)")
    ap.add_argument("--d", type=int, default=None, help="projection dim for GRACE (default: the study's d)")
    ap.add_argument("--max-configs", type=int, default=None, help="use only the first k configurations")
    ap.add_argument("--distortion-samples", type=int, default=64, help="examples for the distortion check (0 = skip)")
    ap.add_argument("--distortion-dims", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--loss-tol", type=float, default=1e-5, help="max |recomputed − saved| per-sample loss")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the CI box has 2 shared cores)")
    ap.add_argument("--device", default=None, help="torch device (default: the study profile's device)")
    ap.add_argument("--lora", type=int, default=0, help="also GRACE from LoRA adapters of this rank (alpha 2·rank; "
                    "grace.lora) against the full gradient's (b), and their cost (0 = skip)")
    ap.add_argument("--out", default="artifacts/bench/fidelity.json")
    args = ap.parse_args(argv)
    if args.max_configs is not None and args.max_configs < 1:
        raise ValueError(f"--max-configs={args.max_configs} must be >= 1 (omit it to use all configurations)")
    res = run(args)
    write_json(Path(args.out), res)
    print(f"wrote {args.out} ({res['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
