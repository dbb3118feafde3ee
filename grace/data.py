"""The real benchmarks of paper §3: GSM8K and MATH/MATH500, from local jsonl files or the Hugging Face Hub.

Offline (CI, this book's default), the files live in ``$GRACE_DATA_DIR`` or ``<repo>/../shared/data``
(:func:`default_data_dir`); they are never committed. Each loader returns prompt dicts with
``prompt_id``, ``prompt``, ``answer`` and ``reference_solution``, the shape every :class:`grace.tasks.Task`
returns.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from grace.answers import extract_boxed, extract_gsm8k_answer
from grace.io import read_jsonl


def default_data_dir() -> Path:
    """The shared real-data folder: ``$GRACE_DATA_DIR`` if set, else ``<repo>/../shared/data``.

    The folder may not exist (callers and tests check ``.exists()``).
    """
    env = os.environ.get("GRACE_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _resolve_jsonl(path: str | os.PathLike, split: str) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / f"{split}.jsonl"
    if not p.exists():
        raise ValueError(f"path={str(p)!r} does not exist; pass a jsonl file or a folder with {split}.jsonl")
    return p


def _hub_rows(name: str, config: str | None, split: str, local_hint: str) -> list[dict[str, Any]]:
    try:
        import datasets

        ds = datasets.load_dataset(name, config, split=split) if config else datasets.load_dataset(name, split=split)
        return [dict(r) for r in ds]
    except Exception as e:  # offline, no datasets, missing split
        raise ValueError(
            f"could not load {name!r} split={split!r} from the Hugging Face Hub ({type(e).__name__}: {e}); "
            f"when offline pass a local jsonl path, e.g. path={local_hint!r}"
        ) from e


def load_gsm8k(split: str = "train", path: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Load GSM8K (paper §3) as prompt dicts.

    Args:
        split: ``"train"`` (7,473 rows) or ``"test"`` (1,319 rows).
        path: a jsonl file of ``{"question", "answer"}`` rows, or a folder with ``{split}.jsonl``;
            ``None`` loads ``openai/gsm8k`` (``main``) with ``datasets``.

    Returns:
        Dicts with ``prompt_id`` (``gsm8k-{split}-{row:05d}``), ``prompt`` (the question),
        ``answer`` (the number after ``####``) and ``reference_solution``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: use 'train' or 'test'")
    hint = str(default_data_dir() / "gsm8k" / f"{split}.jsonl")
    rows = read_jsonl(_resolve_jsonl(path, split)) if path is not None else _hub_rows("openai/gsm8k", "main", split, hint)
    out = []
    for i, r in enumerate(rows):
        if "question" not in r or "answer" not in r:
            raise ValueError(f"GSM8K row {i} has keys {sorted(r)}; expected 'question' and 'answer'")
        out.append({"prompt_id": f"gsm8k-{split}-{i:05d}", "prompt": r["question"],
                    "answer": extract_gsm8k_answer(r["answer"]), "reference_solution": r["answer"]})
    return out


def load_math(path: str | os.PathLike | None = None, split: str = "test") -> list[dict[str, Any]]:
    """Load MATH / MATH500 (paper §3) as prompt dicts.

    Args:
        path: a jsonl file of ``{"problem", "solution", "answer"?, ...}`` rows, or a folder with
            ``{split}.jsonl``; ``None`` loads ``HuggingFaceH4/MATH-500`` (test only) with ``datasets``.
        split: which split the rows are (used for the folder lookup and the ids).

    Returns:
        Dicts with ``prompt_id`` (``unique_id`` when present), ``prompt``, ``answer`` (the ``answer``
        field, else the solution's last ``\\boxed{}``), ``reference_solution``, and ``subject``/``level``
        when present.
    """
    hint = str(default_data_dir() / "math500" / f"{split}.jsonl")
    rows = read_jsonl(_resolve_jsonl(path, split)) if path is not None else _hub_rows("HuggingFaceH4/MATH-500", None, split, hint)
    return _math_rows(rows, split)


def _math_rows(rows: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """MATH rows ``{problem, solution[, answer, unique_id, subject|type, level]}`` as prompt dicts."""
    out = []
    for i, r in enumerate(rows):
        if "problem" not in r or "solution" not in r:
            raise ValueError(f"MATH row {i} has keys {sorted(r)}; expected 'problem' and 'solution'")
        answer = r.get("answer") or extract_boxed(r["solution"])
        rec = {"prompt_id": r.get("unique_id") or f"math-{split}-{i:05d}", "prompt": r["problem"],
               "answer": answer, "reference_solution": r["solution"]}
        rec.update({k: r[k] for k in ("subject", "level") if k in r})
        out.append(rec)
    return out


def load_math_train(spec: str | os.PathLike) -> list[dict[str, Any]]:
    """MATH training rows (MATH500 has none): a local jsonl of ``problem``/``solution`` rows, or
    ``hub:NAME[:CONFIG]`` for a Hub dataset with a ``train`` split (e.g.
    ``hub:DigitalLearningGmbH/MATH-lighteval``)."""
    if str(spec).startswith("hub:"):
        name, _, config = str(spec)[4:].partition(":")
        rows = _hub_rows(name, config or None, "train", str(default_data_dir() / "math" / "train.jsonl"))
        return _math_rows(rows, "train")
    return load_math(spec, split="train")


__all__ = ["default_data_dir", "load_gsm8k", "load_math", "load_math_train"]
