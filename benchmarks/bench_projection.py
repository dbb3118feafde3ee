"""Benchmark: cost of projecting per-sample gradients vs computing them (paper §2.1, App. C.3).

For Llama students of ≈0.5 / 4 / 14 M parameters (sequence length T = 96) it measures, in ms per
sample (medians over repeats):

* the per-sample gradient alone, with the ``loop`` and ``vmap`` paths of :mod:`grace.features`;
* gradient projection of a batch of ``--batch`` gradients at d ∈ {128, 512, 1024} with
  (a) the naive baseline: per sample, every Rademacher chunk regenerated with ``torch.randint``
      under a per-chunk generator seed (measured on a column slice and scaled to all of D),
  (b) :class:`grace.projection.RademacherProjector` (paper's Π; first batch "cold", later "warm"),
  (c) :class:`grace.projection.SparseJLProjector` (the structured, opt-in projector), as the
      textbook SJLT (``block=1``) and with ``--block`` columns sharing a row pattern (``sjlt.b``);
* the fp32 GEMM floor ``2·D·d`` flops per sample at this machine's measured GEMM speed, and a
  breakdown (hash / unpack / GEMM) of one Rademacher chunk, to show where time goes.

Ratios are against the faster gradient path measured in the same run. Writes JSON to ``--out``.

    python benchmarks/bench_projection.py --quick          # ~1-2 min
    python benchmarks/bench_projection.py                  # all sizes and dims (several minutes)
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from grace.features import grads_loop, grads_vmap
from grace.io import write_json
from grace.projection import DEFAULT_CACHE_BYTES, RademacherProjector, SparseJLProjector

SIZES = {  # name -> LlamaConfig overrides (vocab 1024, untied embeddings)
    "0.5M": dict(hidden_size=80, num_hidden_layers=4, intermediate_size=256, num_attention_heads=4),
    "4M": dict(hidden_size=192, num_hidden_layers=6, intermediate_size=768, num_attention_heads=6),
    "14M": dict(hidden_size=320, num_hidden_layers=8, intermediate_size=1280, num_attention_heads=8),
}


def build_model(size: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=1024, max_position_embeddings=512, tie_word_embeddings=False, **SIZES[size])
    return LlamaForCausalLM(cfg).eval()


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# ---------------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------------
def bench_gradients(model, T: int, n: int, vmap_batch: int, repeats: int) -> dict[str, float]:
    """ms/sample of per-sample gradients (response = last 2/3 of the sequence) with both paths."""
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    names, params = [k for k, _ in named], [p for _, p in named]
    D = sum(p.numel() for p in params)
    torch.manual_seed(1)
    ids = torch.randint(3, model.config.vocab_size, (max(n, vmap_batch), T))
    labels = ids.clone()
    labels[:, : T // 3] = -100
    G = torch.empty(max(n, vmap_batch), D)
    grads_loop(model, params, ids[:1], labels[:1], [T], G[:1])  # warm-up
    loop = timed(lambda: grads_loop(model, params, ids[:n], labels[:n], [T] * n, G[:n]), repeats)
    grads_vmap(model, names, params, ids[:2], labels[:2], G[:2])
    vm = timed(lambda: grads_vmap(model, names, params, ids[:vmap_batch], labels[:vmap_batch], G[:vmap_batch]), repeats)
    return {"loop_ms": 1e3 * med(loop) / n, "vmap_ms": 1e3 * med(vm) / vmap_batch}


# ---------------------------------------------------------------------------------------------------
# Projections
# ---------------------------------------------------------------------------------------------------
def naive_project_one(g: torch.Tensor, d: int, seed: int, chunk: int, D: int) -> torch.Tensor:
    """The naive baseline for ONE sample: regenerate every chunk of Π with torch.randint."""
    out = torch.zeros(d)
    gen = torch.Generator()
    for i, c0 in enumerate(range(0, g.numel(), chunk)):
        c1 = min(c0 + chunk, g.numel())
        gen.manual_seed(seed * 1_000_003 + i)
        P = torch.randint(0, 2, (c1 - c0, d), generator=gen, dtype=torch.float32).mul_(2).sub_(1).div_(math.sqrt(D))
        out += g[c0:c1] @ P
    return out


def bench_naive(D: int, d: int, chunk: int, max_cols: int, samples: int) -> dict[str, float]:
    cols = min(D, max_cols)
    g = torch.randn(cols)
    naive_project_one(g[: min(cols, chunk)], d, 0, chunk, D)
    ts = timed(lambda: naive_project_one(g, d, 0, chunk, D), samples)
    return {"naive_ms": 1e3 * med(ts) * D / cols, "naive_measured_cols": cols}


def bench_projector(make, G: torch.Tensor, repeats: int) -> dict[str, float]:
    B = G.shape[0]
    P = make()
    cold = timed(lambda: P.project(G), 1)
    warm = timed(lambda: P.project(G), repeats)
    out = {"cold_ms": 1e3 * cold[0] / B, "warm_ms": 1e3 * med(warm) / B}
    if hasattr(P, "cache_mode"):
        out["cache_mode"] = P.cache_mode
    return out


def gemm_gflops(d: int, B: int, chunk: int = 4096, repeats: int = 5) -> float:
    A, W = torch.randn(B, chunk), torch.randn(d, chunk)
    out = torch.zeros(B, d)
    out.addmm_(A, W.T)
    ts = timed(lambda: out.addmm_(A, W.T), repeats)
    return 2 * B * chunk * d / med(ts) / 1e9


def rademacher_breakdown(D: int, d: int, repeats: int = 3) -> dict[str, float]:
    """Per-chunk time split of RademacherProjector without cache: hash words, bit unpack, GEMM."""
    P = RademacherProjector(D, d, cache_bytes=0)
    cs = min(P.chunk_size, D)
    nw = -(-cs // 32)
    G = torch.randn(32, cs)
    words = P._words(0, nw)
    Pm = P._columns(0, cs, words)
    out = torch.zeros(32, d)
    t_hash = med(timed(lambda: P._words(0, nw), repeats))
    t_unpack = med(timed(lambda: P._unpack(words, True), repeats))
    t_gemm = med(timed(lambda: out.addmm_(G, Pm.T), repeats))
    total = t_hash + t_unpack + t_gemm
    return {"chunk_cols": cs, "hash_frac": t_hash / total, "unpack_frac": t_unpack / total, "gemm_frac": t_gemm / total,
            "ns_per_entry_per_batch": 1e9 * total / (cs * d)}  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------
def run(args) -> dict:
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="There is a performance drop")
    results = {"config": vars(args) | {"torch": torch.__version__, "python": platform.python_version(),
                                        "machine": platform.processor() or platform.machine(),
                                        "cache_bytes": DEFAULT_CACHE_BYTES},
               "rows": [], "gradients": {}, "gemm_gflops": {}}  # fmt: skip
    for d in args.dims:
        results["gemm_gflops"][d] = gemm_gflops(d, args.batch)
    for size in args.sizes:
        model = build_model(size)
        D = sum(p.numel() for p in model.parameters())
        grads = bench_gradients(model, args.T, args.grad_samples, min(args.batch, args.vmap_batch), args.repeats)
        grad_ms = min(grads["loop_ms"], grads["vmap_ms"])
        results["gradients"][size] = {"params": D, **grads}
        print(f"\n== {size}: D = {D:,} params, T = {args.T}; gradient loop {grads['loop_ms']:.1f} ms/sample, "
              f"vmap {grads['vmap_ms']:.1f} ms/sample  (baseline = {grad_ms:.1f})", flush=True)  # fmt: skip
        del model
        G = torch.randn(args.batch, D)
        # memory-read floor: one pass over the batch of gradients (any projection must read G once)
        read_ms = 1e3 * med(timed(lambda G=G: G.sum(dim=1), args.repeats)) / args.batch
        for d in args.dims:
            row = {"size": size, "params": D, "d": d, "grad_ms": grad_ms}
            rp = bench_projector(lambda D=D, d=d: RademacherProjector(D, d, chunk_size=args.chunk_size), G, args.repeats)
            sj = bench_projector(lambda D=D, d=d: SparseJLProjector(D, d, nnz=args.nnz), G, args.repeats)
            sjb = bench_projector(lambda D=D, d=d: SparseJLProjector(D, d, nnz=args.nnz, block=args.block), G, args.repeats)
            nv = bench_naive(D, d, rp_chunk(D, d, args.chunk_size), args.naive_cols, args.naive_samples)
            floor = 1e3 * 2 * D * d / (results["gemm_gflops"][d] * 1e9)
            row |= {"naive_ms": nv["naive_ms"], "naive_measured_cols": nv["naive_measured_cols"],
                    "rademacher_cold_ms": rp["cold_ms"], "rademacher_ms": rp["warm_ms"], "cache_mode": rp["cache_mode"],
                    "sparse_jl_cold_ms": sj["cold_ms"], "sparse_jl_ms": sj["warm_ms"],
                    "sparse_jl_block_cold_ms": sjb["cold_ms"], "sparse_jl_block_ms": sjb["warm_ms"],
                    "gemm_floor_ms": floor, "read_floor_ms": read_ms}  # fmt: skip
            for k in ("naive", "rademacher", "sparse_jl", "sparse_jl_block", "gemm_floor", "read_floor"):
                row[f"{k}_ratio"] = row[f"{k}_ms"] / grad_ms
            row["speedup_vs_naive"] = row["naive_ms"] / row["rademacher_ms"]
            if args.breakdown:
                row["breakdown"] = rademacher_breakdown(D, d)
            results["rows"].append(row)
            print_row(row, flush=True)
        del G
    return results


def rp_chunk(D: int, d: int, chunk_size: int | None) -> int:
    return RademacherProjector(D, d, chunk_size=chunk_size, cache_bytes=0).chunk_size


HEADER = (f"{'size':>5} {'d':>5} | {'grad':>7} | {'naive':>8} {'rad.cold':>8} {'rad.warm':>8} {'cache':>5} "
          f"{'sjlt':>6} {'sjlt.b':>6} {'floor':>7} | {'naive/g':>7} {'rad/g':>6} {'sjlt/g':>6} {'sjlt.b/g':>8} "
          f"{'floor/g':>7} {'read/g':>6} {'x naive':>7}")  # fmt: skip


def profile_projectors(size: str, d: int, batch: int, block: int, nnz: int) -> dict:
    """torch.profiler tables (top ops by self CPU time) for one warm projection of each kind.

    Prints each table and returns ``{projector: {"size", "d", "B", "ops": [{op, self_cpu_ms, self_cpu_frac}]}}``.
    """
    from torch.profiler import ProfilerActivity, profile

    D = sum(p.numel() for p in build_model(size).parameters())
    G = torch.randn(batch, D)
    out = {}
    for name, P in [("rademacher", RademacherProjector(D, d)), ("sparse_jl", SparseJLProjector(D, d, nnz=nnz)),
                    ("sparse_jl_block", SparseJLProjector(D, d, nnz=nnz, block=block))]:  # fmt: skip
        P.project(G)  # fill caches
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            P.project(G)
        print(f"\n== profile: {name}, {size} (D = {D:,}), d = {d}, B = {batch}")
        avgs = prof.key_averages()
        print(avgs.table(sort_by="self_cpu_time_total", row_limit=8))
        total = sum(e.self_cpu_time_total for e in avgs) or 1.0
        top = sorted(avgs, key=lambda e: e.self_cpu_time_total, reverse=True)[:6]
        out[name] = {"size": size, "d": d, "B": batch, "ops": [
            {"op": e.key, "self_cpu_ms": e.self_cpu_time_total / 1e3, "self_cpu_frac": e.self_cpu_time_total / total}
            for e in top]}
    return out


def format_row(r: dict) -> str:
    return (f"{r['size']:>5} {r['d']:>5} | {r['grad_ms']:7.1f} | {r['naive_ms']:8.1f} {r['rademacher_cold_ms']:8.1f} "
            f"{r['rademacher_ms']:8.1f} {r['cache_mode']:>5} {r['sparse_jl_ms']:6.2f} {r['sparse_jl_block_ms']:6.2f} "
            f"{r['gemm_floor_ms']:7.1f} | {r['naive_ratio']:7.2f} {r['rademacher_ratio']:6.2f} "
            f"{r['sparse_jl_ratio']:6.3f} {r['sparse_jl_block_ratio']:8.3f} "
            f"{r['gemm_floor_ratio']:7.2f} {r.get('read_floor_ratio', float('nan')):6.3f} "
            f"{r['speedup_vs_naive']:7.1f}")  # fmt: skip


def print_row(row: dict, flush: bool = False) -> None:
    print(HEADER)
    print(format_row(row), flush=flush)
    if "breakdown" in row:
        b = row["breakdown"]
        print(f"      Rademacher chunk of {b['chunk_cols']} cols without cache: hash {b['hash_frac']:.0%}, "
              f"unpack {b['unpack_frac']:.0%}, GEMM {b['gemm_frac']:.0%} ({b['ns_per_entry_per_batch']:.2f} ns/entry/batch)")  # fmt: skip


def print_summary(results: dict) -> None:
    print("\n== summary (ms/sample; ratios vs the gradient alone; targets at d=512: rad/g <= 0.25, x naive >= 20, "
          "sjlt/g <= 0.05; sjlt.b = block", results["config"]["block"], ")")  # fmt: skip
    print(HEADER)
    for row in results["rows"]:
        print(format_row(row))
    grads = {k: {m: round(v, 1) for m, v in g.items()} for k, g in results["gradients"].items()}
    print("\n   gradient paths (ms/sample):", grads)
    print("   fp32 GEMM speed [B x 4096] x [4096 x d] (GFLOP/s):", {d: round(v, 1) for d, v in results["gemm_gflops"].items()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="sizes 0.5M,4M, dims 128,512, fewer samples (~1-2 min)")
    ap.add_argument("--sizes", nargs="+", choices=list(SIZES), default=None)
    ap.add_argument("--dims", nargs="+", type=int, default=None)
    ap.add_argument("--T", type=int, default=96, help="sequence length")
    ap.add_argument("--batch", type=int, default=32, help="gradients per projection call")
    ap.add_argument("--vmap-batch", type=int, default=8, help="samples per vmap call")
    ap.add_argument("--grad-samples", type=int, default=None, help="samples per loop-gradient timing")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--naive-cols", type=int, default=None, help="columns the naive baseline is timed on")
    ap.add_argument("--naive-samples", type=int, default=2)
    ap.add_argument("--nnz", type=int, default=4, help="non-zeros per column of the sparse JL projector")
    ap.add_argument("--block", type=int, default=32, help="block size of the blocked sparse JL variant")
    ap.add_argument("--chunk-size", type=int, default=None, help="RademacherProjector chunk_size (default: auto)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the CI box has 2 shared cores)")
    ap.add_argument("--no-breakdown", dest="breakdown", action="store_false")
    ap.add_argument("--profile", action="store_true",
                    help="also record torch.profiler tables (largest size, d=512) in the results file")
    ap.add_argument("--out", default="artifacts/bench/projection.json")
    ap.add_argument("--plan", action="store_true",
                    help="only print how Π is applied at --dim-in x --dim-out on --device (no GPU needed)")
    ap.add_argument("--dim-in", type=int, default=1_240_000_000, help="with --plan: D (default Llama-3.2-1B)")
    ap.add_argument("--dim-out", type=int, default=512, help="with --plan: d")
    ap.add_argument("--device", default="cuda", help="with --plan: cuda (budget-sized chunks) or cpu")
    ap.add_argument("--budget-gb", type=float, default=None,
                    help="with --plan: chunk memory budget in GiB (default: 16 on cuda, ~8 MB chunks on cpu)")
    ap.add_argument("--samples-per-call", type=int, default=1, help="with --plan: gradients per projection call")
    args = ap.parse_args(argv)
    if args.plan:
        return print_plan(args)
    q = args.quick
    args.sizes = args.sizes or (["0.5M", "4M"] if q else list(SIZES))
    args.dims = args.dims or ([128, 512] if q else [128, 512, 1024])
    args.grad_samples = args.grad_samples or (8 if q else 16)
    args.repeats = args.repeats or (2 if q else 3)
    args.naive_cols = args.naive_cols or (2**18 if q else 2**20)
    t0 = time.perf_counter()
    results = run(args)
    results["wall_s"] = time.perf_counter() - t0
    print_summary(results)
    if args.profile:
        torch.set_num_threads(args.threads)
        results["profile"] = profile_projectors(args.sizes[-1], 512, args.batch, args.block, args.nnz)
    write_json(Path(args.out), results)
    print(f"\nwrote {args.out} ({results['wall_s']:.0f} s)")
    return 0


def print_plan(args) -> int:
    """``--plan``: the chunk plan of RademacherProjector at a size this machine need not hold."""
    from grace.projection import CUDA_BUDGET_BYTES, RademacherProjector

    budget = int(args.budget_gb * 2**30) if args.budget_gb else (CUDA_BUDGET_BYTES if args.device == "cuda" else None)
    # the plan is arithmetic plus an op count on a CPU twin: build it on the CPU with the device's budget
    proj = RademacherProjector(args.dim_in, args.dim_out, memory_budget=budget, cache_bytes=0)
    plan = proj.plan(samples_per_call=args.samples_per_call)
    plan["device"] = args.device
    for k in ("dim_in", "dim_out", "device", "chunk_size", "n_chunks", "ops_per_chunk", "launches_per_call"):
        print(f"{k}: {plan[k]}")
    print(f"bytes_per_chunk: {plan['bytes_per_chunk']}")
    print(f"launches_per_sample: {plan['launches_per_sample']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
