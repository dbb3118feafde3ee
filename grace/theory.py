"""Numerics for the leave-one-prompt-out CMI argument (paper §2.2, Appendix A, Appendix B).

The appendix studies one noisy, preconditioned gradient step (eq. 7) taken on the training set with
one prompt ``x`` (all of its responses) removed::

    Θ_{-x} = Θ_S + δ_{-x} + ε,     δ_{-x} = -η M_{-x} μ_{-x},     ε ~ N(0, σ² I)

where ``μ_{-x}`` is the mean gradient of ``D \\ x`` and ``M_{-x} = M(D \\ x)`` a preconditioner. ``U``
picks the dropped prompt uniformly, so ``Θ`` given ``D`` is a uniform mixture of ``n`` isotropic
Gaussians with means ``δ_{-x}``, and ``I(Θ; U | D)`` is that mixture's mutual information with its
label. This module computes, on synthetic gradients (pure numpy):

* the exact CMI by Monte Carlo (:func:`cmi_monte_carlo`), or by quadrature in 1-D
  (:func:`cmi_quadrature_1d`);
* the Jensen step of the proof of Lemma B.1 (:func:`jensen_bound`), which is a genuine inequality::

      I(Θ;U|D) ≤ (1/(2σ²)) Ê_u Ê_v ‖δ_u − δ_v‖² = (1/σ²) Ê_u ‖δ_u − δ̄‖²;

* a maximum-entropy bound at least twice as tight (:func:`gaussian_bound`, not in the paper);

* the two terms of Lemma B.1 and the three terms of the proof (:func:`lemma_bound`).

Notation clash with eq. 4. In §2.2, ``M(D) = Σ̃(D) + (ν/d) I`` and GRACE uses ``M⁻¹`` inside a
quadratic form. In the appendix, ``M`` is the *preconditioner*, chosen as ``Σ̃^{-1/2}``. So, writing
``A_{-x} = Σ̃(D \\ x) + (ν/D) I`` (the eq. 4 matrix), the preconditioner here is ``A_{-x}^{-1/2}`` and::

    ‖M_{-x} h‖² = hᵀ A_{-x}^{-1} h            (the eq. 4 / eq. 5 quadratic form)

The C = n correspondence (checked in ``tests/test_theory.py`` and chapter 4). With ``g_x`` the mean
gradient of prompt ``x`` (its ``m`` responses), ``μ`` the mean over all rows and an equal number of
responses per prompt, ``g_x − μ_{-x} = n/(n−1) (g_x − μ)``, hence the Lemma B.1 gradient term is::

    (3η²/(σ²n²)) Ê_x ‖M_{-x}(g_x − μ_{-x})‖² = (3η²/(σ²(n−1)²)) · GRACE_between
    GRACE_between = (1/n) Σ_x (g_x − μ)ᵀ A_{-x}^{-1} (g_x − μ)

and, for eq. 4 with one prompt per fold (C = n, fold ``D_i`` = prompt ``i``, ``M(D_{-i}) = A_{-i}``)::

    GRACE_global(C=n) − GRACE_fold(C=n) = GRACE_between

where "global" centres every row at ``μ(D)`` (eq. 5's centring) and "fold" at the fold mean ``g_i``
(eq. 4's ``G_μ(D_i)``). The fold-centred score keeps only the within-prompt spread, which is zero
for ``m = 1``; so for one response per prompt the lemma's gradient term is exactly
``3η²/(σ²(n−1)²) · GRACE_global(C=n)``, and fold centring (eq. 4 as printed) gives 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from grace.analysis import rel_diff
from grace.scores import smoothed_gram

PRECONDITIONERS = ("identity", "grace")


# ----------------------------------------------------------------------------- synthetic data


def synthetic_gradients(
    n: int,
    m: int = 1,
    D: int = 16,
    anisotropy: float = 1.0,
    seed: int = 0,
    mean_scale: float = 1.0,
    response_noise: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic per-response gradients with a controllable spectrum (stand-in for ``h``, §2.1).

    Each prompt ``x`` gets a centre ``c_x = μ₀ + Q diag(√λ) z_x``; each of its ``m`` responses is
    ``c_x + response_noise · Q diag(√λ) z_{x,j}``, with ``λ_k ∝ k^(-anisotropy)`` (mean 1), ``Q`` a
    random rotation and ``μ₀`` a shared mean direction of norm ``mean_scale · √D``.

    Args:
        n: number of prompts (≥ 2).
        m: responses per prompt (≥ 1).
        D: gradient dimension (≥ 1).
        anisotropy: spectral decay exponent; 0 gives an isotropic covariance.
        seed: RNG seed; equal seeds give identical arrays.
        mean_scale: norm of the shared mean relative to √D (0 = centred gradients).
        response_noise: within-prompt spread relative to between-prompt spread.

    Returns:
        ``G`` of shape (n*m, D) and ``prompt_ids`` of shape (n*m,) with values ``0..n-1``.
    """
    if n < 2:
        raise ValueError(f"n={n}: need at least 2 prompts for leave-one-prompt-out; pass n >= 2")
    if m < 1 or D < 1:
        raise ValueError(f"m={m}, D={D}: both must be >= 1")
    if anisotropy < 0:
        raise ValueError(f"anisotropy={anisotropy}: must be >= 0 (0 = isotropic)")
    rng = np.random.default_rng(seed)
    lam = np.arange(1, D + 1, dtype=float) ** (-float(anisotropy))
    lam *= D / lam.sum()  # (D,) mean eigenvalue 1
    Q, _ = np.linalg.qr(rng.standard_normal((D, D)))  # (D, D) random rotation
    scale = Q * np.sqrt(lam)  # (D, D): columns Q_k √λ_k
    mu0 = rng.standard_normal(D)
    mu0 *= mean_scale * np.sqrt(D) / np.linalg.norm(mu0)  # (D,)
    centres = mu0 + rng.standard_normal((n, D)) @ scale.T  # (n, D)
    noise = response_noise * rng.standard_normal((n, m, D)) @ scale.T  # (n, m, D)
    G = (centres[:, None, :] + noise).reshape(n * m, D)  # (n*m, D)
    prompt_ids = np.repeat(np.arange(n), m)  # (n*m,)
    return G, prompt_ids


# ----------------------------------------------------------------------------- building blocks


def _validate(G: np.ndarray, prompt_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    G = np.asarray(G, dtype=float)
    prompt_ids = np.asarray(prompt_ids)
    if G.ndim != 2:
        raise ValueError(f"G has shape {G.shape}: expected (rows, D)")
    if prompt_ids.shape != (G.shape[0],):
        raise ValueError(f"prompt_ids has shape {prompt_ids.shape}: expected ({G.shape[0]},), one id per row of G")
    prompts, inverse = np.unique(prompt_ids, return_inverse=True)
    if len(prompts) < 2:
        raise ValueError(f"{len(prompts)} distinct prompt id(s): need at least 2 for leave-one-prompt-out")
    return G, prompts, inverse




def _inv_sqrt(A: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh(A)
    return (V / np.sqrt(w)) @ V.T


def _preconditioner(G_rows: np.ndarray, preconditioner: str, nu: float) -> np.ndarray:
    if preconditioner == "identity":
        return np.eye(G_rows.shape[1])
    if preconditioner == "grace":
        return _inv_sqrt(smoothed_gram(G_rows, nu))
    raise ValueError(f"preconditioner={preconditioner!r}: use one of {PRECONDITIONERS}")


def loo_parts(G: np.ndarray, prompt_ids: np.ndarray, preconditioner: str = "grace", nu: float = 1e-3) -> dict:
    """Leave-one-prompt-out ingredients of eq. 7 (Appendix A notation).

    Returns:
        dict with ``g`` (n, D) per-prompt mean gradients, ``mu`` (D,) mean over all rows,
        ``mu_loo`` (n, D) row-means of ``D \\ x`` and ``M_loo`` (n, D, D) preconditioners
        ``M(D \\ x)`` (identity, or ``(Σ̃(D \\ x) + ν/D I)^{-1/2}``), in sorted prompt-id order.
    """
    G, prompts, inverse = _validate(G, prompt_ids)
    n = len(prompts)
    g = np.stack([G[inverse == i].mean(0) for i in range(n)])  # (n, D)
    mu_loo = np.stack([G[inverse != i].mean(0) for i in range(n)])  # (n, D)
    M_loo = np.stack([_preconditioner(G[inverse != i], preconditioner, nu) for i in range(n)])  # (n, D, D)
    return {"g": g, "mu": G.mean(0), "mu_loo": mu_loo, "M_loo": M_loo, "counts": np.bincount(inverse)}


def loo_means(
    G: np.ndarray, prompt_ids: np.ndarray, preconditioner: str = "grace", nu: float = 1e-3, eta: float = 1.0
) -> np.ndarray:
    """Mean updates ``δ_{-x} = −η M(D \\ x) μ(D \\ x)`` of eq. 7, one per dropped prompt.

    The constant ``Θ_S`` is dropped: the CMI is invariant to a common shift.

    Args:
        G: (rows, D) gradients, prompt_ids: (rows,) prompt of each row.
        preconditioner: ``"identity"`` (gradient descent, G-Var) or ``"grace"`` (``Σ̃^{-1/2}``).
        nu: smoothing of ``Σ̃`` (only for ``"grace"``).
        eta: step size η.

    Returns:
        (n, D) array of ``δ_{-x}`` in sorted prompt-id order.
    """
    p = loo_parts(G, prompt_ids, preconditioner, nu)
    return -eta * np.einsum("nij,nj->ni", p["M_loo"], p["mu_loo"])


# ----------------------------------------------------------------------------- CMI of the mixture


def cmi_monte_carlo(deltas: np.ndarray, sigma: float, n_samples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Monte Carlo ``I(Θ; U | D)`` for ``Θ | U=u ~ N(δ_u, σ²I)``, ``U`` uniform (proof of Lemma B.1).

    ``I = Ê_u E_{X~N(δ_u,σ²I)} [log N(X; δ_u) − log (1/n) Σ_v N(X; δ_v)]``. With ``X = δ_u + σz`` the
    log-ratio is ``log n − logsumexp_v(−(2σ z·(δ_u−δ_v) + ‖δ_u−δ_v‖²)/(2σ²))``, computed stably.
    Every ``u`` gets ``n_samples`` draws (stratified), so the standard error is
    ``sqrt(Σ_u Var_u / n_samples) / n``.

    Args:
        deltas: (n, D) component means.
        sigma: noise standard deviation σ > 0.
        n_samples: Monte Carlo draws per component.
        seed: RNG seed.

    Returns:
        ``(estimate, stderr)`` in nats; the estimate lies in ``[−O(stderr), log n]``.
    """
    deltas = np.asarray(deltas, dtype=float)
    if deltas.ndim != 2 or deltas.shape[0] < 2:
        raise ValueError(f"deltas has shape {deltas.shape}: expected (n >= 2, D)")
    if sigma <= 0:
        raise ValueError(f"sigma={sigma}: the noise scale must be > 0")
    if n_samples < 2:
        raise ValueError(f"n_samples={n_samples}: need at least 2 draws per component")
    n, D = deltas.shape
    rng = np.random.default_rng(seed)
    sq = ((deltas[:, None, :] - deltas[None, :, :]) ** 2).sum(-1)  # (n, n) ‖δ_u − δ_v‖²
    means, variances = np.empty(n), np.empty(n)
    for u in range(n):
        z = rng.standard_normal((n_samples, D))  # (S, D)
        proj = z @ (deltas[u] - deltas).T  # (S, n) z·(δ_u − δ_v)
        a = -(2 * sigma * proj + sq[u]) / (2 * sigma**2)  # (S, n) log N(X;δ_v) − log N(X;δ_u)
        amax = a.max(1, keepdims=True)
        lse = amax[:, 0] + np.log(np.exp(a - amax).sum(1))  # (S,)
        vals = np.log(n) - lse
        means[u], variances[u] = vals.mean(), vals.var(ddof=1)
    return float(means.mean()), float(np.sqrt(variances.sum() / n_samples) / n)


def cmi_quadrature_1d(deltas: np.ndarray, sigma: float) -> float:
    """Reference ``I(Θ;U|D)`` for a 1-D uniform Gaussian mixture by numerical integration.

    ``I = Ê_u ∫ N(x; δ_u, σ²) log[N(x; δ_u, σ²) / p(x)] dx`` with ``p`` the mixture density.

    Args:
        deltas: (n,) or (n, 1) component means.
        sigma: noise standard deviation σ > 0.

    Returns:
        The mutual information in nats.
    """
    from scipy import integrate, special

    d = np.asarray(deltas, dtype=float).reshape(-1)
    if sigma <= 0:
        raise ValueError(f"sigma={sigma}: the noise scale must be > 0")
    n = len(d)

    def integrand(x: float, u: int) -> float:
        logp = -((x - d) ** 2) / (2 * sigma**2)  # (n,) unnormalised log densities
        log_ratio = logp[u] - (special.logsumexp(logp) - np.log(n))
        return np.exp(logp[u]) / (np.sqrt(2 * np.pi) * sigma) * log_ratio

    total = 0.0
    for u in range(n):
        lo, hi = d[u] - 12 * sigma, d[u] + 12 * sigma
        total += integrate.quad(integrand, lo, hi, args=(u,), limit=200, epsabs=1e-12, epsrel=1e-10)[0]
    return total / n


def jensen_bound(deltas: np.ndarray, sigma: float) -> float:
    """The Jensen step of the proof of Lemma B.1: ``(1/σ²) Ê_u ‖δ_u − δ̄‖²``.

    From ``log Ê_v N(X;δ_v) ≥ Ê_v log N(X;δ_v)``: ``I ≤ Ê_u Ê_v KL(N(δ_u)‖N(δ_v)) =
    (1/(2σ²)) Ê_u Ê_v ‖δ_u − δ_v‖² = (1/σ²) Ê_u ‖δ_u − δ̄‖²``. (The proof's normaliser ``Z``
    cancels; its printed value does not matter.)
    """
    deltas = np.asarray(deltas, dtype=float)
    if sigma <= 0:
        raise ValueError(f"sigma={sigma}: the noise scale must be > 0")
    return float(((deltas - deltas.mean(0)) ** 2).sum(1).mean() / sigma**2)


def gaussian_bound(deltas: np.ndarray, sigma: float) -> float:
    """A bound at least 2× tighter than :func:`jensen_bound`: ``½ Σ_k log(1 + λ_k/σ²)``.

    ``λ_k`` are the eigenvalues of ``Cov(δ_U) = Ê_u (δ_u − δ̄)(δ_u − δ̄)ᵀ``. Since
    ``I(Θ;U|D) = h(Θ) − h(ε)`` and the Gaussian maximises entropy at a given covariance,
    ``I ≤ ½ log det(I + Cov(δ_U)/σ²) ≤ Tr Cov(δ_U)/(2σ²) = jensen_bound / 2``.
    (Not in the paper; it shows the proof's Jensen step always gives away at least a factor 2.)
    """
    deltas = np.asarray(deltas, dtype=float)
    if sigma <= 0:
        raise ValueError(f"sigma={sigma}: the noise scale must be > 0")
    c = deltas - deltas.mean(0)
    lam = np.clip(np.linalg.eigvalsh(c.T @ c / len(c)), 0, None)
    return float(0.5 * np.log1p(lam / sigma**2).sum())


# ----------------------------------------------------------------------------- Lemma B.1


def loo_grace(G: np.ndarray, prompt_ids: np.ndarray, nu: float = 1e-3) -> float:
    """Between-prompt GRACE with ``C = n``: ``(1/n) Σ_x (g_x − μ)ᵀ (Σ̃(D \\ x) + ν/D I)^{-1} (g_x − μ)``.

    This is eq. 4 with one prompt per fold, ``M(D_{-i})`` and the per-prompt mean ``g_x`` in place
    of the fold's rows; it equals ``GRACE_global(C=n) − GRACE_fold(C=n)`` (module docstring).
    """
    p = loo_parts(G, prompt_ids, "grace", nu)
    r = p["g"] - p["mu"]  # (n, D)
    Mr = np.einsum("nij,nj->ni", p["M_loo"], r)  # A^{-1/2} r
    return float((Mr**2).sum(1).mean())


def lemma_bound(
    G: np.ndarray,
    prompt_ids: np.ndarray,
    preconditioner: str = "grace",
    eta: float = 1.0,
    sigma: float = 1.0,
    nu: float = 1e-3,
) -> dict:
    """The terms of Lemma B.1 (and of its proof) for the eq. 7 update on ``(G, prompt_ids)``.

    Lemma B.1 as stated (``≲``, not a proven inequality):

    * ``gradient_term = 3η²/(σ²n²) Ê_x ‖M_{-x} ḡ_x‖²``, ``ḡ_x = g_x − μ_{-x}``;
    * ``sensitivity_term = 3η²/σ² Ê_x ‖(M_{-x} − Ê M) μ_{-x}‖²``;
    * Lemma A.1's informal version: ``lemma_a1 = 2η²/(σ²n²) Ê_x ‖M_{-x} ḡ_x‖²``.

    The proof expands ``M_x μ_x − Ê_v M_v μ_v = a_x − b_x − c_x`` exactly, with
    ``a_x = n/(n−1) (M_x − Ê M) μ``, ``b_x = 1/(n−1) M_x (g_x − μ)``,
    ``c_x = 1/(n−1) Ê_v (M_x − M_v) g_v``, and bounds ``‖a−b−c‖² ≤ 3(‖a‖²+‖b‖²+‖c‖²)``:

    * ``proof_a/b/c = 3η²/σ² Ê‖a‖², Ê‖b‖², Ê‖c‖²``; ``proof_b == gradient_term`` exactly;
      the lemma drops ``proof_c`` (``O(1/n⁴)``) and replaces ``n/(n−1) μ`` by ``μ_{-x}`` in ``a``.
    * ``three_term = proof_a + proof_b + proof_c`` is a genuine bound: ``jensen ≤ three_term``.
    * ``jensen = (1/σ²) Ê‖δ_x − δ̄‖² = η²/σ² Ê‖a−b−c‖²`` (:func:`jensen_bound`).

    Requires the same number of responses for every prompt (the lemma's algebra uses
    ``μ_{-x} = (nμ − g_x)/(n−1)``).

    Returns:
        dict of floats with the keys above plus ``lemma_total = gradient_term + sensitivity_term``,
        ``n``, ``m`` and ``D``.
    """
    if sigma <= 0 or eta <= 0:
        raise ValueError(f"sigma={sigma}, eta={eta}: both must be > 0")
    p = loo_parts(G, prompt_ids, preconditioner, nu)
    counts = p["counts"]
    if counts.min() != counts.max():
        raise ValueError(
            f"responses per prompt range from {counts.min()} to {counts.max()}: Lemma B.1's algebra needs "
            "the same number for every prompt; subsample to equal counts"
        )
    g, mu, mu_loo, M = p["g"], p["mu"], p["mu_loo"], p["M_loo"]
    n, D = g.shape
    c2 = eta**2 / sigma**2
    sqn = lambda v: float((v**2).sum(-1).mean())  # noqa: E731  Ê_x ‖v_x‖²
    mv = lambda A, v: np.einsum("nij,nj->ni", A, v)  # noqa: E731  batched A_x v_x

    M_bar = M.mean(0)  # (D, D) Ê_x M_{-x}
    gbar = g - mu_loo  # (n, D) ḡ_x = g_x − μ_{-x}
    gradient_term = 3 * c2 / n**2 * sqn(mv(M, gbar))
    sensitivity_term = 3 * c2 * sqn(mv(M - M_bar, mu_loo))

    a = n / (n - 1) * mv(M - M_bar, np.broadcast_to(mu, (n, D)))
    b = mv(M, g - mu) / (n - 1)
    Mg = np.einsum("vij,vj->vi", M, g)  # (n, D) M_v g_v
    c = (mv(M, np.broadcast_to(g.mean(0), (n, D))) - Mg.mean(0)) / (n - 1)  # Ê_v (M_x − M_v) g_v

    deltas = -eta * mv(M, mu_loo)
    return {
        "gradient_term": gradient_term,
        "sensitivity_term": sensitivity_term,
        "lemma_total": gradient_term + sensitivity_term,
        "lemma_a1": 2 * c2 / n**2 * sqn(mv(M, gbar)),
        "proof_a": 3 * c2 * sqn(a),
        "proof_b": 3 * c2 * sqn(b),
        "proof_c": 3 * c2 * sqn(c),
        "three_term": float(3 * c2 * (sqn(a) + sqn(b) + sqn(c))),
        "jensen": jensen_bound(deltas, sigma),
        "jensen_from_expansion": float(c2 * sqn(a - b - c)),
        "n": n,
        "m": int(counts[0]),
        "D": D,
    }


def lemma_check(
    n: int,
    D: int,
    sigma: float,
    eta: float = 1.0,
    preconditioner: str = "grace",
    seed: int = 0,
    n_mc: int = 2000,
    m: int = 1,
    anisotropy: float = 1.0,
    mean_scale: float = 1.0,
    nu: float = 1e-3,
) -> dict:
    """Monte Carlo CMI vs the bounds of Lemma B.1 on one synthetic draw (Appendix A/B).

    Args:
        n, D, m, anisotropy, mean_scale: passed to :func:`synthetic_gradients` with ``seed``.
        sigma, eta: noise scale and step size of eq. 7.
        preconditioner: ``"identity"`` (G-Var) or ``"grace"`` (``Σ̃^{-1/2}``).
        seed: seeds both the gradients and the Monte Carlo draws.
        n_mc: Monte Carlo draws per component.
        nu: smoothing of ``Σ̃``.

    Returns:
        :func:`lemma_bound`'s dict plus ``cmi``, ``cmi_stderr``, ``gaussian_bound``
        (:func:`gaussian_bound`), ``slack_jensen = jensen / cmi``,
        ``slack_lemma = lemma_total / cmi``, ``slack_three_term = three_term / cmi``,
        ``sensitivity_ratio = gradient_term / sensitivity_term`` (``inf`` when the preconditioner is
        constant), ``log_n`` (the CMI's ceiling) and the inputs.
    """
    G, pid = synthetic_gradients(n, m, D, anisotropy, seed, mean_scale=mean_scale)
    out = lemma_bound(G, pid, preconditioner, eta, sigma, nu)
    deltas = loo_means(G, pid, preconditioner, nu, eta)
    cmi, se = cmi_monte_carlo(deltas, sigma, n_mc, seed)
    ratio = lambda x, y: float(x / y) if y > 0 else float("inf")  # noqa: E731
    out.update(
        cmi=cmi,
        cmi_stderr=se,
        gaussian_bound=gaussian_bound(deltas, sigma),
        log_n=float(np.log(n)),
        slack_jensen=ratio(out["jensen"], cmi),
        slack_lemma=ratio(out["lemma_total"], cmi),
        slack_three_term=ratio(out["three_term"], cmi),
        sensitivity_ratio=ratio(out["gradient_term"], out["sensitivity_term"]),
        sigma=float(sigma),
        eta=float(eta),
        preconditioner=preconditioner,
        seed=seed,
        anisotropy=float(anisotropy),
        mean_scale=float(mean_scale),
        nu=float(nu),
    )
    return out


# ----------------------------------------------------------------------------- grids for chapter 4


def delta_spread(deltas: np.ndarray) -> float:
    """RMS distance of the mixture means from their centroid, ``sqrt(Ê‖δ_u − δ̄‖²)``.

    Chapter 4 sets ``σ`` relative to this, so that grids mean the same signal-to-noise ratio for
    both preconditioners (``Σ̃^{-1/2}`` rescales the δ's by ~√D).
    """
    deltas = np.asarray(deltas, dtype=float)
    return float(np.sqrt(((deltas - deltas.mean(0)) ** 2).sum(1).mean()))


def lemma_grid(
    ns: list[int],
    sigma_rels: list[float],
    preconditioners: tuple[str, ...] = PRECONDITIONERS,
    D: int = 8,
    m: int = 1,
    eta: float = 1.0,
    seed: int = 0,
    n_mc: int = 1000,
    anisotropy: float = 1.0,
    mean_scale: float = 1.0,
    nu: float = 1e-3,
) -> list[dict]:
    """:func:`lemma_check` over a grid of ``n × σ × preconditioner`` (Lemma B.1, Appendix B).

    ``σ = sigma_rel · delta_spread(δ)`` for that draw and preconditioner, so ``sigma_rel`` is an
    inverse signal-to-noise ratio (small: the dropped prompt is identifiable, CMI → log n).

    Returns:
        One :func:`lemma_check` dict per grid point, with ``sigma_rel`` added.
    """
    rows = []
    for pc in preconditioners:
        for n in ns:
            G, pid = synthetic_gradients(n, m, D, anisotropy, seed, mean_scale=mean_scale)
            spread = delta_spread(loo_means(G, pid, pc, nu, eta))
            for rel in sigma_rels:
                r = lemma_check(n, D, rel * spread, eta, pc, seed, n_mc, m, anisotropy, mean_scale, nu)
                rows.append({**r, "sigma_rel": float(rel)})
    return rows


def sensitivity_sweep(
    ns: list[int],
    mean_scales: list[float],
    anisotropies: list[float],
    seeds: list[int],
    D: int = 8,
    m: int = 1,
    nu: float = 1e-3,
) -> list[dict]:
    """Gradient term / preconditioner-sensitivity term of Lemma B.1 for ``M = Σ̃^{-1/2}``.

    Appendix B reports the sensitivity term to be "5–10 times smaller" than the gradient term in
    the paper's experiments. Both terms scale as ``η²/σ²``, so the ratio depends only on the
    gradients; this sweeps the synthetic generator's knobs.

    Returns:
        One dict per (n, mean_scale, anisotropy, seed) with ``ratio``, both terms (``η = σ = 1``),
        ``proof_a`` and ``proof_c``.
    """
    rows = []
    for n in ns:
        for ms in mean_scales:
            for a in anisotropies:
                for s in seeds:
                    G, pid = synthetic_gradients(n, m, D, a, s, mean_scale=ms)
                    b = lemma_bound(G, pid, "grace", 1.0, 1.0, nu)
                    rows.append(
                        {
                            "n": n,
                            "mean_scale": float(ms),
                            "anisotropy": float(a),
                            "seed": s,
                            "gradient_term": b["gradient_term"],
                            "sensitivity_term": b["sensitivity_term"],
                            "proof_a": b["proof_a"],
                            "proof_c": b["proof_c"],
                            "ratio": b["gradient_term"] / b["sensitivity_term"],
                        }
                    )
    return rows


# ----------------------------------------------------------------------------- chapter 4's checks


def _whitening(Out: np.ndarray, nu: float) -> np.ndarray:
    """``M(D_-i) = Σ̃(D_-i) + (ν/d) I`` from the rows outside a fold (eq. 4)."""
    On = Out / np.linalg.norm(Out, axis=1, keepdims=True)
    d = Out.shape[1]
    return On.T @ On / len(Out) + nu / d * np.eye(d)


def grace_inline(H: np.ndarray, folds: np.ndarray, nu: float, center: str) -> float:
    """Eq. 4 (``center='fold'``) or eq. 5 with M(D_-i) (``center='global'``), restated with an explicit
    inverse for teaching (chapter 4.2; the package's Cholesky/Woodbury version is ``grace.scores.grace``)."""
    if center not in ("fold", "global"):
        raise ValueError(f"center={center!r}: use 'fold' (eq. 4) or 'global' (eq. 5)")
    N, d = H.shape
    total = 0.0
    for f in np.unique(folds):
        In, Out = H[folds == f], H[folds != f]
        M_inv = np.linalg.inv(_whitening(Out, nu))
        C = In - (In.mean(0) if center == "fold" else H.mean(0))
        total += np.trace(C @ M_inv @ C.T)
    return total / N


def between_fold_term(H: np.ndarray, folds: np.ndarray, nu: float) -> float:
    """``Σ_i r_i (μ_i − μ)ᵀ M(D_-i)⁻¹ (μ_i − μ) / N``: what global centring (eq. 5) adds to fold
    centring (eq. 4), always ≥ 0 (chapter 4.2)."""
    N, mu = len(H), H.mean(0)
    between = 0.0
    for f in np.unique(folds):
        dm = H[folds == f].mean(0) - mu
        between += (folds == f).sum() * dm @ np.linalg.solve(_whitening(H[folds != f], nu), dm) / N
    return between


def synthetic_teacher_table(n_teachers: int, n_prompts: int, m: int, d: int, n_folds: int, nu: float,
                            seed: int) -> pd.DataFrame:
    """Synthetic "teachers" (random spectrum, mean strength and noise) scored with every reading of
    GRACE (eqs. 4–6, the released code) and G-Var/G-Vendi, to compare their rankings (chapter 4.2)."""
    from grace import scores

    rng = np.random.default_rng(seed + 1)
    rows = []
    for t in range(n_teachers):
        knobs = dict(anisotropy=float(rng.uniform(0, 2)), mean_scale=float(rng.uniform(0.2, 3)),
                     response_noise=float(rng.uniform(0.2, 1.5)))
        H, pid = synthetic_gradients(n_prompts, m, d, seed=seed + 100 + t, **knobs)
        f = scores.prompt_folds(pid, n_folds, seed)
        rows.append({"teacher": t, **knobs,
                     "eq. 4": scores.grace(H, pid, nu=nu, folds=f),
                     "eq. 5 (global)": scores.grace(H, pid, nu=nu, folds=f, center="global"),
                     "eq. 5 literal": scores.grace_eq5_own_fold(H, pid, nu=nu, folds=f),
                     "eq. 6 literal": scores.grace_eq6_printed(H, pid, nu=nu, folds=f),
                     "released code": scores.grace_release(H, m, smooth=nu),
                     "G-Var": scores.g_var(H), "G-Vendi": scores.g_vendi(H)})
    return pd.DataFrame(rows).set_index("teacher")


def lemma_grid_checks(grid: pd.DataFrame) -> list[tuple[str, bool, str]]:
    """The genuine inequalities of App. A–B at every point of ``grace.lemma_grid``, as
    ``(check, holds, detail)``: CMI ≤ Jensen ≤ three-term bound, CMI ≤ log n, CMI ≤ max-entropy bound ≤
    Jensen/2 (chapter 4.3; Monte Carlo error allowed at 4 standard errors)."""
    out = []
    for r in grid.itertuples():
        tag = f"{r.preconditioner}, n={r.n}, σ/spread={r.sigma_rel}"
        out += [
            (f"CMI ≤ Jensen bound ({tag})", r.cmi <= r.jensen + 4 * r.cmi_stderr,
             f"{r.cmi:.4f} ± {r.cmi_stderr:.4f} vs {r.jensen:.4f}"),
            (f"CMI ≤ log n ({tag})", r.cmi <= r.log_n + 4 * r.cmi_stderr, f"{r.cmi:.4f} vs {r.log_n:.4f}"),
            (f"Jensen = exact expansion ({tag})", rel_diff(r.jensen, r.jensen_from_expansion) < 1e-8,
             f"{r.jensen:.6g}"),
            (f"Jensen ≤ three-term bound ({tag})", r.jensen <= r.three_term * (1 + 1e-12),
             f"{r.jensen:.4g} vs {r.three_term:.4g}"),
            (f"CMI ≤ max-entropy bound ≤ Jensen/2 ({tag})", r.cmi <= r.gaussian_bound + 4 * r.cmi_stderr
             and r.gaussian_bound <= r.jensen / 2 * (1 + 1e-12),
             f"{r.cmi:.4f} ≤ {r.gaussian_bound:.4f} ≤ {r.jensen / 2:.4f}"),
        ]
    return out

