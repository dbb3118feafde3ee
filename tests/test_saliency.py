"""Saliency rationales (grace.saliency): Captum attributions on a tiny teacher, top-k, operands, baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grace import saliency as S
from grace import synthetic, world

TEMPLATE = "Q: {prompt}\nA:"


@pytest.fixture(scope="module")
def tiny():
    probs = synthetic.generate_problems(6, seed=0, split="train", min_steps=1, max_steps=2)
    texts = [TEMPLATE.format(prompt=p.question) + " " + synthetic.render_solution(p, "calc") for p in probs]
    tok = world.build_tokenizer(texts)
    model = world.make_model(world.ModelSize(hidden=16, layers=1, heads=2, intermediate=32, max_positions=128), tok, 0)
    return tok, model.eval(), probs


def test_config_names_bad_values():
    with pytest.raises(ValueError, match="method='lime'"):
        S.SaliencyConfig(method="lime")
    with pytest.raises(ValueError, match="k=0"):
        S.SaliencyConfig(k=0)
    assert S.SaliencyConfig().k == 5 and S.SaliencyConfig().method == "saliency"


def test_candidates_are_the_question_tokens_only(tiny):
    tok, _, probs = tiny
    ids, cand = S.prompt_tokens(tok, probs[0].question, TEMPLATE)
    text = "".join(tok.decode([ids[i]]) for i in cand).replace(" ", "")
    assert text == probs[0].question.replace(" ", "")  # every non-blank question token, no "Q", ":" or "A"


def test_saliency_is_gradient_times_input_summed_over_target(tiny):
    tok, model, probs = tiny
    p, target = probs[0].question, " #### 7"
    got = S.token_scores(model, tok, p, target, TEMPLATE, S.SaliencyConfig())
    ids = tok(TEMPLATE.format(prompt=p))["input_ids"]
    t_ids = tok(target, add_special_tokens=False)["input_ids"]
    emb = model.get_input_embeddings()(torch.tensor([ids + t_ids])).detach().requires_grad_(True)  # (1, T, H)
    logp = torch.log_softmax(model(inputs_embeds=emb).logits[0], -1)  # (T, V)
    n = len(ids)
    total = sum(logp[n - 1 + j, t] for j, t in enumerate(t_ids))  # teacher-forced log p(target | prompt)
    total.backward()
    want = (emb.grad[0, :n] * emb[0, :n]).sum(-1).detach().numpy()  # (n,)
    keep = [i for i, t in enumerate(ids) if t not in tok.all_special_ids]
    assert np.isnan(got[0]) and np.allclose(got[keep], want[keep], atol=1e-5)


def test_integrated_gradients_complete_the_difference_to_the_baseline(tiny):
    tok, model, probs = tiny
    p, target = probs[1].question, " 5"
    ig = S.token_scores(model, tok, p, target, TEMPLATE, S.SaliencyConfig(method="integrated_gradients", ig_steps=64))
    ids = tok(TEMPLATE.format(prompt=p))["input_ids"]
    t = tok(target, add_special_tokens=False)["input_ids"][0]

    def logp(seq):
        with torch.no_grad():
            return float(torch.log_softmax(model(torch.tensor([seq])).logits[0, -1], -1)[t])

    base = [ids[0]] + [tok.pad_token_id] * (len(ids) - 1)  # every attributed token at the baseline
    assert np.nansum(ig) == pytest.approx(logp(ids) - logp(base), abs=2e-2)  # IG completeness


def test_top_k_random_k_and_rationale_text(tiny):
    tok, _, probs = tiny
    ids, cand = S.prompt_tokens(tok, probs[0].question, TEMPLATE)
    scores = np.zeros(len(ids))
    scores[cand[2]], scores[cand[0]], scores[cand[5]] = 3.0, -5.0, 1.0
    assert S.top_k(scores, cand, 2) == [cand[0], cand[2]]  # by magnitude, in prompt order
    r1, r2 = S.random_k(cand, 3, 1), S.random_k(cand, 3, 1)
    assert r1 == r2 and set(r1) <= set(cand) and len(set(r1)) == 3
    assert S.rationale_text(tok, tok("Tom has 12 apples")["input_ids"], [4, 5]) == "12"


def test_operand_share_counts_digits_of_gold_operands(tiny):
    tok, model, probs = tiny
    p = probs[0]
    ids, cand = S.prompt_tokens(tok, p.question, TEMPLATE)
    flags = S.operand_flags(tok, p.question, TEMPLATE, cand, p.operands)
    digits = [tok.decode([ids[i]]).strip().isdigit() for i in cand]
    assert flags == digits and any(flags)  # every number in a synthetic question is an operand
    assert S.operand_flags(tok, p.question, TEMPLATE, cand, {"999"}) == [False] * len(cand)
    rows = S.extract(model, tok, [{"prompt_id": p.uid, "prompt": p.question, "target": " #### 3"}], TEMPLATE,
                     S.SaliencyConfig(), lambda r: p.operands, ks=[1, 3])
    assert [r["k"] for r in rows] == [1, 3] and len(rows[1]["tokens"]) == 3
    assert 0.0 <= rows[1]["operand_share"] <= 1.0
    rnd = S.extract(None, tok, [{"prompt_id": p.uid, "prompt": p.question, "target": ""}], TEMPLATE,
                    S.SaliencyConfig(), lambda r: p.operands, ks=[5], random_seed=0)
    assert len(rnd[0]["tokens"]) == 5


def test_numbers_normalises():
    assert S.numbers("He paid $1,200 for 3.0 kg and 2.5 l") == {"1200", "3", "2.5"}
