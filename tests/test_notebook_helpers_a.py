"""Tests for the helpers behind chapters 1–3: JL checks (grace.jl) and the gradient-norm-vs-length
fits (grace.analysis.length_trend, study_gradient_norms; paper §2.1, App. D.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grace import jl
from grace.analysis import length_trend, study_gradient_norms
from grace.features import Features
from grace.projection import IdentityProjector, RademacherProjector, SparseJLProjector

torch.set_num_threads(1)

EXAMPLES = [
    {"prompt_id": "a", "prompt": "how many apples does Tom have ?", "response": "Tom buys 3 + 4 = 7 apples ."},
    {"prompt_id": "a", "prompt": "how many apples does Tom have ?", "response": "7"},
    {"prompt_id": "b", "prompt": "what is 5 * 6 ?", "response": "5 * 6 = 30 so the answer is 30 ."},
]
TEMPLATE = "### Problem: {prompt} Solution:"


# ------------------------------------------------------------------------------------------ grace.jl
def test_unbiased_scale_per_projector():
    assert jl.unbiased_scale(RademacherProjector(1000, 20)) == pytest.approx(50.0)
    assert jl.unbiased_scale(SparseJLProjector(1000, 20, nnz=4)) == 1.0
    assert jl.unbiased_scale(IdentityProjector(7)) == 1.0


def test_identity_projection_has_no_distortion():
    G = torch.randn(5, 40, generator=torch.Generator().manual_seed(0))
    err = jl.distortions(G, IdentityProjector(40).project(G), 1.0)
    assert err["norm"].shape == (5,) and err["inner"].shape == (10,) and err["cosine"].shape == (10,)
    for k in ("norm", "inner", "cosine"):
        assert np.abs(err[k]).max() < 1e-6


def test_basis_vectors_keep_their_norm_exactly_under_rademacher():
    # ‖Π e_i‖² = d · (1/√D)² = d/D exactly, so the rescaled norm error is 0 and so is the prediction
    D, d = 64, 8
    G = torch.eye(D)[:4]
    proj = RademacherProjector(D, d, seed=3)
    err = jl.distortions(G, proj.project(G), jl.unbiased_scale(proj))
    assert np.abs(err["norm"]).max() < 1e-6
    assert jl.predicted_rms(G, d)["norm"] == pytest.approx(0.0, abs=1e-12)


def test_predicted_rms_matches_monte_carlo_over_projector_seeds():
    rng = np.random.default_rng(1)
    G = torch.from_numpy(rng.standard_normal((4, 300))).float()
    G[0, 0] = 30.0  # one heavy coordinate: the Σ x_i⁴ correction matters for row 0
    G[1] += 0.8 * G[2]  # a correlated pair
    d = 16
    pred = jl.predicted_rms(G, d)
    for make in (lambda s: RademacherProjector(300, d, seed=s), lambda s: SparseJLProjector(300, d, seed=s, nnz=4)):
        norm, inner = [], []
        for s in range(300):
            proj = make(s)
            err = jl.distortions(G, proj.project(G), jl.unbiased_scale(proj))
            norm.append(err["norm"])
            inner.append(err["inner"])
        assert abs(np.mean(np.concatenate(inner))) < 0.03  # unbiased
        assert np.sqrt(np.mean(np.concatenate(norm) ** 2)) == pytest.approx(pred["norm"], rel=0.15)
        assert np.sqrt(np.mean(np.concatenate(inner) ** 2)) == pytest.approx(pred["inner"], rel=0.15)
    # spread-out rows: the norm prediction is close to the textbook √(2/d), the heavy row pulls it below
    assert pred["norm"] < math.sqrt(2 / d)


def test_gram_in_chunks_matches_float64_products():
    G = torch.from_numpy(np.random.default_rng(3).standard_normal((3, 1000))).float()
    Gd = G.double()
    np.testing.assert_allclose(jl.gram(G, chunk=64), (Gd @ Gd.T).numpy(), rtol=1e-12)
    np.testing.assert_allclose(jl.gram(G, square=True, chunk=300), ((Gd**2) @ (Gd**2).T).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="\\[n, D\\]"):
        jl.gram(torch.ones(4))


def test_distortions_rejects_bad_input():
    with pytest.raises(ValueError, match="same n"):
        jl.distortions(torch.ones(3, 5), torch.ones(2, 2))
    with pytest.raises(ValueError, match="all zeros"):
        jl.distortions(torch.zeros(2, 5), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="d=0"):
        jl.predicted_rms(torch.ones(2, 5), 0)


def test_jl_table_shrinks_with_d():
    G = torch.from_numpy(np.random.default_rng(2).standard_normal((6, 2000))).float()
    tab = jl.jl_table(G, [8, 256], seeds=[0, 1])
    assert len(tab) == 2 * 2 * 2 and set(tab.kind) == {"rademacher", "sparse_jl"}
    m = tab.groupby(["kind", "d"]).rms_inner.mean()
    for kind in ("rademacher", "sparse_jl"):
        assert m[(kind, 256)] < m[(kind, 8)] / 2
    assert tab.loc[tab.d == 256, "pred_inner"].iloc[0] == pytest.approx(tab.loc[tab.d == 8, "pred_inner"].iloc[0] / math.sqrt(32))  # 1/√d
    with pytest.raises(ValueError, match="multiple of nnz"):
        jl.jl_table(G, [10], seeds=[0])
    with pytest.raises(ValueError, match="kind="):
        jl.jl_table(G, [8], kinds=("gaussian",))


def _manual_grad(model, tok, ex) -> torch.Tensor:
    from grace.encoding import encode_example

    ids, labels = encode_example(tok, ex["prompt"], ex["response"], TEMPLATE)
    model.zero_grad()
    logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
    y = torch.tensor(labels[1:])
    loss = torch.nn.functional.cross_entropy(logits, y, ignore_index=-100)
    loss.backward()
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    model.zero_grad()
    return g


def test_per_sample_gradients_are_the_raw_response_gradients(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    G, lengths = jl.per_sample_gradients(model, tok, EXAMPLES, TEMPLATE, batch_size=2)
    assert G.shape == (3, sum(p.numel() for p in model.parameters()))
    assert list(lengths) == [10, 2, 12]  # response words + EOS
    for i, ex in enumerate(EXAMPLES):
        torch.testing.assert_close(G[i], _manual_grad(model, tok, ex), rtol=1e-4, atol=1e-6)

    Gs, _ = jl.per_sample_gradients(model, tok, EXAMPLES, TEMPLATE, param_pattern=r"layers\.1\.mlp")
    sub = sum(p.numel() for n, p in model.named_parameters() if "layers.1.mlp" in n)
    assert Gs.shape == (3, sub)
    offsets, off = {}, 0
    for n, p in model.named_parameters():
        offsets[n] = (off, off + p.numel())
        off += p.numel()
    cols = torch.cat([torch.arange(*offsets[n]) for n in offsets if "layers.1.mlp" in n])
    torch.testing.assert_close(Gs, G[:, cols], rtol=1e-4, atol=1e-6)
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    with pytest.raises(ValueError, match="matches no trainable parameter"):
        jl.per_sample_gradients(model, tok, EXAMPLES, TEMPLATE, param_pattern="no_such_layer")


# ------------------------------------------------------------------- grace.analysis: App. D.4 helpers
def test_length_trend_recovers_inverse_log_powers():
    rng = np.random.default_rng(0)
    T = rng.integers(3, 300, 500)
    noise = np.exp(rng.normal(0, 0.05, T.shape))
    one = length_trend(T, 2.0 / np.log(T) * noise, n_boot=200)
    assert one["exponent_ci_low"] < -1 < one["exponent_ci_high"]
    assert one["r2_inv_log"] > 0.9 and one["r2_inv_log"] > one["r2_inv_log2"]
    assert one["a_inv_log"] == pytest.approx(2.0, rel=0.1) and one["spearman"] < -0.8
    two = length_trend(T, 2.0 / np.log(T) ** 2 * noise, n_boot=200)
    assert two["exponent"] == pytest.approx(-2, abs=0.1) and two["r2_inv_log2"] > two["r2_inv_log"]
    flat = length_trend(T, noise, n_boot=200)
    assert flat["exponent_ci_low"] < 0 < flat["exponent_ci_high"]
    assert math.isnan(one["within_exponent"])  # no groups given


def test_length_trend_within_groups_removes_between_group_confounding():
    # two "teachers": short answers with large gradients and long answers with small ones, but
    # inside each teacher the gradient norm does not depend on the length at all
    rng = np.random.default_rng(1)
    T = np.concatenate([rng.integers(3, 10, 200), rng.integers(40, 80, 200)])
    g = np.concatenate([np.full(200, 5.0), np.full(200, 1.0)]) * np.exp(rng.normal(0, 0.05, 400))
    groups = np.array(["short"] * 200 + ["long"] * 200)
    r = length_trend(T, g, groups=groups, n_boot=200)
    assert r["exponent"] < -1.5  # the pooled fit sees a steep decline
    assert r["within_exponent_ci_low"] < 0 < r["within_exponent_ci_high"]  # none inside a group
    assert abs(r["within_exponent"]) < 0.3


def test_length_trend_degenerate_and_bad_input():
    r = length_trend([5, 5, 9, 1, 9], [1.0, 2.0, 3.0, 4.0, 0.5], n_boot=10)
    assert r["n"] == 4 and r["n_lengths"] == 2 and math.isnan(r["exponent"]) and math.isnan(r["r2_inv_log"])
    with pytest.raises(ValueError, match="same length"):
        length_trend([3, 4], [1.0])
    with pytest.raises(ValueError, match="groups"):
        length_trend([3, 4, 5], [1.0, 2.0, 3.0], groups=["a"])
    with pytest.raises(ValueError, match="level"):
        length_trend([3, 4, 5], [1.0, 2.0, 3.0], level=1.5)


def _features(n: int, seed: int) -> Features:
    rng = np.random.default_rng(seed)
    return Features(H=rng.standard_normal((n, 4)).astype(np.float32), prompt_ids=np.arange(n) // 2,
                    prompt_keys=[f"p{i}" for i in range((n + 1) // 2)], lengths=rng.integers(2, 30, n),
                    loss=rng.random(n).astype(np.float32), mean_prob=rng.random(n).astype(np.float32),
                    grad_norm=rng.random(n).astype(np.float32) + 0.1,
                    correct=None if seed else rng.random(n) > 0.5)


def test_study_gradient_norms_reads_every_config(tmp_path):
    with pytest.raises(ValueError, match="no features"):
        study_gradient_norms(tmp_path)
    a, b = _features(6, 0), _features(4, 1)
    a.save(tmp_path / "features" / "t1@0.5" / "features.npz")
    b.save(tmp_path / "features" / "t2@1" / "features.npz")
    df = study_gradient_norms(tmp_path)
    assert len(df) == 10 and list(df.config.unique()) == ["t1@0.5", "t2@1"]
    np.testing.assert_array_equal(df.length[:6], a.lengths)
    np.testing.assert_allclose(df.grad_norm[6:], b.grad_norm, rtol=1e-6)
    np.testing.assert_allclose(df.h_norm[:6], np.linalg.norm(a.H, axis=1), rtol=1e-6)
    assert df.correct[:6].notna().all() and df.correct[6:].isna().all()
