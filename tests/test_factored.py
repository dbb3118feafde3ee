"""The factored (LoGra-style) projector: its fast path equals the same linear map on explicit gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import grace.factored
from grace.encoding import encode_example
from grace.factored import FactoredProjector, factored_layout
from grace.features import compute_features

EXAMPLES = [{"prompt_id": f"p{i}", "prompt": "Tom has 3 apples", "response": r}
            for i, r in enumerate(["he buys 2 . so 5", "The answer is 7", "she eats 1 and then 4 left", "# 9"])]


@pytest.mark.parametrize("tied,bias", [(False, False), (True, False), (True, True)])
def test_fast_path_equals_the_map_on_explicit_gradients(tiny_llama_factory, tiny_tokenizer, tied, bias):
    model = tiny_llama_factory(len(tiny_tokenizer), tie_word_embeddings=tied, attention_bias=bias, mlp_bias=bias)
    proj = FactoredProjector(model, 24, seed=3, k=4, norms="exact")
    kw = dict(template="{prompt}", progress=False, batch_size=4)
    fast = compute_features(model, tiny_tokenizer, EXAMPLES, proj, **kw)  # hooks, no per-sample gradient
    ref = compute_features(model, tiny_tokenizer, EXAMPLES, proj, method="loop", **kw)  # explicit g, same map
    assert fast.meta["method"] == "factored" and ref.meta["method"] == "loop"
    np.testing.assert_allclose(fast.H, ref.H, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fast.loss, ref.loss, rtol=1e-5)
    np.testing.assert_allclose(fast.grad_norm, ref.grad_norm, rtol=1e-4)  # exact ‖g‖ from token Grams
    assert all(p.requires_grad and p.grad is None for p in model.parameters())  # weights untouched


@pytest.mark.parametrize("norm_from", ["grams", "matrix"])
def test_norm_routes_and_the_sliced_output_layer_change_nothing(tiny_llama_factory, tiny_tokenizer, monkeypatch,
                                                                norm_from):
    # ‖g‖ from token Grams or from each [out, in] gradient (long sequences), and logits only where a loss is taken
    model = tiny_llama_factory(len(tiny_tokenizer), tie_word_embeddings=True)
    proj = FactoredProjector(model, 24, seed=3, k=4, norms="exact")
    kw = dict(template="{prompt}", progress=False, batch_size=4)
    monkeypatch.setattr(grace.factored, "_grams_are_cheaper", lambda *shape: norm_from == "grams")
    rows = []
    hook = model.lm_head.register_forward_hook(lambda m, inputs, out: rows.append(inputs[0].shape[1]))
    fast = compute_features(model, tiny_tokenizer, EXAMPLES, proj, **kw)
    hook.remove()
    encoded = [encode_example(tiny_tokenizer, e["prompt"], e["response"], "{prompt}") for e in EXAMPLES]
    first = min(next(t for t, y in enumerate(labels) if y != -100) for _, labels in encoded)  # first scored label
    longest = max(len(ids) for ids, _ in encoded)
    assert first > 1 and rows == [longest - first + 1]  # positions before first - 1 never reach the output layer
    ref = compute_features(model, tiny_tokenizer, EXAMPLES, proj, method="loop", **kw)
    np.testing.assert_allclose(fast.H, ref.H, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fast.loss, ref.loss, rtol=1e-5)
    np.testing.assert_allclose(fast.grad_norm, ref.grad_norm, rtol=1e-4)


def test_inner_products_are_preserved_in_expectation(tiny_llama_factory, tiny_tokenizer):
    model = tiny_llama_factory(len(tiny_tokenizer))
    G = torch.randn(2, sum(p.numel() for p in model.parameters()))
    est = []
    for seed in range(30):
        p = FactoredProjector(model, 64, seed=seed, k=8)
        H = p.project(G) / p.rescale  # the final Π has entries ±1/√K: E<Πz, Πz'> = (d/K)<z, z'>
        est.append(float(H[0] @ H[1]) * p.z_dim / 64)
    assert np.mean(est) == pytest.approx(float(G[0] @ G[1]), abs=4 * np.std(est) / np.sqrt(30))


def test_layout_refuses_what_it_cannot_cover(tiny_llama_factory, tiny_tokenizer):
    model = tiny_llama_factory(len(tiny_tokenizer))
    model.model.extra = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="extra"):
        factored_layout(model, 4)
    del model.model.extra
    blocks = factored_layout(model, 4)
    assert [b.name for b in blocks] == [n for n, _ in model.named_parameters()]
    with pytest.raises(ValueError, match="whole"):
        FactoredProjector(model, 8, k=4).project_partial(torch.zeros(1, 5), 1)


def test_sketched_norms_are_the_norm_of_z_and_leave_h_unchanged(tiny_llama_factory, tiny_tokenizer):
    # norms="sketch" (the default): grad_norm = ‖z‖ (E‖z‖² = ‖g‖²), H the same as with exact norms; the kind is
    # in the cache key
    model = tiny_llama_factory(len(tiny_tokenizer), tie_word_embeddings=True)
    kw = dict(template="{prompt}", progress=False, batch_size=4)
    exact = FactoredProjector(model, 24, seed=3, k=4, norms="exact")
    sketch = FactoredProjector(model, 24, seed=3, k=4)
    assert sketch.norms == "sketch" and exact.norms == "exact" and exact.meta()["norms"] != sketch.meta()["norms"]
    fe, fs = (compute_features(model, tiny_tokenizer, EXAMPLES, p, **kw) for p in (exact, sketch))
    np.testing.assert_array_equal(fs.H, fe.H)
    np.testing.assert_array_equal(fs.loss, fe.loss)
    ids_labels = [encode_example(tiny_tokenizer, e["prompt"], e["response"], "{prompt}") for e in EXAMPLES]
    ref = compute_features(model, tiny_tokenizer, EXAMPLES, sketch, method="loop", **kw)  # explicit g, always exact
    np.testing.assert_allclose(ref.grad_norm, fe.grad_norm, rtol=1e-4)
    z = []
    for ids, labels in ids_labels:  # ‖z‖ from the reference map on each explicit gradient
        model.zero_grad()
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
        tgt = torch.tensor(labels[1:])
        torch.nn.functional.cross_entropy(logits, tgt, ignore_index=-100).backward()
        g = torch.cat([p.grad.reshape(1, -1) for _, p in model.named_parameters()], 1)
        z.append(torch.cat([sketch._z_block(b, g[:, b.offset: b.offset + b.numel]) for b in sketch.blocks], 1).norm())
    model.zero_grad()
    np.testing.assert_allclose(fs.grad_norm, torch.stack(z).detach().numpy(), rtol=1e-4)
    assert not np.allclose(fs.grad_norm, fe.grad_norm, rtol=1e-6)  # an estimate, not the norm
    with pytest.raises(ValueError, match="norms='approx'"):
        FactoredProjector(model, 24, norms="approx")
