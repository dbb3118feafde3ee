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

Backends: transformers ``generate`` (default) or vLLM (:class:`VLLMBackend`, ``generation.backend: vllm``
in a profile), with the same prompts, stops and sampling rule. :func:`generate_to_file` is the
practitioner's ``grace generate``, resumable batch by batch.

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

from grace.encoding import DEFAULT_TEMPLATE
from grace.io import Journal, read_jsonl, stable_hash, write_jsonl

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
                     chat_instruction: str | None = CHAT_INSTRUCTION,
                     resume: str | os.PathLike | None = None) -> list[list[str]]:
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
        resume: a :class:`grace.io.Journal` file: each finished batch is saved there, and a rerun with
            the same inputs skips the batches it holds (same result as an uninterrupted run).

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
    journal = Journal(resume, _journal_key(texts, reps, temperature, max_new_tokens, min_new_tokens, seed, batch_size))
    for b, start in enumerate(tqdm(batches, desc="generate", disable=not progress, leave=False)):
        chunk = flat[start:start + batch_size]
        if b not in journal:
            journal.add(b, _generate_batch(model, tokenizer, [t for _, t in chunk], chat, device, seed + b, greedy,
                                           temperature, max_new_tokens, min_new_tokens, eos))
        for (i, _), text in zip(chunk, journal[b], strict=True):
            out[i].append(text)
    if greedy:
        out = [r * n_samples for r in out]
    return out


def _journal_key(texts, reps, temperature, max_new_tokens, min_new_tokens, seed, batch_size) -> dict[str, Any]:
    return {"texts": stable_hash(list(texts)), "reps": reps, "T": float(temperature), "max_new": max_new_tokens,
            "min_new": min_new_tokens, "seed": seed, "batch_size": batch_size}


def _generate_batch(model, tokenizer, texts: list[str], chat: bool, device: str, seed: int, greedy: bool,
                    temperature: float, max_new_tokens: int, min_new_tokens: int, eos) -> list[str]:
    """One seeded ``generate`` call on a left-padded batch; the decoded new tokens of each row."""
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not chat).to(device)
    torch.manual_seed(seed)
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                                  pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
    if greedy:
        kwargs.update(do_sample=False)
    else:
        kwargs.update(do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0)
    gen = model.generate(**enc, **kwargs)  # (B, T_prompt + T_new)
    new = gen[:, enc["input_ids"].shape[1]:]
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in new]


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
                     out_path: str | os.PathLike | None = None, backend: VLLMBackend | None = None,
                     **kwargs) -> list[dict[str, Any]]:
    """Generate a teacher's distillation set: ``len(prompts)`` × ``n_samples`` jsonl records.

    Args:
        prompts: ``{prompt_id, prompt[, answer]}`` dicts.
        is_correct: ``(response, answer) -> bool`` to fill ``correct`` (None leaves it out).
        out_path: if given and complete, the file is read back instead of regenerating; otherwise
            written atomically when done.
        backend: sample with this :class:`VLLMBackend` instead of ``model`` (``generation.backend: vllm``).
        **kwargs: forwarded to :func:`sample_responses` (or the backend's ``sample``).
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0 for teacher sampling (the paper uses 0.3–1.0)")
    if out_path is not None and Path(out_path).exists():
        return read_jsonl(out_path)
    texts = [p["prompt"] for p in prompts]
    if backend is not None:
        keep = {k: kwargs[k] for k in ("template", "chat", "chat_instruction", "min_new_tokens", "max_new_tokens", "seed",
                                       "batch_size", "resume") if k in kwargs}
        responses = backend.sample(texts, n_samples, temperature, **keep)
    else:
        responses = sample_responses(model, tokenizer, texts, n_samples, temperature, **kwargs)
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


ENGINE_FACTORY = None
"""``f(model_id, **engine_kwargs) -> engine`` used instead of ``vllm.LLM`` when set (tests use a fake engine)."""


class VLLMBackend:
    """Sampling through vLLM (``backend: vllm``) with the same prompts, stop tokens and sampling rule.

    Pure temperature sampling (``top_k=-1, top_p=1``), ``n`` samples per prompt, chat templates applied
    here with the HF tokenizer (:func:`format_prompt`), stops from :func:`stop_token_ids`. ``engine`` is
    any object with vLLM's ``LLM.generate(prompts, sampling_params)`` interface (tests pass a fake);
    by default a ``vllm.LLM`` is built (import-guarded: ``pip install 'grace-book[vllm]'`` on CUDA).
    """

    def __init__(self, model_id: str, tokenizer=None, tensor_parallel_size: int = 1, dtype: str = "auto",
                 seed: int = 0, engine=None, sampling_params=None, min_sequences_per_call: int = 4096):
        from grace.sources import resolve

        self.min_sequences_per_call = int(min_sequences_per_call)  # vLLM schedules batches itself: few, big calls

        model_id = resolve(model_id)  # a named source becomes its local directory
        if engine is None and ENGINE_FACTORY is not None:
            engine = ENGINE_FACTORY(str(model_id), tensor_parallel_size=tensor_parallel_size, dtype=dtype, seed=seed)
        if engine is None:
            try:
                from vllm import LLM
            except ImportError as e:
                raise ImportError("backend='vllm' needs vLLM: pip install 'grace-book[vllm]' on a CUDA machine, "
                                  "or use backend='transformers'") from e
            engine = LLM(model=str(model_id), tensor_parallel_size=tensor_parallel_size, dtype=dtype, seed=seed,
                         trust_remote_code=False)  # pragma: no cover - needs a GPU
        if sampling_params is None:
            try:
                from vllm import SamplingParams as sampling_params
            except ImportError:  # a fake engine without vLLM: plain keyword records
                sampling_params = dict
        self.engine, self.sampling_params = engine, sampling_params
        self.tokenizer = tokenizer if tokenizer is not None else engine.get_tokenizer()
        self.generation_config = _GenConfig(getattr(engine, "generation_eos", None))

    def sample(self, prompts: Sequence[str], n_samples: int, temperature: float, max_new_tokens: int = 512, seed: int = 0,
               template: str = DEFAULT_TEMPLATE, chat: bool = False, chat_instruction: str | None = CHAT_INSTRUCTION,
               min_new_tokens: int = 0, batch_size: int | None = None,
               resume: str | os.PathLike | None = None) -> list[list[str]]:
        """``out[i][j]``: the j-th response to prompt i (temperature 0: one greedy response repeated).

        ``batch_size`` (sequences per engine call, at least ``min_sequences_per_call``; ``None``: all
        prompts in one call) splits the prompts into calls seeded ``seed + call``; with ``resume`` (a
        :class:`grace.io.Journal` file) a rerun skips the calls already done, as
        :func:`sample_responses` does.
        """
        _check_args(temperature, n_samples, max_new_tokens)
        greedy = temperature == 0
        reps = 1 if greedy else n_samples
        texts = [format_prompt(self.tokenizer, p, template, chat, chat_instruction) for p in prompts]
        per_call = len(texts) if batch_size is None else max(1, max(batch_size, self.min_sequences_per_call) // reps)
        journal = Journal(resume, _journal_key(texts, reps, temperature, max_new_tokens, min_new_tokens, seed,
                                               batch_size))
        res: list[list[str]] = []
        for b, start in enumerate(range(0, len(texts), max(1, per_call))):
            if b not in journal:
                params = self.sampling_params(n=reps, temperature=float(temperature), top_k=-1, top_p=1.0,
                                              max_tokens=max_new_tokens, min_tokens=min_new_tokens, seed=seed + b,
                                              stop_token_ids=stop_token_ids(self, self.tokenizer),
                                              skip_special_tokens=True)
                outs = self.engine.generate(texts[start:start + per_call], params)
                journal.add(b, [[c.text for c in o.outputs] for o in outs])
            res.extend(journal[b])
        return [r * n_samples for r in res] if greedy else res


class _GenConfig:
    def __init__(self, eos):
        self.eos_token_id = eos


def generate_to_file(model, tokenizer, prompts: Sequence[dict[str, Any]], out_path: str | os.PathLike,
                     n_samples: int, temperature: float, teacher: str = "",
                     is_correct: Callable[[str, Any], bool] | None = None, seed: int = 0,
                     backend: VLLMBackend | None = None, progress: bool = True, **kwargs) -> list[dict[str, Any]]:
    """``grace generate``: sample a teacher into ``out_path`` (jsonl), resumable batch by batch (paper §3).

    Every finished batch (``batch_size`` sequences) goes to the journal ``out_path + ".partial"``
    (:class:`grace.io.Journal`), seeded by its index (``seed + batch``), so a killed run continues
    where it stopped and gives the same file; the finished file is written atomically and the journal
    removed. ``backend`` samples through vLLM instead of transformers. ``kwargs`` go to
    :func:`sample_responses` (template, chat, chat_instruction, max_new_tokens, min_new_tokens,
    batch_size, device).
    """
    out_path = Path(out_path)
    partial = out_path.with_name(out_path.name + ".partial")
    records = generate_records(model, tokenizer, prompts, n_samples, temperature, teacher, is_correct=is_correct,
                               backend=backend, seed=seed, resume=partial, progress=progress, **kwargs)
    write_jsonl(out_path, records)
    partial.unlink(missing_ok=True)
    return records
