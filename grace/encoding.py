"""From a (prompt, response) record to token ids and labels: the template, tokenisation, label masking.

Paper §2.1 takes the student's gradient of the cross-entropy on the *response* tokens only; §3's
distillation trains on the same response-only loss. Both go through :func:`encode_example`, so the
features (:mod:`grace.features`), the distillation (:mod:`grace.distill`), the world checks and
generation (the prompt template) see one encoding. Padding a batch (:func:`right_pad`) keeps the
label mask: pads carry ``IGNORE_INDEX`` and come after the real tokens.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

DEFAULT_TEMPLATE = "### Problem:\n{prompt}\n\n### Solution:\n"

"""The released code's prompt template (the study's profiles set their own ``template``)."""
IGNORE_INDEX = -100

"""Label of a position that carries no loss (the prompt, padding): PyTorch's cross-entropy default."""


def _adds_bos(tokenizer) -> bool:
    """Whether the tokenizer itself puts BOS first when asked for special tokens."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return len(ids) > 0 and ids[0] == bos


def encode_example(
    tokenizer, prompt: str, response: str, template: str = DEFAULT_TEMPLATE, max_length: int | None = None
) -> tuple[list[int], list[int]]:
    """Token ids and labels of one (prompt, response) pair; prompt labels are ``-100`` (paper §2.1).

    The prompt (formatted with ``template``) and the response are tokenised *separately* and the ids
    concatenated, so the prompt/response boundary is exact (joint tokenisation could merge tokens
    across it). BOS is prepended only if the tokenizer adds it itself (e.g. Llama), EOS is appended
    to the response and supervised (the student learns to stop). With ``max_length`` the sequence is
    cut on the right (the response is shortened; the prompt is kept).

    Returns:
        ``(input_ids, labels)``, lists of equal length; ``labels[t] = input_ids[t]`` on response
        tokens and ``-100`` elsewhere. The number of supervised tokens is ``|y|``.

    Raises:
        ValueError: if ``template`` lacks ``{prompt}``, the response is empty, or nothing of the
            response survives ``max_length``.
    """
    if "{prompt}" not in template:
        raise ValueError(f"template {template!r} has no '{{prompt}}' placeholder; add one")
    prompt_ids = list(tokenizer(template.format(prompt=prompt), add_special_tokens=False)["input_ids"])
    response_ids = list(tokenizer(response, add_special_tokens=False)["input_ids"])
    if not response_ids:
        raise ValueError(f"response {response!r} is empty after tokenisation; drop this example")
    if _adds_bos(tokenizer):
        prompt_ids = [tokenizer.bos_token_id, *prompt_ids]
    if tokenizer.eos_token_id is not None:
        response_ids.append(tokenizer.eos_token_id)
    ids = prompt_ids + response_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + response_ids
    if max_length is not None:
        if max_length <= len(prompt_ids):
            raise ValueError(
                f"max_length={max_length} leaves no response token (prompt has {len(prompt_ids)} "
                "tokens); raise max_length"
            )
        ids, labels = ids[:max_length], labels[:max_length]
    return ids, labels


def encode_all(tokenizer, examples: Sequence[dict[str, Any]], template: str, max_length: int) -> list[dict[str, list[int]]]:
    """Encode ``{prompt, response}`` records with response-only labels (:func:`encode_example`).

    Examples longer than ``max_length`` are cut on the right (their EOS is lost); a warning names
    every one (by ``prompt_id`` and sample), so a too-small ``distill.max_length`` is never silent.
    """
    out, cut = [], []
    for i, ex in enumerate(examples):
        for key in ("prompt", "response"):
            if key not in ex:
                raise ValueError(f"example {i} has no '{key}' field; records need prompt and response")
        ids, labels = encode_example(tokenizer, ex["prompt"], ex["response"], template=template, max_length=None)
        if len(ids) > max_length:
            cut.append(f"{ex.get('prompt_id', i)}#{ex.get('sample', 0)} ({len(ids)} tokens)")
            ids, labels = encode_example(tokenizer, ex["prompt"], ex["response"], template=template,
                                         max_length=max_length)
        out.append({"input_ids": ids, "labels": labels})
    if cut:
        warnings.warn(f"{len(cut)} of {len(out)} examples are longer than max_length={max_length} tokens and were "
                      f"truncated (their EOS is lost); raise distill.max_length. Truncated: {', '.join(cut)}",
                      stacklevel=2)
    return out


def pad_id(tokenizer) -> int:
    """The id used for right padding: the tokenizer's pad token, else EOS, else 0."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def bucket_length(n: int, multiple: int = 1) -> int:
    """``n`` rounded up to a multiple of ``multiple`` (a length bucket; 1 leaves it unchanged)."""
    if multiple < 1:
        raise ValueError(f"multiple={multiple!r}; pass a positive integer (1 = no bucketing)")
    return -(-n // multiple) * multiple


def right_pad(batch: Sequence[tuple[list[int], list[int]]], pad: int, multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(input_ids, labels)`` pairs into ``[B, T]`` tensors, padded on the right.

    Pads come after the real tokens and carry ``IGNORE_INDEX`` labels, so under causal attention no
    real token sees them and no loss falls on them (§2.1's per-sample gradients are unchanged).
    ``T`` is the longest sequence rounded up to a multiple of ``multiple``: on a GPU a few bucketed
    lengths let the attention kernels reuse their plans instead of building one per new length.
    """
    B, T = len(batch), bucket_length(max(len(ids) for ids, _ in batch), multiple)
    ids = torch.full((B, T), pad, dtype=torch.long)  # [B, T]
    labels = torch.full((B, T), IGNORE_INDEX, dtype=torch.long)  # [B, T]
    for b, (x, y) in enumerate(batch):
        ids[b, : len(x)], labels[b, : len(y)] = torch.tensor(x), torch.tensor(y)
    return ids, labels


__all__ = ["DEFAULT_TEMPLATE", "IGNORE_INDEX", "bucket_length", "encode_all", "encode_example", "pad_id", "right_pad"]
