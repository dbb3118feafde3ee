"""Device check for the GPU path: the feature rows at 1.24 B and every stage of a gpu-shaped study, offline.

    bash benchmarks/gpu_check.sh                 # on a CUDA box: ~0.5 B random checkpoints, <= 8 min on an H200
    python benchmarks/gpu_check.py --device cpu --width 64 --layers 2    # a dry run of the same script on a CPU

What it does, with no network:
0. runs ``benchmarks/bench_gpu.py`` (floor, factored, fused dense Π, per-example rows at Llama-3.2-1B's
   shape, Π bitwise CUDA == CPU, each kernel precision's error), which asserts its own checks;
1. builds random checkpoints locally (a student and two chat teachers of the given width and depth, with the
   Gemma-2-style chat template and end-of-turn token of ``tests/chat_checkpoints.py``), saved and reloaded
   with ``from_pretrained(path)``;
2. runs ``grace.study.run_study`` on them with ``dtype: bfloat16`` (generate, cards, features, scores,
   mixed-precision distillation with checkpoints, evaluation) on the synthetic task, and prints each stage's seconds;
3. checks that Π built on the device equals Π built on the CPU bit for bit, and times one projection of a
   gradient of the student's size;
Random models never say "end of turn", so generation runs to max_new_tokens: the timings are an upper bound.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_gpu  # noqa: E402 - benchmarks/ is not a package


def build_checkpoints(root: Path, width: int, layers: int) -> dict[str, Path]:
    """A student and two teachers, random weights, chat tokenizer; saved and reloadable."""
    import chat_checkpoints as C
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = C._tokenizer("gemma2")
    tok.save_pretrained(root / "tok")
    out = {}
    for i, name in enumerate(("student", "teacher-a", "teacher-b")):
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=width, intermediate_size=int(width * 2.75) // 8 * 8,
                          num_hidden_layers=layers, num_attention_heads=max(1, width // 64),
                          num_key_value_heads=max(1, width // 256), max_position_embeddings=512,
                          bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id,
                          eos_token_id=tok.convert_tokens_to_ids(C.FAMILIES["gemma2"]["gen_eos"]))
        torch.manual_seed(i)
        model = LlamaForCausalLM(cfg)
        model.save_pretrained(root / name, safe_serialization=True)
        tok.save_pretrained(root / name)
        out[name] = root / name
    return out


def study_profile(paths: dict[str, Path], device: str) -> dict:
    from grace.study import load_profile

    p = load_profile("gpu")
    p.update(device=device, dtype="bfloat16" if device.startswith("cuda") else "float32", threads=4,
             task={"kind": "synthetic", "difficulty": "easy", "min_steps": 1, "max_steps": 2},
             template="Q: {prompt}\nA:", temperatures=[0.7, 1.0],
             generation={"N": 64, "M": 4, "max_new_tokens": 64, "batch_size": 256},
             features={"n": 16, "m": 4, "d": 512, "projector": "rademacher", "length_scale": "log", "batch_size": 16},
             scores={"n_folds": 4, "nu": 1e-3},
             distill={"learning_rate": 1e-5, "epochs": 1, "batch_size": 32, "max_length": 256, "save_steps": 4,
                      "mixed_precision": "bf16" if device.startswith("cuda") else "no"},
             evaluation={"n_test": 32, "k": 4, "max_new_tokens": 64, "batch_size": 256},
             analysis={"n_boot": 50, "n_subsets": 10, "subset_frac": 0.8})
    p["models"] = {"student": str(paths["student"]), "student_params": 0, "teachers": [
        {"name": n, "id": str(paths[n]), "family": n, "size_label": "rand", "size_params": 0, "chat": True}
        for n in ("teacher-a", "teacher-b")]}
    return p


def stage_seconds(log: Path) -> dict[str, float]:
    """Seconds per stage kind (generate, card, features, student) summed from the study log."""
    out: dict[str, float] = {}
    for line in log.read_text().splitlines():
        m = re.match(r"\[[\d:]+\] (\w+)/\S+: ([\d.]+)s", line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


def projection_check(device: str, n_params: int) -> dict:
    """Π on the device equals Π on the CPU bit for bit (basis vectors through the device's default path:
    the fused kernel on CUDA, one exact product per entry, no GEMM rounding); one projection timed."""
    from grace.projection import RademacherProjector

    small_dev = RademacherProjector(20_000, 64, seed=7, device=device, cache_bytes=0, chunk_size=4096)
    small_cpu = RademacherProjector(20_000, 64, seed=7, device="cpu", cache_bytes=0, chunk_size=4096)
    bitwise = torch.equal(small_dev.matrix().cpu(), small_cpu.matrix())
    proj = RademacherProjector(n_params, 512, seed=0, device=device)
    g = torch.randn(1, n_params, device=device)
    proj.project(g)  # warm up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    proj.project(g)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {"pi_bitwise_equal_to_cpu": bitwise, "project_one_gradient_s": time.perf_counter() - t0,
            "projection_backend": proj.backend, "n_params": n_params}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--width", type=int, default=2048, help="hidden size of the random checkpoints")
    ap.add_argument("--layers", type=int, default=8, help="depth (width 2048 x 8 layers: ~0.5 B parameters)")
    ap.add_argument("--out", default="artifacts/gpu_check")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run with --device cpu --width 64 --layers 2 for a dry run")
        return 2
    from grace.study import run_study

    out = Path(args.out)
    cpu = not args.device.startswith("cuda")
    try:  # the feature rows at Llama-3.2-1B's shape (a 2-layer toy on a CPU); asserts its own checks
        bench_rc = bench_gpu.main(["--device", args.device, *(["--tiny"] if cpu else []),
                                   "--out", str(out / "bench_gpu.json")])
    except Exception as e:  # report and go on to the study: one device run should show every failure
        print(f"bench_gpu: FAILED with {type(e).__name__}: {e}")
        bench_rc = 1
    t0 = time.perf_counter()
    paths = build_checkpoints(out / "models", args.width, args.layers)
    t_build = time.perf_counter() - t0
    n_params = sum(p.numel() for p in __import__("grace.world", fromlist=["x"]).load_model(paths["student"]).parameters())
    t1 = time.perf_counter()
    results = run_study(study_profile(paths, args.device), out / "study", progress=False)
    t_study = time.perf_counter() - t1
    proj = projection_check(args.device, n_params)
    report = {"device": args.device, "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
              "student_params": n_params, "build_s": t_build, "study_s": t_study,
              "stage_s": stage_seconds(out / "study" / "study.log"), "configs": len(results),
              "grace_finite": bool(results["grace"].notna().all()), **proj}
    for k, v in report.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    ok = proj["pi_bitwise_equal_to_cpu"] and report["grace_finite"] and bench_rc == 0
    print("gpu_check:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
