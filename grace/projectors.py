"""The registry of projectors Π (paper §2.1): one name per implementation, one factory for all.

``PROJECTORS`` maps each name in :data:`grace.config.PROJECTORS` (the profile's and the CLI's choices)
to its class: the paper's dense Π and its alternatives live in :mod:`grace.projection`, the factored
one in :mod:`grace.factored`; both import only :mod:`grace.projection`'s base class, and this module
imports them all, so no two of them import each other.
"""

from __future__ import annotations

from typing import Any

from grace.factored import FactoredProjector
from grace.projection import (
    HASH_VERSION,
    IdentityProjector,
    Projector,
    RademacherProjector,
    SparseJLProjector,
)

__all__ = ["PROJECTORS", "make_projector", "projector_from_meta"]

PROJECTORS: dict[str, type[Projector]] = {
    "rademacher": RademacherProjector,  # the paper's Π (§2.1); fused Triton kernel on CUDA
    "sparse_jl": SparseJLProjector,  # structured, not the paper's Π
    "factored": FactoredProjector,  # LoGra-style, built from the student
    "identity": IdentityProjector,  # Π = I, for exact tests
}


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
