"""Supervised fine-tuning on the teacher's sampled text: the paper's distillation (paper §3, ``grace.distill``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grace.distill import TrainConfig, distill
from grace.methods.base import Method


@dataclass(frozen=True)
class SFTConfig:
    """Paper §3's distillation has no method parameter of its own: the recipe is all in ``TrainConfig``."""


def train(student, tokenizer, examples: Sequence[dict[str, Any]], train_cfg: TrainConfig, method_cfg: SFTConfig,
          template: str, work_dir: str | os.PathLike, teacher=None, teacher_tokenizer=None,
          progress: bool = False) -> dict[str, float]:
    """Paper §3: response-only cross-entropy on the teacher's generations (:func:`grace.distill.distill`)."""
    if not isinstance(method_cfg, SFTConfig):
        raise ValueError(f"method 'sft' takes an SFTConfig, got {type(method_cfg).__name__}")
    return distill(student, tokenizer, examples, train_cfg, template, work_dir, progress=progress)


METHOD = Method(name="sft", config=SFTConfig, train=train, needs="text", source="GRACE paper §3 (Settings)")
