"""Tasks: a prompt source plus a correctness check, so the study runs on the miniature or on real data (paper §3).

The paper distils 1B–3B students from 15 teachers on GSM8K and MATH (§3, "Settings"); each
prompt-response pair gets a binary correctness score. A :class:`Task` hides which world is used:
``train_prompts``/``test_prompts`` return dicts with ``prompt_id``, ``prompt``, ``answer`` and
``reference_solution``, and ``is_correct`` scores a response. Prompts are the raw question text; any
chat/prompt template belongs to the model side. The pieces live one module each:

* :mod:`grace.synthetic`: the miniature world's generated word problems, teacher styles and corpus;
* :mod:`grace.data`: the GSM8K and MATH loaders;
* :mod:`grace.answers`: GSM8K ``#### N`` and MATH ``\\boxed{}`` answer checking.
"""

from __future__ import annotations

import dataclasses
import os
import random
from typing import Any

from grace.answers import extract_boxed, extract_gsm8k_answer, gsm8k_is_correct, math_is_correct
from grace.config import TASK_KEYS
from grace.data import default_data_dir, load_gsm8k, load_math, load_math_train
from grace.synthetic import (
    Difficulty,
    Problem,
    generate_problems,
    get_difficulty,
    render_solution,
    seed_int,
)


def _subsample(rows: list[dict[str, Any]], n: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded random subset of ``n`` rows (all rows, shuffled, if ``n`` is None); prefix-stable."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    if n is not None:
        if n > len(rows):
            raise ValueError(f"n={n} exceeds the {len(rows)} available rows; ask for at most {len(rows)}")
        order = order[:n]
    return [rows[i] for i in order]


class Task:
    """A prompt source plus a correctness check, so the study runs on synthetic or real data alike.

    Prompt dicts carry ``prompt_id``, ``prompt``, ``answer`` (a string) and ``reference_solution``.
    """

    name: str = "task"

    def train_prompts(self, n: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` training prompts (paper §3: the n=512 scoring prompts and the distillation set)."""
        raise NotImplementedError

    def test_prompts(self, n: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` held-out prompts for the student's evaluation (paper §3, average-at-k)."""
        raise NotImplementedError

    def extract_answer(self, response: str) -> str | None:
        """The final answer a response commits to."""
        raise NotImplementedError

    def is_correct(self, response: str, answer: str) -> bool:
        """Binary correctness of ``response`` against the gold ``answer`` (paper §3)."""
        raise NotImplementedError


class SyntheticTask(Task):
    """The miniature world's GSM-style task (see :func:`generate_problems`)."""

    name = "synthetic"

    def __init__(self, difficulty: str | Difficulty = "medium", min_steps: int = 1, max_steps: int = 4,
                 seed: int = 0):
        self.difficulty = get_difficulty(difficulty)
        self.min_steps, self.max_steps, self.seed = min_steps, max_steps, seed

    def problems(self, split: str, n: int, seed: int | None = None) -> list[Problem]:
        """The :class:`Problem` objects behind ``train_prompts``/``test_prompts`` (for teacher styles)."""
        if n is None:
            raise ValueError("n=None: the synthetic task is unbounded; pass an integer n")
        s = self.seed if seed is None else seed_int("synthetic-task", self.seed, seed)
        return generate_problems(n, s, split, self.min_steps, self.max_steps, self.difficulty)

    @staticmethod
    def _as_prompt(p: Problem) -> dict[str, Any]:
        return {"prompt_id": p.uid, "prompt": p.question, "answer": str(p.answer),
                "reference_solution": render_solution(p, "calc"), "n_steps": p.n_steps}

    def train_prompts(self, n: int | None = None, seed: int | None = None) -> list[dict[str, Any]]:
        return [self._as_prompt(p) for p in self.problems("train", n, seed)]

    def test_prompts(self, n: int | None = None, seed: int | None = None) -> list[dict[str, Any]]:
        return [self._as_prompt(p) for p in self.problems("test", n, seed)]

    def extract_answer(self, response: str) -> str | None:
        return extract_gsm8k_answer(response)

    def is_correct(self, response: str, answer: str) -> bool:
        return gsm8k_is_correct(response, answer)


class GSM8KTask(Task):
    """GSM8K (paper §3). ``path``: a folder with ``train.jsonl``/``test.jsonl``; ``None`` uses
    ``default_data_dir()/gsm8k`` when present, else the Hugging Face Hub."""

    name = "gsm8k"

    def __init__(self, path: str | os.PathLike | None = None):
        if path is None and (default_data_dir() / "gsm8k").is_dir():
            path = default_data_dir() / "gsm8k"
        self.path = path
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def _split(self, split: str) -> list[dict[str, Any]]:
        if split not in self._rows:
            self._rows[split] = load_gsm8k(split, self.path)
        return self._rows[split]

    def train_prompts(self, n: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
        return _subsample(self._split("train"), n, seed)

    def test_prompts(self, n: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
        return _subsample(self._split("test"), n, seed)

    def extract_answer(self, response: str) -> str | None:
        return extract_gsm8k_answer(response)

    def is_correct(self, response: str, answer: str) -> bool:
        return gsm8k_is_correct(response, answer)


class MathTask(Task):
    """MATH (paper §3). ``path``: the test jsonl (MATH500) or a folder with ``test.jsonl``; ``None``
    uses ``default_data_dir()/math500`` when present, else the Hub. ``train_path``: a MATH training
    jsonl (same row format), or ``hub:NAME[:CONFIG]`` for a Hub dataset with a ``train`` split
    (e.g. ``hub:DigitalLearningGmbH/MATH-lighteval``); required for ``train_prompts`` — MATH500
    has no training split."""

    name = "math"

    def __init__(self, path: str | os.PathLike | None = None, train_path: str | os.PathLike | None = None):
        if path is None and (default_data_dir() / "math500").is_dir():
            path = default_data_dir() / "math500"
        self.path, self.train_path = path, train_path
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def train_prompts(self, n: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
        if self.train_path is None:
            raise ValueError("MathTask(train_path=None) has no training prompts; pass train_path= a MATH "
                             "train jsonl with 'problem'/'solution' rows")
        if "train" not in self._rows:
            self._rows["train"] = load_math_train(self.train_path)
        return _subsample(self._rows["train"], n, seed)

    def test_prompts(self, n: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
        if "test" not in self._rows:
            self._rows["test"] = load_math(self.path, split="test")
        return _subsample(self._rows["test"], n, seed)

    def extract_answer(self, response: str) -> str | None:
        return extract_boxed(response)

    def is_correct(self, response: str, answer: str) -> bool:
        return math_is_correct(response, answer)


TASKS: dict[str, type[Task]] = {"synthetic": SyntheticTask, "gsm8k": GSM8KTask, "math": MathTask}


def get_task(name: str, **kwargs: Any) -> Task:
    """Build a task by name (``synthetic``, ``gsm8k``, ``math``) with constructor ``kwargs``."""
    if name not in TASKS:
        raise ValueError(f"task={name!r}: use one of {sorted(TASKS)}")
    return TASKS[name](**kwargs)


def make_task(section: Any) -> Task:
    """The task a profile's ``task`` section names (paper §3's datasets, or the miniature).

    ``section``: a :class:`grace.config.TaskSection` or the section as written (a mapping with ``kind``).
    Only the keys of the task's ``kind`` reach its constructor.
    """
    raw = dataclasses.asdict(section) if dataclasses.is_dataclass(section) else dict(section)
    kind = raw.get("kind", "synthetic")
    if kind not in TASK_KEYS:
        raise ValueError(f"task.kind={kind!r}: use one of {sorted(TASK_KEYS)}")
    return get_task(kind, **{k: v for k, v in raw.items() if k in TASK_KEYS[kind] - {"kind"}})


__all__ = ["TASKS", "GSM8KTask", "MathTask", "SyntheticTask", "Task", "get_task", "make_task"]
