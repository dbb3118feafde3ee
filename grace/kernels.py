"""A fused Triton kernel for the paper's dense projection ``Π g`` (§2.1, App. C.3): Π never touches memory.

:class:`grace.projection.RademacherProjector` defines ``Π[r, c]`` by a counter-based hash of
``(seed, r, c // 32)`` (bit ``c % 32`` of the word is the sign). Its pure-torch path generates a chunk
of Π into memory and multiplies; on a GPU most of that time is spent writing and reading the chunk.
This kernel (the idea of TRAK's ``fast_jl``) hashes the signs in registers, tile by tile, right where
the matrix product needs them:

    program (i, s): rows [i·BLOCK_D, (i+1)·BLOCK_D) of Π, columns of split s
        for each tile of BLOCK_K columns (32-aligned, so a hash word is 32 columns of one row):
            words = mix32(rowkey[r] + mix32(K_col + c // 32))      [BLOCK_K/32, BLOCK_D]  uint32
            signs = bit (c % 32) of words, as ±1/√D (or ±1)         [BLOCK_K, BLOCK_D]
            acc  += G[:, tile] @ signs                               [BLOCK_B, BLOCK_D]  fp32
        part[s] = acc

and the ``[splits, B, d]`` partial sums are added in a fixed order afterwards (no atomics: same input,
same output bits). The hash is the one :func:`grace.projection.rademacher_entry` defines, evaluated in
uint32 arithmetic, so the kernel's Π is bit-identical to the CPU's: projecting a basis vector returns
the exact entries.

How the product is taken (``precision``); every variant multiplies exact signs and accumulates in fp32:

* ``"ieee"`` — fp32 fused multiply-adds (no tensor cores); the reference.
* ``"bf16x3"`` — the signs are exactly ±1 in bf16; ``g`` is split into three bf16 pieces
  (``g = g₁ + g₂ + g₃`` to about 2⁻²⁴ relative), each multiplied on the tensor cores, and ``1/√D``
  applied once at the end. Error at the level of fp32 rounding, at tensor-core speed.
* ``"tf32x3"`` — Triton's three-pass tf32 emulation of fp32 on the tensor cores.
* ``"tf32"`` — one tf32 pass: ``g`` rounded to 10 mantissa bits, about 1e-4 relative error (opt-in,
  ``features.precision: tf32``; measured in ``benchmarks/bench_gpu.py``).

Under ``TRITON_INTERPRET=1`` (no GPU: the tests) the kernel runs on CPU tensors through Triton's
interpreter; there the bf16 tensor-core product is emulated by the same products in fp32, which are
exact for bf16 operands, so only the MMA instruction itself is left to a GPU run
(``benchmarks/gpu_check.sh``).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from grace.config import PRECISIONS  # the profile schema owns the allowed values

__all__ = ["PRECISIONS", "DEFAULT_PRECISION", "available", "interpreting", "rademacher_project"]

DEFAULT_PRECISION = "tf32x3"
"""fp32-level error at tensor-core speed. On an H200 at D = 1.24e9, d = 512, B = 16 (``benchmarks/bench_gpu.py``):
tf32x3 47 ms per example, relative error 4e-7 against fp64; bf16x3 26 ms, 3.3e-5 (the tensor cores'
bf16 accumulation keeps fewer bits than fp32; the gpu profiles take it); ieee 803 ms, 3.0e-6; tf32 18 ms, 8e-4."""

BLOCK_D = 128  # rows of Π per program
BLOCK_K = 128  # columns per tile (a multiple of 32: whole hash words)
MAX_COLS_PER_CALL = 2**30  # int32 column arithmetic inside a launch; longer ranges take several


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``, read, never set)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def available() -> bool:
    """True when Triton imports (a pip dependency on CUDA machines; the CPU tests install it too)."""
    return triton is not None


try:  # Triton decides when a kernel is defined whether it is interpreted: TRITON_INTERPRET at import
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - CPU installs without Triton use the torch path
    triton = None

if triton is not None:

    @triton.jit
    def mix32(x):
        # grace.projection._mix32_py in uint32 arithmetic: multiplication wraps mod 2**32, as the
        # int64-and-mask version does; shifts are logical
        x ^= x >> 16
        x *= 0x7FEB352D
        x ^= x >> 15
        x *= 0x4A6B4C6B
        x ^= x >> 16
        return x

    @triton.jit
    def dot_into(acc, a, b, PRECISION: tl.constexpr, EMULATE: tl.constexpr):
        if EMULATE:  # interpreter: the same exact products, in fp32
            return acc + tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
        if PRECISION == "bf16x3":
            return tl.dot(a, b, acc, out_dtype=tl.float32)
        return tl.dot(a, b, acc, input_precision=PRECISION)  # ieee | tf32x3 | tf32

    @triton.jit
    def tile(acc, G, b_off, bs, B, n, lead, word0, rk, kc, bit, scale_bits, k0,
             BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr, PRECISION: tl.constexpr, EMULATE: tl.constexpr):
        """acc [BB, BD] += G[:, tile k0] @ Π[rows, tile k0]ᵀ, the signs hashed here."""
        kk = k0 + tl.arange(0, BLOCK_K)  # [BK] tile columns
        gcol = kk - lead
        mask = (bs[:, None] < B) & (gcol[None, :] >= 0) & (gcol[None, :] < n)
        g = tl.load(G + b_off[:, None] + gcol[None, :], mask=mask, other=0.0)  # [BB, BK] fp32
        j = word0 + k0 // 32 + tl.arange(0, BLOCK_K // 32)  # [BK/32] global word index
        ck = mix32(j.to(tl.uint32) + kc)  # (j + K_col) mod 2**32, hashed
        w = mix32(rk[None, :] + ck[:, None])  # [BK/32, BD]
        sb = (w[:, None, :] >> bit[None, :, None]) & 1  # [BK/32, 32, BD] sign bit of column 32j + bit
        if PRECISION == "bf16x3":
            s = tl.reshape(((sb << 15) | 0x3F80).to(tl.uint16), (BLOCK_K, BLOCK_D)).to(tl.bfloat16, bitcast=True)
            g1 = g.to(tl.bfloat16)
            r1 = g - g1.to(tl.float32)
            g2 = r1.to(tl.bfloat16)
            g3 = (r1 - g2.to(tl.float32)).to(tl.bfloat16)
            acc = dot_into(acc, g1, s, PRECISION, EMULATE)
            acc = dot_into(acc, g2, s, PRECISION, EMULATE)
            acc = dot_into(acc, g3, s, PRECISION, EMULATE)
        else:
            s = tl.reshape((sb << 31) | scale_bits, (BLOCK_K, BLOCK_D)).to(tl.float32, bitcast=True)  # ±1/√D
            acc = dot_into(acc, g, s, PRECISION, EMULATE)
        return acc

    @triton.jit
    def kernel(G, stride_b, B, n, lead, word0, row_keys, k_col, scale_bits, scale, part, d, cols_per_split,
               BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_K: tl.constexpr,
               PRECISION: tl.constexpr, EMULATE: tl.constexpr):
        # G [B, n] fp32 (row stride stride_b) holds columns [c0, c0 + n) of the gradients; the tile
        # grid starts at the word boundary a0 = c0 - lead (word index word0), so tile column k is
        # global column a0 + k and G column k - lead. part [splits, B, d] receives this program's sum.
        pid_d, pid_s = tl.program_id(0), tl.program_id(1)
        rows = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)  # [BD]
        rk = tl.load(row_keys + rows, mask=rows < d, other=0).to(tl.uint32)  # [BD] mix32(K_row + r)
        bs = tl.arange(0, BLOCK_B)
        b_off = bs.to(tl.int64) * stride_b  # [BB]: rows of G can lie > 2**31 elements apart
        bit = tl.arange(0, 32).to(tl.uint32)
        kc = k_col.to(tl.uint32)
        acc = tl.zeros((BLOCK_B, BLOCK_D), dtype=tl.float32)
        k_lo = pid_s * cols_per_split  # past lead + n the loads are masked to zero
        if EMULATE:  # the interpreter cannot take a range() over a runtime scalar with this numpy
            t = 0
            while t < cols_per_split:
                acc = tile(acc, G, b_off, bs, B, n, lead, word0, rk, kc, bit, scale_bits, k_lo + t,
                           BLOCK_K, BLOCK_D, PRECISION, EMULATE)
                t += BLOCK_K
        else:
            for t in range(0, cols_per_split, BLOCK_K):
                acc = tile(acc, G, b_off, bs, B, n, lead, word0, rk, kc, bit, scale_bits, k_lo + t,
                           BLOCK_K, BLOCK_D, PRECISION, EMULATE)
        if PRECISION == "bf16x3":
            acc = acc * scale
        out = part + pid_s * (B * d) + bs[:, None] * d + rows[None, :]
        tl.store(out, acc, mask=(bs[:, None] < B) & (rows[None, :] < d))


def _splits(n_d: int, n_tiles: int, device: torch.device) -> int:
    """Column splits so that about four programs run per multiprocessor (one on the interpreter)."""
    if device.type != "cuda":
        return max(1, min(n_tiles, 4))
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return max(1, min(n_tiles, -(-4 * sms // n_d)))


def rademacher_project(out: torch.Tensor, G: torch.Tensor, start: int, row_keys: torch.Tensor, k_col: int,
                       scale: float, scale_bits: int, precision: str = DEFAULT_PRECISION) -> None:
    """Add ``G @ Π[:, start:start+n]ᵀ`` into ``out [B, d]`` (fp32), Π hashed in registers (§2.1).

    ``G [B, n]`` fp32, rows contiguous; ``row_keys [d]`` int64 = ``mix32(K_row + r)``; ``k_col`` the
    column key; ``scale`` = ``1/√D`` and ``scale_bits`` its fp32 bit pattern (see
    :class:`grace.projection.RademacherProjector`, which calls this on CUDA).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; choose one of {PRECISIONS}")
    if G.dtype != torch.float32 or G.stride(1) != 1:
        raise ValueError(f"G must be fp32 with contiguous rows, got {G.dtype} strides {G.stride()}")
    B, n = G.shape
    d = out.shape[1]
    if triton is None:
        raise RuntimeError("the fused projection needs Triton: pip install triton (or use the torch path)")
    bb = 16 if B <= 16 else 32
    for r0 in range(0, B, bb):  # blocks of rows share each generated tile of signs
        rows = G[r0 : r0 + bb]
        for p0 in range(0, n, MAX_COLS_PER_CALL):
            piece = rows[:, p0 : p0 + MAX_COLS_PER_CALL]
            c0 = start + p0
            lead = c0 & 31
            n_d, n_tiles = -(-d // BLOCK_D), -(-(lead + piece.shape[1]) // BLOCK_K)
            splits = _splits(n_d, n_tiles, G.device)
            per_split = -(-n_tiles // splits) * BLOCK_K
            splits = -(-(lead + piece.shape[1]) // per_split)
            part = torch.empty(splits, piece.shape[0], d, dtype=torch.float32, device=G.device)
            kernel[(n_d, splits)](
                piece, piece.stride(0), piece.shape[0], piece.shape[1], lead, c0 >> 5, row_keys, k_col,
                scale_bits, scale, part, d, per_split,
                BLOCK_B=bb, BLOCK_D=BLOCK_D, BLOCK_K=BLOCK_K, PRECISION=precision, EMULATE=interpreting(),
                **_launch_options(precision, G.device),
            )
            out[r0 : r0 + bb] += part.sum(0)  # fixed order: the same bits every run


def _launch_options(precision: str, device: torch.device) -> dict[str, Any]:
    if device.type != "cuda":
        return {}
    return {"num_warps": 8 if precision == "ieee" else 4, "num_stages": 2}
