"""The fused dense-Π kernel (grace.kernels) against the torch path, in Triton's CPU interpreter.

The kernel runs on a GPU in benchmarks/gpu_check.sh; here every case runs under TRITON_INTERPRET=1 in a
subprocess (Triton reads the variable when it defines a kernel). The bf16 tensor-core product is
emulated there by the same exact products in fp32, so its MMA instruction itself is left to the GPU run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from grace import kernels  # noqa: E402
from grace.projection import RademacherProjector  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cases() -> dict:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, str(REPO / "tests" / "kernel_cases.py")], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("prec", kernels.PRECISIONS)
def test_kernel_entries_are_the_torch_paths_bit_for_bit(cases, prec):
    assert cases[f"bitwise/{prec}"] is True


def test_kernel_products_match_fp64(cases):
    errs = {k: v for k, v in cases.items() if k.startswith("relerr/")}
    assert len(errs) == 4 * len(kernels.PRECISIONS)
    assert max(errs.values()) < 1e-6, errs


def test_kernel_accumulator_and_determinism(cases):
    assert cases["accumulator"] < 1e-6
    assert cases["deterministic"] is True


def test_triton_backend_off_cuda_needs_the_interpreter():
    if kernels.interpreting():
        pytest.skip("this process runs Triton's interpreter")
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        RademacherProjector(100, 8, backend="triton")
    assert RademacherProjector(100, 8).backend == "torch"  # auto on a CPU
    with pytest.raises(ValueError, match="precision"):
        RademacherProjector(100, 8, precision="fp8")
    with pytest.raises(ValueError, match="backend"):
        RademacherProjector(100, 8, backend="cuda")


def test_the_kernel_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="precision"):
        kernels.rademacher_project(torch.zeros(1, 4), torch.zeros(1, 8), 0, torch.zeros(4, dtype=torch.long), 1,
                                   1.0, 0, precision="fp8")
    with pytest.raises(ValueError, match="fp32"):
        kernels.rademacher_project(torch.zeros(1, 4), torch.zeros(1, 8, dtype=torch.float64), 0,
                                   torch.zeros(4, dtype=torch.long), 1, 1.0, 0)


def test_device_check_dry_runs_on_cpu(tmp_path):
    """benchmarks/gpu_check.sh end to end on a CPU: the feature rows on a toy, the study, Π bitwise."""
    run = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--width", "64",
                          "--layers", "2", "--out", str(tmp_path)], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHON": sys.executable})
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "bench_gpu: OK" in run.stdout and "gpu_check: OK" in run.stdout
    report = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert report["bitwise"] and all(report["bitwise"].values())
    assert {"floor_ms", "factored_ms", "dense", "per_example"} <= set(report)
