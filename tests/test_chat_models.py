"""The GPU path on a CPU: instruct-style checkpoints (Llama-3, Qwen-2.5, Gemma-2 configurations).

Issue 12's table, rows "stop tokens" and "evaluation": generation must stop at the model's own end of
turn (the union of the tokenizer's EOS and ``generation_config.eos_token_id``), and instruct teachers
are prompted through their chat template both when generating and when their own avg@k is measured.
The checkpoints come from :mod:`chat_checkpoints` and are loaded with ``from_pretrained(path)``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import chat_checkpoints as C  # noqa: E402

from grace.evaluation import evaluate  # noqa: E402
from grace.generation import CHAT_INSTRUCTION, format_prompt, sample_responses, stop_token_ids  # noqa: E402
from grace.tasks import gsm8k_is_correct  # noqa: E402
from grace.world import load_model, load_tokenizer  # noqa: E402

ENDED = re.compile(r"#### \d+$")  # a response that stopped right after its answer


@pytest.fixture(scope="module")
def chat_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat")
    return {fam: C.build(fam, root / fam) for fam in C.FAMILIES}


@pytest.mark.parametrize("family", list(C.FAMILIES))
def test_stop_tokens_are_the_union_of_tokenizer_and_generation_config(chat_dirs, family):
    model, tok = load_model(chat_dirs[family]), load_tokenizer(chat_dirs[family])
    f = C.FAMILIES[family]
    want = [tok.convert_tokens_to_ids(f["eos"])] + [tok.convert_tokens_to_ids(t) for t in f["gen_eos"]]
    assert stop_token_ids(model, tok) == list(dict.fromkeys(want))
    assert tok.convert_tokens_to_ids(f["turn_end"]) in stop_token_ids(model, tok)


@pytest.mark.parametrize("family", list(C.FAMILIES))
def test_generation_stops_at_the_end_of_turn(chat_dirs, family):
    model, tok = load_model(chat_dirs[family]), load_tokenizer(chat_dirs[family])
    prompts = [p["prompt"] for p in C.problems(6, seed=5)]
    out = sample_responses(model, tok, prompts, 2, 0.5, max_new_tokens=60, seed=0, chat=True)
    ended = [bool(ENDED.search(r.strip())) for rs in out for r in rs]
    assert sum(ended) >= 0.75 * len(ended), out  # (tiny models: a few samples may ramble)


def test_gemma_would_never_stop_on_the_tokenizer_eos_alone(chat_dirs):
    """The failure the union fixes: Gemma-2-it ends its turn with <end_of_turn>, not the tokenizer's <eos>."""
    model, tok = load_model(chat_dirs["gemma2"]), load_tokenizer(chat_dirs["gemma2"])
    text = format_prompt(tok, C.problems(1, seed=5)[0]["prompt"], chat=True)
    enc = tok([text], return_tensors="pt", add_special_tokens=False)
    kw = dict(max_new_tokens=40, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        eos_only = model.generate(**enc, eos_token_id=tok.eos_token_id, **kw)
        union = model.generate(**enc, eos_token_id=stop_token_ids(model, tok), **kw)
    n_prompt = enc["input_ids"].shape[1]
    assert eos_only.shape[1] - n_prompt == 40  # ran to the budget
    assert union.shape[1] - n_prompt < 40


def test_chat_prompt_carries_the_instruction_and_opens_the_assistant_turn(chat_dirs):
    tok = load_tokenizer(chat_dirs["qwen2.5"])
    text = format_prompt(tok, "What is 1 plus 2 ?", chat=True)
    assert CHAT_INSTRUCTION in text and text.endswith("<|im_start|>assistant\n") and "You are Qwen" in text
    bare = format_prompt(tok, "What is 1 plus 2 ?", chat=True, chat_instruction=None)
    assert CHAT_INSTRUCTION not in bare and "What is 1 plus 2 ?" in bare
    assert format_prompt(tok, "x", template="Q: {prompt}\nA:") == "Q: x\nA:"


def test_teacher_evaluation_uses_the_chat_template(chat_dirs):
    model, tok = load_model(chat_dirs["llama3"]), load_tokenizer(chat_dirs["llama3"])
    prompts = C.problems(6, seed=5)
    _, rows = evaluate(model, tok, prompts, gsm8k_is_correct, k=2, max_new_tokens=40, seed=0, chat=True)
    samples = [s for r in rows for s in r["samples"]]
    assert sum(bool(ENDED.search(s.strip())) for s in samples) >= 0.75 * len(samples)


def test_study_chat_settings_reach_cards_and_generation():
    from grace.study import _chat_key, _chat_kwargs

    assert _chat_kwargs({}, {"chat": False}) == {"chat": False} and _chat_key({}, {}) == {}
    assert _chat_kwargs({}, {"chat": True}) == {"chat": True, "chat_instruction": CHAT_INSTRUCTION}
    assert _chat_kwargs({"chat_instruction": None}, {"chat": True})["chat_instruction"] is None


def test_gpu_shaped_study_runs_every_stage_on_chat_checkpoints(chat_dirs, tmp_path):
    """A `models:` profile (the gpu profile's shape) with three chat teachers, on GSM8K from ../shared/data."""
    from grace.study import load_profile, run_study
    from grace.tasks import default_data_dir

    if not (default_data_dir() / "gsm8k" / "train.jsonl").exists():
        pytest.skip(f"no GSM8K under {default_data_dir()}")
    profile = load_profile("gpu")
    profile.update(device="cpu", threads=1, temperatures=[0.7, 1.0], task={"kind": "gsm8k"},
                   generation={"N": 6, "M": 2, "max_new_tokens": 24, "batch_size": 16},
                   features={"n": 4, "m": 2, "d": 16, "projector": "rademacher", "length_scale": "log", "batch_size": 4},
                   scores={"n_folds": 2, "nu": 1e-3}, distill={"learning_rate": 1e-3, "epochs": 1, "batch_size": 4},
                   evaluation={"n_test": 3, "k": 2, "max_new_tokens": 24, "batch_size": 16},
                   analysis={"n_boot": 20, "n_subsets": 5, "subset_frac": 0.6})
    profile["models"] = {"student": str(chat_dirs["llama3"]), "student_params": 1e5, "teachers": [
        {"name": f, "id": str(chat_dirs[f]), "family": f, "size_label": "tiny", "size_params": 1e5, "chat": True}
        for f in C.FAMILIES]}
    results = run_study(profile, tmp_path / "study", progress=False)
    assert len(results) == 6 and results["grace"].notna().all()
    assert results["in_pool"].all()
    gens = pd.read_json(tmp_path / "study" / "generations" / "gemma2@1" / "generations.jsonl", lines=True)
    assert len(gens) == 12
    assert (tmp_path / "study" / "analysis" / "world_checks.json").exists()
