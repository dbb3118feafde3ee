"""The registry of projectors Π (paper §2.1): one name per implementation, one factory for all.

``PROJECTORS`` maps each name in :data:`grace.config.PROJECTORS` (the profile's and the CLI's choices)
to its class: the paper's dense Π and its alternatives live in :mod:`grace.projection`, the factored
one in :mod:`grace.factored`; both import only :mod:`grace.projection`'s base class, and this module
imports them all, so no two of them import each other.
"""

from __future__ import annotations

from typing import Any

import torch

from grace.factored import FactoredProjector
from grace.projection import (
    HASH_VERSION,
    IdentityProjector,
    Projector,
    RademacherProjector,
    SparseJLProjector,
)

__all__ = ["PROJECTORS", "CPU_DENSE_MAX_ENTRIES", "choose_projector", "make_projector", "projector_from_meta"]

PROJECTORS: dict[str, type[Projector]] = {
    "rademacher": RademacherProjector,  # the paper's Π (§2.1); fused Triton kernel on CUDA
    "sparse_jl": SparseJLProjector,  # structured, not the paper's Π
    "factored": FactoredProjector,  # LoGra-style, built from the student
    "identity": IdentityProjector,  # Π = I, for exact tests
}


CPU_DENSE_MAX_ENTRIES = 2**33
"""Largest ``D·d`` for which ``"auto"`` keeps the paper's dense Π on a CPU. The miniature's students
(≤ 14 M parameters at d = 512: 7·10⁹) stay on it; SmolLM2-135M (6.9·10¹⁰) measured 37 s per example
with it against 0.63 s with the factored projector on 2 cores (``benchmarks/bench_real.py``)."""


def choose_projector(kind: str, n_params: int, d: int, device: str | torch.device = "cpu") -> tuple[str, str]:
    """``(kind, why)``: ``"auto"`` resolved from the student's size and the device; other kinds pass through.

    On CUDA the paper's dense Π (§2.1), through the fused kernel (about 0.1 s per example at 1 B on
    an H200); on a CPU the dense Π up to :data:`CPU_DENSE_MAX_ENTRIES` entries ``D·d``, the factored
    projector above (its features are not the paper's Π, but their GRACE ranks agree: Appendix A.7).
    """
    if kind != "auto":
        return kind, "as asked"
    if torch.device(device).type == "cuda":
        return "rademacher", "auto: the paper's dense Π, fused kernel on CUDA"
    if n_params * d <= CPU_DENSE_MAX_ENTRIES:
        return "rademacher", f"auto: the paper's dense Π (D·d = {n_params * d:.2g} on a CPU)"
    return "factored", (f"auto: D·d = {n_params * d:.2g} is too large for the dense Π on a CPU (minutes per "
                        "example); --projector rademacher forces it")


def make_projector(kind: str, dim_in: int, dim_out: int, seed: int = 0, model=None, **kwargs: Any) -> Projector:
    """Build a projector by name (:data:`PROJECTORS`): ``"rademacher"`` is the paper's Π (§2.1).

    ``"factored"`` is built from the student ``model``; ``norms`` (``"sketch"`` or ``"exact"``, None for
    its default) is its option alone: the other kinds' ``grad_norm`` is always the exact ``‖g‖``.
    ``backend`` and ``precision`` are the dense Π's (:class:`grace.projection.RademacherProjector`).
    """
    if kind not in PROJECTORS:
        raise ValueError(f"unknown projector kind {kind!r}; choose one of {sorted(PROJECTORS)}")
    norms = kwargs.pop("norms", None)
    if kind == "factored":
        if model is None:
            raise ValueError("projector 'factored' is built from the student: pass model=...")
        proj = FactoredProjector(model, dim_out, seed=seed, **({} if norms is None else {"norms": norms}), **kwargs)
        if proj.dim_in != dim_in:
            raise ValueError(f"the model has {proj.dim_in} trainable parameters, not dim_in={dim_in}")
        return proj
    if norms is not None:
        raise ValueError(f"norms={norms!r} is an option of projector 'factored' only (projector {kind!r} always "
                         "records the exact ‖g‖); drop it or use projector 'factored'")
    if kind != "rademacher":
        for key in ("backend", "precision"):
            if kwargs.pop(key, None) not in (None, "auto"):
                raise ValueError(f"{key} is an option of projector 'rademacher' only (projector {kind!r}); drop it")
    if kind == "identity":
        if dim_out != dim_in:
            raise ValueError(f"identity projector needs dim_out == dim_in, got {dim_out} != {dim_in}")
        return IdentityProjector(dim_in, **kwargs)
    return PROJECTORS[kind](dim_in, dim_out, seed=seed, **kwargs)


def projector_from_meta(meta: dict[str, Any], **kwargs: Any) -> Projector:
    """Rebuild the projector recorded by :meth:`Projector.meta` (``kwargs``: device, chunk_size...)."""
    if meta.get("hash", HASH_VERSION) != HASH_VERSION:
        raise ValueError(f"projector hash {meta['hash']!r} != this version's {HASH_VERSION!r}; recompute features")
    extra = {"nnz": meta["nnz"], "block": meta.get("block", 1)} if meta.get("kind") == "sparse_jl" else {}
    return make_projector(meta.get("kind", "?"), meta["dim_in"], meta["dim_out"], meta.get("seed", 0), **extra, **kwargs)
