"""Teacher generation: N prompts × M responses by pure temperature sampling (paper §2, §3).

The paper samples each teacher at temperatures 0.3–1.0; the teacher distribution π_T "encodes the
temperature". Sampling here is *pure* temperature sampling (``top_k=0``, ``top_p=1``) through
transformers ``generate``, seeded per batch so a run is reproducible and resumable batch by batch.
Records are ``{prompt_id, prompt, response, teacher, temperature, sample, correct}``.

Stopping: generation stops at *any* of the model's end tokens — the union of the tokenizer's EOS and
the ``generation_config.eos_token_id`` list (:func:`stop_token_ids`). Instruct checkpoints end a turn
with a token other than the tokenizer's EOS (Llama-3 ``<|eot_id|>``, Qwen-2.5 ``<|im_end|>``, Gemma-2
``<end_of_turn>``); passing only ``tokenizer.eos_token_id`` would run every response to
``max_new_tokens``.

Chat: instruct teachers (``chat=True``) get their tokenizer's chat template around
``CHAT_INSTRUCTION`` + the problem, the instruction to reason step by step and box the final answer
that instruct models are usually prompted with for math; ``chat_instruction=None`` sends the bare
problem. Base models (the student) use the plain ``template``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from grace.features import DEFAULT_TEMPLATE
from grace.io import read_jsonl, write_jsonl

CHAT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
"""Prepended (with a blank line) to the problem for chat teachers; see the module docstring."""


def stop_token_ids(model, tokenizer) -> list[int]:
    """Every token that ends a response: the tokenizer's EOS and the model's generation-config EOS list.

    Returns them in that order without repeats (``[]`` if neither exists).
    """
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for t in [tokenizer.eos_token_id, *(gen_eos if isinstance(gen_eos, list | tuple) else [gen_eos])]:
        if t is not None and int(t) not in ids:
            ids.append(int(t))
    return ids


def _check_args(temperature: float, n_samples: int, max_new_tokens: int) -> None:
    if temperature < 0:
        raise ValueError(f"temperature={temperature} must be >= 0 (0 means greedy)")
    if n_samples < 1:
        raise ValueError(f"n_samples (k/M)={n_samples} must be >= 1")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 1")


@torch.no_grad()
def sample_responses(model, tokenizer, prompts: Sequence[str], n_samples: int, temperature: float,
                     max_new_tokens: int, seed: int, template: str = DEFAULT_TEMPLATE,
                     batch_size: int = 256, device: str = "cpu", chat: bool = False,
                     min_new_tokens: int = 0, progress: bool = False,
                     chat_instruction: str | None = CHAT_INSTRUCTION) -> list[list[str]]:
    """Sample ``n_samples`` responses per prompt (temperature 0 → one greedy response repeated).

    Args:
        model: a causal LM in eval mode.
        tokenizer: its tokenizer; padding is set to the left here.
        prompts: raw problem texts.
        n_samples: responses per prompt (the paper's M, or k for evaluation).
        temperature: sampling temperature; 0 means greedy decoding.
        max_new_tokens: generation budget per response.
        seed: base seed; batch ``b`` uses ``seed + b`` so results do not depend on earlier batches.
        template: prompt template with ``{prompt}``.
        batch_size: sequences per ``generate`` call.
        device: torch device.
        chat: wrap with the tokenizer's chat template (instruct teachers on a GPU box).
        min_new_tokens: suppress EOS for this many tokens (teacher sampling uses a few so that no
            response is empty: an empty response has no gradient to score and nothing to learn).
        progress: tqdm bar over batches.
        chat_instruction: with ``chat``, the instruction before the problem (``None``: the problem alone).

    Returns:
        ``out[i][j]``: the j-th response to prompt i, decoded without special tokens.
    """
    from tqdm.auto import tqdm

    _check_args(temperature, n_samples, max_new_tokens)
    greedy = temperature == 0
    reps = 1 if greedy else n_samples
    texts = [format_prompt(tokenizer, p, template, chat, chat_instruction) for p in prompts]
    stops = stop_token_ids(model, tokenizer)
    flat = [(i, t) for i, t in enumerate(texts) for _ in range(reps)]  # prompt-major order
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos: int | list[int] | None = stops[0] if len(stops) == 1 else (stops or None)
    out: list[list[str]] = [[] for _ in prompts]
    batches = range(0, len(flat), batch_size)
    for b, start in enumerate(tqdm(batches, desc="generate", disable=not progress, leave=False)):
        chunk = flat[start:start + batch_size]
        enc = tokenizer([t for _, t in chunk], return_tensors="pt", padding=True,
                        add_special_tokens=not chat).to(device)
        torch.manual_seed(seed + b)
        kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                                      pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
        if greedy:
            kwargs.update(do_sample=False)
        else:
            kwargs.update(do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0)
        gen = model.generate(**enc, **kwargs)  # (B, T_prompt + T_new)
        new = gen[:, enc["input_ids"].shape[1]:]
        for (i, _), ids in zip(chunk, new, strict=True):
            out[i].append(tokenizer.decode(ids, skip_special_tokens=True))
    if greedy:
        out = [r * n_samples for r in out]
    return out


def format_prompt(tokenizer, prompt: str, template: str = DEFAULT_TEMPLATE, chat: bool = False,
                  chat_instruction: str | None = CHAT_INSTRUCTION) -> str:
    """The text a model is prompted with (paper §3): ``template`` for base models, else the chat template.

    With ``chat`` the user turn is ``chat_instruction + "\\n\\n" + prompt`` (or the prompt alone) and the
    assistant turn is opened (``add_generation_prompt=True``).
    """
    if not chat:
        return template.format(prompt=prompt)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("chat=True but the tokenizer has no chat template; use chat=False for base models")
    content = f"{chat_instruction}\n\n{prompt}" if chat_instruction else prompt
    return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=True)


def generate_records(model, tokenizer, prompts: Sequence[dict[str, Any]], n_samples: int, temperature: float,
                     teacher: str, is_correct: Callable[[str, Any], bool] | None = None,
                     out_path: str | os.PathLike | None = None, **kwargs) -> list[dict[str, Any]]:
    """Generate a teacher's distillation set: ``len(prompts)`` × ``n_samples`` jsonl records.

    Args:
        prompts: ``{prompt_id, prompt[, answer]}`` dicts.
        is_correct: ``(response, answer) -> bool`` to fill ``correct`` (None leaves it out).
        out_path: if given and complete, the file is read back instead of regenerating; otherwise
            written atomically when done.
        **kwargs: forwarded to :func:`sample_responses`.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0 for teacher sampling (the paper uses 0.3–1.0)")
    if out_path is not None and Path(out_path).exists():
        return read_jsonl(out_path)
    responses = sample_responses(model, tokenizer, [p["prompt"] for p in prompts], n_samples, temperature, **kwargs)
    records = []
    for p, rs in zip(prompts, responses, strict=True):
        for j, r in enumerate(rs):
            rec = {"prompt_id": p["prompt_id"], "prompt": p["prompt"], "response": r, "teacher": teacher,
                   "temperature": float(temperature), "sample": j}
            if is_correct is not None and "answer" in p:
                rec["correct"] = bool(is_correct(r, p["answer"]))
            records.append(rec)
    if out_path is not None:
        write_jsonl(out_path, records)
    return records


def generate_vllm(model_id: str, prompts: Sequence[str], n_samples: int, temperature: float, max_new_tokens: int,
                  seed: int, template: str = DEFAULT_TEMPLATE) -> list[list[str]]:
    """Optional vLLM backend for GPU boxes (same sampling: top_k=-1, top_p=1). Untested offline."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError as e:  # pragma: no cover - vLLM is not installable here
        raise ImportError("backend='vllm' needs vLLM: pip install 'grace-book[vllm]' on a CUDA machine, "
                          "or use backend='transformers'") from e
    llm = LLM(model=model_id, seed=seed, trust_remote_code=False)  # pragma: no cover
    params = SamplingParams(n=n_samples, temperature=temperature, top_k=-1, top_p=1.0, max_tokens=max_new_tokens, seed=seed)
    outs = llm.generate([template.format(prompt=p) for p in prompts], params)  # pragma: no cover
    return [[c.text for c in o.outputs] for o in outs]  # pragma: no cover
