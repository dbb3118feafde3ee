"""The distillation methods (grace.methods): losses checked against hand computations, configs, training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from grace import methods, world
from grace.distill import TrainConfig
from grace.methods import rationale, soft
from grace.methods.soft import SoftLabelConfig, soft_label_loss

TEMPLATE = "Q: {prompt}\nA:"


def _logits(seed: int, shape=(3, 5, 11), scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


def _labels(shape=(3, 5), vocab=11, seed=2):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, vocab, shape, generator=g)
    y[0, :2] = -100  # prompt positions
    y[2, 4] = -100  # padding
    return y


def test_registry_lists_three_methods_with_what_they_need():
    assert list(methods.METHODS) == ["sft", "soft", "rationale"]
    assert [m.needs for m in methods.METHODS.values()] == ["text", "logits", "gradients"]
    with pytest.raises(ValueError, match="use one of"):
        methods.get_method("dpo")
    with pytest.raises(ValueError, match="no parameter \\['tau'\\]"):
        methods.make_config("soft", tau=2)


def test_soft_config_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="temperature=0"):
        SoftLabelConfig(temperature=0)
    with pytest.raises(ValueError, match="alpha=1.5"):
        SoftLabelConfig(alpha=1.5)
    with pytest.raises(ValueError, match="weight=-1"):
        rationale.RationaleConfig(weight=-1)


def test_soft_loss_is_forward_kl_at_tau_1_alpha_1():
    s, t, y = _logits(0), _logits(1), _labels()
    got = soft_label_loss(s, t, y, SoftLabelConfig(temperature=1.0, alpha=1.0))["loss"]
    mask = y != -100
    ls, lt = F.log_softmax(s[mask], -1), F.log_softmax(t[mask], -1)  # (n, V)
    want = F.kl_div(ls, lt, reduction="sum", log_target=True) / mask.sum()  # KL(teacher || student) per token
    by_hand = (lt.exp() * (lt - ls)).sum(-1).mean()
    assert torch.allclose(got, want, atol=1e-6) and torch.allclose(got, by_hand, atol=1e-6)
    reverse = (ls.exp() * (ls - lt)).sum(-1).mean()  # the other direction must not pass
    assert not torch.allclose(got, reverse, atol=1e-3)


def test_soft_loss_alpha_0_is_hard_cross_entropy_and_mix_is_linear():
    s, t, y = _logits(0), _logits(1), _labels()
    ce = F.cross_entropy(s.reshape(-1, 11), y.reshape(-1), ignore_index=-100)
    assert torch.allclose(soft_label_loss(s, None, y, SoftLabelConfig(temperature=3.0, alpha=0.0))["loss"], ce)
    tau, a = 2.0, 0.3
    parts = soft_label_loss(s, t, y, SoftLabelConfig(temperature=tau, alpha=a))
    mask = y != -100
    ls, lt = F.log_softmax(s[mask] / tau, -1), F.log_softmax(t[mask] / tau, -1)
    kl = (lt.exp() * (lt - ls)).sum(-1).mean()
    assert torch.allclose(parts["loss"], a * tau**2 * kl + (1 - a) * ce, atol=1e-6)


def _grad_norm(tau: float, compensate: bool) -> float:
    s = _logits(0, scale=0.5).requires_grad_(True)
    t, y = _logits(1, scale=0.5), _labels()
    soft_label_loss(s, t, y, SoftLabelConfig(temperature=tau, alpha=1.0, compensate=compensate))["loss"].backward()
    return float(s.grad.norm())


def test_tau_squared_keeps_the_soft_gradient_size_roughly_tau_invariant():
    # Hinton et al. §2: without τ² the soft gradients shrink as 1/τ²; with it they stay about the same size
    with_c = [_grad_norm(t, True) for t in (2.0, 4.0, 8.0)]
    without = [_grad_norm(t, False) for t in (2.0, 4.0, 8.0)]
    assert max(with_c) / min(with_c) < 1.3
    assert without[0] / without[2] > 10  # ~ (8/2)^2 = 16


def test_mismatched_tokenizers_are_refused_with_the_token_that_differs(tiny_tokenizer):
    other = world.build_tokenizer(["Q: how many apples does Tom have ?"])
    with pytest.raises(ValueError, match="tokenizer differs from the student's.*method 'sft'"):
        methods.check_same_tokenizer(tiny_tokenizer, other)
    methods.check_same_tokenizer(tiny_tokenizer, tiny_tokenizer)


def test_dual_objective_weights_label_and_rationale_as_configured():
    logits, y = _logits(0, shape=(4, 5, 11)), _labels(shape=(4, 5))
    task = torch.tensor([0, 1, 0, 1])
    tok = F.cross_entropy(logits.reshape(-1, 11), y.reshape(-1), ignore_index=-100, reduction="none").view(4, 5)
    m = y != -100
    lab = tok[[0, 2]][m[[0, 2]]].mean()
    rat = tok[[1, 3]][m[[1, 3]]].mean()
    for w in (0.0, 0.5, 2.0):
        got = rationale.dual_objective_loss(logits, y, task, w)
        assert torch.allclose(got["loss"], lab + w * rat, atol=1e-6)
    only_label = rationale.dual_objective_loss(logits[[0, 2]], y[[0, 2]], task[[0, 2]], 1.0)
    assert torch.allclose(only_label["loss"], lab, atol=1e-6)


def test_encode_dual_makes_a_label_and_a_rationale_example(tiny_tokenizer):
    cfg = rationale.RationaleConfig(rationale_prefix="Explain ")
    recs = [{"prompt": "how many apples", "label": "# 5", "rationale": "apples 5"},
            {"prompt": "how many apples", "label": "# 6", "rationale": ""}]
    enc = rationale.encode_dual(tiny_tokenizer, recs, "{prompt} ?", cfg, 64)
    assert [e["task"] for e in enc] == [0, 1, 0]
    assert len(enc[1]["input_ids"]) > len(enc[0]["input_ids"])  # the rationale prompt carries the prefix


@pytest.fixture(scope="module")
def mini():
    """A miniature tokenizer, a student and a teacher (same tokenizer) and 16 examples."""
    texts = [f"Q: Tom has {a} apples. He buys {b} more. How many apples?\nA: {a}+{b}={a + b}\n#### {a + b}"
             for a in range(1, 5) for b in range(1, 5)]
    tok = world.build_tokenizer(texts + ["Explain. "])
    size = world.ModelSize(hidden=16, layers=1, heads=2, intermediate=32, max_positions=64)
    student, teacher = world.make_model(size, tok, seed=0), world.make_model(size, tok, seed=1)
    recs = [{"prompt_id": i, "prompt": t.split("\nA:")[0][3:], "response": t.split("\nA:")[1]}
            for i, t in enumerate(texts)]
    return tok, student, teacher, recs


def test_soft_training_runs_and_alpha_0_equals_sft(mini, tmp_path):
    tok, student, teacher, recs = mini
    cfg = TrainConfig(learning_rate=1e-2, max_steps=3, batch_size=8, seed=0)
    a = world.make_model(world.ModelSize(hidden=16, layers=1, heads=2, intermediate=32, max_positions=64), tok, 0)
    b = world.make_model(world.ModelSize(hidden=16, layers=1, heads=2, intermediate=32, max_positions=64), tok, 0)
    sa = methods.train("sft", a, tok, recs, cfg, methods.make_config("sft"), TEMPLATE, tmp_path / "a")
    sb = methods.train("soft", b, tok, recs, cfg, SoftLabelConfig(alpha=0.0), TEMPLATE, tmp_path / "b",
                       teacher=teacher, teacher_tokenizer=tok)
    assert math.isclose(sa["train_loss"], sb["train_loss"], rel_tol=1e-5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
    c = world.make_model(world.ModelSize(hidden=16, layers=1, heads=2, intermediate=32, max_positions=64), tok, 0)
    sc = methods.train("soft", c, tok, recs, cfg, SoftLabelConfig(alpha=1.0, temperature=2.0), TEMPLATE,
                       tmp_path / "c", teacher=teacher, teacher_tokenizer=tok)
    assert sc["steps"] == 3 and not math.isclose(sc["train_loss"], sa["train_loss"], rel_tol=1e-3)
    with pytest.raises(ValueError, match="needs teacher="):
        methods.train("soft", c, tok, recs, cfg, SoftLabelConfig(), TEMPLATE, tmp_path / "d")


def test_soft_label_entropy_rises_with_temperature(mini):
    tok, _, teacher, recs = mini
    from grace.encoding import encode_all

    enc = encode_all(tok, recs, TEMPLATE, 64)
    ent = soft.teacher_entropy(teacher, enc, [0.5, 1.0, 4.0], tok.pad_token_id)
    assert ent[0.5] < ent[1.0] < ent[4.0] <= math.log(len(tok)) + 1e-6


def test_rationale_training_runs(mini, tmp_path):
    tok, _, _, recs = mini
    s = world.make_model(world.ModelSize(hidden=16, layers=1, heads=2, intermediate=32, max_positions=64), tok, 0)
    dual = [{"prompt": r["prompt"], "label": r["response"].split("\n")[-1], "rationale": "Tom apples"} for r in recs]
    out = methods.train("rationale", s, tok, dual, TrainConfig(learning_rate=1e-2, max_steps=2, batch_size=8),
                        rationale.RationaleConfig(), TEMPLATE, tmp_path / "r")
    assert out["n_examples"] == 32 and out["steps"] == 2 and math.isfinite(out["train_loss"])
