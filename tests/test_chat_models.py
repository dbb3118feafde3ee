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

from grace.answers import gsm8k_is_correct  # noqa: E402
from grace.evaluation import evaluate  # noqa: E402
from grace.generation import CHAT_INSTRUCTION, format_prompt, sample_responses, stop_token_ids  # noqa: E402
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


def tiny_gpu_profile(chat_dirs, teachers, generation: dict, subset_frac: float = 0.6) -> dict:
    """The gpu profile's shape at toy size: a chat-checkpoint student and teachers on GSM8K, on the CPU."""
    from grace.data import default_data_dir
    from grace.study import load_profile

    if not (default_data_dir() / "gsm8k" / "train.jsonl").exists():
        pytest.skip(f"no GSM8K under {default_data_dir()}")
    profile = load_profile("gpu")
    mnt = generation["max_new_tokens"]
    profile.update(device="cpu", dtype="float32", threads=1, temperatures=[0.7, 1.0], task={"kind": "gsm8k"},
                   generation={"M": 2, "batch_size": 16, **generation},
                   features={"n": 4, "m": 2, "d": 16, "projector": "rademacher", "length_scale": "log", "batch_size": 4},
                   scores={"n_folds": 2, "nu": 1e-3}, distill={"learning_rate": 1e-3, "epochs": 1, "batch_size": 4},
                   evaluation={"n_test": 3, "k": 2, "max_new_tokens": mnt, "batch_size": 16},
                   analysis={"n_boot": 20, "n_subsets": 5, "subset_frac": subset_frac})
    profile["models"] = {"student": str(chat_dirs["llama3"]), "student_params": 1e5, "teachers": [
        {"name": f, "id": str(chat_dirs[f]), "family": f, "size_label": "tiny", "size_params": 1e5, "chat": True}
        for f in teachers]}
    return profile


def test_gpu_shaped_study_runs_every_stage_on_chat_checkpoints(chat_dirs, tmp_path):
    """A `models:` profile (the gpu profile's shape) with three chat teachers, on GSM8K from ../shared/data."""
    from grace.study import run_study

    profile = tiny_gpu_profile(chat_dirs, list(C.FAMILIES), {"N": 6, "max_new_tokens": 24})
    results = run_study(profile, tmp_path / "study", progress=False)
    assert len(results) == 6 and results["grace"].notna().all()
    assert results["in_pool"].all()
    gens = pd.read_json(tmp_path / "study" / "generations" / "gemma2@1" / "generations.jsonl", lines=True)
    assert len(gens) == 12
    assert (tmp_path / "study" / "analysis" / "world_checks.json").exists()


class _FakeOutput:
    def __init__(self, text):
        self.text = text


class _FakeRequest:
    def __init__(self, outputs):
        self.outputs = outputs


class FakeLLM:
    """vLLM's ``LLM.generate(prompts, sampling_params)`` interface, recording what it was asked."""

    def __init__(self, tokenizer):
        self.tokenizer, self.calls = tokenizer, []

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, params):
        self.calls.append((list(prompts), params))
        return [_FakeRequest([_FakeOutput(f"r{j} #### {i}") for j in range(params["n"])]) for i, _ in enumerate(prompts)]


def test_vllm_adapter_applies_chat_templates_stops_and_pure_sampling(chat_dirs):
    from grace.generation import VLLMBackend

    tok = load_tokenizer(chat_dirs["gemma2"])
    engine = FakeLLM(tok)
    backend = VLLMBackend("fake", engine=engine, sampling_params=dict)
    backend.generation_config.eos_token_id = [tok.convert_tokens_to_ids("<end_of_turn>")]
    out = backend.sample(["What is 1 plus 2 ?", "What is 2 plus 2 ?"], 3, 0.7, 32, seed=5, chat=True)
    assert [len(r) for r in out] == [3, 3] and out[1][2] == "r2 #### 1"
    texts, params = engine.calls[0]
    assert texts[0].startswith("<bos><start_of_turn>user\n") and texts[0].endswith("<start_of_turn>model\n")
    assert params["top_k"] == -1 and params["top_p"] == 1.0 and params["temperature"] == 0.7 and params["seed"] == 5
    assert tok.convert_tokens_to_ids("<end_of_turn>") in params["stop_token_ids"]
    greedy = backend.sample(["What is 1 plus 2 ?"], 4, 0.0, 32, seed=0, chat=True)
    assert engine.calls[-1][1]["n"] == 1 and greedy[0] == ["r0 #### 0"] * 4


def test_vllm_adapter_calls_the_engine_in_seeded_batches_and_resumes(chat_dirs, tmp_path):
    from grace.generation import VLLMBackend

    tok = load_tokenizer(chat_dirs["qwen2.5"])
    engine = FakeLLM(tok)
    backend = VLLMBackend("fake", engine=engine, sampling_params=dict, min_sequences_per_call=1)
    prompts = [f"What is {i} plus 1 ?" for i in range(5)]
    whole = backend.sample(prompts, 3, 0.7, 32, seed=5, chat=True, batch_size=6)  # 2 prompts x 3 per call
    assert [len(c[0]) for c in engine.calls] == [2, 2, 1] and [c[1]["seed"] for c in engine.calls] == [5, 6, 7]
    real = engine.generate

    def dies_on_the_third(texts, params):
        if len(engine.calls) == 5:
            raise KeyboardInterrupt("killed")
        return real(texts, params)

    engine.generate = dies_on_the_third
    with pytest.raises(KeyboardInterrupt):
        backend.sample(prompts, 3, 0.7, 32, seed=5, chat=True, batch_size=6, resume=tmp_path / "j.jsonl")
    engine.generate = real
    n = len(engine.calls)
    assert backend.sample(prompts, 3, 0.7, 32, seed=5, chat=True, batch_size=6, resume=tmp_path / "j.jsonl") == whole
    assert len(engine.calls) == n + 1  # only the killed call ran again


def test_generate_to_file_resumes_batch_by_batch(chat_dirs, tmp_path):
    from grace.generation import generate_to_file

    model, tok = load_model(chat_dirs["llama3"]), load_tokenizer(chat_dirs["llama3"])
    prompts = C.problems(6, seed=2)
    kw = dict(batch_size=4, seed=3, chat=True, max_new_tokens=24, progress=False, is_correct=gsm8k_is_correct)
    whole = generate_to_file(model, tok, prompts, tmp_path / "a.jsonl", 2, 0.8, **kw)
    assert len(whole) == 12 and all("correct" in r for r in whole)

    calls = {"n": 0}
    real_generate = model.generate

    def dies_on_second_batch(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real_generate(*a, **k)

    model.generate = dies_on_second_batch
    with pytest.raises(KeyboardInterrupt):
        generate_to_file(model, tok, prompts, tmp_path / "b.jsonl", 2, 0.8, **kw)
    partial = tmp_path / "b.jsonl.partial"
    assert partial.exists() and len(partial.read_text().splitlines()) == 2  # the key and batch 0 (2 prompts x 2)
    with open(partial, "a") as f:
        f.write('{"torn": ')  # a kill mid-write leaves a torn line
    model.generate = real_generate
    resumed = generate_to_file(model, tok, prompts, tmp_path / "b.jsonl", 2, 0.8, **kw)
    assert resumed == whole and not partial.exists()
    assert (tmp_path / "b.jsonl").read_text() == (tmp_path / "a.jsonl").read_text()


def test_grace_generate_cli_then_rank_is_the_practitioner_loop(chat_dirs, tmp_path):
    import json
    import subprocess

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in C.problems(4, seed=9)))
    out = tmp_path / "teacher.jsonl"
    cmd = [sys.executable, "-m", "grace.cli", "generate", "--model", str(chat_dirs["qwen2.5"]), "--prompts", str(prompts),
           "--out", str(out), "--n-samples", "2", "--temperature", "0.7", "--max-new-tokens", "24", "--dtype", "float32"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8 and {"prompt_id", "prompt", "response", "correct"} <= set(rows[0])
    assert "accuracy" in res.stdout
    res = subprocess.run([sys.executable, "-m", "grace.cli", "rank", "--student", str(chat_dirs["llama3"]),
                          "--teacher", f"qwen={out}", "--teacher", f"qwen2={out}", "--out", str(tmp_path / "rank"),
                          "--d", "16", "--n-folds", "2"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "qwen" in res.stdout
    bad = subprocess.run(cmd[:6] + ["--prompts", str(tmp_path / "missing.jsonl"), "--out", str(out)], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "missing.jsonl" in bad.stderr


def test_gpu_shaped_study_with_the_vllm_backend_never_calls_transformers_generate(chat_dirs, tmp_path, monkeypatch):
    """generation.backend: vllm reaches teacher sampling, the teacher cards and the students' evaluation."""
    from grace import generation as GEN
    from grace.study import run_study

    built = []

    def factory(model_id, **kw):
        built.append(Path(model_id).name)
        return FakeLLM(load_tokenizer(model_id))

    def no_hf(*a, **k):
        raise AssertionError("transformers generate was called with backend: vllm")

    monkeypatch.setattr(GEN, "ENGINE_FACTORY", factory)
    monkeypatch.setattr(GEN, "sample_responses", no_hf)
    monkeypatch.setattr("grace.evaluation.sample_responses", no_hf)
    profile = tiny_gpu_profile(chat_dirs, ["gemma2", "qwen2.5"], {"N": 4, "max_new_tokens": 16, "backend": "vllm"},
                               subset_frac=0.8)
    results = run_study(profile, tmp_path / "study", progress=False)
    assert len(results) == 4 and results["grace"].notna().all()
    assert built.count("gemma2") == 3 and built.count("qwen2.5") == 3  # a card and two generations each
    assert built.count("model") == 4  # each distilled student, sampled from disk


def test_models_load_in_the_profile_dtype(chat_dirs):
    model = load_model(chat_dirs["llama3"], dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in load_model(chat_dirs["llama3"]).parameters()} == {torch.float32}
