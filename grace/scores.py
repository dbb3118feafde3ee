"""Teacher scores computed from student gradients: GRACE, G-Vendi, G-Var and the baselines.

Paper §2.1–2.2 (eqs. 1–6) and appendix C.1. Everything here is pure numpy/scipy in float64.

Inputs are a feature matrix ``H`` of shape (N, d) whose rows are processed gradients
h = log|y| · Πg (one row per prompt–generation pair, N = n prompts × m generations) and
``prompt_ids`` of shape (N,) saying which prompt each row belongs to. Rows need not be sorted.

Notation used in comments:
    N  rows, d  feature dim, C  folds, r  rows in one fold, r'  rows outside it (r' = N - r)
    Hn  rows of H scaled to unit norm (G̃ in eq. 1)
    T  = Hnᵀ Hn               (d, d)  unscaled Gram of all normalised rows
    Kn = Hn Hnᵀ               (N, N)  kernel of the normalised rows (used when d > N)
    M(D₋ᵢ) = Σ̃(D₋ᵢ) + (ν/d) I           eq. 4, with Σ̃ from eq. 1

How GRACE (eq. 4) is computed, per fold i:
    Σ̃(D₋ᵢ) = (T − Hn_iᵀ Hn_i) / r'         total Gram minus the fold's Gram — never re-summed
    L       = cholesky(M(D₋ᵢ))             a Cholesky factor, never an explicit inverse
    Tr(G_μ M⁻¹ G_μᵀ) = ‖L⁻¹ G_μᵀ‖²_F       one triangular solve with the fold's r columns
When d > N the same quantity is computed in the kernel (Woodbury) form, which factors an
(r' × r') matrix instead of a (d × d) one (see ``_quad_dual``). Both forms are tested against a
direct ``np.linalg.inv`` loop and against the spectral form (eq. 6).

Performance notes (benchmarks/bench_scores.py, N = 2048, d = 512, C = 10): the per-fold Grams are
formed once with BLAS ``syrk`` and summed to T; each fold then costs one LAPACK ``potrf`` and one
``trtrs`` on Fortran-ordered arrays (no copies). A single batched ``np.linalg.cholesky`` over all
folds was measured ~2x slower than this loop, so the loop is used. At these sizes one BLAS thread is
near optimal; oversubscribed OpenBLAS threads on a busy machine slow everything down several-fold.

About ν: the paper gives no value for ν. The default 1e-3 matches the released code's eigenvalue
smoothing w ↦ (1 − s)·w + s·mean(w) with s = 1e-3: for unit-norm rows tr Σ̃ = 1, so mean(w) = 1/d and
the added ridge is s/d, i.e. ν/d with ν = s.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse

# ---------------------------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------------------------


def _check_H(H, *, need_nonzero: bool = True) -> np.ndarray:
    """Return ``H`` as a float64 (N, d) array or raise ``ValueError`` saying what to fix."""
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2:
        raise ValueError(
            f"H must be a 2-D array (rows = samples, columns = projected-gradient dims); "
            f"got shape {H.shape}. Reshape it to (n_prompts * m, d)."
        )
    if H.shape[0] == 0 or H.shape[1] == 0:
        raise ValueError(f"H must have at least one row and one column; got shape {H.shape}.")
    bad = ~np.isfinite(H).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"H has NaN/inf values in rows {rows[:10].tolist()}{' ...' if len(rows) > 10 else ''} "
            f"({len(rows)} rows); drop or recompute those rows before scoring."
        )
    if need_nonzero:
        zero = ~np.any(H != 0, axis=1)
        if zero.any():
            rows = np.flatnonzero(zero)
            raise ValueError(
                f"H rows {rows[:10].tolist()}{' ...' if len(rows) > 10 else ''} are all zero and "
                f"cannot be normalised (eq. 1); drop those rows before scoring."
            )
    return H


def _check_ids(prompt_ids, n_rows: int, name: str = "prompt_ids") -> np.ndarray:
    ids = np.asarray(prompt_ids)
    if ids.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one entry per row); got shape {ids.shape}.")
    if len(ids) != n_rows:
        raise ValueError(
            f"length mismatch: {name} has {len(ids)} entries but there are {n_rows} rows; "
            f"pass one {name} entry per row of H."
        )
    return ids


def _check_nu(nu: float, name: str = "nu") -> float:
    nu = float(nu)
    if not (nu > 0 and math.isfinite(nu)):
        raise ValueError(
            f"{name} must be a finite number > 0 (it keeps M positive definite); got {nu}."
        )
    return nu


def _check_per_sample(x, name: str, n_rows: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array with one value per sample; got shape {x.shape}."
        )
    if len(x) == 0:
        raise ValueError(f"{name} is empty; pass at least one sample.")
    if n_rows is not None and len(x) != n_rows:
        raise ValueError(
            f"length mismatch: {name} has {len(x)} entries but prompt_ids has {n_rows}; "
            f"pass one value per sample."
        )
    if not np.isfinite(x).all():
        raise ValueError(
            f"{name} contains NaN/inf at {np.flatnonzero(~np.isfinite(x))[:10].tolist()}; fix those samples."
        )
    return x


def _unit_rows(H: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (h̃ = h/‖h‖, eq. 1). H: (N, d) -> (N, d)."""
    return H / np.linalg.norm(H, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# folds
# ---------------------------------------------------------------------------------------------


def prompt_folds(prompt_ids, n_folds: int, seed: int = 0) -> np.ndarray:
    """Assign every row to one of ``n_folds`` prompt-level folds (the partitions D_i of eq. 4).

    All rows of a prompt share a fold; fold prompt counts differ by at most one. Prompts are
    shuffled with ``numpy.random.default_rng(seed)`` and dealt round-robin, so the result is
    deterministic in ``seed``.

    Args:
        prompt_ids: (N,) prompt id of each row (any sortable dtype).
        n_folds: number of folds C (>= 2).
        seed: shuffling seed.

    Returns:
        (N,) int array of fold indices in ``[0, n_folds)``.
    """
    ids = np.asarray(prompt_ids)
    if ids.ndim != 1:
        raise ValueError(f"prompt_ids must be 1-D (one entry per row); got shape {ids.shape}.")
    if int(n_folds) != n_folds or n_folds < 2:
        raise ValueError(
            f"n_folds must be an integer >= 2 (eq. 4 holds one fold out); got {n_folds}."
        )
    n_folds = int(n_folds)
    uniq, inv = np.unique(ids, return_inverse=True)
    n_prompts = len(uniq)
    if n_prompts < n_folds:
        raise ValueError(
            f"fewer prompts ({n_prompts}) than folds (n_folds={n_folds}); "
            f"use n_folds <= {n_prompts} or score more prompts."
        )
    perm = np.random.default_rng(seed).permutation(n_prompts)
    fold_of_prompt = np.empty(n_prompts, dtype=np.int64)
    fold_of_prompt[perm] = np.arange(n_prompts) % n_folds
    return fold_of_prompt[inv.reshape(-1)]


def _fold_index_lists(folds, prompt_ids: np.ndarray) -> list[np.ndarray]:
    """Validate a per-row fold vector and return the row indices of each fold."""
    folds = np.asarray(folds)
    if folds.ndim != 1 or len(folds) != len(prompt_ids):
        raise ValueError(
            f"length mismatch: folds has shape {folds.shape} but there are {len(prompt_ids)} rows; "
            f"pass one fold label per row (e.g. from prompt_folds)."
        )
    labels, fold_inv = np.unique(folds, return_inverse=True)
    fold_inv = fold_inv.reshape(-1)
    if len(labels) < 2:
        raise ValueError(
            f"folds has {len(labels)} distinct label(s); eq. 4 needs at least 2 folds."
        )
    # every prompt must live in exactly one fold (eq. 4 partitions prompts, not rows)
    _, p_inv = np.unique(prompt_ids, return_inverse=True)
    p_inv = p_inv.reshape(-1)
    lo = np.full(p_inv.max() + 1, len(labels))
    hi = np.full(p_inv.max() + 1, -1)
    np.minimum.at(lo, p_inv, fold_inv)
    np.maximum.at(hi, p_inv, fold_inv)
    split = np.flatnonzero(lo[p_inv] != hi[p_inv])
    if len(split):
        raise ValueError(
            f"prompt {prompt_ids[split[0]].item()!r} has rows in more than one fold; folds must partition "
            f"prompts (use prompt_folds)."
        )
    order = np.argsort(fold_inv, kind="stable")
    counts = np.bincount(fold_inv, minlength=len(labels))
    idx = np.split(order, np.cumsum(counts)[:-1])
    for lab, rows in zip(labels.tolist(), idx, strict=True):
        if len(rows) < 2:
            raise ValueError(
                f"fold {lab!r} has {len(rows)} row(s); each fold needs >= 2 rows — use fewer folds "
                f"or more prompts/generations."
            )
    return idx


# ---------------------------------------------------------------------------------------------
# the two ways of computing x_kᵀ (α S + β I)⁻¹ x_k for a set of columns x_k
# ---------------------------------------------------------------------------------------------


def _gram_lower(X: np.ndarray) -> np.ndarray:
    """XᵀX for X: (r, d) as a Fortran-ordered (d, d) array whose LOWER triangle only is valid.

    BLAS ``syrk`` does half the work of ``X.T @ X``; ``X.T`` of a C-ordered X is Fortran-ordered,
    so nothing is copied.
    """
    return scipy.linalg.blas.dsyrk(1.0, X.T, lower=1)


def _symmetrize_lower(A: np.ndarray) -> np.ndarray:
    """Fill the upper triangle of ``A`` from its lower triangle (in place) and return it."""
    iu = np.triu_indices(A.shape[0], 1)
    A[iu] = A.T[iu]
    return A


def _cholesky(M: np.ndarray, what: str) -> np.ndarray:
    """Lower Cholesky factor of a positive definite M, computed in place by LAPACK ``potrf``.

    Only the lower triangle of M is read, so M must be Fortran-ordered with a valid lower triangle,
    or symmetric (then ``M.T`` is the same matrix in Fortran order and no copy is made;
    scipy.linalg.cholesky would copy and is ~3x slower at d = 512). Only the lower triangle of the
    result is meaningful; ``_tri_solve`` reads nothing else.
    """
    A = M if M.flags.f_contiguous else M.T
    L, info = scipy.linalg.lapack.dpotrf(A, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        raise ValueError(
            f"{what} is not numerically positive definite (LAPACK potrf info={info}); increase the "
            f"smoothing (nu / smooth) or check H for near-duplicate rows."
        )
    return L


def _tri_solve(L: np.ndarray, X: np.ndarray) -> np.ndarray:
    """L⁻¹ X for the lower-triangular factor L; X: (n, k), ideally Fortran-ordered (else copied)."""
    Y, info = scipy.linalg.lapack.dtrtrs(L, np.asfortranarray(X), lower=1, overwrite_b=1)
    if info != 0:
        raise ValueError(f"triangular solve failed (LAPACK trtrs info={info}); increase nu.")
    return Y


def _quad_primal(
    T: np.ndarray, held: np.ndarray, alpha: float, beta: float, X: np.ndarray
) -> np.ndarray:
    """Per-column xᵀ M⁻¹ x with M = α (T − held) + β I, via a (d, d) Cholesky.

    T: (d, d) symmetric Gram of all unit-norm rows. held: (d, d) Gram of the held-out unit-norm
    rows (only its lower triangle is read). X: (d, k) columns to whiten. Returns (k,).
    """
    M = np.subtract(T, held, order="F")  # (d, d) Gram of the rows outside the held-out set
    M *= alpha
    M.flat[:: M.shape[0] + 1] += beta
    Y = _tri_solve(_cholesky(M, "M = Σ̃ + ridge·I"), X)  # (d, k) = L⁻¹ X
    return np.einsum("ij,ij->j", Y, Y)


def _quad_dual(
    K: np.ndarray, B: np.ndarray, alpha: float, beta: float, X: np.ndarray
) -> np.ndarray:
    """Per-column xᵀ M⁻¹ x with M = α BᵀB + β I, via the Woodbury identity (an (r', r') Cholesky).

    (β I + α BᵀB)⁻¹ = (1/β) [I − α Bᵀ (β I + α B Bᵀ)⁻¹ B], hence
    xᵀ M⁻¹ x = (‖x‖² − α ‖L⁻¹ B x‖²) / β  with  L Lᵀ = β I + α K,  K = B Bᵀ.

    K: (r', r') symmetric kernel of B. B: (r', d) unit-norm rows. X: (d, k). Returns (k,).
    """
    A = alpha * K  # (r', r')
    A.flat[:: A.shape[0] + 1] += beta
    Y = _tri_solve(_cholesky(A, "β I + α K"), B @ X)  # (r', k)
    return (np.einsum("ij,ij->j", X, X) - alpha * np.einsum("ij,ij->j", Y, Y)) / beta


@dataclass
class _Prepared:
    """Row-normalised features plus the one Gram (or kernel) every score shares.

    ``dual`` is True when d > N: then the (N, N) kernel ``Kn`` replaces the (d, d) Gram ``T``.
    """

    H: np.ndarray  # (N, d) raw processed gradients
    Hn: np.ndarray  # (N, d) unit-norm rows
    T: np.ndarray | None  # (d, d) Hnᵀ Hn, primal form, symmetric
    Kn: np.ndarray | None  # (N, N) Hn Hnᵀ, dual form, symmetric
    fold_grams: list[np.ndarray] | None = None  # primal: (d, d) Hn_iᵀ Hn_i per fold, lower only

    @property
    def dual(self) -> bool:
        return self.Kn is not None

    @classmethod
    def build(cls, H: np.ndarray, dual: bool | None = None, fold_idx=None) -> _Prepared:
        """Normalise rows and form T (primal, d <= N by default) or Kn (dual, d > N).

        With ``fold_idx`` (primal only) the per-fold Grams are formed first and T is their sum, so
        GRACE's complement Grams T − Hn_iᵀHn_i cost one pass over the data instead of two.
        """
        N, d = H.shape
        dual = d > N if dual is None else dual
        Hn = _unit_rows(H)
        if dual:
            return cls(H, Hn, None, Hn @ Hn.T)
        if fold_idx is None:
            return cls(H, Hn, _symmetrize_lower(_gram_lower(Hn)), None)
        grams = [_gram_lower(Hn[I]) for I in fold_idx]  # C x (d, d), lower triangles
        T = grams[0].copy(order="F")
        for g in grams[1:]:
            T += g
        return cls(H, Hn, _symmetrize_lower(T), None, grams)

    def quad(self, heldout, alpha: float, beta: float, X: np.ndarray, held_gram=None) -> np.ndarray:
        """xᵀ (α·Gram(rows ∉ heldout) + β I)⁻¹ x for each column of X: (d, k) -> (k,).

        ``held_gram`` optionally supplies Hn[heldout]ᵀ Hn[heldout] (primal form) if already known.
        """
        if self.dual:
            keep = np.ones(len(self.H), dtype=bool)
            keep[heldout] = False
            J = np.flatnonzero(keep)
            return _quad_dual(self.Kn[np.ix_(J, J)], self.Hn[J], alpha, beta, X)
        if held_gram is None:
            held_gram = _gram_lower(self.Hn[heldout])  # (d, d), lower triangle
        return _quad_primal(self.T, held_gram, alpha, beta, X)

    def gram_eigvals(self) -> np.ndarray:
        """Non-trivial eigenvalues of Σ̃(D) = Hnᵀ Hn / N (min(N, d) of them, eq. 2)."""
        G = self.Kn if self.dual else self.T
        return scipy.linalg.eigh(G / len(self.H), eigvals_only=True, check_finite=False)

    def logdet(self, nu: float) -> float:
        """log det(Σ̃(D) + (ν/d) I_d), via whichever of the (d, d) / (N, N) forms is smaller."""
        N, d = self.H.shape
        eps = nu / d
        G = (self.Kn if self.dual else self.T) / N
        G.flat[:: G.shape[0] + 1] += eps
        L = _cholesky(G, "Σ̃ + (ν/d) I")
        # det(εI_d + BᵀB) = ε^(d−N) det(εI_N + BBᵀ) in the dual form
        extra = (d - N) * math.log(eps) if self.dual else 0.0
        return float(2.0 * np.log(np.diag(L)).sum() + extra)


# ---------------------------------------------------------------------------------------------
# GRACE (eq. 4 / eq. 5) and its spectral form (eq. 6)
# ---------------------------------------------------------------------------------------------


def _grace_both(P: _Prepared, fold_idx: Sequence[np.ndarray], nu: float) -> tuple[float, float]:
    """(eq. 4 score with per-fold centring, eq. 5 score with global centring).

    Per fold the fold-centred rows A = H_i − 1μ_iᵀ are whitened together with δ = μ_i − μ; since the
    rows of A sum to zero, Σ‖M^{-1/2}(h − μ)‖² = Σ‖M^{-1/2}(h − μ_i)‖² + r·δᵀM⁻¹δ exactly.
    """
    N, d = P.H.shape
    mu = P.H.mean(axis=0)  # (d,)
    beta = nu / d
    tot_fold, tot_glob = 0.0, 0.0
    for k, I in enumerate(fold_idx):
        Hi = P.H[I]  # (r, d)
        mu_i = Hi.mean(axis=0)
        X = np.empty((d, len(I) + 1), order="F")  # (d, r + 1) = [(H_i − μ_i)ᵀ, μ_i − μ]
        X.T[:-1] = Hi - mu_i
        X.T[-1] = mu_i - mu
        held = None if P.fold_grams is None else P.fold_grams[k]
        q = P.quad(I, 1.0 / (N - len(I)), beta, X, held)  # (r + 1,)
        fold_trace = q[:-1].sum()
        tot_fold += fold_trace
        tot_glob += fold_trace + len(I) * q[-1]
    return float(tot_fold / N), float(tot_glob / N)


def _resolve_folds(prompt_ids, N, n_folds, seed, folds) -> list[np.ndarray]:
    ids = _check_ids(prompt_ids, N)
    if folds is None:
        folds = prompt_folds(ids, n_folds, seed)
    return _fold_index_lists(folds, ids)


def grace(
    H,
    prompt_ids,
    n_folds: int = 10,
    nu: float = 1e-3,
    seed: int = 0,
    folds=None,
    center: str = "fold",
) -> float:
    """GRACE score, paper eq. 4 (``center="fold"``) or eq. 5 as printed (``center="global"``).

    GRACE(D) = (1/N) Σ_i Tr(G_μ(D_i) M(D₋ᵢ)⁻¹ G_μ(D_i)ᵀ),  M(D₋ᵢ) = Σ̃(D₋ᵢ) + (ν/d) I,
    with Σ̃ the Gram of the unit-normalised rows outside fold i divided by their count (eq. 1) and
    G_μ(D_i) the fold's raw rows centred by the fold mean (eq. 4) or by the mean of all rows (eq. 5).
    Eq. 5 as printed writes M(D_i); we read that as the typo it is and use M(D₋ᵢ) in both.
    Lower is better.

    Args:
        H: (N, d) processed gradients h = log|y|·Πg.
        prompt_ids: (N,) prompt of each row; folds are drawn over prompts.
        n_folds: number of folds C (paper default 10).
        nu: smoothing ν > 0 (the paper gives no value; 1e-3 matches the release, see module doc).
        seed: fold-assignment seed (see :func:`prompt_folds`).
        folds: optional (N,) explicit fold label per row; overrides ``n_folds`` and ``seed``.
        center: ``"fold"`` (eq. 4) or ``"global"`` (eq. 5).

    Returns:
        The score as a float.
    """
    if center not in ("fold", "global"):
        raise ValueError(f"unknown center={center!r}; use 'fold' (eq. 4) or 'global' (eq. 5).")
    H = _check_H(H)
    nu = _check_nu(nu)
    fold_idx = _resolve_folds(prompt_ids, len(H), n_folds, seed, folds)
    s_fold, s_glob = _grace_both(_Prepared.build(H, fold_idx=fold_idx), fold_idx, nu)
    return s_fold if center == "fold" else s_glob


def grace_spectral(
    H,
    prompt_ids,
    n_folds: int = 10,
    nu: float = 1e-3,
    seed: int = 0,
    folds=None,
    center: str = "fold",
) -> float:
    """GRACE via its spectral form, paper eq. 6 (a slow reference used to check eq. 4).

    Per fold i, with {λ_j, u_j} the eigenpairs of Σ̃(D₋ᵢ):
        Σ_j  (1 / (λ_j + ν/d)) · Σ_{h ∈ D_i} ((h − c)ᵀ u_j)²,
    summed over folds and divided by N, where c is the fold mean (eq. 4) or global mean (eq. 5).
    Eq. 6 as printed averages over |D_1| inside; summing and dividing by N instead gives exactly eq. 4.
    Same arguments as :func:`grace`.
    """
    if center not in ("fold", "global"):
        raise ValueError(f"unknown center={center!r}; use 'fold' (eq. 4) or 'global' (eq. 5).")
    H = _check_H(H)
    nu = _check_nu(nu)
    fold_idx = _resolve_folds(prompt_ids, len(H), n_folds, seed, folds)
    return sum(float(t.sum()) for t, _ in _spectral_terms(H, fold_idx, nu, center)) / len(H)


def _spectral_terms(H: np.ndarray, fold_idx: Sequence[np.ndarray], nu: float, center: str):
    """Per fold i: eq. 6's terms ``(Σ_{h∈D_i} ((h − c)ᵀu_j)²) / (λ_j + ν/d)`` and the λ_j, both (d,)."""
    N, d = H.shape
    Hn = _unit_rows(H)
    mu = H.mean(axis=0)
    for I in fold_idx:
        keep = np.ones(N, dtype=bool)
        keep[I] = False
        B = Hn[keep]  # (r', d)
        lam, U = np.linalg.eigh(B.T @ B / len(B))  # (d,), (d, d)
        c = H[I].mean(axis=0) if center == "fold" else mu
        proj = (H[I] - c) @ U  # (r, d): projections on every eigenvector
        yield (proj**2).sum(axis=0) / (lam + nu / d), lam


def grace_spectral_split(
    H,
    prompt_ids,
    n_folds: int = 10,
    nu: float = 1e-3,
    seed: int = 0,
    folds=None,
) -> dict[str, float]:
    """Where GRACE's value comes from: eq. 6 split at the smoothing level ν/d (a diagnostic).

    Eq. 6 weights the held-out variance along each eigenvector u_j of Σ̃(D₋ᵢ) by 1/(λ_j + ν/d).
    Directions the other folds span (λ_j ≥ ν/d) get weight ≤ 1/λ_j; directions they barely span
    (λ_j < ν/d: always present when the training folds have fewer rows than d, and also when the
    gradients are effectively low-rank) get weight ≈ d/ν, so there GRACE measures how much held-out
    gradient falls outside the others' span, scaled by 1/ν. Fold-centred (eq. 4).

    Args:
        H, prompt_ids, n_folds, nu, seed, folds: as for :func:`grace`.

    Returns:
        ``{"grace", "spanned", "smoothing", "smoothing_frac", "dims_below"}``: the score (equal to
        :func:`grace`), its two parts (``spanned + smoothing = grace``), the smoothing part's share,
        and the mean number of directions per fold with λ_j < ν/d.
    """
    H = _check_H(H)
    nu = _check_nu(nu)
    fold_idx = _resolve_folds(prompt_ids, len(H), n_folds, seed, folds)
    N, d = H.shape
    parts = np.zeros(2)  # [spanned, smoothing]
    below = 0
    for terms, lam in _spectral_terms(H, fold_idx, nu, "fold"):
        low = lam < nu / d
        parts += terms[~low].sum(), terms[low].sum()
        below += int(low.sum())
    spanned, smoothing = parts / N
    total = spanned + smoothing
    return {"grace": float(total), "spanned": float(spanned), "smoothing": float(smoothing),
            "smoothing_frac": float(smoothing / total) if total > 0 else math.nan,
            "dims_below": below / len(fold_idx)}


# ---------------------------------------------------------------------------------------------
# literal readings of §2.2's printed equations (chapter 4 shows how far they are from eq. 4)
# ---------------------------------------------------------------------------------------------


def smoothed_gram(G: np.ndarray, nu: float = 1e-3) -> np.ndarray:
    """``Σ̃(D) + (ν/D) I`` of eq. 1 / eq. 4: the normalized Gram matrix with smoothing.

    Args:
        G: (rows, D) gradients; rows are normalized to unit length (a zero row raises).
        nu: smoothing ν > 0.

    Returns:
        (D, D) symmetric positive-definite matrix.
    """
    if nu <= 0:
        raise ValueError(f"nu={nu}: the smoothing must be > 0")
    norms = np.linalg.norm(G, axis=1, keepdims=True)  # (rows, 1)
    if np.any(norms == 0):
        raise ValueError("a gradient row is all zeros: it cannot be normalized; drop it first")
    Gt = G / norms  # (rows, D)
    D = G.shape[1]
    return Gt.T @ Gt / G.shape[0] + (nu / D) * np.eye(D)


def grace_eq5_own_fold(
    H: np.ndarray, prompt_ids: np.ndarray, n_folds: int = 10, nu: float = 1e-3, seed: int = 0, folds=None
) -> float:
    """Eq. 5 read literally: ``(1/N) Σ_i Σ_{h∈D_i} ‖M(D_i)^{-1/2}(h − μ(D))‖²``.

    Eq. 5 prints ``M(D_i)`` (the held-out fold's own Gram) where eq. 4 has ``M(D_{-i})``. This
    literal reading is computed only to show how far it is from eq. 4: with ``|D_i| < d`` the
    fold's Gram is rank-deficient and only the ``ν/d`` ridge keeps it invertible. Folds as in
    :func:`prompt_folds`.
    """
    H = np.asarray(H, dtype=float)
    mu = H.mean(0)
    total = 0.0
    for rows in _resolve_folds(prompt_ids, len(H), n_folds, seed, folds):
        A = smoothed_gram(H[rows], nu)  # (d, d) M(D_i)
        R = H[rows] - mu  # (r, d)
        total += float(np.einsum("rd,rd->", R, np.linalg.solve(A, R.T).T))
    return total / len(H)


def grace_eq6_printed(
    H: np.ndarray, prompt_ids: np.ndarray, n_folds: int = 10, nu: float = 1e-3, seed: int = 0, folds=None
) -> float:
    """Eq. 6 read literally, averaged over the ``C`` partitions ``(D_1, D_2) = (D_i, D_{-i})``.

    ``Σ_j (λ_j + ν/d)^{-1} (1/|D_1|) Σ_{h∈D_1} (hᵀu_j)²`` with ``{λ_j, u_j}`` the eigenpairs of
    ``Σ̃(D_2)``: raw, *uncentred* ``h`` and a per-fold average. It is what the released code
    computes on random 90/10 splits (up to its ``(1−s)`` factor on ``Σ̃``).
    """
    H = np.asarray(H, dtype=float)
    d = H.shape[1]
    per_fold = []
    for rows in _resolve_folds(prompt_ids, len(H), n_folds, seed, folds):
        keep = np.ones(len(H), dtype=bool)
        keep[rows] = False
        lam, U = np.linalg.eigh(smoothed_gram(H[keep], nu) - (nu / d) * np.eye(d))  # Σ̃(D_2)
        proj2 = ((H[rows] @ U) ** 2).mean(0)  # (d,) (1/|D_1|) Σ (hᵀu_j)²
        per_fold.append(float((proj2 / (lam + nu / d)).sum()))
    return float(np.mean(per_fold))


# ---------------------------------------------------------------------------------------------
# GRACE as in the authors' released code
# ---------------------------------------------------------------------------------------------


def _release_splits(n_prompts: int, n_splits: int, test_fraction: float) -> list[np.ndarray]:
    """Test-prompt indices of each release split: the last max(1, ⌊n·f⌋) of default_rng(s)'s permutation."""
    n_test = max(1, int(n_prompts * test_fraction))
    if n_prompts - n_test < 1:
        raise ValueError(
            f"not enough prompts for a train/test split: n_prompts={n_prompts}, "
            f"test_fraction={test_fraction}; score at least 2 prompts."
        )
    return [
        np.random.default_rng(s).permutation(n_prompts)[n_prompts - n_test :]
        for s in range(n_splits)
    ]


def _grace_release(
    P: _Prepared, m: int, n_splits: int, test_fraction: float, smooth: float
) -> float:
    N, d = P.H.shape
    scores = []
    for test_prompts in _release_splits(N // m, n_splits, test_fraction):
        I = (test_prompts[:, None] * m + np.arange(m)).reshape(-1)  # (n_test * m,) test rows
        n_train = N - len(I)
        # K_train = (1/n_train) Σ h̃h̃ᵀ; smoothing w -> (1-s)w + s·mean(w) is (1-s)K + s·(tr K/d)·I
        tr_K = (N - np.einsum("ij,ij->", P.Hn[I], P.Hn[I])) / n_train  # unit rows: tr = row count
        X = P.H[I].T  # (d, n_test * m) raw, uncentred test rows
        q = P.quad(I, (1.0 - smooth) / n_train, smooth * tr_K / d, X)
        scores.append(q.sum() / len(I))  # tr(K_train⁻¹ K_test), K_test = XᵀX / n_test
    return float(np.mean(scores))


def _check_release_args(n_splits, test_fraction, smooth) -> None:
    if int(n_splits) != n_splits or n_splits < 1:
        raise ValueError(f"n_splits must be an integer >= 1; got {n_splits}.")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}.")
    if not 0.0 < smooth <= 1.0:
        raise ValueError(f"smooth must be in (0, 1] (it keeps K_train invertible); got {smooth}.")


def grace_release(
    H,
    n_gen_per_prompt: int,
    n_splits: int = 10,
    test_fraction: float = 0.1,
    smooth: float = 1e-3,
    *,
    normalize_train: bool = True,
    normalize_test: bool = False,
    method: str = "cholesky",
) -> float:
    """GRACE as computed by the authors' released code (GRACE/GRACE_computation.py), re-implemented.

    Rows are grouped consecutively, ``n_gen_per_prompt`` per prompt. For split s = 0..n_splits−1 a
    permutation of the prompts from ``numpy.random.default_rng(s)`` puts the last
    max(1, ⌊n·test_fraction⌋) prompts in the test set. Train rows are unit-normalised; test rows are
    raw and *uncentred* (unlike eq. 4). With K = XᵀX/rows, the train kernel's eigenvalues w are
    smoothed to (1−s)·w + s·mean(w) and the split score is tr(K_train⁻¹ K_test); the result is the
    mean over splits.

    The smoothing is applied as (1−s)·K_train + s·(tr K_train / d)·I with a Cholesky solve instead
    of an eigendecomposition (identical maths). The release also clips eigenvalues at 1e-12 before
    smoothing; that clip is omitted here and changes the score by < d·1e-12/s relative
    (≈ 5e-7 for d = 512, s = 1e-3), only when K_train is rank-deficient.

    Args:
        H: (N, d) processed gradients, rows [k·m, (k+1)·m) belonging to prompt k.
        n_gen_per_prompt: m, generations per prompt (must divide N).
        n_splits: number of random train/test splits.
        test_fraction: fraction of prompts held out per split.
        smooth: eigenvalue smoothing coefficient s in (0, 1].
        normalize_train, normalize_test: the release's two switches (chapter 8): unit-normalise the
            train rows (on in the release) and the test rows (off). Any non-default switch uses
            ``method="eigh"``.
        method: ``"cholesky"`` (fast, above) or ``"eigh"``: the release's own eigendecomposition
            with its 1e-12 clips, re-derived; equal to the Cholesky form to ~1e-8 (tested).

    Returns:
        The mean split score (lower is better).
    """
    H = _check_H(H)
    m = n_gen_per_prompt
    if int(m) != m or m < 1:
        raise ValueError(f"n_gen_per_prompt must be a positive integer; got {m}.")
    m = int(m)
    if len(H) % m:
        raise ValueError(
            f"n_gen_per_prompt={m} does not divide the number of rows N={len(H)}; the release "
            f"needs exactly m consecutive rows per prompt."
        )
    _check_release_args(n_splits, test_fraction, smooth)
    if method not in ("cholesky", "eigh"):
        raise ValueError(f"method={method!r}: use 'cholesky' (fast) or 'eigh' (the release's own algorithm)")
    if method == "eigh" or not normalize_train or normalize_test:
        return _grace_release_eigh(H, m, int(n_splits), float(test_fraction), float(smooth),
                                   normalize_train, normalize_test)
    return _grace_release(_Prepared.build(H), m, int(n_splits), float(test_fraction), float(smooth))


def _unit_rows_clipped(X: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    return X / np.clip(np.linalg.norm(X, axis=1, keepdims=True), eps, None)


def _grace_release_eigh(H: np.ndarray, m: int, n_splits: int, test_fraction: float, smooth: float,
                        normalize_train: bool, normalize_test: bool) -> float:
    """The released ``GRACE_computation.py`` score with its two normalisation switches, re-derived.

    For split ``s`` the permutation ``default_rng(s).permutation(n)`` puts the last
    ``max(1, ⌊0.1·n⌋)`` prompts in the test set; ``K = XᵀX / rows`` for train and test rows
    (unit-normalised if the switch is on); the train kernel's eigenvalues ``w`` (clipped at 1e-12)
    become ``(1 − s)·w + s·mean(w)`` and the split score is ``tr(K_train⁻¹ K_test)``.
    """
    n = len(H) // m
    n_test = max(1, int(n * test_fraction))
    if n - n_test < 1:
        raise ValueError(f"n={n} prompts leave no training prompt with test_fraction={test_fraction}; "
                         "score at least 2 prompts")
    grouped = H.reshape(n, m, -1)  # (n, m, d)
    out = []
    for s in range(n_splits):
        perm = np.random.default_rng(s).permutation(n)
        tr = grouped[perm[: n - n_test]].reshape(-1, H.shape[1])  # (r', d)
        te = grouped[perm[n - n_test :]].reshape(-1, H.shape[1])  # (r, d)
        tr = _unit_rows_clipped(tr) if normalize_train else tr
        te = _unit_rows_clipped(te) if normalize_test else te
        w, V = np.linalg.eigh(tr.T @ tr / len(tr))  # (d,), (d, d)
        w = np.clip(w, 1e-12, None)
        w = np.clip((1 - smooth) * w + smooth * w.mean(), 1e-12, None)
        P = te @ V  # (r, d) test rows in the train eigenbasis
        out.append(float(((P**2).sum(axis=0) / w).sum() / len(te)))
    return float(np.mean(out))


# ---------------------------------------------------------------------------------------------
# G-Vendi, G-Var and the gradient baselines of appendix C.1
# ---------------------------------------------------------------------------------------------


def _entropy(lam: np.ndarray) -> float:
    lam = lam[lam > 0]
    return float(-(lam * np.log(lam)).sum())


def g_vendi(H) -> float:
    """G-Vendi, paper eq. 2: entropy −Σ λ log λ (natural log) of the eigenvalues of Σ̃(D).

    Σ̃(D) = (1/N) G̃ᵀG̃ has trace 1, so its eigenvalues form a distribution. Non-positive eigenvalues
    (numerical zeros) contribute 0. Invariant to rescaling H. Higher is better.

    Args:
        H: (N, d) processed gradients.
    """
    return _entropy(_Prepared.build(_check_H(H)).gram_eigvals())


def g_var(H) -> float:
    """G-Var, paper eq. 3: (1/N) Σ ‖h − μ(D)‖² on the raw (un-normalised) rows. Lower is better.

    Args:
        H: (N, d) processed gradients (zero rows are allowed here).
    """
    return _g_var(_check_H(H, need_nonzero=False))


def _g_var(H: np.ndarray) -> float:
    return float(((H - H.mean(axis=0)) ** 2).sum() / len(H))


def log_determinant(H, nu: float = 1e-3) -> float:
    """Determinant baseline (appendix C.1 item 4) as a log: log det(Σ̃(D) + (ν/d) I). Higher is better.

    Args:
        H: (N, d) processed gradients.
        nu: ridge ν > 0 so the determinant of a rank-deficient Gram stays finite.
    """
    H = _check_H(H)
    return _Prepared.build(H).logdet(_check_nu(nu))


def _badge(logdet: float, H: np.ndarray, grad_norms) -> float:
    if grad_norms is None:
        norms = np.linalg.norm(H, axis=1)
    else:
        norms = _check_per_sample(grad_norms, "grad_norms", len(H))
        if (norms <= 0).any():
            raise ValueError("grad_norms must be > 0 (they are gradient norms); got a value <= 0.")
    return logdet + math.log(float(norms.mean()))


def badge(H, grad_norms=None, nu: float = 1e-3) -> float:
    """BADGE-style baseline (appendix C.1 item 5): determinant × mean gradient norm, as a log.

    Returns log det(Σ̃(D) + (ν/d) I) + log mean(‖g‖). Higher is better.

    Args:
        H: (N, d) processed gradients.
        grad_norms: optional (N,) gradient norms; defaults to the row norms of H.
        nu: ridge ν > 0 of the log-determinant.
    """
    H = _check_H(H)
    return _badge(_Prepared.build(H).logdet(_check_nu(nu)), H, grad_norms)


def same_prompt_inner_product(H, prompt_ids, normalized: bool = True) -> float:
    """Gradient inner-product baselines (appendix C.1 items 6 and 7).

    For each prompt with >= 2 generations, the mean of ⟨h_a, h_b⟩ over ordered pairs a ≠ b of its
    generations, then the mean over prompts. ``normalized=True`` uses unit rows (item 6, cosine
    similarity), ``False`` the raw rows (item 7). Lower = more same-prompt diversity. Prompts with a
    single generation are skipped; NaN if no prompt has two.

    Args:
        H: (N, d) processed gradients.
        prompt_ids: (N,) prompt of each row.
        normalized: whether to normalise rows first.
    """
    H = _check_H(H, need_nonzero=normalized)
    ids = _check_ids(prompt_ids, len(H))
    return _inner_product(_unit_rows(H) if normalized else H, ids)


def _inner_product(X: np.ndarray, ids: np.ndarray) -> float:
    _, inv, counts = np.unique(ids, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    onehot = scipy.sparse.csr_matrix(
        (np.ones(len(X)), (inv, np.arange(len(X)))), shape=(len(counts), len(X))
    )
    sums = onehot @ X  # (n_prompts, d) per-prompt sums
    sq = np.bincount(inv, weights=np.einsum("ij,ij->i", X, X), minlength=len(counts))
    ok = counts >= 2
    if not ok.any():
        return float("nan")
    pair_sum = np.einsum("ij,ij->i", sums, sums) - sq  # Σ_{a≠b} ⟨x_a, x_b⟩
    return float((pair_sum[ok] / (counts[ok] * (counts[ok] - 1))).mean())


# ---------------------------------------------------------------------------------------------
# probability / loss baselines (appendix C.1 items 1, 8–12)
# ---------------------------------------------------------------------------------------------


def student_loss(loss) -> float:
    """Student loss on the teacher's generations (appendix C.1 item 1): mean per-sample loss.

    Args:
        loss: (N,) per-sample student loss. Lower is better.
    """
    return float(_check_per_sample(loss, "loss").mean())


def avg_prob(mean_prob) -> float:
    """Average per-token probability (appendix C.1 item 8): mean over all generations.

    Args:
        mean_prob: (N,) per-generation mean per-token probability under the student.
    """
    return float(_check_per_sample(mean_prob, "mean_prob").mean())


def _per_prompt_mean(values: np.ndarray, inv: np.ndarray, mask: np.ndarray, n: int):
    """Mean of ``values[mask]`` per prompt and whether each prompt had any masked sample."""
    cnt = np.bincount(inv[mask], minlength=n)
    tot = np.bincount(inv[mask], weights=values[mask], minlength=n)
    has = cnt > 0
    return np.divide(tot, cnt, out=np.full(n, np.nan), where=has), has


def _prob_inputs(mean_prob, prompt_ids, correct=None):
    p = _check_per_sample(mean_prob, "mean_prob")
    ids = _check_ids(prompt_ids, len(p))
    _, inv = np.unique(ids, return_inverse=True)
    inv = inv.reshape(-1)
    if correct is None:
        return p, inv, None
    c = np.asarray(correct)
    if c.ndim != 1 or len(c) != len(p):
        raise ValueError(
            f"length mismatch: correct has shape {c.shape} but mean_prob has {len(p)} entries; "
            f"pass one bool per sample."
        )
    if c.dtype != bool:
        if not np.isin(c, [0, 1]).all():
            raise ValueError("correct must be boolean (or 0/1) per sample; got other values.")
        c = c.astype(bool)
    return p, inv, c


def best_avg_prob(mean_prob, prompt_ids) -> float:
    """Best average probability per prompt (appendix C.1 item 9): mean over prompts of the max.

    Args:
        mean_prob: (N,) per-generation mean per-token probability.
        prompt_ids: (N,) prompt of each generation.
    """
    p, inv, _ = _prob_inputs(mean_prob, prompt_ids)
    best = np.full(inv.max() + 1, -np.inf)
    np.maximum.at(best, inv, p)
    return float(best.mean())


def _correct_split(mean_prob, prompt_ids, correct):
    p, inv, c = _prob_inputs(mean_prob, prompt_ids, correct)
    n = inv.max() + 1
    return _per_prompt_mean(p, inv, c, n), _per_prompt_mean(p, inv, ~c, n)


def correct_avg_prob(mean_prob, prompt_ids, correct) -> float:
    """Correct average probability (appendix C.1 item 10).

    Per prompt, the mean of ``mean_prob`` over its correct generations; then the mean over prompts.
    Prompts without a correct generation are skipped; NaN if no prompt has one.

    Args:
        mean_prob: (N,) per-generation mean per-token probability.
        prompt_ids: (N,) prompt of each generation.
        correct: (N,) bool, whether each generation's answer is correct.
    """
    (pc, has_c), _ = _correct_split(mean_prob, prompt_ids, correct)
    return float(pc[has_c].mean()) if has_c.any() else float("nan")


def incorrect_avg_prob(mean_prob, prompt_ids, correct) -> float:
    """Incorrect average probability (appendix C.1 item 11); as :func:`correct_avg_prob` on the
    incorrect generations. Prompts without an incorrect generation are skipped; NaN if none has one.
    """
    _, (pi, has_i) = _correct_split(mean_prob, prompt_ids, correct)
    return float(pi[has_i].mean()) if has_i.any() else float("nan")


def diff_avg_prob(mean_prob, prompt_ids, correct) -> float:
    """Difference of average probabilities (appendix C.1 item 12).

    Per prompt, (mean prob of correct generations) − (mean prob of incorrect ones); then the mean over
    prompts. Only prompts with at least one correct *and* one incorrect generation count; NaN if none.
    """
    (pc, has_c), (pi, has_i) = _correct_split(mean_prob, prompt_ids, correct)
    both = has_c & has_i
    return float((pc[both] - pi[both]).mean()) if both.any() else float("nan")




# ---------------------------------------------------------------------------------------------
# the registry: every score with its label, orientation, inputs and computation
# ---------------------------------------------------------------------------------------------


class ScoreInputs:
    """One teacher's inputs to every score, with the shared work (folds, Gram, GRACE pair) done once.

    Each :class:`Score` reads what it needs from here; the first score that needs the prompt folds,
    the row-normalised Gram of eq. 1 or the (eq. 4, eq. 5) pair computes it and the rest reuse it,
    so :func:`all_scores` forms one Gram for all fifteen scores.

    Args:
        H: (N, d) processed gradients h = log|y|·Πg (§2.1).
        prompt_ids: (N,) prompt of each row.
        loss, mean_prob, correct, grad_norms: optional (N,) per-sample inputs of the App. C.1 baselines.
        n_folds, nu, seed: GRACE's C, ν and fold seed (eq. 4).
    """

    def __init__(self, H, prompt_ids, *, loss=None, mean_prob=None, correct=None, grad_norms=None,
                 n_folds: int = 10, nu: float = 1e-3, seed: int = 0):
        self.H = _check_H(H)
        self.nu = _check_nu(nu)
        self.ids = _check_ids(prompt_ids, len(self.H))
        if correct is not None and mean_prob is None:
            raise ValueError("correct was given without mean_prob; pass mean_prob too (C.1 items 10–12).")
        self.n_folds, self.seed = n_folds, seed
        self.loss = None if loss is None else _check_per_sample(loss, "loss", len(self.H))
        self.mean_prob = None if mean_prob is None else _check_per_sample(mean_prob, "mean_prob", len(self.H))
        self.correct, self.grad_norms = correct, grad_norms

    @classmethod
    def from_features(cls, features, *, n_folds: int = 10, nu: float = 1e-3, seed: int = 0) -> ScoreInputs:
        """From a :class:`grace.features.Features` (its ``H, prompt_ids, loss, mean_prob, correct, grad_norm``)."""
        return cls(features.H, features.prompt_ids, loss=features.loss, mean_prob=features.mean_prob,
                   correct=features.correct, grad_norms=features.grad_norm, n_folds=n_folds, nu=nu, seed=seed)

    @functools.cached_property
    def fold_idx(self) -> list[np.ndarray]:
        return _resolve_folds(self.ids, len(self.H), self.n_folds, self.seed, None)

    @functools.cached_property
    def prepared(self) -> _Prepared:
        return _Prepared.build(self.H, fold_idx=self.fold_idx)

    @functools.cached_property
    def grace_pair(self) -> tuple[float, float]:
        """(eq. 4, eq. 5 with global centring), computed together."""
        return _grace_both(self.prepared, self.fold_idx, self.nu)

    @functools.cached_property
    def logdet(self) -> float:
        return self.prepared.logdet(self.nu)


def _release_from_inputs(x: ScoreInputs) -> float:
    order, m = _release_order(x.ids)  # None: unequal generations per prompt -> NaN
    if order is None:
        return math.nan
    P = x.prepared
    Kr = None if P.Kn is None else P.Kn[np.ix_(order, order)]
    Pr = _Prepared(x.H[order], P.Hn[order], P.T, Kr)  # T is invariant to row order
    return _grace_release(Pr, m, 10, 0.1, 1e-3)


def _release_order(ids: np.ndarray) -> tuple[np.ndarray | None, int]:
    """Row order grouping prompts consecutively (stable) and m; (None, 0) if the release can't run.

    The release needs exactly m rows per prompt and at least 2 prompts (one to train on).
    """
    _, counts = np.unique(ids, return_counts=True)
    if (counts != counts[0]).any() or len(counts) < 2:
        return None, 0
    return np.argsort(ids, kind="stable"), int(counts[0])


def _with(field: str, fn: Callable[[ScoreInputs], float]) -> Callable[[ScoreInputs], float]:
    """``fn`` where the optional input ``field`` was given, else NaN."""
    return lambda x: math.nan if getattr(x, field) is None else fn(x)


@dataclass(frozen=True)
class Score:
    """One teacher score.

    Attributes:
        key: column name in results tables (``"grace"``).
        label: name in figures and tables.
        orientation: +1 where a higher score should mean a better teacher, −1 where lower should;
            fixed a priori from the paper, never tuned on results.
        ref: the paper's equation or section.
        needs: the :class:`grace.features.Features` fields it reads (``()`` for scores computed
            elsewhere: the teacher's own accuracy).
        compute: ``ScoreInputs -> float``; ``None`` for scores computed outside this module.
    """

    key: str
    label: str
    orientation: int
    ref: str
    needs: tuple[str, ...] = ("H", "prompt_ids")
    compute: Callable[[ScoreInputs], float] | None = None

    def __call__(self, inputs: ScoreInputs) -> float:
        if self.compute is None:
            raise ValueError(f"score {self.key!r} is not computed from gradient features ({self.ref})")
        return float(self.compute(inputs))


_P = ("prompt_ids", "mean_prob")
SCORES: dict[str, Score] = {s.key: s for s in (
    Score("grace", "GRACE", -1, "§2.2 eq. 4", compute=lambda x: x.grace_pair[0]),
    Score("grace_global", "GRACE (global mean, eq. 5)", -1, "§2.2 eq. 5", compute=lambda x: x.grace_pair[1]),
    Score("grace_release", "GRACE (release code)", -1, "the release's GRACE_computation.py",
          compute=_release_from_inputs),
    Score("g_vendi", "G-Vendi", +1, "§2.1 eq. 2", compute=lambda x: _entropy(x.prepared.gram_eigvals())),
    Score("g_var", "G-Var", -1, "§2.1 eq. 3", needs=("H",), compute=lambda x: _g_var(x.H)),
    Score("log_determinant", "Log-determinant", +1, "App. C.1 item 4", compute=lambda x: x.logdet),
    Score("badge", "BADGE (det × norm)", +1, "App. C.1 item 5", needs=("H", "prompt_ids", "grad_norm"),
          compute=lambda x: _badge(x.logdet, x.H, x.grad_norms)),
    Score("inner_product", "Grad. inner product", -1, "App. C.1 item 6",
          compute=lambda x: _inner_product(x.prepared.Hn, x.ids)),
    Score("inner_product_norm", "Grad. inner product (w/ norm)", -1, "App. C.1 item 7",
          compute=lambda x: _inner_product(x.H, x.ids)),
    Score("student_loss", "Student loss", -1, "App. C.1 item 1", needs=("loss",),
          compute=_with("loss", lambda x: student_loss(x.loss))),
    Score("avg_prob", "Avg. prob.", +1, "App. C.1 item 8", needs=("mean_prob",),
          compute=_with("mean_prob", lambda x: avg_prob(x.mean_prob))),
    Score("best_avg_prob", "Best avg. prob.", +1, "App. C.1 item 9", needs=_P,
          compute=_with("mean_prob", lambda x: best_avg_prob(x.mean_prob, x.ids))),
    Score("correct_avg_prob", "Correct avg. prob.", +1, "App. C.1 item 10", needs=(*_P, "correct"),
          compute=_with("correct", lambda x: correct_avg_prob(x.mean_prob, x.ids, x.correct))),
    Score("incorrect_avg_prob", "Incorrect avg. prob.", +1, "App. C.1 item 11", needs=(*_P, "correct"),
          compute=_with("correct", lambda x: incorrect_avg_prob(x.mean_prob, x.ids, x.correct))),
    Score("diff_avg_prob", "Diff. avg. prob.", +1, "App. C.1 item 12", needs=(*_P, "correct"),
          compute=_with("correct", lambda x: diff_avg_prob(x.mean_prob, x.ids, x.correct))),
    Score("teacher_avg_at_k", "Teacher avg@k", +1, "§3.1: the teacher's own accuracy (grace.evaluation)",
          needs=()),
    Score("teacher_accuracy", "Teacher accuracy (its generations)", +1,
          "accuracy of the distillation generations themselves (grace.study)", needs=()),
)}
"""Every score the book reports, in the column order of the results table."""

SCORE_ORIENTATION: dict[str, int] = {k: s.orientation for k, s in SCORES.items()}
"""+1 where a higher score should mean a better teacher, −1 where lower should (from :data:`SCORES`)."""
SCORE_LABELS: dict[str, str] = {k: s.label for k, s in SCORES.items()}
"""Pretty names for plots and tables (from :data:`SCORES`)."""
ALL_SCORE_KEYS: tuple[str, ...] = tuple(k for k, s in SCORES.items() if s.compute is not None)
"""The keys :func:`all_scores` always returns (NaN where a score cannot be computed)."""
FEATURE_SCORES: tuple[str, ...] = tuple(k for k, s in SCORES.items() if s.compute is not None
                                        and set(s.needs) <= {"H", "prompt_ids"})
"""Scores computable from the feature matrix and prompt ids alone (rescored by :mod:`grace.ablations`)."""


def all_scores(
    H,
    prompt_ids,
    *,
    loss=None,
    mean_prob=None,
    correct=None,
    grad_norms=None,
    n_folds: int = 10,
    nu: float = 1e-3,
    seed: int = 0,
    keys: Sequence[str] = ALL_SCORE_KEYS,
) -> dict[str, float]:
    """Every score of §2 and appendix C.1 for one teacher, sharing one Gram across them.

    Iterates :data:`SCORES` (or ``keys`` of it). A score whose inputs were not given is NaN
    (``student_loss`` needs ``loss``; the ``*_avg_prob`` scores need ``mean_prob``, and the
    correct/incorrect/diff ones also ``correct``). ``grace_release`` reorders rows by prompt (stable)
    to get the release's consecutive grouping and is NaN when prompts have unequal numbers of
    generations (the release assumes exactly m rows per prompt) or there are < 2 prompts. It uses the
    release's own defaults (10 splits, test fraction 0.1, smooth 1e-3) whatever ``nu`` is.

    Args:
        H: (N, d) processed gradients.
        prompt_ids: (N,) prompt of each row.
        loss: optional (N,) per-sample student loss.
        mean_prob: optional (N,) per-sample mean per-token probability.
        correct: optional (N,) bool correctness (needs ``mean_prob``).
        grad_norms: optional (N,) gradient norms for BADGE (default: row norms of H).
        n_folds, nu, seed: as in :func:`grace`.
        keys: which scores (default: every score computed from features).

    Returns:
        dict score name -> float, in the order of ``keys``.
    """
    x = ScoreInputs(H, prompt_ids, loss=loss, mean_prob=mean_prob, correct=correct, grad_norms=grad_norms,
                    n_folds=n_folds, nu=nu, seed=seed)
    return score_inputs(x, keys)


def score_inputs(inputs: ScoreInputs, keys: Sequence[str] = ALL_SCORE_KEYS) -> dict[str, float]:
    """``{key: SCORES[key](inputs)}`` for ``keys``, with a clear error for an unknown key."""
    unknown = [k for k in keys if k not in SCORES or SCORES[k].compute is None]
    if unknown:
        raise ValueError(f"unknown or non-feature score(s) {unknown}; choose from {list(ALL_SCORE_KEYS)}")
    return {k: SCORES[k](inputs) for k in keys}


def score_features(features, *, n_folds: int = 10, nu: float = 1e-3, seed: int = 0,
                   keys: Sequence[str] = ALL_SCORE_KEYS) -> dict[str, float]:
    """Every score of one :class:`grace.features.Features` (eqs. 1–6, App. C.1), as the study and
    ``grace rank`` compute them."""
    return score_inputs(ScoreInputs.from_features(features, n_folds=n_folds, nu=nu, seed=seed), keys)
