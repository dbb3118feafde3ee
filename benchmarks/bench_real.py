"""Benchmark: gradient features of a real pretrained student on the CPU (Appendix A).

The student is SmolLM2-135M-Instruct (``smollm2-135m-instruct``, :mod:`grace.sources`; D = 134.5 M), the
examples real GSM8K train solutions from ``../shared/data`` under the release's prompt template. Each
method runs in its own process (so each peak is its own) on the same examples and prints

    method=<name> ms_per_example=<x> ratio_to_floor=<r> peak_rss_mb=<m> beyond_model_mb=<b>

* ``floor`` — one plain forward + backward per example (``loss.backward()`` into ``.grad``), nothing else;
* ``floor_tail`` — the same, asking the output layer for the scored positions' logits only
  (``logits_to_keep``, as ``factored`` does): how much of ``factored``'s lead is that alone;
* ``vmap`` — the path ``grace rank`` took before the hooks path: ``vmap(grad)`` over a batch, then the dense Π;
* ``dense`` — the paper's Π (:class:`~grace.projection.RademacherProjector`, d = 512), one example at
  a time, projected from each parameter's ``.grad`` as it stands (within the ``4·D·4`` bound);
* ``sparse_jl`` — the same loop with :class:`~grace.projection.SparseJLProjector` (nnz 4, block 32, cached);
* ``factored`` — :class:`grace.factored.FactoredProjector`: batched forward + backward, weights frozen,
  no per-sample gradient formed; its default ``grad_norm`` (``norms="sketch"``: ``‖z‖``, free);
* ``factored_exact`` — the same with ``norms="exact"`` (the exact ``‖g‖`` from token Gram matrices).

``peak_rss_mb`` is the process's peak resident set; ``beyond_model_mb`` the peak while timing (the
kernel's peak counter is reset just before, ``/proc/self/clear_refs``) minus the resident set right after
the model was loaded, so what the warm-up step and the projector's caches keep counts as beyond it. Ratios are to ``floor`` measured in the same run on the same examples (a method timed on
``n`` examples is compared with the floor's time on those ``n``; GSM8K solutions range from about 110
to 250 tokens): per example, the mean of one floor run before and one after the others, since a shared
host's speed drifts within minutes. ``setup_ms`` is the one-time cost of building the projector and
its caches (:meth:`~grace.projection.Projector.prepare`; for the sparse Π its index tables over all D
columns), paid once per run whatever the number of examples, so it is reported beside the
per-example cost, not inside it. Every worker but ``dense`` and ``vmap`` first runs its own method
once, untimed, on the first example (``warmup_ms``: first-call allocations, page faults on fresh
buffers, kernel setup), then times the ``n`` examples; the two slow ones (20-50 s an example) skip it,
as their first-call cost is noise and the warm-up would be a third of the ``--quick`` run. It also prints the dense Π's own floor:
``2·D·d`` multiply-adds at this machine's measured GEMM speed plus ``D·d`` sign draws at the
projector's measured rate, for the one gradient that fits the memory bound at a time.

    python benchmarks/bench_real.py --quick      # <= 5 min on 2 cores
    python benchmarks/bench_real.py              # more examples per method
    python benchmarks/bench_real.py --fidelity --out artifacts/bench/real_fidelity.json   # factored vs dense Π
    python benchmarks/bench_real.py --lora 8 --out artifacts/bench/real_lora.json          # LoRA vs full gradient
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_fidelity's helpers
METHODS = ("floor", "factored", "factored_exact", "floor_tail", "sparse_jl", "dense", "vmap")  # run in this order, then floor again
SLOW = ("dense", "vmap")  # tens of seconds an example at 135 M: no warm-up, fewest examples


def _rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _examples(n: int) -> list[dict]:
    from grace.data import default_data_dir, load_gsm8k

    path = default_data_dir() / "gsm8k"
    if not (path / "train.jsonl").exists():
        sys.exit(f"bench_real: no GSM8K under {path} (set GRACE_DATA_DIR)")
    rows = load_gsm8k("train", path)[:n]
    return [{"prompt_id": r["prompt_id"], "prompt": r["prompt"], "response": r["reference_solution"]} for r in rows]


def worker(method: str, n: int, d: int, batch: int, model_name: str) -> dict:
    """Run one method in this process; return its timing and memory."""
    from grace.encoding import DEFAULT_TEMPLATE, encode_example
    from grace.factored import scored_tail
    from grace.features import compute_features, response_loss
    from grace.projection import RademacherProjector, SparseJLProjector
    from grace.world import load_model, load_tokenizer

    model, tok = load_model(model_name), load_tokenizer(model_name)
    examples = _examples(n)
    D = sum(p.numel() for p in model.parameters() if p.requires_grad)
    base = _rss_mb()  # the loaded model: warm-up and caches count as beyond it

    def step(ex: dict) -> None:  # the floor: one plain forward + backward into .grad
        ids, labels = encode_example(tok, ex["prompt"], ex["response"], DEFAULT_TEMPLATE)
        tail = scored_tail(model, torch.tensor([labels])) if method == "floor_tail" else {}  # as factored asks
        keep = next(iter(tail.values()), len(ids))  # logits of the last `keep` positions
        logits = model(input_ids=torch.tensor([ids]), use_cache=False, **tail).logits[0]
        loss, _ = response_loss(logits, torch.tensor(labels[len(ids) - keep:]))
        loss.backward()
        for p in model.parameters():
            p.grad = None

    t_setup = time.perf_counter()
    is_floor = method.startswith("floor")
    if method.startswith("factored"):
        from grace.factored import FactoredProjector

        proj = FactoredProjector(model, d, seed=0, norms="exact" if method == "factored_exact" else "sketch")
    elif method == "sparse_jl":
        proj = SparseJLProjector(D, d, seed=0, block=32)  # blocked (c) of Appendix A: its index cache fits the bound
    elif not is_floor:
        proj = RademacherProjector(D, d, seed=0, cache_bytes=0 if method == "vmap" else 2**30)
    if not is_floor:
        proj.prepare()  # one-time caches (the sparse Π's index tables), reported as setup_ms, not per example
    setup_ms = 1000 * (time.perf_counter() - t_setup)
    kw = {"vmap": dict(method="vmap", batch_size=batch, memory_budget=2**40),
          "dense": dict(method="loop", batch_size=1), "sparse_jl": dict(method="loop", batch_size=1),
          "factored": dict(batch_size=batch), "factored_exact": dict(batch_size=batch), "floor": {},
          "floor_tail": {}}[method]

    def run(exs: list[dict]) -> list[float]:
        if not is_floor:
            compute_features(model, tok, exs, proj, template=DEFAULT_TEMPLATE, progress=False, **kw)
            return []
        each = []
        for ex in exs:
            t = time.perf_counter()
            step(ex)
            each.append(1000 * (time.perf_counter() - t))
        return each

    # untimed warm-up: the method itself on the first example (first-call allocations, page faults on
    # fresh buffers, kernel setup), which the timed examples then include. Not for dense and vmap: at
    # 20-50 s an example their first-call cost is noise, and a warm-up would be a third of the run.
    warm_t = time.perf_counter()
    if method not in SLOW:
        run(examples[:1])
    warmup_ms = 1000 * (time.perf_counter() - warm_t)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    t0 = time.perf_counter()
    per_example = run(examples)  # the floor's own time per example: the others are compared on the same ones
    sec = time.perf_counter() - t0
    tokens = sum(len(encode_example(tok, e["prompt"], e["response"], DEFAULT_TEMPLATE)[0]) for e in examples)
    return {"method": method, "n": n, "ms_per_example": 1000 * sec / n, "setup_ms": setup_ms, "warmup_ms": warmup_ms,
            "floor_ms_each": per_example, "peak_rss_mb": _rss_mb("VmHWM"),
            "beyond_model_mb": _rss_mb("VmHWM") - base, "D": D, "tokens_per_example": tokens / n,
            "model_mb": base}


def dense_floor(D: int, d: int) -> dict:
    """The dense Π's own floor per gradient: 2·D·d MACs at measured GEMM speed + D·d signs at measured rate."""
    from grace.projection import RademacherProjector

    a, b = torch.randn(512, 4096), torch.randn(4096, 4096)
    a @ b
    t = time.perf_counter()
    for _ in range(5):
        a @ b
    gflops = 5 * 2 * 512 * 4096 * 4096 / (time.perf_counter() - t) / 1e9
    probe = RademacherProjector(4_000_000, d, seed=1, cache_bytes=0)
    g = torch.randn(1, 4_000_000)
    probe.project(g)
    t = time.perf_counter()
    probe.project(g)
    per_entry = (time.perf_counter() - t) / (4_000_000 * d)  # signs + unpack + GEMV, per Π entry
    return {"gemm_gflops": gflops, "mac_s": 2 * D * d / (gflops * 1e9), "signs_s": per_entry * D * d,
            "ns_per_entry": per_entry * 1e9}


def candidate_sets(model, tok, n: int, out: str | None, default_dir: str) -> dict[str, list[dict]]:
    """Chapter 12's candidate sets (:mod:`grace.real`): ``n`` human GSM8K solutions, the three damaged
    copies of them, and the model's own answers at four temperatures (half as many prompts, two answers
    each; sampled once, cached under ``out`` or ``artifacts/bench/<default_dir>``)."""
    from grace import real
    from grace.data import default_data_dir, load_gsm8k

    prompts = load_gsm8k("train", default_data_dir() / "gsm8k")[:n]
    human = real.human_records(prompts)
    sets = {"human": human, **{k: real.degrade(human, k, 0) for k in real.DEGRADATIONS}}
    temps = (0.3, 0.5, 0.7, 1.0)
    self_dir = Path(out).with_suffix("") if out else Path("artifacts/bench") / default_dir
    samples = real.self_samples(model, tok, prompts[:max(2, n // 2)], temps, 2, self_dir / "self",
                                max_new_tokens=128, progress=False)
    return sets | {f"self@{T:g}": samples[T] for T in temps}


def fidelity(args) -> dict:
    """Factored vs dense Π on the real student: GRACE across candidate sets, and inner-product distortion.

    Candidate sets as in chapter 12 (:mod:`grace.real`): ``--fid-n`` human GSM8K solutions, the three
    damaged copies of them, and the model's own answers at four temperatures (``--fid-n`` per
    temperature: half as many prompts, two answers each). One gradient pass per example, projected by
    both (:class:`StackedProjector` of ``bench_fidelity.py``) in blocks of ``--fid-block`` gradients so
    that the dense Π's sign draws are shared (this benchmark exceeds the ``4·D·4`` bound to do it).
    Distortion: ``--fid-distortion`` examples' exact gradients against both projections.
    """
    import numpy as np
    from bench_fidelity import StackedProjector, distortion_stats, spearman

    from grace.encoding import DEFAULT_TEMPLATE
    from grace.factored import FactoredProjector
    from grace.features import compute_features
    from grace.projection import IdentityProjector, RademacherProjector
    from grace.scores import all_scores
    from grace.world import load_model, load_tokenizer

    model, tok = load_model(args.model), load_tokenizer(args.model)
    D = sum(p.numel() for p in model.parameters())
    sets = candidate_sets(model, tok, args.fid_n, args.out, "real_self")
    human = sets["human"]
    dense, fact = RademacherProjector(D, args.d, seed=0), FactoredProjector(model, args.d, seed=0)
    stack = StackedProjector([dense, fact])
    budget = (args.fid_block + 4) * 4 * D
    rows, t0 = {}, time.perf_counter()
    for name, recs in sets.items():
        f = compute_features(model, tok, recs, stack, template=DEFAULT_TEMPLATE, method="loop",
                             batch_size=args.fid_block, memory_budget=budget, progress=False)
        Hb, Hf = stack.split(f.H)
        kw = dict(loss=f.loss, mean_prob=f.mean_prob, grad_norms=f.grad_norm, n_folds=2, nu=1e-3, seed=0)
        rows[name] = {"n": len(recs), "grace_dense": all_scores(Hb, f.prompt_ids, **kw)["grace"],
                      "grace_factored": all_scores(Hf, f.prompt_ids, **kw)["grace"]}
        print(f"# fidelity {name}: n={len(recs)} GRACE dense {rows[name]['grace_dense']:.4g} "
              f"factored {rows[name]['grace_factored']:.4g}", flush=True)
    rho = spearman([r["grace_dense"] for r in rows.values()], [r["grace_factored"] for r in rows.values()])
    ex = human[:args.fid_distortion]
    exact = compute_features(model, tok, ex, StackedProjector([IdentityProjector(D), dense, fact]), template=DEFAULT_TEMPLATE,
                             length_scale="none", method="loop", batch_size=len(ex), memory_budget=(len(ex) + 4) * 8 * D,
                             progress=False)
    G, Pb, Pf = (np.asarray(x) for x in np.split(exact.H, [D, D + args.d], axis=1))
    scale = np.sqrt(D / args.d)  # both: E‖h‖² = (d/D)‖g‖²
    dist = {"dense": distortion_stats(G, Pb * scale), "factored": distortion_stats(G, Pf * scale)}
    return {"sets": rows, "spearman_grace_dense_vs_factored": rho, "distortion": dist,
            "seconds": time.perf_counter() - t0, "D": D, "d": args.d}


def lora_fidelity(args) -> dict:
    """GRACE from LoRA-adapter gradients (:mod:`grace.lora`, rank ``--lora``) against GRACE from the full
    gradient, on chapter 12's candidate sets (as :func:`fidelity` builds them), and the cost of each.

    The full gradient is taken through the factored projector, whose GRACE matched the dense Π's at
    Spearman 1.000 on these sets (``--fidelity``); the dense Π itself costs ~40 s an example here.
    """
    from bench_fidelity import spearman

    from grace.config import LoraSpec
    from grace.encoding import DEFAULT_TEMPLATE
    from grace.factored import FactoredProjector
    from grace.features import compute_features
    from grace.lora import lora_student
    from grace.projection import RademacherProjector
    from grace.scores import all_scores
    from grace.world import load_model, load_tokenizer

    model, tok = load_model(args.model), load_tokenizer(args.model)
    sets = candidate_sets(model, tok, args.fid_n, args.out, "real_lora")
    fact = FactoredProjector(model, args.d, seed=0)
    spec = LoraSpec(rank=args.lora, alpha=2.0 * args.lora)
    lmodel = lora_student(load_model(args.model), spec, seed=0)
    D_lora = sum(p.numel() for p in lmodel.parameters() if p.requires_grad)
    dense = RademacherProjector(D_lora, args.d, seed=0)
    rows, secs = {}, {"full_factored": 0.0, "lora": 0.0}
    for name, recs in sets.items():
        row = {"n": len(recs)}
        for key, m, proj in (("full_factored", model, fact), ("lora", lmodel, dense)):
            t0 = time.perf_counter()
            f = compute_features(m, tok, recs, proj, template=DEFAULT_TEMPLATE, progress=False)
            secs[key] += time.perf_counter() - t0
            row[key] = all_scores(f.H, f.prompt_ids, loss=f.loss, mean_prob=f.mean_prob, grad_norms=f.grad_norm,
                                  n_folds=2, nu=1e-3, seed=0)["grace"]
        rows[name] = row
        print(f"# lora fidelity {name}: n={len(recs)} GRACE full {row['full_factored']:.4g} lora {row['lora']:.4g}",
              flush=True)
    n = sum(r["n"] for r in rows.values())
    rho = spearman([r["full_factored"] for r in rows.values()], [r["lora"] for r in rows.values()])
    return {"sets": rows, "spearman_grace_full_vs_lora": rho, "lora": spec.meta(), "D_lora": D_lora,
            "ms_per_example": {k: 1e3 * v / n for k, v in secs.items()}, "d": args.d}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few examples per method (<= 5 min)")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1, help="examples per batch of factored (1 measured fastest at 135 M)")
    ap.add_argument("--vmap-batch", type=int, default=2, help="examples per vmap call")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--fidelity", action="store_true", help="instead: GRACE from the factored vs the dense Π on "
                    "chapter 12's candidate sets, and inner-product distortion against exact gradients")
    ap.add_argument("--fid-n", type=int, default=8, help="examples per candidate set (--fidelity)")
    ap.add_argument("--fid-block", type=int, default=8, help="gradients per dense-Π block (--fidelity)")
    ap.add_argument("--fid-distortion", type=int, default=6, help="examples with exact gradients (--fidelity)")
    ap.add_argument("--lora", type=int, default=0, help="instead: GRACE from LoRA adapters of this rank vs the full "
                    "gradient on the same candidate sets (grace.lora), and their costs")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.d, args.batch, args.model)))
        return
    from grace import sources

    if args.model in sources.SOURCES and not sources.available(args.model):
        sys.exit(f"bench_real: {args.model} is not installed: {sources.SOURCES[args.model].install}")
    sources.resolve(args.model)  # convert once, outside the timed workers
    if args.lora:
        res = lora_fidelity(args)
        print(f"lora fidelity: Spearman(GRACE full gradient, GRACE LoRA r={args.lora}) = "
              f"{res['spearman_grace_full_vs_lora']:.3f} over {len(res['sets'])} candidate sets; ms per example "
              + ", ".join(f"{k} {v:.0f}" for k, v in res["ms_per_example"].items()) + f"; D_lora = {res['D_lora']}")
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(res, indent=2))
        return
    if args.fidelity:
        res = fidelity(args)
        for name, dd in res["distortion"].items():
            print(f"distortion {name} d={args.d}: inner err median {dd['inner_median']:.3f} p95 {dd['inner_p95']:.3f}; "
                  f"cos err median {dd['cosine_median']:.3f}; Gram {dd['gram_fro']:.3f}")
        print(f"fidelity: Spearman(GRACE dense, GRACE factored) = {res['spearman_grace_dense_vs_factored']:.3f} over "
              f"{len(res['sets'])} candidate sets ({res['seconds']:.0f} s)")
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(res, indent=2))
        return
    fast = 8 if args.quick else 32  # vmap and dense take tens of seconds per example at 135 M; floor runs the most
    counts = {"floor": fast, "vmap": 2 if args.quick else 4, "dense": 1 if args.quick else 4,
              "sparse_jl": fast, "factored": fast, "factored_exact": fast, "floor_tail": fast}
    print(f"# bench_real: model={args.model} d={args.d} threads={args.threads} batch={args.batch} "
          f"vmap_batch={args.vmap_batch} "
          f"torch={torch.__version__} examples per method={counts}", flush=True)
    results = {}
    methods = args.methods.split(",")
    for m in [*methods, "floor"] if "floor" in methods else methods:  # the floor again last: the host's load drifts
        key = "floor_end" if m in results else m
        batch = args.vmap_batch if m == "vmap" else args.batch
        cmd = [sys.executable, __file__, "--worker", m, "--n", str(counts[m]), "--d", str(args.d),
               "--batch", str(min(batch, counts[m])), "--threads", str(args.threads), "--model", args.model]
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        if res.returncode:
            sys.exit(f"bench_real: {m} failed:\n{res.stderr[-3000:]}")
        results[key] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"# {key}: {results[key]['ms_per_example']:.0f} ms/example", flush=True)
    runs = [results[k]["floor_ms_each"] for k in ("floor", "floor_end") if k in results]
    each = [sum(ts) / len(ts) for ts in zip(*runs, strict=True)]  # per example: mean of the floor runs before and after
    floor_ms = sum(each) / len(each) if each else float("nan")
    print(f"# floor = mean of the floor runs before and after the others: "
          f"{' and '.join(f'{sum(r) / len(r):.0f}' for r in runs)} ms; each method's ratio is to the floor of "
          "the same examples (its first n)")
    for m, r in results.items():
        if m == "floor_end":
            continue
        if m == "floor":
            r = {**r, "ms_per_example": floor_ms}  # both floor runs, so its ratio is 1 by definition
        ref = sum(each[: r["n"]]) / r["n"] if len(each) >= r["n"] else float("nan")
        ratio = r["ms_per_example"] / ref
        results[m].update(ratio_to_floor=ratio, floor_same_examples_ms=ref)  # what Appendix A.7 reads
        print(f"method={m} ms_per_example={r['ms_per_example']:.0f} ratio_to_floor={ratio:.2f} "
              f"peak_rss_mb={r['peak_rss_mb']:.0f} beyond_model_mb={r['beyond_model_mb']:.0f} "
              f"setup_ms={r['setup_ms']:.0f} warmup_ms={r['warmup_ms']:.0f} floor_same_examples_ms={ref:.0f}",
              flush=True)
    D = next(iter(results.values()))["D"]
    fl = dense_floor(D, args.d)
    print(f"# D={D} bound 4*D*4={4 * 4 * D / 2**20:.0f} MB; tokens/example={results[next(iter(results))]['tokens_per_example']:.0f}")
    print(f"# dense Pi floor per gradient: 2*D*d MACs {fl['mac_s']:.1f} s at {fl['gemm_gflops']:.0f} GFLOP/s, "
          f"plus D*d sign draws {fl['signs_s']:.1f} s ({fl['ns_per_entry']:.3f} ns/entry incl. unpack+GEMV, one "
          "gradient per draw under the 4*D*4 bound)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"results": results, "floor_ms": floor_ms, "dense_floor": fl}, indent=2))


if __name__ == "__main__":
    main()
