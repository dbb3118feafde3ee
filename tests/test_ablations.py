"""Tests for grace.ablations: exact feature transformations, rescoring, ablation tables, release variants."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from grace import ablations as A
from grace import scores as S
from grace.features import Features, compute_features
from grace.io import write_json, write_jsonl
from grace.projection import IdentityProjector, RademacherProjector
from grace.study import seed_for
from grace.theory import synthetic_gradients

torch.set_num_threads(1)

N_PROMPTS, M, D = 12, 3, 16
CONFIGS = ["a@0.5", "a@1", "b@0.5", "b@1", "c@1"]
PROFILE = {"seed": 3, "scores": {"n_folds": 4, "nu": 1e-3},
           "features": {"length_scale": "log", "batch_size": 4}, "template": "### Problem:\n{prompt}\n\n### Solution:\n"}


def fake_features(k: int) -> Features:
    """Features of one synthetic teacher: rows grouped by prompt, string prompt keys, log|y| scaling."""
    H, pid = synthetic_gradients(N_PROMPTS, M, D, seed=10 + k, mean_scale=0.5 + 0.4 * k,
                                 response_noise=0.3 + 0.2 * k)
    lengths = np.random.default_rng(k).integers(2, 60, size=len(H))
    return Features(H=(H * np.log(lengths)[:, None]).astype(np.float32), prompt_ids=pid.astype(np.int64),
                    prompt_keys=[f"p{i}" for i in range(N_PROMPTS)], lengths=lengths.astype(np.int64),
                    loss=np.ones(len(H), np.float32), mean_prob=np.full(len(H), 0.5, np.float32),
                    grad_norm=np.ones(len(H), np.float32), meta={"length_scale": "log"})


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A study directory with profile.json, five configurations' features and a results table."""
    root = tmp_path_factory.mktemp("study")
    write_json(root / "profile.json", PROFILE)
    rows = []
    for k, cfg in enumerate(CONFIGS):
        f = fake_features(k)
        f.save(root / "features" / cfg / "features.npz")
        sc = S.all_scores(f.H, f.prompt_ids, n_folds=4, nu=1e-3, seed=seed_for(3, "folds"))
        rows.append({"config": cfg, "student_avg_at_k": [0.5, 0.1, 0.4, 0.3, 0.2][k], **sc})
    results = pd.DataFrame(rows)
    results.to_csv(root / "results.csv", index=False)
    return root, results


# ---------------------------------------------------------------------------------------------
# exactness of the transformations the ablations rely on
# ---------------------------------------------------------------------------------------------


def test_first_columns_of_a_rademacher_projection_are_the_smaller_projection():
    big, small = RademacherProjector(300, 24, seed=5), RademacherProjector(300, 8, seed=5)
    assert torch.equal(big.matrix()[:8], small.matrix())  # the same rows of Π, bit for bit
    assert not torch.equal(big.matrix()[8:16], small.matrix())  # other blocks are other draws
    G = torch.randn(6, 300, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(big.project(G)[:, :8], small.project(G), rtol=1e-5, atol=1e-6)
    other_seed = RademacherProjector(300, 8, seed=6)
    assert not torch.equal(other_seed.matrix(), small.matrix())


def test_length_scale_round_trip_and_log2():
    f = fake_features(0)
    none = A.rescale_length(f, "none")
    logy = np.log(f.lengths)[:, None]
    np.testing.assert_allclose(none * logy, f.H, rtol=1e-12)
    np.testing.assert_allclose(A.rescale_length(f, "log2"), f.H * logy, rtol=1e-12)
    back = Features(**{**f.__dict__, "H": none, "meta": {"length_scale": "none"}})
    np.testing.assert_allclose(A.rescale_length(back, "log"), f.H, rtol=1e-12)
    assert A.rescale_length(f, "log") is not None and np.array_equal(A.rescale_length(f, "log"), f.H)


def test_length_scale_errors():
    f = fake_features(0)
    with pytest.raises(ValueError, match="length_scale"):
        A.rescale_length(f, "sqrt")
    f.lengths = f.lengths.copy()
    f.lengths[0] = 1  # log 1 = 0: the saved factor cannot be undone
    with pytest.raises(ValueError, match="one-token"):
        A.rescale_length(f, "none")


# ---------------------------------------------------------------------------------------------
# rescore
# ---------------------------------------------------------------------------------------------


def test_rescore_with_study_settings_reproduces_the_results_columns(study):
    root, results = study
    feats = A.load_study_features(root)
    settings = A.score_settings(root)
    assert settings == {"n_folds": 4, "nu": 1e-3, "seed": seed_for(3, "folds")}
    want = results.set_index("config")
    for score in A.RESCORE_SCORES:
        got = A.rescore(feats, score=score, **settings)
        np.testing.assert_allclose(got.loc[want.index].to_numpy(), want[score].to_numpy(), rtol=1e-10)
    # a different fold seed gives a different GRACE, so the check above can fail
    assert not np.allclose(A.rescore(feats, n_folds=4, nu=1e-3, seed=0).loc[want.index], want["grace"])


def test_rescore_subsets(study):
    root, _ = study
    feats = A.load_study_features(root)
    f = feats[CONFIGS[0]]
    kw = dict(n_folds=3, nu=1e-3, seed=1)
    got = A.rescore(feats, n=6, m=2, d=8, **kw)[CONFIGS[0]]
    rows = np.concatenate([np.flatnonzero(f.prompt_ids == p)[:2] for p in range(6)])
    want = S.grace(f.H[np.ix_(rows, np.arange(8))], f.prompt_ids[rows], **kw)
    assert got == pytest.approx(want, rel=1e-12)
    # random subsets: the same prompts/columns for every config, deterministic in subset_seed
    r1 = A.rescore(feats, n=6, m=2, d=8, subset_seed=4, **kw)
    pd.testing.assert_series_equal(r1, A.rescore(feats, n=6, m=2, d=8, subset_seed=4, **kw))
    assert not np.allclose(r1, A.rescore(feats, n=6, m=2, d=8, subset_seed=5, **kw))
    with pytest.raises(ValueError, match="d=17"):
        A.rescore(feats, d=17)
    with pytest.raises(ValueError, match="unknown score"):
        A.rescore(feats, score="badge")


# ---------------------------------------------------------------------------------------------
# ablation tables
# ---------------------------------------------------------------------------------------------


def test_ablation_table_shapes(study):
    root, results = study
    feats = A.load_study_features(root)
    grid = {"n": [4, 12], "m": [1, 3], "d": [4, 16], "n_folds": [2, 6], "nu": [1e-3, 1e-1],
            "length_scale": ["none", "log", "log2"]}
    for param, values in grid.items():
        tab = A.ablation_table(root, results, param, values, n_repeats=2 if param == "d" else 1, seed=0,
                               features_by_config=feats)
        assert list(tab[param]) == values and len(tab) == len(values), param
        assert {"rho_oriented", "rho_sd", "rho_canonical", "n_configs"} <= set(tab.columns)
        assert (tab.n_configs == len(CONFIGS)).all()
        assert (tab.rho_min <= tab.rho_max + 1e-12).all()
    # log vs none differ (the ablation really rescales), log equals the study's own correlation
    ls = A.ablation_table(root, results, "length_scale", ["none", "log"], n_repeats=1, features_by_config=feats)
    rescored = {v: A.rescore(feats, length_scale=v, **A.score_settings(root)) for v in ("none", "log")}
    assert not np.allclose(rescored["none"], rescored["log"])
    assert ls.rho_canonical[1] == pytest.approx(A.oriented_spearman(
        results.set_index("config")["grace"], results.set_index("config")["student_avg_at_k"]))


def test_ablation_table_at_the_study_setting_is_the_study_correlation(study):
    root, results = study
    tab = A.ablation_table(root, results, "d", [D], n_repeats=1)
    want = A.oriented_spearman(results.set_index("config")["grace"],
                               results.set_index("config")["student_avg_at_k"], "grace")
    assert tab.rho_canonical[0] == pytest.approx(want)
    assert want == pytest.approx(-1 * pd.Series(results.grace.to_numpy()).corr(
        pd.Series(results.student_avg_at_k.to_numpy()), method="spearman"))


def test_ablation_table_errors(study):
    root, results = study
    with pytest.raises(ValueError, match="unknown ablation param"):
        A.ablation_table(root, results, "lr", [1])
    with pytest.raises(ValueError, match="n_repeats"):
        A.ablation_table(root, results, "d", [8], n_repeats=0)
    with pytest.raises(ValueError, match="target"):
        A.ablation_table(root, results, "d", [8], target="student_nope")
    with pytest.raises(ValueError, match="n=40"):
        A.ablation_table(root, results, "n", [40])
    with pytest.raises(ValueError, match="profile.json"):
        A.score_settings(root / "features")


def test_oriented_spearman_nan_on_constant_and_sign():
    s = pd.Series([1.0, 2.0, 3.0, 4.0], index=list("abcd"))
    assert A.oriented_spearman(s, pd.Series([4.0, 3, 2, 1], index=list("abcd")), "grace") == pytest.approx(1.0)
    assert A.oriented_spearman(s, pd.Series([4.0, 3, 2, 1], index=list("abcd")), "g_vendi") == pytest.approx(-1.0)
    assert np.isnan(A.oriented_spearman(s, pd.Series(1.0, index=list("abcd")), "grace"))


# ---------------------------------------------------------------------------------------------
# the release's score and the chapter 8 variants
# ---------------------------------------------------------------------------------------------


def test_release_eigh_form_matches_the_cholesky_form_and_switches_matter():
    f = fake_features(1)
    ref = S.grace_release(f.H, M)
    assert S.grace_release(f.H, M, method="eigh") == pytest.approx(ref, rel=1e-8)
    assert S.grace_release(f.H, M, normalize_test=True) != pytest.approx(ref, rel=1e-3)
    assert S.grace_release(f.H, M, normalize_train=False) != pytest.approx(ref, rel=1e-3)
    with pytest.raises(ValueError, match="n_gen_per_prompt=5"):
        S.grace_release(f.H, 5)
    with pytest.raises(ValueError, match="method="):
        S.grace_release(f.H, M, method="inv")


def test_release_slice_prompts_is_a_seeded_shuffle():
    keys = [f"p{i}" for i in range(20)]
    want = keys[:]
    random.Random(42).shuffle(want)
    assert A.release_slice_prompts(keys, 4) == want[:4]
    assert keys == [f"p{i}" for i in range(20)]  # the input is not shuffled in place
    with pytest.raises(ValueError, match="n_keep"):
        A.release_slice_prompts(keys, 0)


def test_variant_scores_and_summary(study):
    root, results = study
    feats = A.load_study_features(root)
    V = A.variant_scores(feats, **A.score_settings(root))
    assert list(V.columns) == list(A.VARIANTS) and set(V.index) == set(CONFIGS)
    want = results.set_index("config")
    np.testing.assert_allclose(V.loc[want.index, "eq4"], want.grace, rtol=1e-10)
    np.testing.assert_allclose(V.loc[want.index, "eq5_global"], want.grace_global, rtol=1e-10)
    np.testing.assert_allclose(V.loc[want.index, "release"], want.grace_release, rtol=1e-8)
    # the shipped slice keeps m prompts only
    f = feats[CONFIGS[0]]
    keep = A.release_slice_prompts(f.prompt_keys, M)
    rows = np.concatenate([np.flatnonzero(f.prompt_ids == f.prompt_keys.index(k)) for k in keep])
    raw = f.H[rows] / np.log(f.lengths[rows])[:, None]
    assert V.loc[CONFIGS[0], "release_as_shipped"] == pytest.approx(S.grace_release(raw, M, method="eigh"), rel=1e-10)
    summ = A.variant_summary(V, results)
    assert summ.loc["eq4", "spearman_vs_eq4"] == pytest.approx(1.0)
    assert not summ.loc["eq4", "top_changed"]
    assert summ.loc["eq4", "top_config"] == str(V.eq4.idxmin())


def test_block_scores_block_zero_is_the_first_columns(study):
    root, _ = study
    feats = A.load_study_features(root)
    B = A.block_scores(feats, 8, n_folds=4, nu=1e-3, seed=2)
    assert list(B.columns) == ["Π block 0", "Π block 1"]
    np.testing.assert_allclose(B["Π block 0"], A.rescore(feats, d=8, n_folds=4, nu=1e-3, seed=2).loc[B.index])
    with pytest.raises(ValueError, match="block_d=5"):
        A.block_scores(feats, 5)
    agree = A.ranking_agreement(B)
    assert agree.shape == (2, 2) and agree.iloc[0, 0] == pytest.approx(1.0)


def test_fp16_cast_projector_rounds_and_counts():
    G = torch.tensor([[1.0 + 2**-12, 1e-9, 1e-6, -3.0]])
    P = A.Fp16CastProjector(IdentityProjector(4))
    out = P.project(G)
    torch.testing.assert_close(out, G.half().float())
    assert out[0, 0] == 1.0 and out[0, 1] == 0.0  # mantissa rounding, and a flush to zero
    assert (P.n_entries, P.n_flushed, P.n_subnormal) == (4, 1, 1)


def test_recompute_features_reproduces_saved_features(tmp_path, tiny_llama_dir, tiny_tokenizer):
    """The recomputed first d₀ columns are the saved features; more columns are new Π rows."""
    from transformers import AutoModelForCausalLM

    shutil.copytree(tiny_llama_dir, tmp_path / "world" / "bases" / "M")
    write_json(tmp_path / "profile.json", {**PROFILE, "world": {"student": "M"}, "threads": 1})
    recs = [{"prompt_id": f"q{i}", "prompt": f"how many apples does Tom have {i} ?", "sample": s,
             "response": f"Tom buys {i} + {s} = {i + s} apples .", "correct": s == 0}
            for i in range(3) for s in range(2)]
    write_jsonl(tmp_path / "generations" / "t@1" / "generations.jsonl", recs)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    n_params = sum(p.numel() for p in model.parameters())
    saved = compute_features(model, tiny_tokenizer, recs, RademacherProjector(n_params, 4, seed=9),
                             template=PROFILE["template"], progress=False)
    saved.save(tmp_path / "features" / "t@1" / "features.npz")
    got, got16, counts = A.recompute_features(tmp_path, ["t@1"], d=8, n=2)
    assert got16 is None and counts == {}
    H = got["t@1"].H
    assert H.shape == (4, 8)
    np.testing.assert_allclose(H[:, :4], saved.H[:4], rtol=1e-4, atol=1e-7)
    assert not np.allclose(H[:, 4:], H[:, :4])  # another block = other rows of Π
    got32, got16, counts16 = A.recompute_features(tmp_path, ["t@1"], d=4, n=2, with_fp16=True)
    assert counts16["n_entries"] == 4 * n_params
    np.testing.assert_allclose(got32["t@1"].H, saved.H[:4], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got16["t@1"].H, saved.H[:4], rtol=1e-2, atol=1e-5)
    assert not np.array_equal(got16["t@1"].H, got32["t@1"].H)  # fp16 rounding changed something


def test_grace_drivers_decompose_the_results_column(study):
    root, results = study
    feats = A.load_study_features(root)
    settings = A.score_settings(root)
    per, rho = A.grace_drivers(feats, results, **settings)
    want = results.set_index("config").loc[per.index]
    np.testing.assert_allclose(per["grace"], want["grace"], rtol=1e-8)
    np.testing.assert_allclose(per["g_var"] * per["spectral_factor"], per["grace"], rtol=1e-12)
    np.testing.assert_allclose(per["spanned"] + per["smoothing"], per["grace"], rtol=1e-10)
    assert list(rho.index) == list(A.DRIVERS)
    # the GRACE row is the study's own oriented Spearman for GRACE
    assert rho.loc["grace", "rho_oriented"] == pytest.approx(
        A.oriented_spearman(want["grace"], want["student_avg_at_k"]), abs=1e-12)
    with pytest.raises(ValueError, match="target 'nope'"):
        A.grace_drivers(feats, results, target="nope", **settings)


def test_study_drivers_checks_the_features_against_the_results(study):
    """The study's own features reproduce its GRACE column; features that are not the study's are refused."""
    root, results = study
    per, _ = A.study_drivers(root, results)
    np.testing.assert_allclose(per["grace"], results.set_index("config").loc[per.index, "grace"], rtol=1e-8)
    per_small, _ = A.study_drivers(root, results, nu=A.score_settings(root)["nu"] / 100)  # another ν: no check
    assert not np.allclose(per_small["grace"], per["grace"])  # the smoothing ν was applied
    with pytest.raises(ValueError, match="differs from results.csv"):
        A.study_drivers(root, results.assign(grace=results["grace"] * 2))
