"""Random projections Π of per-sample gradients (paper §2.1, App. C.3).

The paper works with ``Π g ∈ R^d`` where ``Π ∈ {±1/√D}^{d×D}`` is a random sign matrix (Park et al.,
2023) and ``D`` is the number of student parameters. ``Π`` is far too large to store
(``d·D = 7·10^9`` entries for a 14 M-parameter student at d = 512), so every projector here defines
its matrix by a *counter-based* hash of ``(seed, row, column)``: any entry can be recomputed anywhere,
in any order. Consequences:

* the matrix is the same for every ``chunk_size``, batch split, cache setting and device (the hash uses
  only 64-bit integer ops on values below 2**63, whose results are exact on CPU and CUDA alike);
* memory is bounded by one chunk (``chunk_size × dim_out``) whatever ``dim_in`` is;
* a sidecar's :meth:`Projector.meta` is enough to rebuild the exact matrix
  (:func:`grace.projectors.projector_from_meta`).

Projectors:

* :class:`RademacherProjector` — the paper's dense ``Π``, entries exactly ``±1/√dim_in``.
* :class:`SparseJLProjector` — an opt-in *structured* projector (a sparse JL transform, as in GraSS):
  each input coordinate goes to ``nnz`` output rows with signs ``±1/√nnz``. It is a different ``Π``
  from the paper's, but also preserves inner products in expectation, at a fraction of the cost.
* :class:`IdentityProjector` — ``Π = I`` for exact tests.

Only the *matrix* is device-independent; the projected values are fp32 sums whose rounding may differ
in the last bits between chunk sizes, batch splits and devices (the summation order differs).
"""

from __future__ import annotations

import math
import sys
import warnings
from abc import ABC, abstractmethod
from typing import Any

import torch

from grace import kernels

__all__ = [
    "Projector",
    "RademacherProjector",
    "SparseJLProjector",
    "IdentityProjector",
    "rademacher_entry",
    "sparse_jl_entries",
    "bytes_per_column",
    "chunk_for_budget",
    "count_chunk_ops",
    "CUDA_BUDGET_BYTES",
]

DEFAULT_CACHE_BYTES = 512 * 2**20  # memory a projector may keep for generated chunks of Π
BACKENDS = ("auto", "torch", "triton")  # how RademacherProjector applies Π (grace.kernels: the fused one)
HASH_VERSION = "mix32-v1"  # bump if the hash below ever changes: old features would no longer match

# ---------------------------------------------------------------------------------------------------
# The counter-based hash. A 32-bit integer finaliser (murmur3/"lowbias32" style: xor-shift, multiply,
# xor-shift, multiply, xor-shift) evaluated in int64 on values < 2**32. The multipliers are odd and
# < 2**31, so every product is < 2**63: no int64 overflow, hence identical results on every device.
# Masking with 0xFFFFFFFF keeps the state at 32 bits. Each step is a bijection of [0, 2**32).
# ---------------------------------------------------------------------------------------------------
_MASK32 = 0xFFFFFFFF
_MUL1 = 0x7FEB352D
_MUL2 = 0x4A6B4C6B
_GOLDEN = 0x61C88647  # odd; used to spread consecutive keys


def _mix32_py(x: int) -> int:
    """Reference (pure Python) 32-bit finaliser; defines the hash the tensor version must match."""
    x &= _MASK32
    x ^= x >> 16
    x = (x * _MUL1) & _MASK32
    x ^= x >> 15
    x = (x * _MUL2) & _MASK32
    x ^= x >> 16
    return x


def _mix32_(x: torch.Tensor) -> torch.Tensor:
    """In-place tensor version of :func:`_mix32_py` on an int64 tensor holding values in [0, 2**32)."""
    x.bitwise_xor_(x >> 16)
    x.mul_(_MUL1).bitwise_and_(_MASK32)
    x.bitwise_xor_(x >> 15)
    x.mul_(_MUL2).bitwise_and_(_MASK32)
    x.bitwise_xor_(x >> 16)
    return x


def _key(*words: int) -> int:
    """A 32-bit key from non-negative integers of any size (seed, stream tag, index...)."""
    h = 0x2545F491
    for w in words:
        if w < 0:
            raise ValueError(f"hash inputs must be non-negative, got {w}")
        limbs = [w & _MASK32]
        w >>= 32
        while w:
            limbs.append(w & _MASK32)
            w >>= 32
        for limb in (*limbs, len(limbs)):
            h = _mix32_py((h ^ limb) + _GOLDEN)
    return h


def _float_bits(x: float) -> int:
    """The int32 bit pattern of ``float32(x)``."""
    return int(torch.tensor([x], dtype=torch.float32).view(torch.int32).item())


def _check_dim(name: str, value: Any, upper: int = 2**32) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < upper:
        raise ValueError(f"{name}={value!r} is invalid; pass a positive integer below {upper}")
    return value


def _default_chunk(dim_out: int, target_bytes: int = 8 * 2**20) -> int:
    """Columns per chunk so that one fp32 chunk of Π is about ``target_bytes`` (GEMM-friendly)."""
    n = target_bytes // (4 * dim_out)
    return int(min(2**16, max(1024, n // 32 * 32)))


def bytes_per_column(dim_out: int) -> float:
    """Peak bytes one column of a :class:`RademacherProjector` chunk takes while it is generated.

    The int32 scratch that becomes the fp32 signs in place (4·d) plus the int64 hash words and their
    int32 copy (8·d/32 + 4·d/32): about 4.4·d bytes. Used to size chunks from a memory budget.
    """
    return 4 * dim_out + 12 * dim_out / 32


def chunk_for_budget(dim_out: int, budget_bytes: int) -> int:
    """The largest multiple-of-32 chunk whose generation fits ``budget_bytes`` (:func:`bytes_per_column`)."""
    n = int(budget_bytes // bytes_per_column(dim_out)) // 32 * 32
    if n < 32:
        raise ValueError(f"budget_bytes={budget_bytes} cannot hold even 32 columns of Π at dim_out={dim_out}; "
                         f"give at least {int(32 * bytes_per_column(dim_out))} bytes")
    return n


CUDA_BUDGET_BYTES = 16 * 2**30
"""Default memory budget for Π's chunks on CUDA (capped at a quarter of the free memory at build time):
at D = 1.24e9, d = 512 it gives ~7.6 M-column chunks, 163 chunks and a few thousand launches per call."""


# ---------------------------------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------------------------------
class Projector(ABC):
    """A linear map ``Π: R^dim_in → R^dim_out`` applied to rows of a gradient matrix (paper §2.1).

    Subclasses implement :meth:`project_partial`; :meth:`project` checks shapes and projects a full
    ``[B, dim_in]`` batch. Outputs are float32 whatever the input dtype.
    """

    kind = "abstract"

    def __init__(self, dim_in: int, dim_out: int, seed: int = 0, device: str | torch.device = "cpu"):
        self.dim_in = _check_dim("dim_in", dim_in, 2**37)
        self.dim_out = _check_dim("dim_out", dim_out)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed={seed!r} is invalid; pass a non-negative integer")
        self.seed = seed
        self.device = torch.device(device)

    def project(self, G: torch.Tensor) -> torch.Tensor:
        """Project a batch of flattened gradients: ``G [B, dim_in] → Π G^T as [B, dim_out]`` (fp32).

        A 1-D ``G [dim_in]`` is treated as one row and gives a 1-D result.
        """
        if not isinstance(G, torch.Tensor):
            raise ValueError(f"G must be a torch.Tensor, got {type(G).__name__}")
        if G.dim() == 1:
            return self.project(G[None])[0]
        if G.dim() != 2 or G.shape[1] != self.dim_in:
            raise ValueError(
                f"G has shape {tuple(G.shape)} but this projector expects [B, {self.dim_in}]; "
                f"build the projector with dim_in equal to the number of gradient entries"
            )
        return self.project_partial(G, 0)

    __call__ = project

    def project_partial(self, G_cols: torch.Tensor, start: int) -> torch.Tensor:
        """Contribution of columns ``[start, start + n)`` of Π: ``G_cols [B, n] → [B, dim_out]``.

        Projection is linear, so summing this over a partition of the columns gives :meth:`project`;
        use it to stream gradients block by block without holding all of ``[B, dim_in]``.
        """
        if G_cols.dim() != 2 or not 0 <= start <= start + G_cols.shape[1] <= self.dim_in:
            raise ValueError(
                f"columns [{start}, {start + G_cols.shape[-1]}) with G_cols of shape "
                f"{tuple(G_cols.shape)} do not fit in dim_in={self.dim_in}; pass a [B, n] block inside it"
            )
        if not G_cols.is_floating_point():
            raise ValueError(f"G must be floating point, got dtype {G_cols.dtype}")
        out = torch.zeros(G_cols.shape[0], self.dim_out, dtype=torch.float32, device=self.device)
        if G_cols.shape[1] and G_cols.shape[0]:
            self._accumulate(out, G_cols.to(self.device), start)
        return out

    @abstractmethod
    def _accumulate(self, out: torch.Tensor, G_cols: torch.Tensor, start: int) -> None:
        """Add ``G_cols @ Π[:, start:start+n]^T`` into ``out`` (fp32, in place)."""

    def accumulator(self, rows: int = 1) -> Accumulator:
        """A :class:`Accumulator` for ``rows`` gradients handed over in column ranges (e.g. per parameter)."""
        return Accumulator(self, rows)

    def cache_footprint(self) -> int:
        """Bytes this projector's cache of generated Π may grow to (0 if it keeps none)."""
        return 0

    def fit_cache(self, max_bytes: int) -> None:  # noqa: B027 - optional hook: most projectors keep no cache
        """Keep the cache within ``max_bytes`` (e.g. what a memory budget leaves); Π is unchanged."""

    def prepare(self) -> None:  # noqa: B027 - optional hook: most projectors keep no cache
        """Build now whatever this projector caches, so its first projection costs what the others do."""

    def meta(self) -> dict[str, Any]:
        """Everything needed to rebuild the same Π (for sidecars; see :func:`grace.projectors.projector_from_meta`)."""
        return {"kind": self.kind, "dim_in": self.dim_in, "dim_out": self.dim_out, "seed": self.seed}

    def matrix(self, max_entries: int = 2**26) -> torch.Tensor:
        """Materialise Π as ``[dim_out, dim_in]`` fp32 by projecting basis vectors (small dims only)."""
        if self.dim_in * self.dim_out > max_entries:
            raise ValueError(
                f"Π has {self.dim_in * self.dim_out} entries > max_entries={max_entries}; "
                "materialise only small projectors (or raise max_entries)"
            )
        eye = torch.eye(self.dim_in, dtype=torch.float32, device=self.device)
        return self.project(eye).T.contiguous()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.meta().items() if k != "kind")
        return f"{type(self).__name__}({args})"


class Accumulator:
    """``Πg`` and ``‖g‖²`` of ``B`` gradients given as column ranges (:meth:`Projector.accumulator`).

    Each column must be added once, in any order; :meth:`result` returns ``(Πg [B, d] fp32,
    ‖g‖² [B] fp64)``. This default projects each range as it comes (:meth:`Projector.project_partial`)
    and takes the fp32 norm of each range, squares summed in fp64. Projectors may defer work to
    :meth:`result` (see :meth:`SparseJLProjector.accumulator`).
    """

    def __init__(self, projector: Projector, rows: int = 1):
        self.projector = projector
        self.out = torch.zeros(rows, projector.dim_out, dtype=torch.float32, device=projector.device)
        self.sq = torch.zeros(rows, dtype=torch.float64, device=projector.device)

    def _checked(self, G_cols: torch.Tensor, start: int) -> torch.Tensor:
        if G_cols.dim() != 2 or G_cols.shape[0] != self.out.shape[0]:
            raise ValueError(f"G_cols has shape {tuple(G_cols.shape)}; this accumulator takes [{self.out.shape[0]}, n]")
        if not 0 <= start <= start + G_cols.shape[1] <= self.projector.dim_in:
            raise ValueError(f"columns [{start}, {start + G_cols.shape[1]}) do not fit in dim_in={self.projector.dim_in}")
        if not G_cols.is_floating_point():
            raise ValueError(f"G must be floating point, got dtype {G_cols.dtype}")
        return G_cols.to(self.projector.device).float()

    def add(self, G_cols: torch.Tensor, start: int) -> None:
        """Add columns ``[start, start + n)`` of the gradients, ``G_cols [B, n]``."""
        G = self._checked(G_cols, start)
        self.out += self.projector.project_partial(G, start)
        self.sq += torch.linalg.vector_norm(G, dim=1).double() ** 2

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Πg [B, d], ‖g‖² [B])`` of everything added."""
        return self.out, self.sq


class IdentityProjector(Projector):
    """``Π = I`` (``dim_out = dim_in``): features are the raw gradients. For exact tests."""

    kind = "identity"

    def __init__(self, dim: int, device: str | torch.device = "cpu"):
        super().__init__(dim, dim, seed=0, device=device)

    def _accumulate(self, out: torch.Tensor, G_cols: torch.Tensor, start: int) -> None:
        out[:, start : start + G_cols.shape[1]] += G_cols.float()

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "dim_in": self.dim_in, "dim_out": self.dim_out}


# ---------------------------------------------------------------------------------------------------
# The paper's dense Rademacher projection
# ---------------------------------------------------------------------------------------------------
def rademacher_entry(seed: int, row: int, col: int, dim_in: int) -> float:
    """Pure-Python definition of ``Π[row, col]`` for :class:`RademacherProjector` (tests, docs).

    ``word = mix32(mix32(K_row + row) + mix32(K_col + col // 32))`` with per-seed keys; the entry is
    ``-1/√dim_in`` if bit ``col % 32`` of ``word`` is set, else ``+1/√dim_in`` (rounded to fp32).
    """
    k_row, k_col = _key(seed, 1), _key(seed, 2)
    rk = _mix32_py(k_row + row)
    ck = _mix32_py(k_col + (col >> 5))
    word = _mix32_py(rk + ck)
    c = float(torch.tensor(1.0 / math.sqrt(dim_in), dtype=torch.float32))
    return -c if (word >> (col & 31)) & 1 else c


class RademacherProjector(Projector):
    """The paper's ``Π ∈ {±1/√D}^{d×D}`` (§2.1), generated chunk by chunk, never materialised whole.

    Entry ``(r, c)`` is a sign bit of a 32-bit hash word of ``(seed, r, c // 32)`` (one hash gives 32
    columns; see :func:`rademacher_entry` for the exact definition). ``project`` walks over column
    chunks of ``chunk_size`` and for each does one GEMM ``[B, chunk] × [chunk, d]``, so generating a
    chunk is paid once per batch, not per sample, and the sum is accumulated in fp32.

    Generated chunks are kept in memory when they fit ``cache_bytes``: as fp32 when all of Π fits
    (``4·d·D`` bytes; then projection is a pure GEMM), else as packed sign words (``d·D/8`` bytes; then
    only the cheap bit unpacking is repeated), else nothing is kept. ``cache_bytes=0`` disables it.

    Args:
        dim_in: ``D``, the gradient length (number of trainable parameters).
        dim_out: ``d``, the projection dimension (the paper uses 512, App. C uses 1024).
        seed: selects the matrix; same seed, same Π on every machine.
        device: where chunks are generated and the GEMM runs.
        chunk_size: columns per chunk (memory ``≈ 4.4·chunk_size·dim_out`` bytes); ``None`` picks ~8 MB
            chunks on CPU and, on CUDA, the largest that fits ``memory_budget`` (few kernel launches).
        cache_bytes: memory budget for generated chunks.
        memory_budget: bytes a chunk may take while generated, used when ``chunk_size`` is ``None``;
            ``None`` means ~8 MB chunks on CPU and :data:`CUDA_BUDGET_BYTES` (at most a quarter of the
            free memory) on CUDA. Any chunk size gives the same Π.
        backend: how Π is applied. ``"torch"`` generates chunks of Π into memory, then multiplies (the
            reference, and the CPU path); ``"triton"`` is the fused kernel of :mod:`grace.kernels`,
            which hashes the signs in registers and never writes Π (CUDA; the CPU only under
            ``TRITON_INTERPRET=1``); ``"auto"`` is ``"triton"`` on CUDA when Triton imports, else
            ``"torch"``. The matrix is the same either way; the sums' rounding differs.
        precision: the fused kernel's product, one of :data:`grace.kernels.PRECISIONS` (all accumulate
            in fp32 and multiply exact signs); the torch path always multiplies in fp32.
    """

    kind = "rademacher"

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        seed: int = 0,
        device: str | torch.device = "cpu",
        chunk_size: int | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        memory_budget: int | None = None,
        backend: str = "auto",
        precision: str | None = None,
    ):
        super().__init__(dim_in, dim_out, seed, device)
        self.backend = _resolve_backend(backend, self.device)
        self.precision = kernels.DEFAULT_PRECISION if precision is None else precision
        if self.precision not in kernels.PRECISIONS:
            raise ValueError(f"precision={precision!r} is invalid; choose one of {kernels.PRECISIONS}")
        if self.backend == "triton":  # Π is never generated into memory: no chunks, no cache
            chunk_size, cache_bytes = chunk_size or 2**20, 0
        if chunk_size is not None:
            self.chunk_size = _check_dim("chunk_size", chunk_size, 2**40)
        elif memory_budget is None and self.device.type != "cuda":
            self.chunk_size = _default_chunk(dim_out)
        else:
            if memory_budget is None:  # CUDA: big chunks, few launches, within a quarter of free memory
                free = torch.cuda.mem_get_info(self.device)[0]
                memory_budget = min(CUDA_BUDGET_BYTES, free // 4)
            self.chunk_size = min(chunk_for_budget(dim_out, memory_budget), -(-dim_in // 32) * 32)
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int) or cache_bytes < 0:
            raise ValueError(f"cache_bytes={cache_bytes!r} is invalid; pass a non-negative integer (0 disables)")
        self.cache_bytes = cache_bytes
        self._cache: dict[int, torch.Tensor] = {}
        self.fit_cache(cache_bytes)
        self._scratch: torch.Tensor | None = None
        self.scale = 1.0 / math.sqrt(dim_in)
        self._scale_bits = _float_bits(self.scale)
        self._k_col = _key(seed, 2)
        rows = torch.arange(dim_out, dtype=torch.int64, device=self.device)
        self._row_keys = _mix32_((rows + _key(seed, 1)).bitwise_and_(_MASK32))  # [d]
        self._shifts = 31 - torch.arange(32, dtype=torch.int32, device=self.device)  # bit k → bit 31

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "hash": HASH_VERSION, "scale": "1/sqrt(dim_in)"}

    def _mode_bytes(self) -> dict[str, int]:
        n_words = self.dim_out * (-(-self.dim_in // 32) + 2 * -(-self.dim_in // self.chunk_size))
        return {"float": 4 * self.dim_in * self.dim_out, "bits": 4 * n_words, "none": 0}

    def cache_footprint(self) -> int:
        return self._mode_bytes()[self.cache_mode]

    def fit_cache(self, max_bytes: int) -> None:
        """Pick the richest cache mode (float, then packed bits, then none) that fits ``max_bytes``."""
        sizes = self._mode_bytes()
        mode = next(m for m in ("float", "bits", "none") if sizes[m] <= max(0, max_bytes))
        self.cache_bytes = min(self.cache_bytes, max(0, max_bytes)) if hasattr(self, "cache_mode") else max_bytes
        if getattr(self, "cache_mode", mode) != mode:
            self._cache.clear()
        self.cache_mode = mode

    def plan(self, samples_per_call: int = 1) -> dict[str, Any]:
        """How applying Π runs at this size, checkable without a GPU (Π at real scale).

        ``ops_per_chunk`` is *counted*: one chunk of this class's own code path runs on a tiny CPU
        twin under a dispatch counter, and every aten op that computes (views excluded) is one kernel
        launch on CUDA. ``launches_per_sample`` divides a call's launches by ``samples_per_call``
        (1 for the memory-bounded per-sample path, the batch size otherwise).
        """
        n_chunks = -(-self.dim_in // self.chunk_size)
        ops = count_chunk_ops(self.dim_out, self.cache_mode)
        return {"dim_in": self.dim_in, "dim_out": self.dim_out, "device": self.device.type,
                "chunk_size": self.chunk_size, "n_chunks": n_chunks, "cache_mode": self.cache_mode,
                "bytes_per_chunk": int(self.chunk_size * bytes_per_column(self.dim_out)),
                "ops_per_chunk": ops, "launches_per_call": n_chunks * ops,
                "launches_per_sample": n_chunks * ops / samples_per_call}

    # -- generation ---------------------------------------------------------------------------------
    def _words(self, j0: int, j1: int) -> torch.Tensor:
        """Hash words for word-columns ``[j0, j1)``: int32 ``[d, j1 - j0]`` (bit pattern of 32 signs)."""
        j = torch.arange(j0, j1, dtype=torch.int64, device=self.device)
        col_keys = _mix32_((j + self._k_col).bitwise_and_(_MASK32))  # [nw]
        w = (self._row_keys[:, None] + col_keys[None, :]).bitwise_and_(_MASK32)  # [d, nw]
        w = _mix32_(w)
        w -= (w >> 31) << 32  # reinterpret as signed 32-bit, exactly (no overflowing cast)
        return w.to(torch.int32)

    def _unpack(self, words: torch.Tensor, scratch: bool) -> torch.Tensor:
        """int32 words ``[d, nw]`` → fp32 signs ``[d, 32·nw]``; bit k of word j is column 32j + k.

        The float is built bitwise: the sign bit is the hash bit and the rest is ``float32(1/√D)``, so
        entries are exactly ``±1/√D`` with 3 integer ops per entry. With ``scratch`` the result lives
        in a reused buffer (valid until the next call), which avoids page-faulting a fresh one per chunk.
        """
        d, nw = words.shape
        if scratch:
            if self._scratch is None or self._scratch.numel() < d * nw * 32:
                self._scratch = torch.empty(d * nw * 32, dtype=torch.int32, device=self.device)
            bits = self._scratch[: d * nw * 32].view(d, nw, 32)
            torch.bitwise_left_shift(words[:, :, None], self._shifts, out=bits)  # [d, nw, 32]
        else:
            bits = torch.bitwise_left_shift(words[:, :, None], self._shifts)
        bits.bitwise_and_(-(2**31)).bitwise_or_(self._scale_bits)
        return bits.view(torch.float32).view(d, nw * 32)

    def _columns(self, c0: int, c1: int, words: torch.Tensor | None = None, scratch: bool = True) -> torch.Tensor:
        """Π[:, c0:c1] as fp32 ``[d, c1 - c0]`` (a view into a word-aligned block)."""
        j0 = c0 >> 5
        if words is None:
            words = self._words(j0, (c1 + 31) >> 5)
        return self._unpack(words, scratch)[:, c0 - 32 * j0 : c1 - 32 * j0]

    def _chunk(self, i: int) -> torch.Tensor:
        """Chunk ``i`` of Π, i.e. columns ``[i·chunk, (i+1)·chunk)``, from the cache or freshly made."""
        c0, c1 = i * self.chunk_size, min((i + 1) * self.chunk_size, self.dim_in)
        hit = self._cache.get(i)
        if self.cache_mode == "float":
            if hit is None:
                hit = self._cache[i] = self._columns(c0, c1, scratch=False).contiguous()
            return hit
        if self.cache_mode == "bits":
            if hit is None:
                hit = self._cache[i] = self._words(c0 >> 5, (c1 + 31) >> 5)
            return self._columns(c0, c1, hit)
        return self._columns(c0, c1)

    def _accumulate(self, out: torch.Tensor, G_cols: torch.Tensor, start: int) -> None:
        if self.backend == "triton":
            kernels.rademacher_project(out, _unit_stride(G_cols.float()), start, self._row_keys, self._k_col,
                                       self.scale, self._scale_bits, self.precision)
            return
        stop, cs = start + G_cols.shape[1], self.chunk_size
        for i in range(start // cs, -(-stop // cs)):
            c0, c1 = max(i * cs, start), min((i + 1) * cs, stop)
            if self.cache_mode == "none" and (c0, c1) != (i * cs, min((i + 1) * cs, self.dim_in)):
                P = self._columns(c0, c1)  # [d, n]: generate only the part we need
            else:
                P = self._chunk(i)[:, c0 - i * cs : c1 - i * cs]  # [d, n]
            out.addmm_(G_cols[:, c0 - start : c1 - start].float(), P.T)  # [B, n] @ [n, d]


def _unit_stride(G: torch.Tensor) -> torch.Tensor:
    """``G`` itself when its columns are adjacent in memory (rows may be strided), else a copy."""
    return G if G.stride(1) == 1 else G.contiguous()


def _resolve_backend(backend: str, device: torch.device) -> str:
    """``"auto"`` → ``"triton"`` on CUDA when Triton imports, else ``"torch"``; checks the others."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is invalid; choose one of {BACKENDS}")
    if backend == "auto":
        return "triton" if device.type == "cuda" and kernels.available() else "torch"
    if backend == "triton":
        if not kernels.available():
            raise ValueError("backend='triton' needs Triton: pip install triton (or use backend='torch')")
        if device.type != "cuda" and not kernels.interpreting():
            raise ValueError(f"backend='triton' runs on CUDA (device is {device}); on a CPU use backend='torch', "
                             "or TRITON_INTERPRET=1 to run the kernel in Triton's interpreter (tests)")
    return backend


_VIEW_OPS = {"view", "_unsafe_view", "slice", "t", "transpose", "alias", "as_strided", "expand", "select",
             "unsqueeze", "squeeze", "detach", "lift_fresh", "_to_copy_noop"}


def count_chunk_ops(dim_out: int, cache_mode: str = "none") -> int:
    """Aten ops (views excluded) that :meth:`RademacherProjector._accumulate` dispatches for one chunk.

    Counted on a CPU twin of 2 chunks of 64 columns (the op sequence does not depend on the sizes).
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ not in _VIEW_OPS:
                self.n += 1
            return func(*args, **(kwargs or {}))

    twin = RademacherProjector(128, min(dim_out, 8), seed=0, chunk_size=64, cache_bytes=0)
    twin.cache_mode = cache_mode if cache_mode != "float" else "none"
    G = torch.ones(1, 64)
    twin.project_partial(G, 0)  # warm the scratch buffer, as in a long run
    with _Count() as c:
        twin._accumulate(torch.zeros(1, twin.dim_out), G, 0)
    return c.n


# ---------------------------------------------------------------------------------------------------
# The structured (sparse JL) projection
# ---------------------------------------------------------------------------------------------------
def sparse_jl_entries(seed: int, col: int, dim_out: int, nnz: int, block: int = 1) -> list[tuple[int, float]]:
    """Pure-Python definition of column ``col`` of :class:`SparseJLProjector`: ``[(row, value)]``.

    Rows are split into ``nnz`` contiguous blocks; row block ``k`` holds one non-zero per column, at
    row ``lo_k + ((h >> 1)·m_k >> 31)`` with ``h = mix32(K_k + col // block)``, and value
    ``s_col · (-1)^(h & 1) / √nnz`` where ``s_col`` is bit ``col % 32`` of ``mix32(K_s + col // 32)``
    (as a sign). Columns in the same ``block`` share rows but have independent signs ``s_col``.
    """
    s = -1.0 if (_mix32_py(_key(seed, 4) + (col >> 5)) >> (col & 31)) & 1 else 1.0
    out = []
    for k in range(nnz):
        lo, hi = k * dim_out // nnz, (k + 1) * dim_out // nnz
        h = _mix32_py(_key(seed, 3, k) + col // block)
        row = lo + (((h >> 1) * (hi - lo)) >> 31)
        value = float(torch.tensor(s * (-1.0 if h & 1 else 1.0) / math.sqrt(nnz), dtype=torch.float32))
        out.append((row, value))
    return out


class SparseJLProjector(Projector):
    """Opt-in structured projector: a sparse Johnson–Lindenstrauss transform (as in GraSS/SJLT).

    **Not the paper's Π.** Column ``c`` has exactly ``nnz`` non-zeros ``±1/√nnz``, one in each of
    ``nnz`` row blocks, from a counter-based hash of ``(seed, k, c)`` (see :func:`sparse_jl_entries`)
    — deterministic and device-independent like :class:`RademacherProjector`. The signs are
    independent and zero-mean, so ``E[ΠᵀΠ] = I``: ``E<Πx, Πy> = <x, y>`` and ``E‖Πx‖² = ‖x‖²``. Note
    there is no ``d/D`` factor, unlike the paper's ``±1/√D`` scaling: scores that normalise (G-Vendi,
    GRACE's whitening) do not care, but raw G-Var values are not comparable across projectors.

    Cost is ``O(B·D·nnz)`` instead of ``O(B·D·d)``. Each chunk's sketch is a sparse CSR ``[d, units]``
    matrix ``S`` applied with one ``S @ table``. With ``block = 1`` (the textbook SJLT) the table is the
    chunk of ``G`` transposed, and the transpose dominates. With ``block > 1`` the ``block``
    consecutive columns of a block share their rows (keeping independent signs): ``G`` is first
    reduced to signed block sums in one pass over its rows, then the ``D/block`` sums are sketched;
    :meth:`accumulator` defers the sketch until a gradient handed over in pieces is complete. This is still unbiased; it adds variance only
    through coordinates of a block always colliding — relative extra variance ≈ ``block·d/D`` for a
    gradient spread over many coordinates (0.4 % for D = 4 M, d = 512, block = 32).

    Args:
        dim_in, dim_out, seed, device: as for :class:`RademacherProjector`.
        nnz: non-zeros per column (1 = CountSketch).
        block: columns sharing a row pattern (1 = textbook SJLT).
        chunk_size: columns per chunk (rounded up to a multiple of ``block``).
        cache_bytes: memory for the per-chunk index structures (~8·nnz bytes/column for block = 1,
            ~1 + 8·nnz/block bytes/column for block > 1). A range inside a chunk (one parameter's
            gradient, as :func:`grace.features.compute_features` projects it from ``.grad``) reduces
            only its own columns and reuses the cached chunk. The cache is built lazily, or all at
            once by :meth:`prepare` (about 0.5 s for D = 134.5 M on 2 cores at the default 2^20
            columns per chunk; 2^16 took 2.3 s, dominated by per-chunk op overhead).
    """

    kind = "sparse_jl"

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        seed: int = 0,
        nnz: int = 4,
        block: int = 1,
        device: str | torch.device = "cpu",
        chunk_size: int = 2**20,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ):
        super().__init__(dim_in, dim_out, seed, device)
        _check_dim("dim_in", dim_in, 2**31)
        if isinstance(nnz, bool) or not isinstance(nnz, int) or not 1 <= nnz <= dim_out:
            raise ValueError(f"nnz={nnz!r} is invalid; pass an integer in [1, dim_out={dim_out}]")
        self.nnz, self.block = nnz, _check_dim("block", block, 2**16)
        chunk_size = _check_dim("chunk_size", chunk_size, 2**31)
        self.chunk_size = -(-chunk_size // block) * block
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int) or cache_bytes < 0:
            raise ValueError(f"cache_bytes={cache_bytes!r} is invalid; pass a non-negative integer (0 disables)")
        self.cache_bytes = cache_bytes
        self.cache = self._cache_bytes_needed() <= cache_bytes
        self._cache: dict[int, tuple[torch.Tensor, ...]] = {}  # by chunk index
        self._k_sign = _key(seed, 4)
        self._key_col = torch.tensor([_key(seed, 3, k) for k in range(nnz)], device=self.device)[:, None]  # [nnz, 1]
        lo = torch.tensor([k * dim_out // nnz for k in range(nnz + 1)], device=self.device)
        self._row_lo, self._row_span = lo[:-1, None], (lo[1:] - lo[:-1])[:, None]  # [nnz, 1] each
        self._value = 1.0 / math.sqrt(nnz)
        if sys.byteorder != "little":  # _signs reads hash words byte by byte
            raise NotImplementedError("SparseJLProjector assumes a little-endian host")
        bits = (torch.arange(256)[:, None] >> torch.arange(8)).bitwise_and_(1)  # [256, 8]: bit j of byte v
        self._sign_table = (1 - 2 * bits).to(torch.int8).to(self.device)
        self._scratch: torch.Tensor | None = None  # reused buffer for signed columns (block > 1)
        self._ones = torch.ones(self.block, dtype=torch.float32, device=self.device)  # block sums as a GEMV
        self._units_buffer: torch.Tensor | None = None  # reused by accumulator()

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "nnz": self.nnz, "block": self.block, "hash": HASH_VERSION}

    def _cache_bytes_needed(self) -> int:
        """Bytes of every chunk's index structures: 8·nnz per column (block 1), else 1 + 8·nnz/block."""
        per_col = 8 * self.nnz if self.block == 1 else 1 + 8 * self.nnz / self.block
        return int(per_col * self.dim_in + 4 * self.dim_out * -(-self.dim_in // self.chunk_size))

    def cache_footprint(self) -> int:
        return self._cache_bytes_needed() if self.cache else 0

    def fit_cache(self, max_bytes: int) -> None:
        if self._cache_bytes_needed() > max_bytes:
            self.cache = False
            self._cache.clear()

    def prepare(self) -> None:
        """Build every chunk's index data now (if the cache is on): once per projector, O(D)."""
        if self.cache:
            for i in range(-(-self.dim_in // self.chunk_size)):
                self._chunk_data(i * self.chunk_size, min((i + 1) * self.chunk_size, self.dim_in))

    def _signs(self, c0: int, c1: int) -> torch.Tensor:
        """Per-column signs ``s_c`` of columns ``[c0, c1)`` as int8 ±1 ``[c1 - c0]``: bit ``k`` of hash
        word ``j`` is column ``32j + k``. Each byte of a word is unpacked through a 256 × 8 table, so a
        column costs one byte gathered instead of a shift, a mask and a cast over int64."""
        j0 = c0 >> 5
        j = torch.arange(j0, (c1 + 31) >> 5, dtype=torch.int64, device=self.device)
        words = _mix32_((j + self._k_sign).bitwise_and_(_MASK32))  # [nw], values in [0, 2**32)
        words -= (words >> 31) << 32  # reinterpret as signed 32-bit, exactly
        octets = words.to(torch.int32).view(torch.uint8)  # [4·nw], little-endian: byte m holds bits 8m..8m+7
        signs = self._sign_table[octets.long()].reshape(-1)  # [32·nw] int8
        return signs[c0 - 32 * j0 : c1 - 32 * j0]

    def _rows(self, j0: int, j1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``[nnz, n]`` (int64) and ``±1/√nnz`` values ``[nnz, n]`` of row-pattern units ``[j0, j1)``.

        Non-zero ``k`` of a unit lies in row block ``[k·d/nnz, (k+1)·d/nnz)``, at the position its hash picks."""
        units = torch.arange(j0, j1, dtype=torch.int64, device=self.device)
        h = _mix32_((units[None, :] + self._key_col).bitwise_and_(_MASK32))  # [nnz, n]
        rows = self._row_lo + (((h >> 1) * self._row_span) >> 31)
        vals = (1 - 2 * (h & 1)).to(torch.float32).mul_(self._value)
        return rows, vals

    def _chunk_data(self, c0: int, c1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The chunk's sketch ``S`` as a sparse CSR ``[d, nu]`` (int32 indices; entries of a row sorted
        by unit) and, for block > 1, the zero-padded int8 column signs of its blocks. Only whole
        chunks are cached."""
        i, cs = c0 // self.chunk_size, self.chunk_size
        full = c0 == i * cs and c1 == min((i + 1) * cs, self.dim_in)
        if full and i in self._cache:
            return self._cache[i]
        b = self.block
        j0, j1 = c0 // b, -(-c1 // b)
        rows, vals = self._rows(j0, j1)  # [nnz, nu]
        if b == 1:
            vals = vals * self._signs(c0, c1)  # fold s_c into the weights (int8 promoted to fp32)
            signs = torch.empty(0, device=self.device)
        else:  # int8 (1 byte per column in the cache), zero outside [c0, c1)
            signs = torch.zeros((j1 - j0) * b, dtype=torch.int8, device=self.device)
            signs[c0 - j0 * b : c1 - j0 * b] = self._signs(c0, c1)
        rows, vals = rows.reshape(-1), vals.reshape(-1)
        order = torch.argsort(rows.to(torch.int32), stable=True)  # rows < dim_out: int32 sorts twice as fast
        units = (order % (j1 - j0)).to(torch.int32)  # local unit of each sorted entry
        crow = torch.zeros(self.dim_out + 1, dtype=torch.int32, device=self.device)
        crow[1:] = torch.cumsum(torch.bincount(rows, minlength=self.dim_out), 0)
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state": used here for S @ x only
            warnings.simplefilter("ignore", UserWarning)
            S = torch.sparse_csr_tensor(crow, units, vals[order], size=(self.dim_out, j1 - j0), check_invariants=False)
        data = (S, signs)
        if self.cache and full:
            self._cache[i] = data
        return data

    def _pieces(self, start: int, stop: int):
        """``(k0, k1, c0, c1)`` per chunk ``[k0, k1)`` that columns ``[start, stop)`` overlap, ``[c0, c1)`` inside it."""
        cs = self.chunk_size
        for i in range(start // cs, -(-stop // cs)):
            k0, k1 = i * cs, min((i + 1) * cs, self.dim_in)
            yield k0, k1, max(k0, start), min(k1, stop)

    def _block_sums(self, Gc: torch.Tensor, lead: int, signs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Signed block sums ``[B, nu]`` of the columns ``Gc [B, n]`` that start ``lead`` columns into
        the blocks whose ``nu·block`` zero-padded signs are ``signs``, and ``Gc ⊙ s`` zero-padded
        ``[B, nu, block]`` (a reused buffer, valid until the next call): its norm is ``‖Gc‖``."""
        B, n, b = Gc.shape[0], Gc.shape[1], self.block
        nu = signs.numel() // b
        if lead == 0 and n == nu * b:
            x = Gc.reshape(B, nu, b)  # a view: the columns are contiguous
        else:  # a range that starts or ends inside a block: pad with zeros
            x = torch.zeros(B, nu * b, dtype=torch.float32, device=self.device)
            x[:, lead : lead + n] = Gc
            x = x.view(B, nu, b)
        if self._scratch is None or self._scratch.numel() < B * nu * b:
            self._scratch = torch.empty(B * nu * b, dtype=torch.float32, device=self.device)
        # one reused buffer that stays in cache (a fresh one per call costs page faults): the signs as
        # fp32 (torch.mul would make that copy itself, freshly allocated), times x in place, then a GEMV
        signed = self._scratch[: B * nu * b].view(B, nu, b)
        signed.copy_(signs.view(nu, b).expand(B, nu, b)).mul_(x)
        return torch.mv(signed.view(B * nu, b), self._ones).view(B, nu), signed

    def _table(self, Gc: torch.Tensor, lead: int, signs: torch.Tensor) -> torch.Tensor:
        """What the chunk's ``S`` multiplies, ``[nu, B]``: columns of ``Gc`` (block 1) or signed block sums."""
        if self.block == 1:
            return Gc.T.contiguous()  # [n, B]
        return self._block_sums(Gc, lead, signs)[0].T.contiguous()

    def _accumulate(self, out: torch.Tensor, G_cols: torch.Tensor, start: int) -> None:
        out_t = torch.zeros(self.dim_out, out.shape[0], dtype=torch.float32, device=self.device)  # [d, B]
        for k0, k1, c0, c1 in self._pieces(start, start + G_cols.shape[1]):
            S, signs = self._chunk_data(k0, k1)  # the whole chunk: its index data is cached
            Gc = G_cols[:, c0 - start : c1 - start].float()
            if (c0, c1) == (k0, k1):
                table = self._table(Gc, 0, signs)
            else:  # a range inside the chunk (one parameter's gradient): only its units, zeros elsewhere
                b = self.block
                u0, u1 = (c0 - k0) // b, -(-(c1 - k0) // b)  # the chunk-local units the range touches
                table = torch.zeros(S.shape[1], Gc.shape[0], dtype=torch.float32, device=self.device)
                table[u0:u1] = self._table(Gc, (c0 - k0) % b, signs[u0 * b : u1 * b] if b > 1 else signs)
            out_t += S @ table  # [d, nu] @ [nu, B]
        out += out_t.T

    def accumulator(self, rows: int = 1) -> Accumulator:
        """For block > 1: signed block sums of every range go into one ``[B, D/block]`` buffer and each
        chunk's ``S`` is applied once, at :meth:`Accumulator.result`, however the columns were split;
        ``‖g‖²`` comes from the signed columns while they are still in cache."""
        return Accumulator(self, rows) if self.block == 1 else _BlockSumAccumulator(self, rows)


class _BlockSumAccumulator(Accumulator):
    """:meth:`SparseJLProjector.accumulator` for block > 1."""

    def __init__(self, projector: SparseJLProjector, rows: int):
        super().__init__(projector, rows)
        n_units = -(-projector.dim_in // projector.block)
        buf = projector._units_buffer  # reused: a fresh 4·D/block bytes would be page-faulted in each time
        if buf is None or buf.shape != (rows, n_units):
            buf = torch.empty(rows, n_units, dtype=torch.float32, device=projector.device)
        projector._units_buffer = None  # this accumulator holds it until result()
        self.units = buf.zero_()  # [B, ceil(D / block)] signed block sums

    def add(self, G_cols: torch.Tensor, start: int) -> None:
        P, G = self.projector, self._checked(G_cols, start)
        b = P.block
        for k0, k1, c0, c1 in P._pieces(start, start + G.shape[1]):
            _, signs = P._chunk_data(k0, k1)
            u0, u1 = (c0 - k0) // b, -(-(c1 - k0) // b)  # chunk-local units of the piece
            sums, signed = P._block_sums(G[:, c0 - start : c1 - start], (c0 - k0) % b, signs[u0 * b : u1 * b])
            self.units[:, k0 // b + u0 : k0 // b + u1] += sums
            flat = signed.view(G.shape[0], -1)  # still in cache; |s| = 1, so its norm is the gradient's
            self.sq += (torch.dot(flat[0], flat[0])[None] if len(flat) == 1 else (flat * flat).sum(1)).double()

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        P, b = self.projector, self.projector.block
        out_t = torch.zeros(P.dim_out, self.out.shape[0], dtype=torch.float32, device=P.device)  # [d, B]
        for k0, k1, _, _ in P._pieces(0, P.dim_in):
            S, _ = P._chunk_data(k0, k1)
            out_t += S @ self.units[:, k0 // b : k0 // b + S.shape[1]].T  # [d, nu] @ [nu, B]
        P._units_buffer = self.units  # handed back for the next accumulator
        return self.out + out_t.T, self.sq
