"""Johnson–Lindenstrauss checks of the gradient projection Π (paper §2.1, App. C.3).

The paper never stores a student gradient ``g ∈ R^D``: it keeps ``Π g ∈ R^d`` with a random sign
matrix ``Π ∈ {±1/√D}^{d×D}`` (Park et al., 2023). Every score then works with inner products and
norms of projected gradients, so the question is how well ``Π`` preserves them. This module measures
that on *real* per-sample gradients and compares with the exact second-moment prediction.

Scaling. With entries ``±1/√D``, ``E‖Πx‖² = (d/D)‖x‖²``: the paper's ``Π`` shrinks every norm by the
same factor ``√(d/D)``, which cancels in every normalised quantity (cosines, ``Σ̃``, GRACE's
whitening). :func:`unbiased_scale` gives the factor that makes ``<Πx, Πy>`` an unbiased estimate of
``<x, y>`` (``D/d`` for :class:`~grace.projection.RademacherProjector`, 1 for
:class:`~grace.projection.SparseJLProjector` and the identity).

Theory. For ``X = s·<Πx, Πy>`` with independent ±1 signs (dense) — and equally for a sparse JL
transform whose ``d`` rows form ``nnz`` equal blocks with one non-zero per column in each —

    Var X = (‖x‖²‖y‖² + <x, y>² − 2 Σ_i x_i² y_i²) / d,

so the relative errors shrink as ``1/√d`` (the JL rate): ``√(2/d)`` for squared norms of spread-out
vectors, ``√((1 + cos²)/d)`` for inner products relative to ``‖x‖‖y‖``. :func:`predicted_rms` evaluates
the exact formula for the given gradients.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from grace.projection import IdentityProjector, Projector, RademacherProjector, SparseJLProjector

__all__ = [
    "gram",
    "per_sample_gradients",
    "unbiased_scale",
    "distortions",
    "predicted_rms",
    "jl_table",
]


def per_sample_gradients(
    model,
    tokenizer,
    examples: Sequence[Mapping[str, Any]],
    template: str,
    device: str | torch.device = "cpu",
    param_pattern: str | None = None,
    batch_size: int = 8,
) -> tuple[torch.Tensor, np.ndarray]:
    """Raw flattened per-sample gradients ``g(x, y)`` of the response loss (paper §2.1, no ``Π``).

    Runs :func:`grace.features.compute_features` with an
    :class:`~grace.projection.IdentityProjector` and ``length_scale="none"``, so the returned rows are
    exactly ``g`` (the mean response-token cross-entropy's gradient).

    Args:
        model: the student (``AutoModelForCausalLM``); its ``requires_grad`` flags are restored.
        tokenizer: its tokenizer.
        examples: ``{prompt_id, prompt, response}`` records.
        template: prompt template with ``{prompt}``.
        device: where gradients are computed.
        param_pattern: optional regex; only parameters whose name matches (``re.search``) are
            differentiated (``D`` is then their total size). Use it when all of ``D`` does not fit
            in memory ``n`` times (e.g. a 1B-parameter student).
        batch_size: examples per ``vmap`` call.

    Returns:
        ``(G, lengths)``: ``G [n, D]`` float32 on the CPU and ``lengths [n]`` = ``|y|``.

    Raises:
        ValueError: if ``param_pattern`` matches no trainable parameter.
    """
    from grace.features import compute_features

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    keep = [param_pattern is None or re.search(param_pattern, n) is not None for n, _ in named]
    if not any(keep):
        raise ValueError(f"param_pattern={param_pattern!r} matches no trainable parameter; "
                         f"names look like {named[0][0]!r}")
    try:
        for (_, p), k in zip(named, keep, strict=True):
            p.requires_grad_(k)
        D = sum(p.numel() for (_, p), k in zip(named, keep, strict=True) if k)
        feats = compute_features(model, tokenizer, examples, IdentityProjector(D, device=device),
                                 length_scale="none", template=template, batch_size=batch_size,
                                 device=device, progress=False)
    finally:
        for _, p in named:
            p.requires_grad_(True)
    return torch.from_numpy(feats.H), feats.lengths


def unbiased_scale(projector: Projector) -> float:
    """``s`` with ``E[s·<Πx, Πy>] = <x, y>``: ``D/d`` for the paper's ``±1/√D`` matrix, else 1."""
    if isinstance(projector, RademacherProjector):
        return projector.dim_in / projector.dim_out
    if isinstance(projector, SparseJLProjector | IdentityProjector):
        return 1.0
    raise ValueError(f"no known scale for {type(projector).__name__}; use a Rademacher, sparse JL or "
                     "identity projector")


def gram(G: torch.Tensor, square: bool = False, chunk: int = 2**20) -> np.ndarray:
    """``G Gᵀ`` (or ``(G∘G)(G∘G)ᵀ`` with ``square``) in float64, ``[n, n]``, column chunk by chunk.

    Only one ``[n, chunk]`` float64 block exists at a time, so a long ``G`` (``D`` in the hundreds of
    millions) never needs a full float64 copy.
    """
    if G.dim() != 2:
        raise ValueError(f"G has shape {tuple(G.shape)}; pass a [n, D] matrix")
    K = torch.zeros(G.shape[0], G.shape[0], dtype=torch.float64, device=G.device)
    for c0 in range(0, G.shape[1], chunk):
        B = G[:, c0 : c0 + chunk].double()  # [n, chunk]
        if square:
            B = B * B
        K += B @ B.T
    return K.cpu().numpy()


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i, j


def distortions(G: torch.Tensor, P: torch.Tensor, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Relative errors of norms, inner products and cosines after projection (paper §2.1).

    Args:
        G: ``[n, D]`` original rows (``n >= 2``).
        P: ``[n, d]`` projected rows, ``P[i] = Π G[i]``.
        scale: :func:`unbiased_scale` of the projector.

    Returns:
        ``norm`` ``[n]``: ``s‖Πx‖²/‖x‖² − 1``; ``inner`` ``[n(n−1)/2]``:
        ``(s<Πx, Πy> − <x, y>) / (‖x‖‖y‖)`` over pairs ``i < j``; ``cosine`` (same pairs):
        ``cos(Πx, Πy) − cos(x, y)``; ``cos_true``: ``cos(x, y)``.
    """
    if G.dim() != 2 or P.dim() != 2 or G.shape[0] != P.shape[0] or G.shape[0] < 2:
        raise ValueError(f"G {tuple(G.shape)} and P {tuple(P.shape)} must be [n, D] and [n, d] with the "
                         "same n >= 2")
    K, Kp = gram(G), gram(P) * scale  # [n, n] Gram matrices
    nrm, nrm_p = np.sqrt(np.diag(K)), np.sqrt(np.diag(Kp))
    if np.any(nrm == 0):
        raise ValueError("a row of G is all zeros; drop it (its relative distortion is undefined)")
    i, j = _pairs(len(K))
    cos, cos_p = K[i, j] / (nrm[i] * nrm[j]), Kp[i, j] / (nrm_p[i] * nrm_p[j])
    return {"norm": np.diag(Kp) / np.diag(K) - 1, "inner": (Kp[i, j] - K[i, j]) / (nrm[i] * nrm[j]),
            "cosine": cos_p - cos, "cos_true": cos}


def predicted_rms(G: torch.Tensor, d: int) -> dict[str, float]:
    """Exact RMS of :func:`distortions`' ``norm`` and ``inner`` errors for i.i.d. ±1 signs.

    Uses ``Var(s<Πx, Πy>) = (‖x‖²‖y‖² + <x, y>² − 2Σ_i x_i²y_i²)/d`` (module docstring), averaged over
    rows (``norm``) or pairs (``inner``) before the square root. Valid for the dense Rademacher Π and
    for the block sparse JL transform alike.
    """
    if d < 1:
        raise ValueError(f"d={d} must be >= 1")
    K = gram(G)  # [n, n]
    Q = gram(G, square=True)  # [n, n] Σ_k x_k² y_k²
    nn = np.outer(np.diag(K), np.diag(K))
    var = (nn + K**2 - 2 * Q) / nn / d  # [n, n] variance of the relative error
    i, j = _pairs(len(K))
    return {"norm": float(np.sqrt(np.mean(np.diag(var)))), "inner": float(np.sqrt(np.mean(var[i, j])))}


def jl_table(
    G: torch.Tensor,
    dims: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    kinds: Sequence[str] = ("rademacher", "sparse_jl"),
    nnz: int = 4,
    device: str | torch.device = "cpu",
) -> Any:
    """Measured vs predicted distortion of Π for every kind × d × seed (paper §2.1, JL rate ``1/√d``).

    Args:
        G: ``[n, D]`` per-sample gradients (e.g. from :func:`per_sample_gradients`).
        dims: projection dimensions ``d``.
        seeds: projector seeds (one matrix each).
        kinds: ``"rademacher"`` (the paper's Π) and/or ``"sparse_jl"``.
        nnz: non-zeros per column of the sparse JL transform (``d`` must be a multiple of it).
        device: where the projection runs.

    Returns:
        A DataFrame, one row per (kind, d, seed): ``rms_norm``, ``rms_inner``, ``rms_cosine``,
        ``max_inner`` (largest |inner-product error| over pairs) and ``pred_norm``, ``pred_inner``
        from :func:`predicted_rms`.
    """
    import pandas as pd

    for k in kinds:
        if k not in ("rademacher", "sparse_jl"):
            raise ValueError(f"kind={k!r}: use 'rademacher' or 'sparse_jl'")
    rows = []
    G_dev = G.to(device)
    for d in dims:
        if "sparse_jl" in kinds and d % nnz:
            raise ValueError(f"d={d} is not a multiple of nnz={nnz}; the sparse JL blocks would be unequal")
        pred = predicted_rms(G, int(d))
        for kind in kinds:
            for seed in seeds:
                if kind == "rademacher":
                    proj = RademacherProjector(G.shape[1], int(d), seed=int(seed), device=device)
                else:
                    proj = SparseJLProjector(G.shape[1], int(d), seed=int(seed), nnz=nnz, device=device)
                err = distortions(G, proj.project(G_dev).cpu(), unbiased_scale(proj))
                rows.append({"kind": kind, "d": int(d), "seed": int(seed),
                             "rms_norm": float(np.sqrt(np.mean(err["norm"] ** 2))),
                             "rms_inner": float(np.sqrt(np.mean(err["inner"] ** 2))),
                             "rms_cosine": float(np.sqrt(np.mean(err["cosine"] ** 2))),
                             "max_inner": float(np.abs(err["inner"]).max()),
                             "pred_norm": pred["norm"], "pred_inner": pred["inner"]})
    return pd.DataFrame(rows)


def pairwise_cosines(G: torch.Tensor) -> np.ndarray:
    """The cosines of every pair of rows of ``G`` (float64, upper triangle): how aligned the gradients
    are, the scale of the cosine errors in chapter 3.3's JL check (§2.1)."""
    K = gram(G)
    return (K / np.sqrt(np.outer(np.diag(K), np.diag(K))))[np.triu_indices(len(G), 1)]


def error_slopes(agg: Any, column: str = "rms_inner") -> dict[str, float]:
    """The slope of ``log(column)`` against ``log d`` per projector kind of an aggregated
    :func:`jl_table` (index ``(kind, d)``); the JL rate is −0.5 (chapter 3.3, §2.1)."""
    slopes = {}
    for kind in dict.fromkeys(agg.index.get_level_values("kind")):
        a = agg.loc[kind]
        slopes[kind] = float(np.polyfit(np.log(a.index.values), np.log(a[column].values), 1)[0])
    return slopes
