"""grace.real: the candidate sets of chapter 12 (human solutions, damaged copies, self-samples)."""

from __future__ import annotations

import chat_checkpoints as C
import numpy as np
import pytest

from grace import real
from grace.answers import extract_gsm8k_answer
from grace.world import load_model, load_tokenizer

PROMPTS = [{"prompt_id": f"g{i}", "prompt": f"Tom has {i} apples and buys 3. How many?", "answer": str(i + 3),
            "reference_solution": f"He starts with {i} apples.\nHe buys 3 more, so {i} + 3 = {i + 3}.\n#### {i + 3}"}
           for i in range(5, 11)]


def test_degradations_damage_what_they_say_and_nothing_else():
    human = real.human_records(PROMPTS)
    assert [r["response"] for r in human] == [p["reference_solution"] for p in PROMPTS]
    wrong = real.degrade(human, "wrong_answer", seed=1)
    for h, w in zip(human, wrong, strict=True):
        assert extract_gsm8k_answer(w["response"]) != extract_gsm8k_answer(h["response"]) and not w["correct"]
        assert w["response"].split("\n")[0] == h["response"].split("\n")[0]  # the first step is untouched
        assert f"= {extract_gsm8k_answer(w['response'])}." in w["response"]  # the stated result moved too
    shuffled = real.degrade(human, "shuffled_steps", seed=1)
    for h, s in zip(human, shuffled, strict=True):
        assert s["response"] != h["response"] and sorted(s["response"].split("\n")) == sorted(h["response"].split("\n"))
        assert s["response"].endswith(h["response"].split("\n")[-1]) and s["correct"]
    only = real.degrade(human, "answer_only")
    assert all(o["response"] == f"#### {p['answer']}" for o, p in zip(only, PROMPTS, strict=True))
    assert real.degrade(human, "wrong_answer", seed=1) == wrong  # seeded
    with pytest.raises(ValueError, match="unknown degradation"):
        real.degrade(human, "typos")


def test_self_samples_and_scores_on_a_chat_checkpoint(tmp_path):
    path = C.build("qwen2.5", tmp_path / "qwen", steps=60)
    model, tok = load_model(path), load_tokenizer(path)
    prompts = [{**p, "reference_solution": C.answer_text(p)} for p in C.problems(4, seed=1)]
    samples = real.self_samples(model, tok, prompts, [0.5, 1.0], 2, tmp_path / "self", max_new_tokens=20,
                                progress=False)
    assert sorted(samples) == [0.5, 1.0] and all(len(v) == 8 and "correct" in v[0] for v in samples.values())
    assert (tmp_path / "self" / "self@0.5.jsonl").exists()
    again = real.self_samples(model, tok, prompts, [0.5, 1.0], 2, tmp_path / "self", max_new_tokens=20, progress=False)
    assert again == samples  # read back
    human = real.human_records(prompts)
    table, feats = real.scores_by_teacher(model, tok, {"human": human, "only": real.degrade(human, "answer_only"),
                                                       "self": samples[1.0]}, tmp_path / "f", d=16, n_folds=2,
                                          progress=False, norms="exact")
    assert list(table.index) == ["human", "only", "self"] and np.isfinite(table["grace"]).all()
    assert feats["self"].meta["method"] == "factored" and table.loc["human", "accuracy"] == 1.0
    assert feats["self"].meta["projector"]["norms"] == "exact"  # chapter 12's Figs 21-22 read the norm itself
