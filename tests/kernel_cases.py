"""Cases for tests/test_kernels.py, run in a subprocess under TRITON_INTERPRET=1 (Triton reads it when the
kernel is defined, so the test process itself stays as it is). Prints one JSON object: case -> result."""

import json

import torch

from grace.kernels import PRECISIONS
from grace.projection import RademacherProjector


def relerr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def main() -> None:
    res: dict = {}
    torch.manual_seed(0)
    # Π bitwise: basis vectors through the kernel give the torch path's entries exactly, at an unaligned start
    for prec in PRECISIONS:
        fused = RademacherProjector(3000, 72, seed=5, backend="triton", precision=prec)
        ref = RademacherProjector(3000, 72, seed=5, backend="torch", cache_bytes=0)
        eye = torch.eye(300)
        res[f"bitwise/{prec}"] = bool(torch.equal(fused.project_partial(eye, 1037), ref.project_partial(eye, 1037)))
    # products against fp64: row blocks of 16 and 32, several of them, misaligned ranges, d not a multiple of 128
    for prec in PRECISIONS:
        for B, start, n in ((1, 0, 4000), (5, 31, 1969), (20, 7, 900), (40, 64, 700)):
            fused = RademacherProjector(4000, 200, seed=2, backend="triton", precision=prec)
            P = RademacherProjector(4000, 200, seed=2, backend="torch", cache_bytes=0).matrix().double()
            G = torch.randn(B, n)
            res[f"relerr/{prec}/B{B}/start{start}"] = relerr(fused.project_partial(G, start), G.double() @ P[:, start:start + n].T)
    # the accumulator (per-parameter ranges, as features' direct path hands them over) equals one call
    fused = RademacherProjector(5000, 64, seed=1, backend="triton")
    G = torch.randn(2, 5000)
    acc = fused.accumulator(rows=2)
    for a, b in ((0, 333), (333, 2048), (2048, 2049), (2049, 5000)):
        acc.add(G[:, a:b], a)
    res["accumulator"] = relerr(acc.result()[0], fused.project(G))
    # same input, same bits (partial sums added in a fixed order, no atomics)
    res["deterministic"] = bool(torch.equal(fused.project(G), fused.project(G)))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
