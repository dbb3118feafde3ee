"""Rationale distillation as a dual objective: one task prefix asks for the answer, another for the rationale
(Hsieh et al. 2023, "Distilling step-by-step", §3.2; adopted by arXiv 2409.12586 §3 for saliency rationales).

    L = L_label + λ · L_rationale

Each training prompt gives one *label* example (the evaluation template, target: the answer) and, when it has
a rationale, one *rationale* example (the template behind ``rationale_prefix``, target: the rationale). At test
time the student is prompted with the label template only, so the rationale costs nothing at inference. The
source trains T5 encoder–decoders; this book's students are decoder-only, so a task is a prompt prefix and a
target after the prompt, with the response-only loss of :func:`grace.encoding.encode_example`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

from grace.distill import TrainConfig, collate, train_causal_lm
from grace.encoding import IGNORE_INDEX, encode_example
from grace.methods.base import Method

LABEL, RATIONALE = 0, 1
"""Task ids of an encoded example."""


@dataclass(frozen=True)
class RationaleConfig:
    """The dual objective's knobs (Hsieh et al. 2023 §3.2 use λ = 1, as does arXiv 2409.12586 by adopting it).

    Attributes:
        weight: λ ≥ 0 on the rationale loss (0: the rationale examples carry no loss, i.e. answer-only).
        rationale_prefix: text put before the template for the rationale task (the label task has none).
    """

    weight: float = 1.0
    rationale_prefix: str = "Explain. "

    def __post_init__(self):
        if not float(self.weight) >= 0:
            raise ValueError(f"weight={self.weight!r} must be >= 0 (1: Distilling step-by-step's λ)")
        if not self.rationale_prefix.strip():
            raise ValueError(f"rationale_prefix={self.rationale_prefix!r} must be non-blank: it is what tells the "
                             "two tasks apart")


def encode_dual(tokenizer, records: Sequence[dict[str, Any]], template: str, cfg: RationaleConfig,
                max_length: int) -> list[dict[str, Any]]:
    """Records ``{prompt, label[, rationale]}`` → encoded examples with a ``task`` id (label first, then the
    rationale when the record has a non-blank one); response-only labels (:func:`grace.encoding.encode_example`)."""
    out = []
    for i, r in enumerate(records):
        for key in ("prompt", "label"):
            if not str(r.get(key, "")).strip():
                raise ValueError(f"record {i} has no {key!r}: a rationale record needs prompt and label")
        ids, labels = encode_example(tokenizer, r["prompt"], r["label"], template, max_length)
        out.append({"input_ids": ids, "labels": labels, "task": LABEL})
        if str(r.get("rationale", "")).strip():
            ids, labels = encode_example(tokenizer, r["prompt"], r["rationale"], cfg.rationale_prefix + template,
                                         max_length)
            out.append({"input_ids": ids, "labels": labels, "task": RATIONALE})
    return out


def dual_objective_loss(logits: torch.Tensor, labels: torch.Tensor, task: torch.Tensor,
                        weight: float) -> dict[str, torch.Tensor]:
    """L_label + λ·L_rationale, each the mean token cross-entropy over its task's examples in the batch
    (Hsieh et al. 2023 §3.2). ``logits`` ``(B, T, V)`` aligned with ``labels`` ``(B, T)``; ``task`` ``(B,)``.
    A task absent from the batch contributes 0."""
    tok = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")  # (B, T)
    valid = labels != IGNORE_INDEX  # (B, T)
    parts = {}
    for name, tid in (("label", LABEL), ("rationale", RATIONALE)):
        m = valid & (task == tid)[:, None]  # (B, T)
        parts[name] = tok[m].mean() if m.any() else logits.new_zeros(())
    return {"loss": parts["label"] + weight * parts["rationale"], **parts}


def collate_dual(batch: Sequence[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """:func:`grace.distill.collate` plus the ``task`` ids ``(B,)``."""
    out = collate(batch, pad_id)
    out["task"] = torch.tensor([int(b["task"]) for b in batch])
    return out


class RationaleTrainer(Trainer):
    """HF ``Trainer`` whose loss is :func:`dual_objective_loss`."""

    def __init__(self, *args, rationale_config: RationaleConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.rationale_config = rationale_config

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        loss = dual_objective_loss(out.logits[:, :-1], inputs["labels"][:, 1:], inputs["task"],
                                   self.rationale_config.weight)["loss"]
        return (loss, out) if return_outputs else loss


def train(student, tokenizer, examples: Sequence[dict[str, Any]], train_cfg: TrainConfig, method_cfg: RationaleConfig,
          template: str, work_dir: str | os.PathLike, teacher=None, teacher_tokenizer=None,
          progress: bool = False) -> dict[str, float]:
    """Train the student on ``{prompt, label, rationale}`` records with the dual objective (HF ``Trainer``,
    resumable as :func:`grace.distill.train_causal_lm`). The rationales come from the teacher beforehand
    (:mod:`grace.saliency`), so the teacher itself is not needed here."""
    if not isinstance(method_cfg, RationaleConfig):
        raise ValueError(f"method 'rationale' takes a RationaleConfig, got {type(method_cfg).__name__}")
    encoded = encode_dual(tokenizer, examples, template, method_cfg, train_cfg.max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    summary = train_causal_lm(student, tokenizer, encoded, train_cfg, work_dir, progress=progress,
                              trainer_cls=RationaleTrainer, trainer_kwargs={"rationale_config": method_cfg},
                              collator=lambda b: collate_dual(b, pad),
                              key_extra={"method": "rationale", **asdict(method_cfg),
                                         "tasks": [e["task"] for e in encoded]})
    summary["n_examples"] = len(encoded)
    return summary


METHOD = Method(name="rationale", config=RationaleConfig, train=train, needs="gradients",
                source="arXiv 2409.12586 §3 (loss of Hsieh et al. 2023 §3.2)")
