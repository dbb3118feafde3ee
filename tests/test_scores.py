"""Tests for grace.scores (paper eqs. 1–6, appendix C.1).

Reference implementations here are written independently of the module: plain loops over folds
with an explicit ``np.linalg.inv``, and a loop over the release's splits with ``np.linalg.eigh``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from grace import scores as S

# ---------------------------------------------------------------------------------------------
# fixtures and independent references
# ---------------------------------------------------------------------------------------------


def make_H(n_prompts: int, m: int, d: int, seed: int = 0, shuffle: bool = False):
    """Structured gaussian features: a prompt effect + low-rank signal + noise, varied row norms."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((min(d, 6), d))
    prompt = rng.standard_normal((n_prompts, basis.shape[0])) @ basis  # (n, d)
    H = np.repeat(prompt, m, axis=0) + 0.7 * rng.standard_normal((n_prompts * m, d)) + 0.3
    H *= rng.uniform(0.5, 3.0, size=(len(H), 1))
    ids = np.repeat(np.arange(n_prompts), m)
    if shuffle:
        p = rng.permutation(len(H))
        H, ids = H[p], ids[p]
    return H, ids


def grace_loop(H, folds, nu, center):
    """Eq. 4 / eq. 5 by the book: one explicit inverse per fold."""
    N, d = H.shape
    Hn = H / np.linalg.norm(H, axis=1, keepdims=True)
    total = 0.0
    for f in np.unique(folds):
        test, train = H[folds == f], Hn[folds != f]
        M = train.T @ train / len(train) + nu / d * np.eye(d)
        c = test.mean(axis=0) if center == "fold" else H.mean(axis=0)
        A = test - c
        total += np.trace(A @ np.linalg.inv(M) @ A.T)
    return total / N


def release_loop(H, m, n_splits=10, test_fraction=0.1, smooth=1e-3):
    """The release's recipe as described in the brief, written as a plain loop with eigh."""
    n = len(H) // m
    groups = H.reshape(n, m, -1)
    n_test = max(1, int(n * test_fraction))
    out = []
    for s in range(n_splits):
        g = groups[np.random.default_rng(s).permutation(n)]
        train = g[: n - n_test].reshape(-1, H.shape[1])
        test = g[n - n_test :].reshape(-1, H.shape[1])
        train = train / np.linalg.norm(train, axis=1, keepdims=True)
        K_train, K_test = train.T @ train / len(train), test.T @ test / len(test)
        w, V = np.linalg.eigh(K_train)
        w = np.clip(w, 1e-12, None)
        w = (1 - smooth) * w + smooth * w.mean()
        out.append(np.trace((V / w) @ V.T @ K_test))
    return float(np.mean(out))


# ---------------------------------------------------------------------------------------------
# GRACE: eq. 4 vs loop vs eq. 6, primal vs dual
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_prompts,m,d", [(40, 4, 12), (12, 3, 90)])  # N > d and d > N
@pytest.mark.parametrize("center", ["fold", "global"])
def test_grace_matches_inverse_loop_and_spectral(n_prompts, m, d, center):
    H, ids = make_H(n_prompts, m, d, shuffle=True)
    folds = S.prompt_folds(ids, 5, seed=3)
    ref = grace_loop(H, folds, 1e-3, center)
    got = S.grace(H, ids, n_folds=5, nu=1e-3, seed=3, center=center)
    spec = S.grace_spectral(H, ids, n_folds=5, nu=1e-3, seed=3, center=center)
    assert got == pytest.approx(ref, rel=1e-8)
    assert spec == pytest.approx(ref, rel=1e-8)
    # explicit folds give the same number; other labels for the same partition too
    assert S.grace(H, ids, folds=folds * 7 + 1, nu=1e-3, center=center) == pytest.approx(
        ref, rel=1e-10
    )


def test_spectral_split_sums_to_grace_and_finds_the_rank_deficient_regime():
    # full rank: N = 640 rows of isotropic noise in d = 16 -> the other folds span every direction
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(160), 4)
    H = rng.standard_normal((640, 16))
    full = S.grace_spectral_split(H, ids, n_folds=5, nu=1e-3, seed=1)
    assert full["grace"] == pytest.approx(S.grace(H, ids, n_folds=5, nu=1e-3, seed=1), rel=1e-8)
    assert full["spanned"] + full["smoothing"] == pytest.approx(full["grace"], rel=1e-12)
    assert full["dims_below"] == 0 and full["smoothing_frac"] == 0.0
    # rank deficient: 40 rows in d = 64 -> each fold's 32 training rows leave >= 32 directions unspanned,
    # and held-out noise lands there with weight d/nu, so the smoothing part dominates the score
    H2, ids2 = make_H(10, 4, 64, seed=2)
    low = S.grace_spectral_split(H2, ids2, n_folds=5, nu=1e-3, seed=1)
    assert low["grace"] == pytest.approx(S.grace(H2, ids2, n_folds=5, nu=1e-3, seed=1), rel=1e-8)
    assert low["dims_below"] >= 64 - 32
    assert low["smoothing_frac"] > 0.9


@pytest.mark.parametrize("n_prompts,m,d", [(30, 2, 10), (10, 3, 50)])
def test_primal_and_dual_forms_agree(n_prompts, m, d):
    H, ids = make_H(n_prompts, m, d)
    idx = S._fold_index_lists(S.prompt_folds(ids, 4), ids)
    primal = S._grace_both(S._Prepared.build(H, dual=False), idx, 1e-2)
    dual = S._grace_both(S._Prepared.build(H, dual=True), idx, 1e-2)
    np.testing.assert_allclose(primal, dual, rtol=1e-8)
    rp = S._grace_release(S._Prepared.build(H, dual=False), m, 3, 0.2, 1e-2)
    rd = S._grace_release(S._Prepared.build(H, dual=True), m, 3, 0.2, 1e-2)
    assert rp == pytest.approx(rd, rel=1e-8)
    assert S.log_determinant(H) == pytest.approx(
        S._Prepared.build(H, dual=not d > len(H)).logdet(1e-3), rel=1e-9
    )


def test_center_global_differs_from_fold():
    H, ids = make_H(30, 3, 8)
    a = S.grace(H, ids, n_folds=5, center="fold")
    b = S.grace(H, ids, n_folds=5, center="global")
    assert b > a  # global centring adds r·δᵀM⁻¹δ >= 0 per fold
    assert abs(b - a) / a > 1e-4


def test_grace_scale_and_nu_behaviour():
    H, ids = make_H(20, 4, 10)
    g = S.grace(H, ids, n_folds=4)
    assert S.grace(3.0 * H, ids, n_folds=4) == pytest.approx(9.0 * g, rel=1e-10)
    assert S.grace_release(3.0 * H, 4) == pytest.approx(9.0 * S.grace_release(H, 4), rel=1e-10)
    assert S.g_vendi(5.0 * H) == pytest.approx(S.g_vendi(H), rel=1e-12)
    assert S.g_var(2.0 * H) == pytest.approx(4.0 * S.g_var(H), rel=1e-12)
    # more smoothing shrinks M⁻¹, hence the score
    assert S.grace(H, ids, n_folds=4, nu=1.0) < g


def test_grace_seed_changes_folds_and_score():
    H, ids = make_H(30, 2, 6)
    assert S.grace(H, ids, n_folds=3, seed=0) != S.grace(H, ids, n_folds=3, seed=1)
    assert S.grace(H, ids, n_folds=3, seed=4) == S.grace(H, ids, n_folds=3, seed=4)


# ---------------------------------------------------------------------------------------------
# release variant
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_prompts,m,d,rtol", [(50, 4, 10, 1e-9), (20, 2, 60, 1e-6)])
def test_grace_release_matches_loop(n_prompts, m, d, rtol):
    # second case: d > train rows, so K_train is rank-deficient and the 1e-12 clip is active
    H, _ = make_H(n_prompts, m, d)
    assert S.grace_release(H, m) == pytest.approx(release_loop(H, m), rel=rtol)
    assert S.grace_release(H, m, n_splits=3, test_fraction=0.3, smooth=0.1) == pytest.approx(
        release_loop(H, m, 3, 0.3, 0.1), rel=rtol
    )


@pytest.mark.parametrize("d", [7, 120])  # primal and dual (d > N) forms
def test_all_scores_release_reorders_rows_by_prompt(d):
    H, ids = make_H(30, 3, d)
    p = np.random.default_rng(1).permutation(len(H))
    out = S.all_scores(H[p], ids[p], n_folds=5)
    assert out["grace_release"] == pytest.approx(S.grace_release(H, 3), rel=1e-10)
    # unequal generation counts: skipped as NaN, everything else still computed
    keep = np.ones(len(H), dtype=bool)
    keep[0] = False
    out = S.all_scores(H[keep], ids[keep], n_folds=5)
    assert math.isnan(out["grace_release"]) and math.isfinite(out["grace"])


# ---------------------------------------------------------------------------------------------
# G-Vendi, G-Var, determinant, BADGE, inner products
# ---------------------------------------------------------------------------------------------


def test_g_vendi_orthonormal_rows_is_log_rank():
    # (20, 7) orthonormal columns
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((20, 7)))
    rows = Q.T * np.arange(1, 8)[:, None]  # 7 orthogonal rows, varied norms, d = 20 > N
    assert S.g_vendi(rows) == pytest.approx(math.log(7), rel=1e-10)
    # N > d: each basis vector repeated 3 times -> 4 equal eigenvalues
    E = np.repeat(np.eye(4), 3, axis=0) * 2.0
    assert S.g_vendi(E) == pytest.approx(math.log(4), rel=1e-10)
    # identical rows: rank one, entropy zero
    assert S.g_vendi(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-10)


def test_g_var_values():
    assert S.g_var(np.tile([1.0, -2.0, 3.0], (6, 1))) == pytest.approx(0.0, abs=1e-12)
    H = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])  # mean (1, 2): sq dists 5 each
    assert S.g_var(H) == pytest.approx(5.0)
    assert S.g_var(np.zeros((3, 2))) == 0.0  # zero rows are fine without normalisation


@pytest.mark.parametrize("N,d", [(30, 8), (6, 25)])
def test_log_determinant_and_badge(N, d):
    H = np.random.default_rng(2).standard_normal((N, d))
    Hn = H / np.linalg.norm(H, axis=1, keepdims=True)
    sign, ref = np.linalg.slogdet(Hn.T @ Hn / N + 1e-3 / d * np.eye(d))
    assert sign > 0
    assert S.log_determinant(H) == pytest.approx(ref, rel=1e-9)
    norms = np.linalg.norm(H, axis=1)
    assert S.badge(H) == pytest.approx(ref + math.log(norms.mean()), rel=1e-9)
    assert S.badge(H, grad_norms=np.full(N, 2.0)) == pytest.approx(ref + math.log(2.0), rel=1e-9)


def test_same_prompt_inner_product_hand_example():
    H = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [1.0, 1.0], [2.0, 2.0], [5.0, 5.0]])
    ids = np.array([0, 0, 1, 1, 1, 2])  # prompt 2 has one generation and is skipped
    # prompt 0: <(1,0),(0,2)> = 0 ; prompt 1 pairs: 3, 6, 4 -> mean 13/3
    assert S.same_prompt_inner_product(H, ids, normalized=False) == pytest.approx((0 + 13 / 3) / 2)
    # normalised: prompt 0 -> 0 ; prompt 1 cosines: 1/√2, 1/√2, 1 -> mean (√2 + 1)/3
    exp = (0 + (math.sqrt(2) + 1) / 3) / 2
    assert S.same_prompt_inner_product(H, ids) == pytest.approx(exp)
    assert math.isnan(S.same_prompt_inner_product(H[:2], [0, 1]))


# ---------------------------------------------------------------------------------------------
# probability / loss baselines
# ---------------------------------------------------------------------------------------------

P = np.array([0.9, 0.5, 0.2, 0.6, 0.4, 0.8])
IDS = np.array([7, 7, 3, 3, 3, 9])
OK = np.array([True, False, True, True, False, True])


def test_probability_baselines_hand_computed():
    assert S.student_loss([1.0, 2.0, 6.0]) == pytest.approx(3.0)
    assert S.avg_prob(P) == pytest.approx(3.4 / 6)
    assert S.best_avg_prob(P, IDS) == pytest.approx((0.9 + 0.6 + 0.8) / 3)
    # correct means per prompt: 7 -> 0.9, 3 -> 0.4, 9 -> 0.8
    assert S.correct_avg_prob(P, IDS, OK) == pytest.approx((0.9 + 0.4 + 0.8) / 3)
    # incorrect: 7 -> 0.5, 3 -> 0.4, 9 has none (skipped)
    assert S.incorrect_avg_prob(P, IDS, OK) == pytest.approx((0.5 + 0.4) / 2)
    # diff only for prompts with both: 7 -> 0.4, 3 -> 0.0
    assert S.diff_avg_prob(P, IDS, OK.astype(int)) == pytest.approx(0.2)


def test_probability_baselines_nan_when_nothing_qualifies():
    assert math.isnan(S.incorrect_avg_prob(P, IDS, np.ones(6, bool)))
    assert math.isnan(S.correct_avg_prob(P, IDS, np.zeros(6, bool)))
    assert math.isnan(S.diff_avg_prob(P, IDS, np.ones(6, bool)))


# ---------------------------------------------------------------------------------------------
# folds
# ---------------------------------------------------------------------------------------------


def test_prompt_folds_properties():
    ids = np.repeat(np.array([f"q{i}" for i in range(23)]), 3)[
        np.random.default_rng(0).permutation(69)
    ]
    f = S.prompt_folds(ids, 5, seed=1)
    assert f.shape == (69,) and set(f.tolist()) == set(range(5))
    for p in np.unique(ids):
        assert len(set(f[ids == p].tolist())) == 1  # a prompt's rows share a fold
    per_fold = [len(np.unique(ids[f == k])) for k in range(5)]
    assert max(per_fold) - min(per_fold) <= 1
    np.testing.assert_array_equal(f, S.prompt_folds(ids, 5, seed=1))
    assert not np.array_equal(f, S.prompt_folds(ids, 5, seed=2))


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_bad_inputs_raise_value_error():
    H, ids = make_H(10, 2, 4)
    with pytest.raises(ValueError, match="2-D"):
        S.grace(H[0], ids)
    bad = H.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf values in rows \[3\]"):
        S.grace(bad, ids, n_folds=2)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        S.g_var(bad)
    zero = H.copy()
    zero[5] = 0.0
    with pytest.raises(ValueError, match=r"rows \[5\] are all zero"):
        S.g_vendi(zero)
    with pytest.raises(ValueError, match="length mismatch"):
        S.grace(H, ids[:-1])
    with pytest.raises(ValueError, match="fewer prompts"):
        S.grace(H, ids, n_folds=11)
    with pytest.raises(ValueError, match="fold 1 has 1 row"):
        S.grace(H[:5], [0, 0, 1, 2, 2], folds=[0, 0, 1, 2, 2])
    with pytest.raises(ValueError, match="more than one fold"):
        S.grace(H[:4], [0, 0, 1, 1], folds=[0, 1, 1, 0])
    with pytest.raises(ValueError, match="1 distinct label"):
        S.grace(H, ids, folds=np.zeros(len(H)))
    for nu in (0.0, -1.0):
        with pytest.raises(ValueError, match="nu must be"):
            S.grace(H, ids, n_folds=2, nu=nu)
    with pytest.raises(ValueError, match="nu must be"):
        S.log_determinant(H, nu=0)
    with pytest.raises(ValueError, match="does not divide"):
        S.grace_release(H[:-1], 2)
    with pytest.raises(ValueError, match="unknown center='mean'"):
        S.grace(H, ids, n_folds=2, center="mean")
    with pytest.raises(ValueError, match="n_folds must be"):
        S.prompt_folds(ids, 1)
    with pytest.raises(ValueError, match="length mismatch"):
        S.correct_avg_prob(P, IDS, OK[:-1])
    with pytest.raises(ValueError, match="mean_prob contains NaN"):
        S.avg_prob([0.1, np.nan])
    with pytest.raises(ValueError, match="length mismatch: loss"):
        S.all_scores(H, ids, n_folds=2, loss=np.ones(3))


# ---------------------------------------------------------------------------------------------
# all_scores, orientation, labels
# ---------------------------------------------------------------------------------------------


def test_all_scores_keys_and_values():
    H, ids = make_H(20, 4, 9, shuffle=True)
    rng = np.random.default_rng(5)
    loss, prob, ok = rng.uniform(0, 2, 80), rng.uniform(0, 1, 80), rng.uniform(size=80) < 0.5
    out = S.all_scores(H, ids, loss=loss, mean_prob=prob, correct=ok, n_folds=4, seed=2)
    assert set(out) == set(S.ALL_SCORE_KEYS) and len(out) == 15
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    assert out["grace"] == pytest.approx(S.grace(H, ids, n_folds=4, seed=2), rel=1e-12)
    assert out["grace_global"] == pytest.approx(
        S.grace(H, ids, n_folds=4, seed=2, center="global"), rel=1e-12
    )
    assert out["g_vendi"] == pytest.approx(S.g_vendi(H))
    assert out["badge"] == pytest.approx(S.badge(H))
    assert out["inner_product"] == pytest.approx(S.same_prompt_inner_product(H, ids))
    assert out["inner_product_norm"] == pytest.approx(
        S.same_prompt_inner_product(H, ids, normalized=False)
    )
    assert out["diff_avg_prob"] == pytest.approx(S.diff_avg_prob(prob, ids, ok))
    bare = S.all_scores(H, ids, n_folds=4)
    assert set(bare) == set(S.ALL_SCORE_KEYS)
    assert all(math.isnan(bare[k]) for k in ("student_loss", "avg_prob", "diff_avg_prob"))


def test_orientation_and_labels_cover_all_keys():
    assert set(S.ALL_SCORE_KEYS) <= set(S.SCORE_ORIENTATION)
    assert set(S.SCORE_ORIENTATION) == set(S.SCORE_LABELS)
    assert set(S.SCORE_ORIENTATION.values()) == {-1, 1}
    lower_better = {k for k, v in S.SCORE_ORIENTATION.items() if v == -1}
    assert lower_better == {
        "grace", "grace_global", "grace_release", "g_var", "inner_product",
        "inner_product_norm", "student_loss",
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the registry, and the literal readings of eqs. 5–6
# ---------------------------------------------------------------------------------------------


def test_registry_is_the_one_table():
    assert list(S.ALL_SCORE_KEYS) == [k for k, s in S.SCORES.items() if s.compute is not None]
    assert S.ALL_SCORE_KEYS[:5] == ("grace", "grace_global", "grace_release", "g_vendi", "g_var")  # results columns
    assert all(S.SCORE_LABELS[k] == s.label and S.SCORE_ORIENTATION[k] == s.orientation for k, s in S.SCORES.items())
    assert set(S.FEATURE_SCORES) == {"grace", "grace_global", "grace_release", "g_vendi", "g_var", "log_determinant",
                                     "inner_product", "inner_product_norm"}
    with pytest.raises(ValueError, match="not computed from gradient features"):
        S.SCORES["teacher_avg_at_k"](S.ScoreInputs(*make_H(6, 2, 3)))
    with pytest.raises(ValueError, match="unknown or non-feature"):
        S.all_scores(*make_H(6, 2, 3), n_folds=2, keys=["grace", "gracee"])


def test_score_inputs_share_one_gram_and_subsets_agree():
    H, ids = make_H(12, 3, 5, seed=4)
    x = S.ScoreInputs(H, ids, n_folds=3, seed=1)
    full = S.score_inputs(x)
    assert x.__dict__["prepared"] is x.prepared  # cached: built once for every score
    some = S.all_scores(H, ids, n_folds=3, seed=1, keys=["g_var", "grace"])
    assert list(some) == ["g_var", "grace"] and some["grace"] == full["grace"]


def test_eq5_literal_and_eq6_printed_against_direct_loops():
    H, ids = make_H(10, 3, 4, seed=7)
    folds = S.prompt_folds(ids, 5, seed=0)
    nu, d = 1e-3, H.shape[1]

    def M(rows):  # Σ̃ + (ν/d) I of unit rows (eq. 1)
        U = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        return U.T @ U / len(U) + nu / d * np.eye(d)

    mu = H.mean(0)
    eq5 = sum(((H[folds == f] - mu) @ np.linalg.inv(M(H[folds == f])) * (H[folds == f] - mu)).sum()
              for f in range(5)) / len(H)
    eq6 = np.mean([np.mean(((H[folds == f] @ np.linalg.inv(M(H[folds != f]))) * H[folds == f]).sum(1))
                   for f in range(5)])
    assert S.grace_eq5_own_fold(H, ids, folds=folds, nu=nu) == pytest.approx(eq5, rel=1e-9)
    assert S.grace_eq6_printed(H, ids, folds=folds, nu=nu) == pytest.approx(eq6, rel=1e-9)
    assert S.grace_eq5_own_fold(H, ids, folds=folds) != pytest.approx(S.grace(H, ids, folds=folds), rel=1e-3)
