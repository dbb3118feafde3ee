"""Distillation methods behind one interface: what the student learns from a teacher.

:data:`METHODS` lists them — ``sft`` (paper §3: the teacher's sampled text), ``soft`` (soft labels with a
temperature: the teacher's logits) and ``rationale`` (saliency rationales in a dual objective: the teacher's
input gradients, arXiv 2409.12586). Each entry is a :class:`grace.methods.base.Method`: a validated config
class and a ``train`` function with one signature (:func:`train`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from grace.methods import rationale, sft, soft
from grace.methods.base import NEEDS, Method, check_same_tokenizer

METHODS: dict[str, Method] = {m.name: m for m in (sft.METHOD, soft.METHOD, rationale.METHOD)}
"""Name → :class:`Method`, in the order the book presents them."""


def get_method(name: str) -> Method:
    """The registry entry ``name`` (errors list the choices)."""
    if name not in METHODS:
        raise ValueError(f"method={name!r}: use one of {sorted(METHODS)}")
    return METHODS[name]


def make_config(name: str, **params: Any):
    """``METHODS[name].config(**params)``, validated; an unknown parameter is named with the valid ones."""
    import dataclasses

    cls = get_method(name).config
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"method {name!r} has no parameter {unknown}; its parameters are {sorted(known)}")
    return cls(**params)


def train(name: str, student, tokenizer, examples: Sequence[dict[str, Any]], train_cfg, method_cfg, template: str,
          work_dir: str | os.PathLike, teacher=None, teacher_tokenizer=None, progress: bool = False) -> dict[str, float]:
    """Train ``student`` in place with method ``name`` (see each method's ``train``)."""
    return get_method(name).train(student, tokenizer, examples, train_cfg, method_cfg, template, work_dir,
                                  teacher=teacher, teacher_tokenizer=teacher_tokenizer, progress=progress)


__all__ = ["METHODS", "NEEDS", "Method", "check_same_tokenizer", "get_method", "make_config", "train"]
