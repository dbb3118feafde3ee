"""Saliency rationales: the prompt tokens a teacher's answer depends on most (arXiv 2409.12586 §3).

The source fine-tunes a teacher, takes the gradient of its output's log-probability with respect to the input
embeddings, averages over the output tokens, and keeps the top-k input tokens (k = 5) as a rationale for the
student (:mod:`grace.methods.rationale`). Here Captum does the attribution on a decoder-only teacher:

* ``saliency``: ``LLMGradientAttribution`` around ``LayerGradientXActivation`` on the embedding layer — the
  gradient of log p(target | prompt) times the input embedding, summed over the hidden dimension (gradient ×
  input, the saliency map Captum's LLM wrapper supports);
* ``integrated_gradients``: the same wrapper around ``LayerIntegratedGradients`` on the embedding layer, from
  the embedding of a baseline token (the pad token) to the real one (the source's proposed alternative).

Scores are summed over the target's tokens (Captum's sequence attribution; the source's average ranks the same)
and ranked by magnitude. Candidates are the tokens of the question itself (not the template, not BOS, not bare
whitespace). The random baseline draws k candidates uniformly. :func:`operand_flags` marks the candidates that
are operands of the gold solution — the source's "68 % of the extracted tokens are part of the ground truth".
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

ATTRIBUTIONS = ("saliency", "integrated_gradients")
"""Attribution methods of :class:`SaliencyConfig` (Captum layer methods on the input embeddings)."""

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class SaliencyConfig:
    """How rationales are extracted (arXiv 2409.12586 §3: saliency, k = 5).

    Attributes:
        method: one of :data:`ATTRIBUTIONS`.
        k: tokens kept per prompt (the source's ablation tries 1 to 10 and keeps 5).
        ig_steps: Riemann steps of Integrated Gradients (ignored by ``saliency``).
        max_target_tokens: attribute only the first this many tokens of the target (None: all of it).
    """

    method: str = "saliency"
    k: int = 5
    ig_steps: int = 16
    max_target_tokens: int | None = None

    def __post_init__(self):
        if self.method not in ATTRIBUTIONS:
            raise ValueError(f"method={self.method!r}: use one of {ATTRIBUTIONS}")
        if int(self.k) < 1:
            raise ValueError(f"k={self.k!r} must be >= 1 (the source uses 5)")
        if int(self.ig_steps) < 2:
            raise ValueError(f"ig_steps={self.ig_steps!r} must be >= 2")
        if self.max_target_tokens is not None and int(self.max_target_tokens) < 1:
            raise ValueError(f"max_target_tokens={self.max_target_tokens!r} must be >= 1 or None")


def prompt_tokens(tokenizer, prompt: str, template: str) -> tuple[list[int], list[int]]:
    """``(ids, candidates)``: the token ids of the formatted prompt as Captum's ``TextTokenInput`` encodes it
    (special tokens included) and the positions of the question's own non-blank tokens."""
    if "{prompt}" not in template:
        raise ValueError(f"template {template!r} has no '{{prompt}}' placeholder; add one")
    text = template.format(prompt=prompt)
    start = template.index("{prompt}")
    enc = tokenizer(text, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    special = set(tokenizer.all_special_ids)
    def inside(a: int, b: int) -> bool:  # the token's visible characters lie in the question
        a += len(text[a:b]) - len(text[a:b].lstrip())  # " Tom" after "Q:" starts at its space
        return a < b and start <= a and b <= start + len(prompt)

    cand = [i for i, (a, b) in enumerate(offsets) if ids[i] not in special and inside(a, b)]
    return ids, cand


def token_scores(model, tokenizer, prompt: str, target: str, template: str, cfg: SaliencyConfig) -> np.ndarray:
    """Attribution of log p(target | prompt) to every token of the formatted prompt, shape ``(n_tokens,)``
    (NaN on special tokens, which are not attributed), by Captum (arXiv 2409.12586 §3)."""
    from captum.attr import (
        LayerGradientXActivation,
        LayerIntegratedGradients,
        LLMGradientAttribution,
        TextTokenInput,
    )

    target_ids = list(tokenizer(target, add_special_tokens=False)["input_ids"])
    if cfg.max_target_tokens is not None:
        target_ids = target_ids[: cfg.max_target_tokens]
    if not target_ids:
        raise ValueError(f"target {target!r} is empty after tokenisation; give the teacher's non-blank answer")
    layer = model.get_input_embeddings()
    kwargs: dict[str, Any] = {}
    if cfg.method == "saliency":
        method = LayerGradientXActivation(model, layer)
    else:
        method = LayerIntegratedGradients(model, layer)
        kwargs["n_steps"] = cfg.ig_steps
    special = list(tokenizer.all_special_ids)
    base = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    inp = TextTokenInput(template.format(prompt=prompt), tokenizer, baselines=int(base), skip_tokens=special)
    res = LLMGradientAttribution(method, tokenizer).attribute(inp, target=torch.tensor(target_ids), **kwargs)
    ids = inp.inp_tensor[0].tolist()
    out = np.full(len(ids), np.nan)
    keep = [i for i, t in enumerate(ids) if t not in set(special)]  # Captum's interpretable tokens, in order
    out[keep] = res.seq_attr.detach().cpu().numpy()
    return out


def top_k(scores: np.ndarray, candidates: Sequence[int], k: int) -> list[int]:
    """The ``k`` candidate positions of largest |score|, returned in prompt order (ties: earlier first)."""
    ranked = sorted(candidates, key=lambda i: (-abs(float(scores[i])), i))
    return sorted(ranked[:k])


def random_k(candidates: Sequence[int], k: int, seed: Any) -> list[int]:
    """``k`` candidate positions drawn uniformly without replacement (the source's random-token check)."""
    rng = random.Random(str(seed))
    return sorted(rng.sample(list(candidates), min(k, len(candidates))))


def rationale_text(tokenizer, ids: Sequence[int], chosen: Sequence[int]) -> str:
    """The chosen tokens as a rationale: runs of adjacent positions decoded together (so ``1``,``2`` stay
    ``12``), runs joined by a space, in prompt order."""
    runs: list[list[int]] = []
    for i in sorted(chosen):
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return " ".join(tokenizer.decode([ids[i] for i in r]).strip() for r in runs)


def numbers(text: str) -> set[str]:
    """The numbers written in ``text``, normalised (thousands commas dropped, ``5.0`` → ``5``)."""
    out = set()
    for m in NUMBER.finditer(text):
        s = m.group().replace(",", "")
        try:
            v = float(s)
        except ValueError:
            continue
        out.add(str(int(v)) if v.is_integer() else str(v))
    return out


def operand_flags(tokenizer, prompt: str, template: str, positions: Sequence[int], operands: set[str]) -> list[bool]:
    """For each position of the formatted prompt: does its token belong to a number of the question whose value
    is one of the gold solution's ``operands`` (strings as :func:`numbers` writes them)?"""
    text = template.format(prompt=prompt)
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    spans = [(m.start(), m.end()) for m in NUMBER.finditer(text) if numbers(m.group()) & operands]
    return [any(a < e and s < b for s, e in spans) for a, b in (offsets[i] for i in positions)]


def extract(model, tokenizer, records: Sequence[dict[str, Any]], template: str, cfg: SaliencyConfig,
            operands_of: Callable[[dict[str, Any]], set[str]], ks: Sequence[int] | None = None,
            random_seed: Any = None) -> list[dict[str, Any]]:
    """Rationales for ``records`` ``{prompt_id, prompt, target}`` (``target``: the teacher's answer text).

    One attribution per record serves every k in ``ks`` (default ``[cfg.k]``). With ``random_seed`` the positions
    are random instead (no model call). Returns one row per record and k: ``prompt_id, k, rationale,
    tokens (list), operand_share`` (the share of the chosen tokens that are gold operands).
    """
    ks = list(ks or [cfg.k])
    rows = []
    for r in records:
        ids, cand = prompt_tokens(tokenizer, r["prompt"], template)
        if not cand:
            raise ValueError(f"prompt {r.get('prompt_id')!r} has no question token to rank")
        scores = None if random_seed is not None else token_scores(model, tokenizer, r["prompt"], r["target"],
                                                                   template, cfg)
        ops = operands_of(r)
        for k in ks:
            chosen = (random_k(cand, k, (random_seed, r["prompt_id"], k)) if scores is None
                      else top_k(scores, cand, k))
            flags = operand_flags(tokenizer, r["prompt"], template, chosen, ops)
            rows.append({"prompt_id": r["prompt_id"], "k": int(k), "rationale": rationale_text(tokenizer, ids, chosen),
                         "tokens": [tokenizer.decode([ids[i]]) for i in chosen],
                         "operand_share": float(np.mean(flags)) if flags else float("nan")})
    return rows


def operand_base_rate(tokenizer, prompt: str, template: str, operands: set[str]) -> float:
    """The share of a prompt's candidate tokens that are gold operands: what a random pick scores on average."""
    _, cand = prompt_tokens(tokenizer, prompt, template)
    flags = operand_flags(tokenizer, prompt, template, cand, operands)
    return float(np.mean(flags)) if flags else float("nan")
