"""The feature stage on one GPU at Llama-3.2-1B's shape (D = 1.24e9, d = 512): what each path costs.

    python benchmarks/bench_gpu.py --out artifacts/bench/gpu.json          # CUDA: ~3 min on an H200
    python benchmarks/bench_gpu.py --device cpu --tiny --out /tmp/g.json   # dry run of the same code (CI)

A random Llama-3.2-1B-shaped student in bf16 (no Hub: random weights cost what trained ones do) and
random token sequences of ~200 tokens (GSM8K solutions under the project's template are ~200), each
path timed with the calls :func:`grace.features.compute_features` makes. Rows, in ms per example:

* ``floor`` — one batched forward + backward of B = 16, no per-sample gradient (what training pays);
* ``factored`` — :class:`grace.factored.FactoredProjector`, batch 16;
* ``dense_fused`` — per-sample gradients of a ``[16, D]`` block, then one pass of the fused kernel
  (:mod:`grace.kernels`) over Π for the block; ``grads`` and ``project`` are its two parts. The
  gradients come from one batched pass with layer hooks (:mod:`grace.persample`, the CUDA default) or
  from the per-example loop (:func:`grace.features.grads_loop`), both timed;
* ``dense_torch`` — the same block through the torch path (Π generated into memory chunk by chunk,
  then a GEMM): the baseline the fused kernel replaces, measured in the same run;
* ``project[precision]`` — the fused projection alone, each precision, and its error against an fp64
  reference on the first 2**22 columns;
* ``per_example`` — B = 1 forward + backward over 32 lengths never seen before, then the same 32
  again: with length buckets of 64 tokens and without, with SDPA's default kernels and without
  those that plan per shape.

Asserted: Π bitwise equal on the GPU and the CPU (the kernel's entries from basis vectors, at the
start of Π and past column 1.2e9, and the torch path's generated columns); each precision within its
bound of the fp64 reference (``MAX_REL_ERR``); some per-example variant costs <= 1.5x on new lengths.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

from grace.encoding import IGNORE_INDEX, right_pad
from grace.factored import FactoredProjector
from grace.features import LENGTH_BUCKET_CUDA, batched_response_loss, grads_loop, planless_attention
from grace.kernels import PRECISIONS, interpreting
from grace.persample import grads_hooks
from grace.projection import RademacherProjector

MAX_REL_ERR = {"ieee": 1e-5, "tf32x3": 1e-5, "bf16x3": 1e-4, "tf32": 2e-3}  # vs fp64, on 2**22 columns


def llama_1b(device: str, tiny: bool):
    """A random Llama-3.2-1B-shaped model (1.24 B parameters; tiny: a 2-layer toy) in bf16 on ``device``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = dict(vocab_size=1000, hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2) if tiny else \
        dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
             num_attention_heads=32, num_key_value_heads=8)
    cfg = LlamaConfig(**shape, tie_word_embeddings=True, max_position_embeddings=2048, rope_theta=500000.0)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(cfg)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return model.to(dtype).eval()


def examples(n: int, lengths: list[int], vocab: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """``n`` (ids, labels) pairs of the given total lengths; the first 40 % is an unscored prompt."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        T = lengths[i % len(lengths)]
        ids = torch.randint(3, vocab, (T,), generator=g).tolist()
        p = int(0.4 * T)
        out.append((ids, [IGNORE_INDEX] * p + ids[p:]))
    return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, fn) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def batches(exs, B: int, device: str, bucket: int = 1):
    for i in range(0, len(exs), B):
        ids, labels = right_pad(exs[i : i + B], 0, bucket)
        yield ids.to(device), labels.to(device)


def floor_row(model, exs, device: str, B: int) -> float:
    """Batched forward + backward with weight gradients, no per-sample gradient: s per example."""
    def step(ids, labels):
        model.zero_grad(set_to_none=True)
        loss, _ = batched_response_loss(model(input_ids=ids, use_cache=False).logits, labels)
        loss.sum().backward()

    step(*next(batches(exs[:B], B, device)))  # warm-up
    t = timed(device, lambda: [step(i, y) for i, y in batches(exs, B, device)])
    model.zero_grad(set_to_none=True)
    return t / len(exs)


def factored_row(model, exs, device: str, B: int) -> float:
    proj = FactoredProjector(model, 512, seed=0, device=device)
    for p in model.parameters():
        p.requires_grad_(False)  # its fast path freezes the weights: no weight gradient at all
    run = lambda ids, labels: proj.features(model, ids, labels, batched_response_loss)  # noqa: E731
    run(*next(batches(exs[:B], B, device)))
    t = timed(device, lambda: [run(i, y) for i, y in batches(exs, B, device)])
    for p in model.parameters():
        p.requires_grad_(True)
    return t / len(exs)


def per_example_rows(model, params, D: int, device: str, vocab: int, n: int) -> dict:
    """B = 1 forward + backward (grads_loop, one row) on ``n`` lengths never seen, then the same again.

    Variants: length buckets of 64 tokens or none, and SDPA as it comes or without the attention
    kernels that plan per shape (:func:`grace.features.planless_attention`). Each variant first runs
    two other lengths, so that its buckets exist: what is measured is the cost of a new *length*."""
    G = torch.empty(1, D, dtype=torch.float32, device=device)
    out = {}
    for k, (bucket, planless) in enumerate(((64, False), (1, False), (64, True), (1, True))):
        ctx = planless_attention(device) if planless else contextlib.nullcontext()

        def one_pass(exs, bucket=bucket):
            for ids, labels in batches(exs, 1, device, bucket):
                grads_loop(model, params, ids, labels, [ids.shape[1]], G, bucket)

        with ctx:
            one_pass(examples(2, [140 + k, 230 + k], vocab, 20 + k))  # buckets 192 and 256 exist now
            exs = examples(n, [151 + 4 * i + k for i in range(n)], vocab, 10 + k)  # lengths never seen
            novel, repeat = (timed(device, lambda exs=exs: one_pass(exs)) / n for _ in range(2))
        name = f"bucket{bucket}" + ("_planless" if planless else "")
        out[name] = {"novel_ms": 1e3 * novel, "repeat_ms": 1e3 * repeat, "ratio": novel / repeat}
    return out


def dense_rows(model, params, D: int, exs, device: str, B: int, tiny: bool, d: int, backend: str) -> dict:
    """Per-example gradients into [B, D] blocks, then the fused projection (and the torch path once)."""
    G = torch.empty(B, D, dtype=torch.float32, device=device)
    proj = RademacherProjector(D, d, seed=0, device=device, backend=backend)
    res: dict = {"backend": proj.backend, "block_rows": B}
    lens = [len(x) for x, _ in exs[:B]]
    ids, labels = next(batches(exs[:B], B, device))
    bucket = LENGTH_BUCKET_CUDA if device.startswith("cuda") else 1  # compute_features' default
    with planless_attention(device):  # as compute_features runs them
        grads_loop(model, params, ids, labels, lens, G, bucket)  # warm: its buckets' first plans
        res["grads_loop_ms"] = 1e3 * timed(device, lambda: grads_loop(model, params, ids, labels, lens, G, bucket)) / B
        hids, hlabels = next(batches(exs[:B], B, device, bucket))
        grads_hooks(model, hids, hlabels, G, batched_response_loss)  # warm
        res["grads_hooks_ms"] = 1e3 * timed(device, lambda: grads_hooks(model, hids, hlabels, G, batched_response_loss)) / B
    res["grads_ms"] = res["grads_hooks_ms"] if device.startswith("cuda") else res["grads_loop_ms"]  # the auto method
    proj.project_partial(G[:, : 1 << 20], 0)  # compile
    res["project_ms"] = 1e3 * timed(device, lambda: proj.project(G)) / B
    res["dense_fused_ms"] = res["grads_ms"] + res["project_ms"]
    res["dense_fused_loop_ms"] = res["grads_loop_ms"] + res["project_ms"]
    torch_proj = RademacherProjector(D, d, seed=0, device=device, backend="torch", cache_bytes=0,
                                     memory_budget=16 * 2**30 if device.startswith("cuda") else None)
    res["dense_torch_project_ms"] = 1e3 * timed(device, lambda: torch_proj.project(G)) / B
    res["dense_torch_ms"] = res["grads_ms"] + res["dense_torch_project_ms"]
    if proj.backend == "triton":
        res["precisions"] = precision_rows(G, D, device, tiny, d)
    return res


def precision_rows(G: torch.Tensor, D: int, device: str, tiny: bool, d: int) -> dict:
    """Each precision: ms per example for the whole block, and relative error on 2**22 columns vs fp64."""
    n = min(D, 1 << (12 if tiny else 22))
    ref_proj = RademacherProjector(D, d, seed=0, device=device, backend="torch", cache_bytes=0)
    ref = torch.zeros(G.shape[0], d, dtype=torch.float64, device=device)
    for c0 in range(0, n, 1 << 20):  # fp64 reference from the torch path's entries
        c1 = min(n, c0 + (1 << 20))
        ref += G[:, c0:c1].double() @ _columns(ref_proj, c0, c1).double().T
    out = {}
    for prec in PRECISIONS:
        p = RademacherProjector(D, d, seed=0, device=device, backend="triton", precision=prec)
        p.project_partial(G[:, :4096], 0)  # compile
        t = timed(device, lambda p=p: p.project(G))
        err = ((p.project_partial(G[:, :n], 0).double() - ref).norm() / ref.norm()).item()
        out[prec] = {"ms_per_example": 1e3 * t / G.shape[0], "rel_err": err}
    return out


def _columns(proj: RademacherProjector, c0: int, c1: int) -> torch.Tensor:
    """Π[:, c0:c1] from the torch path, by projecting basis vectors block by block (exact: one product each)."""
    blocks = []
    for b0 in range(c0, c1, 4096):
        b1 = min(c1, b0 + 4096)
        blocks.append(proj.project_partial(torch.eye(b1 - b0, device=proj.device), b0).T)  # [d, b1 - b0]
    return torch.cat(blocks, 1)


def bitwise_checks(device: str, D: int) -> dict:
    """Π on ``device`` (fused kernel and torch path) equals Π on the CPU, bit for bit."""
    res = {}
    cpu = RademacherProjector(D, 64, seed=7, device="cpu", cache_bytes=0)
    for start in (0, max(0, min(D - 512, 1_200_000_037))):
        want = cpu.project_partial(torch.eye(512), start)  # [512, 64]: row i is Π[:, start + i]
        for backend in ("torch", "triton"):
            if backend == "triton" and not (device.startswith("cuda") or interpreting()):
                continue
            p = RademacherProjector(D, 64, seed=7, device=device, backend=backend, cache_bytes=0)
            got = p.project_partial(torch.eye(512, device=device), start).cpu()
            res[f"{backend}@{start}"] = bool(torch.equal(got, want))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer toy model (CPU dry run)")
    ap.add_argument("--n", type=int, default=64, help="examples per batched row")
    ap.add_argument("--d", type=int, default=512, help="projection dimension")
    ap.add_argument("--backend", default="auto", choices=("auto", "torch", "triton"),
                    help="the dense Π's backend (triton on a CPU: under TRITON_INTERPRET=1)")
    ap.add_argument("--out", default="artifacts/bench/gpu.json")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here; run with --device cpu --tiny for a dry run")
        return 2
    dev, B = args.device, 16
    if args.tiny and dev == "cpu" and interpreting():
        B, args.n = 4, 8  # Triton's interpreter is slow: a smaller block
    t0 = time.perf_counter()
    model = llama_1b(dev, args.tiny)
    params = [p for p in model.parameters() if p.requires_grad]
    D, vocab = sum(p.numel() for p in params), model.config.vocab_size
    report: dict = {"device": torch.cuda.get_device_name() if dev.startswith("cuda") else "cpu", "D": D,
                    "torch": torch.__version__, "build_s": time.perf_counter() - t0}
    report["bitwise"] = bitwise_checks(dev, D)
    report["per_example"] = per_example_rows(model, params, D, dev, vocab, 8 if args.tiny else 32)
    exs = examples(args.n, [190 + (7 * i) % 29 for i in range(args.n)], vocab, 1)  # ~200 tokens
    report["floor_ms"] = 1e3 * floor_row(model, exs, dev, B)
    report["factored_ms"] = 1e3 * factored_row(model, exs, dev, B)
    report["dense"] = dense_rows(model, params, D, exs, dev, B, args.tiny, args.d, args.backend)
    if dev.startswith("cuda"):
        report["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 1e9
    report["total_s"] = time.perf_counter() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    fails = [k for k, v in report["bitwise"].items() if not v]
    fails += [f"{p} rel_err" for p, r in report["dense"].get("precisions", {}).items()
              if not r["rel_err"] <= MAX_REL_ERR[p]]
    if dev.startswith("cuda") and not min(r["ratio"] for r in report["per_example"].values()) <= 1.5:
        fails.append("per_example: no variant with novel/repeat <= 1.5")
    f = report["floor_ms"]
    print(f"rows (ms/example; ratio to the floor): floor {f:.1f} | factored {report['factored_ms']:.1f} "
          f"({report['factored_ms'] / f:.2f}x) | dense_fused {report['dense']['dense_fused_ms']:.1f} "
          f"(project {report['dense']['project_ms']:.1f}) | dense_torch {report['dense']['dense_torch_ms']:.1f}")
    print("bench_gpu:", "OK" if not fails else f"FAILED {fails}")
    return 0 if not fails else 1


if __name__ == "__main__":
    sys.exit(main())
