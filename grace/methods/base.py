"""What every distillation method shares: its registry entry and the shared-tokenizer check.

A method (:data:`grace.methods.METHODS`) is a validated config class plus a ``train`` function with one
signature, so a chapter or the study can swap paper §3's supervised fine-tuning for soft labels
(Hinton et al.'s recipe, reviewed by Omar & Gholami) or saliency rationales (arXiv 2409.12586) without
touching the rest of the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NEEDS = ("text", "logits", "gradients")
"""What a method needs from the teacher: its sampled text, its next-token logits, or its input gradients."""


@dataclass(frozen=True)
class Method:
    """One distillation method of :data:`grace.methods.METHODS`.

    Attributes:
        name: registry key (``sft``, ``soft``, ``rationale``).
        config: the method's config dataclass (validated in ``__post_init__``; defaults from its source).
        train: ``train(student, tokenizer, examples, train_cfg, method_cfg, template, work_dir, teacher=None,
            teacher_tokenizer=None, progress=False) -> summary`` (the student is trained in place).
        needs: what the method reads from the teacher (one of :data:`NEEDS`).
        source: the paper or section the method implements.
    """

    name: str
    config: type
    train: Callable[..., dict[str, Any]]
    needs: str
    source: str

    def __post_init__(self):
        if self.needs not in NEEDS:
            raise ValueError(f"method {self.name!r}: needs={self.needs!r}; use one of {NEEDS}")


def check_same_tokenizer(student_tokenizer, teacher_tokenizer, teacher: str = "teacher") -> None:
    """Refuse a teacher whose tokenizer differs from the student's (soft labels compare two distributions over
    one vocabulary, token by token; Hinton et al. 2015 §2).

    Raises:
        ValueError: naming the first token id on which the two vocabularies disagree, and the fix.
    """
    s_vocab, t_vocab = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    if s_vocab == t_vocab:
        return
    s_inv, t_inv = {i: w for w, i in s_vocab.items()}, {i: w for w, i in t_vocab.items()}
    diff = next((i for i in sorted(set(s_inv) | set(t_inv)) if s_inv.get(i) != t_inv.get(i)), None)
    raise ValueError(
        f"{teacher}'s tokenizer differs from the student's (vocabulary sizes {len(t_vocab)} vs {len(s_vocab)}; "
        f"token id {diff}: {t_inv.get(diff)!r} vs {s_inv.get(diff)!r}): soft labels need one shared vocabulary. "
        "Use a teacher of the student's tokenizer family, or distil from its text instead (method 'sft')")
