"""A real pretrained student on real GSM8K, without distillation: the diagnostics of chapter 12.

The miniature's students are trained here from scratch; this module points the same scores at a real
LM (``smollm2-135m-instruct``, :mod:`grace.sources`) on GSM8K train problems:

* :func:`human_records` — the human reference solutions as a "teacher" (paper §3's data, no model);
* :func:`degrade` — controlled damage to them: final answers changed, steps shuffled, answer only;
* :func:`self_samples` — the model's own answers through its chat template at several temperatures
  (the paper's self-distillation teacher, Fig. 6's temperature sweep), resumable per batch;
* :func:`scores_by_teacher` — features (by default the factored projector, :mod:`grace.factored`)
  and every score of :func:`grace.scores.all_scores` for each candidate set, as ``grace rank`` does.

No student is distilled on a CPU: what the scores say here is a diagnostic of the data, not a
correlation with trained students (that is the ``gpu`` profile's job).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEGRADATIONS = ("wrong_answer", "shuffled_steps", "answer_only")


def human_records(prompts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """GSM8K prompts (:func:`grace.data.load_gsm8k`) → records whose response is the reference solution."""
    return [{"prompt_id": p["prompt_id"], "prompt": p["prompt"], "response": p["reference_solution"], "sample": 0,
             "teacher": "human", "correct": True} for p in prompts]


def _final(text: str) -> tuple[str, str]:
    """``(body, answer)`` of a GSM8K solution ``body\\n#### answer``."""
    body, _, ans = text.rpartition("####")
    return body.rstrip("\n"), ans.strip()


def degrade(records: Sequence[dict[str, Any]], kind: str, seed: int = 0) -> list[dict[str, Any]]:
    """Damaged copies of GSM8K solutions (one per record), for a ranking whose right answer is known.

    * ``wrong_answer``: the final answer (after ``####``, and where the last step states it) is moved
      by a random non-zero amount — every step but the conclusion is right;
    * ``shuffled_steps``: the reasoning lines in a random order (the answer line stays last);
    * ``answer_only``: ``#### answer`` alone, no reasoning.
    """
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; choose one of {DEGRADATIONS}")
    rng = random.Random(f"{seed}-{kind}")
    out = []
    for r in records:
        body, ans = _final(r["response"])
        if kind == "answer_only":
            text = f"#### {ans}"
        elif kind == "shuffled_steps":
            lines = body.split("\n")
            order = list(range(len(lines)))
            if len(lines) > 1:
                while order == sorted(order):
                    rng.shuffle(order)
            text = "\n".join(lines[i] for i in order) + f"\n#### {ans}"
        else:
            try:
                value = int(ans.replace(",", ""))
                new = str(value + rng.choice([-1, 1]) * rng.randint(1, max(2, abs(value) // 4 + 1)))
            except ValueError:
                new = ans + "1"
            hits = list(re.finditer(rf"(?<![\d.,]){re.escape(ans)}(?![\d])", body))
            if hits:  # the last mention of the answer in the reasoning states it: change it too
                body = body[:hits[-1].start()] + new + body[hits[-1].end():]
            text = f"{body}\n#### {new}"
        out.append({**r, "response": text, "teacher": kind, "correct": kind != "wrong_answer" and r.get("correct", True)})
    return out


def self_samples(model, tokenizer, prompts: Sequence[dict[str, Any]], temperatures: Sequence[float], m: int,
                 out_dir: str | Path, max_new_tokens: int = 256, seed: int = 0, batch_size: int = 32,
                 progress: bool = True) -> dict[float, list[dict[str, Any]]]:
    """The model's own answers at each temperature (chat template, no instruction: GSM8K's own format).

    One file per temperature under ``out_dir`` (``grace generate``'s format, resumable per batch);
    ``correct`` by :func:`grace.answers.gsm8k_is_correct`.
    """
    from grace.answers import gsm8k_is_correct
    from grace.generation import generate_to_file
    from grace.io import read_jsonl

    out = {}
    for T in temperatures:
        path = Path(out_dir) / f"self@{T:g}.jsonl"
        if path.exists():  # finished earlier (generate_to_file would sample it again)
            out[T] = read_jsonl(path)
            continue
        out[T] = generate_to_file(model, tokenizer, prompts, path, m, float(T), teacher=f"self@{T:g}",
                                  is_correct=gsm8k_is_correct, seed=seed + int(round(100 * T)), chat=True,
                                  chat_instruction=None, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                  min_new_tokens=4, progress=progress)
    return out


def scores_by_teacher(model, tokenizer, teachers: Mapping[str, Sequence[dict[str, Any]]], out_dir: str | Path, *,
                      d: int = 512, projector: str = "factored", n_folds: int = 4, nu: float = 1e-3, seed: int = 0,
                      template: str | None = None, progress: bool = True, norms: str | None = None):
    """Features and every score for each candidate set (the ``grace rank`` loop on records in memory).

    Returns ``(table, features)``: one row per candidate (scores of :func:`grace.scores.all_scores`,
    plus ``accuracy`` and ``n``) and the :class:`~grace.features.Features` of each, saved under
    ``out_dir/<name>/features.npz`` (reused on a rerun with the same inputs). ``norms``: the factored
    projector's ``grad_norm``, ``"sketch"`` (its default) or ``"exact"`` (where the norm is the result).
    """
    import numpy as np
    import pandas as pd

    from grace.rank import features_for_records
    from grace.scores import score_features

    rows, feats = {}, {}
    for name, recs in teachers.items():
        f = features_for_records((model, tokenizer), list(recs), Path(out_dir) / name, d=d, projector=projector,
                                 template=template, batch_size=1, seed=seed, progress=progress, norms=norms)
        feats[name] = f
        rows[name] = {**score_features(f, n_folds=n_folds, nu=nu, seed=seed), "n": len(recs),
                      "accuracy": float(np.mean([bool(r.get("correct", False)) for r in recs]))}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "teacher"
    return table, feats
