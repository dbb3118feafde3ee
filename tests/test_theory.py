"""Tests for grace.theory: the leave-one-prompt-out CMI numerics of Appendix A/B."""

import numpy as np
import pytest
import scipy.linalg

from grace import scores as S
from grace import theory as T


def _spread(deltas):
    return float(np.sqrt(((deltas - deltas.mean(0)) ** 2).sum(1).mean()))


# ----------------------------------------------------------------------------- generator


def test_synthetic_gradients_shapes_and_determinism():
    G, pid = T.synthetic_gradients(n=7, m=3, D=5, anisotropy=2.0, seed=4)
    assert G.shape == (21, 5) and pid.shape == (21,)
    assert np.array_equal(pid, np.repeat(np.arange(7), 3))
    G2, _ = T.synthetic_gradients(n=7, m=3, D=5, anisotropy=2.0, seed=4)
    G3, _ = T.synthetic_gradients(n=7, m=3, D=5, anisotropy=2.0, seed=5)
    assert np.array_equal(G, G2)
    assert not np.allclose(G, G3)


def test_synthetic_gradients_anisotropy_controls_spectrum():
    # many prompts, no mean: the sample covariance should follow λ_k ∝ k^-a
    G, _ = T.synthetic_gradients(n=4000, m=1, D=6, anisotropy=2.0, seed=0, mean_scale=0.0)
    w = np.sort(np.linalg.eigvalsh(np.cov(G.T)))[::-1]
    target = np.arange(1, 7, dtype=float) ** -2.0
    target *= 6 / target.sum() * (1 + 0.5**2)  # prompt spread + default response_noise=0.5
    np.testing.assert_allclose(w, target, rtol=0.15)
    G0, _ = T.synthetic_gradients(n=4000, m=1, D=6, anisotropy=0.0, seed=0, mean_scale=0.0)
    w0 = np.linalg.eigvalsh(np.cov(G0.T))
    assert w0.max() / w0.min() < 1.3


# ----------------------------------------------------------------------------- δ's


def test_loo_means_match_brute_force():
    G, pid = T.synthetic_gradients(n=9, m=2, D=4, seed=1)
    eta, nu = 0.7, 1e-2
    d_id = T.loo_means(G, pid, "identity", nu, eta)
    d_gr = T.loo_means(G, pid, "grace", nu, eta)
    for x in range(9):
        rest = G[pid != x]
        np.testing.assert_allclose(d_id[x], -eta * rest.mean(0), atol=1e-12)
        Rn = rest / np.linalg.norm(rest, axis=1, keepdims=True)
        A = Rn.T @ Rn / len(rest) + nu / 4 * np.eye(4)
        M = np.linalg.inv(np.real(scipy.linalg.sqrtm(A)))
        np.testing.assert_allclose(d_gr[x], -eta * M @ rest.mean(0), rtol=1e-8, atol=1e-10)


# ----------------------------------------------------------------------------- CMI


def test_jensen_bound_two_points_closed_form():
    # δ = ±a: (1/σ²) Ê‖δ − δ̄‖² = a²/σ², and equals Ê_u Ê_v KL(N_u‖N_v)
    a, s = 1.3, 0.8
    deltas = np.array([[-a, 0.0], [a, 0.0]])
    assert T.jensen_bound(deltas, s) == pytest.approx(a**2 / s**2)
    kl = lambda u, v: ((u - v) ** 2).sum() / (2 * s**2)  # noqa: E731
    pairwise = np.mean([kl(u, v) for u in deltas for v in deltas])
    assert T.jensen_bound(deltas, s) == pytest.approx(pairwise)


@pytest.mark.parametrize("a", [0.4, 1.0, 2.5])
def test_mc_matches_quadrature_1d_two_components(a):
    deltas = np.array([[-a], [a]])
    ref = T.cmi_quadrature_1d(deltas, sigma=1.0)
    est, se = T.cmi_monte_carlo(deltas, sigma=1.0, n_samples=20000, seed=3)
    assert 0 < ref < np.log(2)
    assert abs(est - ref) < 4 * se + 1e-4, (est, se, ref)


def test_quadrature_limits_and_three_components():
    # far apart: the label is identifiable, I → log n; close: I ≈ Var/(2σ²) = a²/2
    assert T.cmi_quadrature_1d(np.array([-20.0, 20.0]), 1.0) == pytest.approx(np.log(2), abs=1e-6)
    assert T.cmi_quadrature_1d(np.array([-0.05, 0.05]), 1.0) == pytest.approx(0.05**2 / 2, rel=0.02)
    deltas = np.array([[-1.0], [0.3], [1.6]])
    ref = T.cmi_quadrature_1d(deltas, 0.9)
    est, se = T.cmi_monte_carlo(deltas, 0.9, n_samples=20000, seed=0)
    assert abs(est - ref) < 4 * se + 1e-4


@pytest.mark.parametrize("preconditioner", ["identity", "grace"])
@pytest.mark.parametrize("n", [6, 14])
def test_mc_cmi_below_jensen_bound_on_a_grid(preconditioner, n):
    G, pid = T.synthetic_gradients(n=n, m=2, D=6, seed=n)
    deltas = T.loo_means(G, pid, preconditioner)
    s0 = _spread(deltas)
    for rel in (0.3, 1.0, 3.0):
        sigma = rel * s0
        est, se = T.cmi_monte_carlo(deltas, sigma, n_samples=600, seed=1)
        jb = T.jensen_bound(deltas, sigma)
        assert est <= jb + 4 * se
        gb = T.gaussian_bound(deltas, sigma)
        assert est <= gb + 4 * se and gb <= jb / 2 * (1 + 1e-12)
        assert est <= np.log(n) + 4 * se
        lb = T.lemma_bound(G, pid, preconditioner, 1.0, sigma)
        assert lb["jensen"] == pytest.approx(jb)
        assert jb <= lb["three_term"] * (1 + 1e-12)


def test_jensen_slack_tends_to_two_at_low_snr():
    # I ≈ (1/(2σ²)) Ê‖δ−δ̄‖² when σ ≫ spread: the Jensen step loses exactly a factor 2
    deltas = np.array([[-1.0], [0.3], [1.6]])
    sigma = 20 * _spread(deltas)
    jb = T.jensen_bound(deltas, sigma)
    assert T.cmi_quadrature_1d(deltas, sigma) == pytest.approx(jb / 2, rel=0.01)
    G, pid = T.synthetic_gradients(n=8, m=1, D=4, seed=2)
    deltas = T.loo_means(G, pid, "identity")
    sigma = 20 * _spread(deltas)
    est, se = T.cmi_monte_carlo(deltas, sigma, n_samples=20000, seed=0)
    jb = T.jensen_bound(deltas, sigma)
    assert abs(est - jb / 2) < 4 * se + 0.02 * jb
    # at high SNR the slack is much larger (the CMI saturates at log n)
    est_hi, _ = T.cmi_monte_carlo(deltas, sigma / 100, n_samples=500, seed=0)
    assert T.jensen_bound(deltas, sigma / 100) / est_hi > 10


def test_mc_is_deterministic_by_seed():
    deltas = np.random.default_rng(0).standard_normal((5, 3))
    a = T.cmi_monte_carlo(deltas, 1.0, 300, seed=7)
    b = T.cmi_monte_carlo(deltas, 1.0, 300, seed=7)
    c = T.cmi_monte_carlo(deltas, 1.0, 300, seed=8)
    assert a == b and a != c
    r1 = T.lemma_check(8, 4, 1.0, n_mc=200, seed=3)
    r2 = T.lemma_check(8, 4, 1.0, n_mc=200, seed=3)
    assert r1 == r2


# ----------------------------------------------------------------------------- Lemma B.1


def test_identity_gradient_term_is_gvar_closed_form():
    from grace.scores import g_var

    n, eta, sigma = 11, 0.3, 0.5
    G, pid = T.synthetic_gradients(n=n, m=1, D=5, seed=6)
    lb = T.lemma_bound(G, pid, "identity", eta, sigma)
    closed = 3 * eta**2 / (sigma**2 * (n - 1) ** 2) * g_var(G)  # eq. 3 with one response per prompt
    assert lb["gradient_term"] == pytest.approx(closed, rel=1e-12)
    assert lb["sensitivity_term"] == 0 and lb["proof_a"] == 0 and lb["proof_c"] == 0
    assert lb["jensen"] == pytest.approx(closed / 3, rel=1e-12)  # the Jensen bound is G-Var itself


def test_proof_expansion_is_exact():
    G, pid = T.synthetic_gradients(n=10, m=3, D=6, seed=2, mean_scale=2.0)
    lb = T.lemma_bound(G, pid, "grace", 0.5, 0.7, nu=1e-2)
    assert lb["jensen_from_expansion"] == pytest.approx(lb["jensen"], rel=1e-10)
    assert lb["proof_b"] == pytest.approx(lb["gradient_term"], rel=1e-10)
    assert lb["lemma_a1"] == pytest.approx(2 / 3 * lb["gradient_term"])
    assert lb["sensitivity_term"] > 0 and lb["proof_c"] > 0


@pytest.mark.parametrize("m", [2, 3])
def test_gradient_term_equals_leave_one_prompt_out_grace(m):
    from grace.scores import grace

    n, eta, sigma, nu = 12, 0.4, 1.5, 1e-3
    G, pid = T.synthetic_gradients(n=n, m=m, D=6, seed=m)
    one_prompt_per_fold = pid  # C = n
    g_glob = grace(G, pid, nu=nu, folds=one_prompt_per_fold, center="global")
    g_fold = grace(G, pid, nu=nu, folds=one_prompt_per_fold, center="fold")
    between = T.loo_grace(G, pid, nu)
    assert g_glob - g_fold == pytest.approx(between, rel=1e-9)
    lb = T.lemma_bound(G, pid, "grace", eta, sigma, nu)
    assert lb["gradient_term"] == pytest.approx(3 * eta**2 / (sigma**2 * (n - 1) ** 2) * between, rel=1e-9)
    # the fold-centred score alone does not match (it is the within-prompt part)
    assert abs(g_fold - between) > 1e-3 * between


def test_lemma_check_fields():
    r = T.lemma_check(10, 5, 0.5, preconditioner="grace", n_mc=300, seed=1)
    for k in ("cmi", "cmi_stderr", "jensen", "gradient_term", "sensitivity_term", "slack_jensen", "sensitivity_ratio"):
        assert np.isfinite(r[k]), k
    assert r["slack_jensen"] == pytest.approx(r["jensen"] / r["cmi"])
    assert r["sensitivity_ratio"] == pytest.approx(r["gradient_term"] / r["sensitivity_term"])
    assert T.lemma_check(10, 5, 0.5, preconditioner="identity", n_mc=100)["sensitivity_ratio"] == float("inf")


def test_errors_name_the_bad_value():
    G, pid = T.synthetic_gradients(n=4, m=2, D=3)
    with pytest.raises(ValueError, match="preconditioner='adam'"):
        T.loo_means(G, pid, "adam")
    with pytest.raises(ValueError, match="sigma=0"):
        T.cmi_monte_carlo(np.zeros((3, 2)), 0)
    with pytest.raises(ValueError, match="responses per prompt"):
        T.lemma_bound(G[:-1], pid[:-1])
    with pytest.raises(ValueError, match="n=1"):
        T.synthetic_gradients(n=1)
    with pytest.raises(ValueError, match="nu=0"):
        S.smoothed_gram(G, 0)


def test_gaussian_bound_closed_form_and_tightness():
    # 1-D, two points ±a: Cov = a², bound = ½ log(1 + a²/σ²); quadrature sits below it
    a, s = 0.7, 1.0
    deltas = np.array([[-a], [a]])
    assert T.gaussian_bound(deltas, s) == pytest.approx(0.5 * np.log1p(a**2 / s**2))
    assert T.cmi_quadrature_1d(deltas, s) < T.gaussian_bound(deltas, s) < T.jensen_bound(deltas, s) / 2
