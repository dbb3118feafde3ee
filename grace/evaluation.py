"""Evaluation of a (student or teacher) model: avg@k, greedy and best-of-k (paper §3, App. C Figs 11–12).

* avg@k — the paper's main metric: mean accuracy of k responses sampled at temperature 1.0 per test
  prompt, averaged over prompts (paper: k = 16).
* greedy — accuracy of one greedy (temperature 0) response.
* best-of-k — fraction of prompts answered correctly at least once among the k samples.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grace.generation import CHAT_INSTRUCTION, sample_responses


def accuracy_metrics(correct: np.ndarray) -> dict[str, float]:
    """avg@k and best-of-k from a ``(n_prompts, k)`` boolean matrix of sampled-response correctness."""
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2 or correct.size == 0:
        raise ValueError(f"correct must be a non-empty (n_prompts, k) matrix, got shape {correct.shape}")
    return {"avg_at_k": float(correct.mean()), "best_of_k": float(correct.any(axis=1).mean())}


def evaluate(model, tokenizer, prompts: Sequence[dict[str, Any]], is_correct: Callable[[str, Any], bool],
             k: int = 16, temperature: float = 1.0, max_new_tokens: int = 64, seed: int = 0,
             greedy: bool = True, template: str | None = None, batch_size: int = 256, device: str = "cpu",
             progress: bool = False, chat: bool = False,
             chat_instruction: str | None = CHAT_INSTRUCTION, backend=None,
             resume_dir: str | os.PathLike | None = None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Evaluate on held-out ``prompts`` (``{prompt_id, prompt, answer}``) (paper §3 metrics).

    ``chat``/``chat_instruction``: prompt an instruct model through its chat template, as its teacher
    generations were (:func:`grace.generation.format_prompt`); base models (students) use ``template``.
    ``backend``: a :class:`grace.generation.VLLMBackend` to sample with instead of ``model``.
    ``resume_dir``: keep each finished batch of the sampled and the greedy responses there
    (:class:`grace.io.Journal` files ``samples.jsonl``, ``greedy.jsonl``), so a killed evaluation
    resumes where it stopped with the same result; the caller deletes the directory when done.

    Returns:
        ``(metrics, per_prompt)``: metrics ``{avg_at_k, best_of_k, greedy, k, n_prompts}``; per-prompt
        rows ``{prompt_id, n_correct, k, greedy_correct, samples}`` for saving.
    """
    if k < 1:
        raise ValueError(f"k={k} must be >= 1 (the paper uses k=16)")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0 for avg@k sampling (the paper uses 1.0)")
    if not prompts:
        raise ValueError("no evaluation prompts given")
    kw: dict[str, Any] = dict(max_new_tokens=max_new_tokens, batch_size=batch_size, device=device, progress=progress,
                              chat=chat, chat_instruction=chat_instruction)
    if template is not None:
        kw["template"] = template
    texts = [p["prompt"] for p in prompts]

    def draw(n: int, temp: float, name: str) -> list[list[str]]:
        resume = Path(resume_dir) / f"{name}.jsonl" if resume_dir is not None else None
        if backend is None:
            return sample_responses(model, tokenizer, texts, n, temp, seed=seed, resume=resume, **kw)
        extra = {"template": template} if template is not None else {}
        return backend.sample(texts, n, temp, max_new_tokens, seed, chat=chat, chat_instruction=chat_instruction,
                              batch_size=batch_size, resume=resume, **extra)

    samples = draw(k, temperature, "samples")
    correct = np.array([[is_correct(r, p["answer"]) for r in rs] for p, rs in zip(prompts, samples, strict=True)])
    metrics = accuracy_metrics(correct)
    greedy_ok = np.zeros(len(prompts), dtype=bool)
    greedy_resp: list[str] = [""] * len(prompts)
    if greedy:
        g = draw(1, 0.0, "greedy")
        greedy_resp = [r[0] for r in g]
        greedy_ok = np.array([is_correct(r, p["answer"]) for r, p in zip(greedy_resp, prompts, strict=True)])
        metrics["greedy"] = float(greedy_ok.mean())
    metrics.update(k=k, n_prompts=len(prompts))
    per_prompt = [{"prompt_id": p["prompt_id"], "n_correct": int(c.sum()), "k": k, "greedy_correct": bool(gk),
                   "greedy": gr, "samples": list(rs)}
                  for p, c, gk, gr, rs in zip(prompts, correct, greedy_ok, greedy_resp, samples, strict=True)]
    return metrics, per_prompt
