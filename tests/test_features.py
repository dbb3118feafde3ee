"""Tests for grace.features: h = log|y| · Π g on response tokens only (paper §2.1, App. C.1, D.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grace.encoding import DEFAULT_TEMPLATE, encode_example
from grace.features import Features, compute_features, length_scale_factor
from grace.projection import IdentityProjector, RademacherProjector

torch.set_num_threads(1)

EXAMPLES = [
    {"prompt_id": "q1", "prompt": "how many apples does Tom have ?", "response": "Tom buys 3 + 4 = 7 apples .", "correct": True},
    {"prompt_id": "q1", "prompt": "how many apples does Tom have ?", "response": "7", "correct": False, "extra": 1},
    {"prompt_id": 2, "prompt": "what is 5 * 6 ?", "response": "5 * 6 = 30 so the answer is 30 .", "correct": True},
    {"prompt_id": 2, "prompt": "what is 5 * 6 ?", "response": "The answer is 11", "correct": False},
    {"prompt_id": "q3", "prompt": "Tom eats 2 apples", "response": "he has 8 left", "correct": True},
]  # fmt: skip


@pytest.fixture(scope="module")
def model(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama_dir)


@pytest.fixture(scope="module")
def tok(tiny_llama_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def reference_gradient(model, tok, ex) -> tuple[torch.Tensor, float, int]:
    """Independent autograd gradient of the response-only mean loss, via HF's own loss."""
    prompt_ids = tok(DEFAULT_TEMPLATE.format(prompt=ex["prompt"]))["input_ids"]  # BOS from the tokenizer
    resp_ids = tok(ex["response"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = torch.tensor([prompt_ids + resp_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + resp_ids])
    params = [p for p in model.parameters() if p.requires_grad]
    loss = model(input_ids=ids, labels=labels).loss
    grads = torch.autograd.grad(loss, params)
    return torch.cat([g.reshape(-1) for g in grads]), loss.item(), len(resp_ids)


@pytest.fixture(scope="module")
def feats_loop(model, tok):
    return compute_features(model, tok, EXAMPLES, IdentityProjector(n_params(model)), method="loop", batch_size=2, progress=False)


# ------------------------------------------------------------------------------------------------
# Tokenisation
# ------------------------------------------------------------------------------------------------
def test_encode_example_boundary_bos_eos(tok):
    ids, labels = encode_example(tok, "how many apples ?", "Tom has 7 .")
    prompt = tok(DEFAULT_TEMPLATE.format(prompt="how many apples ?"))["input_ids"]
    response = tok("Tom has 7 .", add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert ids == prompt + response + [tok.eos_token_id]
    assert labels == [-100] * len(prompt) + response + [tok.eos_token_id]
    ids2, labels2 = encode_example(tok, "how many apples ?", "Tom has 7 .", max_length=len(prompt) + 2)
    assert ids2 == ids[: len(prompt) + 2] and labels2[-2:] == response[:2]
    with pytest.raises(ValueError, match="max_length"):
        encode_example(tok, "how many apples ?", "Tom", max_length=3)
    with pytest.raises(ValueError, match="empty"):
        encode_example(tok, "how many apples ?", "")
    with pytest.raises(ValueError, match="placeholder"):
        encode_example(tok, "x", "y", template="no placeholder")


def test_no_bos_when_tokenizer_does_not_add_one(tok):
    from transformers import PreTrainedTokenizerFast

    plain = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer.__class__.from_str(tok.backend_tokenizer.to_str()))
    plain.backend_tokenizer.post_processor = None
    plain.eos_token, plain.bos_token = "<eos>", "<bos>"
    ids, _ = encode_example(plain, "Tom", "7")
    assert ids[0] != plain.bos_token_id and ids[-1] == plain.eos_token_id


# ------------------------------------------------------------------------------------------------
# Exactness against an independent autograd computation
# ------------------------------------------------------------------------------------------------
def test_identity_features_equal_log_length_times_autograd_gradient(model, tok, feats_loop):
    f = feats_loop
    assert f.H.shape == (len(EXAMPLES), n_params(model)) and f.H.dtype == np.float32
    for i, ex in enumerate(EXAMPLES):
        g, loss, n_sup = reference_gradient(model, tok, ex)
        assert f.lengths[i] == n_sup
        h = math.log(n_sup) * g.numpy()
        np.testing.assert_allclose(f.H[i], h, rtol=2e-5, atol=1e-6 * np.abs(h).max())
        np.testing.assert_allclose(f.grad_norm[i], g.norm().item(), rtol=1e-5)
        np.testing.assert_allclose(f.loss[i], loss, rtol=1e-5)


def test_prompt_tokens_carry_no_loss(model, tok, feats_loop):
    # the same response after a different prompt: loss/prob change only through the context,
    # and a loss that also counted prompt tokens would not match the response-only reference
    ex = EXAMPLES[0]
    prompt = tok(DEFAULT_TEMPLATE.format(prompt=ex["prompt"]))["input_ids"]
    ids = prompt + tok(ex["response"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
    targets = torch.tensor(ids[1:])
    logp = torch.log_softmax(logits, -1).gather(-1, targets[:, None])[:, 0]
    resp = torch.arange(1, len(ids)) >= len(prompt)  # position t predicts token t + 1
    assert resp.sum().item() == feats_loop.lengths[0]
    np.testing.assert_allclose(feats_loop.loss[0], -logp[resp].mean().item(), rtol=1e-5)
    np.testing.assert_allclose(feats_loop.mean_prob[0], logp[resp].exp().mean().item(), rtol=1e-5)
    assert abs(-logp.mean().item() - feats_loop.loss[0]) > 1e-3  # all-token loss would differ


def test_length_scale_variants(model, tok, feats_loop):
    P = IdentityProjector(n_params(model))
    f_none = compute_features(model, tok, EXAMPLES, P, length_scale="none", method="loop", progress=False)
    f_log2 = compute_features(model, tok, EXAMPLES, P, length_scale="log2", method="loop", progress=False)
    logy = np.log(f_none.lengths)[:, None]
    np.testing.assert_allclose(feats_loop.H, f_none.H * logy, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(f_log2.H, f_none.H * logy**2, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(length_scale_factor([1, math.e**2], "log2"), [0.0, 4.0])
    assert f_log2.meta["length_scale"] == "log2"


def test_vmap_equals_loop_and_padding_does_not_matter(model, tok, feats_loop):
    P = IdentityProjector(n_params(model))
    f_vmap = compute_features(model, tok, EXAMPLES, P, method="vmap", batch_size=5, progress=False)
    np.testing.assert_allclose(f_vmap.H, feats_loop.H, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(f_vmap.loss, feats_loop.loss, rtol=1e-5)
    np.testing.assert_allclose(f_vmap.mean_prob, feats_loop.mean_prob, rtol=1e-5)
    # example 1 ("7") is the shortest: alone (no padding) vs padded next to the longest
    alone = compute_features(model, tok, EXAMPLES[1:2], P, method="vmap", progress=False)
    padded = compute_features(model, tok, [EXAMPLES[1], EXAMPLES[2]], P, method="vmap", progress=False)
    np.testing.assert_allclose(padded.H[0], alone.H[0], rtol=1e-4, atol=1e-7)
    assert np.abs(alone.H[0]).max() > 0


def test_vmap_equals_loop_with_tied_embeddings_and_projection(tok, tiny_llama_factory):
    model = tiny_llama_factory(len(tok), seed=1, tie_word_embeddings=True)
    P = RademacherProjector(n_params(model), 64, seed=3)
    a = compute_features(model, tok, EXAMPLES, P, method="loop", batch_size=3, progress=False)
    b = compute_features(model, tok, EXAMPLES, P, method="vmap", batch_size=3, progress=False)
    np.testing.assert_allclose(a.H, b.H, rtol=1e-4, atol=1e-6)
    assert a.H.shape == (5, 64) and a.meta["projector"]["kind"] == "rademacher"


def test_model_state_untouched(model, tok):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    p0 = next(model.parameters())
    p0.grad = torch.ones_like(p0)
    compute_features(model, tok, EXAMPLES[:3], IdentityProjector(n_params(model)), method="loop", progress=False)
    compute_features(model, tok, EXAMPLES[:3], IdentityProjector(n_params(model)), method="vmap", progress=False)
    assert model.training, "training mode must be restored"
    assert torch.equal(p0.grad, torch.ones_like(p0)), ".grad must be restored"
    p0.grad = None
    model.eval()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_prompt_ids_correct_and_roundtrip(tmp_path, feats_loop):
    f = feats_loop
    assert f.prompt_keys == ["q1", 2, "q3"]
    np.testing.assert_array_equal(f.prompt_ids, [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(f.correct, [True, False, True, False, True])
    assert f.prompt_ids.dtype == np.int64
    f.save(tmp_path / "f.npz")
    g = Features.load(tmp_path / "f.npz")
    for k in ("H", "prompt_ids", "lengths", "loss", "mean_prob", "grad_norm", "correct"):
        np.testing.assert_array_equal(getattr(g, k), getattr(f, k))
    assert g.prompt_keys == ["q1", 2, "q3"]
    assert g.meta["template"] == DEFAULT_TEMPLATE and g.meta["grace_version"]
    assert g.meta["projector"] == {"kind": "identity", "dim_in": f.H.shape[1], "dim_out": f.H.shape[1]}
    with open(tmp_path / "f.npz", "rb") as fh:
        assert b"pickle" not in fh.read()
    with pytest.raises(ValueError, match="no features file"):
        Features.load(tmp_path / "missing.npz")


def test_no_correct_field_gives_none(model, tok):
    exs = [{k: v for k, v in ex.items() if k != "correct"} for ex in EXAMPLES[:2]]
    f = compute_features(model, tok, exs, IdentityProjector(n_params(model)), method="loop", progress=True)
    assert f.correct is None and len(f) == 2


# ------------------------------------------------------------------------------------------------
# Resumption
# ------------------------------------------------------------------------------------------------
class _CrashingProjector(RademacherProjector):
    """Same Π (and meta) as RademacherProjector, but dies on the n-th batch, like a killed run."""

    def __init__(self, *args, crash_on: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.crash_on = 0, crash_on

    def project(self, G):
        self.calls += 1
        if self.calls == self.crash_on:
            raise KeyboardInterrupt("simulated kill")
        return super().project(G)


def test_resume_after_kill_equals_uninterrupted(model, tok, tmp_path):
    exs = EXAMPLES * 2  # 10 examples, 5 batches of 2
    D = n_params(model)
    full = compute_features(model, tok, exs, RademacherProjector(D, 32, seed=1), batch_size=2, progress=False)

    out = tmp_path / "feats.npz"
    partial = tmp_path / "feats.npz.partial.npz"
    with pytest.raises(KeyboardInterrupt):
        compute_features(model, tok, exs, _CrashingProjector(D, 32, seed=1, crash_on=4), batch_size=2,
                         progress=False, out=out, checkpoint_every=1)  # fmt: skip
    assert partial.exists() and not out.exists()
    from grace.io import read_json

    assert read_json(partial.with_suffix(".json"))["count"] == 6  # 3 batches done before the kill
    crashing = _CrashingProjector(D, 32, seed=1, crash_on=10**9)
    resumed = compute_features(model, tok, exs, crashing, batch_size=2, progress=False, out=out)
    assert crashing.calls == 2, "only the 2 missing batches are computed"
    assert out.exists() and not partial.exists()
    for k in ("H", "loss", "mean_prob", "grad_norm", "lengths", "prompt_ids"):
        np.testing.assert_array_equal(getattr(resumed, k), getattr(full, k))
    # a finished file is reused, not recomputed
    never = _CrashingProjector(D, 32, seed=1, crash_on=1)
    again = compute_features(model, tok, exs, never, batch_size=2, progress=False, out=out)
    np.testing.assert_array_equal(again.H, full.H)


def test_max_batches_then_resume(model, tok, tmp_path):
    D = n_params(model)
    P = RademacherProjector(D, 16, seed=2)
    out = tmp_path / "f.npz"
    head = compute_features(model, tok, EXAMPLES, P, batch_size=2, progress=False, out=out, max_batches=1)
    assert len(head) == 2 and head.meta["complete"] is False and not out.exists()
    rest = compute_features(model, tok, EXAMPLES, P, batch_size=2, progress=False, out=out)
    ref = compute_features(model, tok, EXAMPLES, P, batch_size=2, progress=False)
    assert rest.meta["complete"] is True
    np.testing.assert_array_equal(rest.H, ref.H)
    for row in head.H:  # the first batch's rows (the two longest examples) are rows of the full run
        assert (ref.H == row).all(1).sum() == 1
    longest = sorted(range(len(EXAMPLES)), key=lambda i: -len(encode_example(tok, EXAMPLES[i]["prompt"], EXAMPLES[i]["response"])[0]))[:2]
    np.testing.assert_array_equal(head.H, ref.H[sorted(longest)])
    np.testing.assert_array_equal(head.prompt_ids, ref.prompt_ids[sorted(longest)])


def test_stale_partial_is_ignored(model, tok, tmp_path):
    D = n_params(model)
    out = tmp_path / "f.npz"
    compute_features(model, tok, EXAMPLES, RademacherProjector(D, 16, seed=2), batch_size=2, progress=False,
                     out=out, max_batches=1)  # fmt: skip
    other = compute_features(model, tok, EXAMPLES, RademacherProjector(D, 16, seed=3), batch_size=2, progress=False, out=out)
    ref = compute_features(model, tok, EXAMPLES, RademacherProjector(D, 16, seed=3), batch_size=2, progress=False)
    np.testing.assert_array_equal(other.H, ref.H)


# ------------------------------------------------------------------------------------------------
# Fig. 21 helper and bad inputs
# ------------------------------------------------------------------------------------------------
def test_length_trend_on_computed_features(feats_loop):
    """The App. D.4 fit (grace.analysis.length_trend) reads what compute_features stores."""
    from grace.analysis import length_trend

    fit = length_trend(feats_loop.lengths, feats_loop.grad_norm, n_boot=0)
    assert fit["n"] == len(EXAMPLES) and math.isfinite(fit["exponent"])
    T = np.array([3, 10, 100])
    assert length_trend(T, 1 / np.log(T), n_boot=0)["exponent"] == pytest.approx(-1, abs=1e-9)


@pytest.mark.parametrize(
    "examples, kwargs, match",
    [
        ([{"prompt": "Tom", "response": "7"}], {}, "example 0 is missing 'prompt_id'"),
        ([EXAMPLES[0], {"prompt_id": 1, "response": "7"}], {}, "example 1 is missing 'prompt'"),
        ([EXAMPLES[0], EXAMPLES[1], {"prompt_id": 1, "prompt": "Tom", "response": "  "}], {}, "example 2"),
        ([{"prompt_id": 1.5, "prompt": "Tom", "response": "7"}], {}, "prompt_id"),
        ([], {}, "empty"),
        (EXAMPLES, {"length_scale": "sqrt"}, "length_scale"),
        (EXAMPLES, {"method": "jit"}, "method"),
        (EXAMPLES, {"batch_size": 0}, "batch_size"),
        (EXAMPLES, {"max_batches": 0}, "max_batches"),
        ([EXAMPLES[0], {"prompt_id": 1, "prompt": "Tom", "response": "7"}], {}, "correct"),
    ],
)
def test_bad_inputs(model, tok, examples, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute_features(model, tok, examples, IdentityProjector(n_params(model)), progress=False, **kwargs)


def test_projector_dim_mismatch(model, tok):
    with pytest.raises(ValueError, match=f"dim_in={n_params(model)}"):
        compute_features(model, tok, EXAMPLES, RademacherProjector(n_params(model) + 1, 8), progress=False)
