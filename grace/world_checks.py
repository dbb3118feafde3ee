"""GRACE-free acceptance checks: is a world in the paper's regime? (paper §3 "Settings").

GRACE scores a teacher by how the *pre-trained* student's gradients on the teacher's data spread.
The paper's student (Llama-1B-Base) has read a great deal of worked math, its teachers are competent
instruct models, and their samples differ from one another. A world that breaks those premises can
reverse GRACE for reasons that say nothing about the method, so every study writes these checks to
``analysis/world_checks.json`` *before* any score is read, and chapter 6 shows them first.
Nothing here looks at a score.

Keys of ``world_checks.json`` (a contract; per configuration under ``configs``):

* ``log_vocab`` — ln V, the loss of a uniform guess over the student's vocabulary;
* ``configs[c].student_loss_per_token`` — the pre-trained student's mean per-token loss on the
  scored generations of configuration ``c`` (token-weighted), and ``loss_ratio`` = that / ln V;
* ``loss_separation`` — the student's mean per-token loss on corrupted minus correct solutions of
  the same prompts (same wording, slipped arithmetic; :func:`grace.synthetic.render_pair`), with a
  bootstrap CI over prompts: can the student's gradients tell right from wrong at all?
* ``configs[c].teacher_accuracy`` — accuracy of the configuration's generations;
* ``configs[c].outside_span_share`` — the median, over folds, of the share of a held-out fold's
  squared gradient norm that lies outside the span of the other folds' normalized Gram (the
  eigen-directions with λ < ν/d, where eq. 4 weights by d/ν): a property of the features, not of
  the ranking;
* ``student_avg_at_k_spread`` — max − min of the main pool's distilled students' avg@k, in points;
* ``teacher_vs_student_spearman`` — Spearman of teacher accuracy and student avg@k over the main pool;
* ``regime`` — the name of the rules the world is judged by (the profile's ``world_checks.regime``).

``acceptance`` judges them by the rules of one regime (:data:`REGIMES`; every rule is GRACE-free):

* ``mixed-accuracy`` (the default): every main-pool ``loss_ratio`` ≤ 0.5; the separation's CI above 0;
  every main-pool teacher's accuracy, averaged over its temperatures, in [0.4, 0.95]; every main-pool
  ``outside_span_share`` ≤ 0.2; the spread ≥ the profile's ``world_checks.min_spread_points``, 15 by default;
* ``strong-teacher`` (the paper's pool of strong instruct teachers that differ in fit): the same, with every
  main-pool teacher's accuracy in [0.85, 0.98] and, in addition, |``teacher_vs_student_spearman``| ≤ 0.4 —
  accuracy is not what decides the student, as in the paper (its teachers' avg@16 has ρ = 0.11 with the
  student on GSM8K).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grace.config import Profile, parse_profile
from grace.io import read_json, seed_for, write_json

ACCEPTANCE = {"max_loss_ratio": 0.5, "teacher_accuracy": (0.4, 0.95), "max_outside_span_share": 0.2,
              "min_spread_points": 15.0, "max_abs_accuracy_spearman": None}
"""The ``mixed-accuracy`` thresholds (the default regime). ``min_spread_points`` can be set per profile."""

REGIMES: dict[str, dict[str, Any]] = {
    "mixed-accuracy": ACCEPTANCE,
    "strong-teacher": {**ACCEPTANCE, "teacher_accuracy": (0.85, 0.98), "max_abs_accuracy_spearman": 0.4},
}
"""Each regime's acceptance thresholds (chosen by a profile's ``world_checks.regime``).

``max_abs_accuracy_spearman``: the largest |Spearman| of teacher accuracy with student avg@k over the main
pool (``None``: not a rule of the regime)."""


def regime_rules(regime: str) -> dict[str, Any]:
    """The thresholds of ``regime`` (a key of :data:`REGIMES`; paper §3's setting); the error lists the valid names."""
    if regime not in REGIMES:
        raise ValueError(f"world_checks.regime={regime!r}: use one of {sorted(REGIMES)}")
    return REGIMES[regime]


def outside_span_share(H, prompt_ids, n_folds: int = 10, nu: float = 1e-3, seed: int = 0) -> float:
    """Median over folds i of ‖P_low(D₋ᵢ) h‖² / ‖h‖² summed over the rows h of fold i (eq. 4's folds).

    P_low projects onto the eigenvectors of Σ̃(D₋ᵢ) (the Gram of the other folds' unit-norm rows over
    their count, eq. 1) whose eigenvalue is below ν/d: the directions the other folds do not span,
    where eq. 4 weights held-out variance by about d/ν. H: (N, d); prompt_ids: (N,).
    """
    from grace.scores import prompt_folds

    H = np.asarray(H, dtype=np.float64)
    ids = np.asarray(prompt_ids)
    N, d = H.shape
    folds = prompt_folds(ids, n_folds, seed)
    Hn = H / np.linalg.norm(H, axis=1, keepdims=True)
    shares = []
    for f in np.unique(folds):
        held = folds == f
        B = Hn[~held]  # (r', d)
        lam, U = np.linalg.eigh(B.T @ B / len(B))  # (d,), (d, d)
        low = U[:, lam < nu / d]  # (d, k)
        proj = H[held] @ low  # (r, k)
        shares.append(float((proj**2).sum() / (H[held] ** 2).sum()))
    return float(np.median(shares))


def sequence_losses(model, tokenizer, examples: Sequence[dict[str, str]], template: str,
                    batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Summed response-token cross-entropy and response length of each ``{prompt, response}``.

    Teacher forcing with :func:`grace.encoding.encode_example` (prompt tokens unscored, EOS scored),
    right-padded batches, no gradients. Returns ``(loss_sum [n], n_tokens [n])``.
    """
    import torch

    from grace.encoding import IGNORE_INDEX, encode_example

    enc = [encode_example(tokenizer, e["prompt"], e["response"], template) for e in examples]
    sums, lens = np.zeros(len(enc)), np.zeros(len(enc))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(enc), batch_size):
            chunk = enc[start:start + batch_size]
            T = max(len(i) for i, _ in chunk)
            ids = torch.full((len(chunk), T), pad, dtype=torch.long)
            labels = torch.full((len(chunk), T), IGNORE_INDEX, dtype=torch.long)
            for r, (i, lab) in enumerate(chunk):
                ids[r, :len(i)], labels[r, :len(lab)] = torch.tensor(i), torch.tensor(lab)
            logits = model(input_ids=ids).logits[:, :-1].float()  # (B, T-1, V)
            tgt = labels[:, 1:]  # (B, T-1)
            ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=IGNORE_INDEX,
                                                   reduction="none")  # (B, T-1)
            mask = tgt != IGNORE_INDEX
            sums[start:start + len(chunk)] = (ce * mask).sum(1).numpy()
            lens[start:start + len(chunk)] = mask.sum(1).numpy()
    return sums, lens


def _bootstrap_mean(x: np.ndarray, n_boot: int, seed: int, ci: float = 0.95) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    return float(np.quantile(means, (1 - ci) / 2)), float(np.quantile(means, (1 + ci) / 2))


def loss_separation(model, tokenizer, problems, styles: Sequence[str], template: str, seed: int = 0,
                    n_boot: int = 1000) -> dict[str, Any]:
    """Mean per-token loss of the student on slipped minus correct solutions of the same problems.

    Each problem gets one style (cycled through ``styles``) and a correct/slipped pair with identical
    wording (:func:`grace.synthetic.render_pair`), every step's result off by 1 or 2 (``slip_prob=1``, so
    every problem gives a pair; at the teachers' 0.25 only about a third did, 66 of 200 in the first
    quick probe). The CI is a percentile bootstrap over the paired differences.
    """
    from grace.synthetic import render_pair

    rng = random.Random(seed)
    good, bad = [], []
    for i, p in enumerate(problems):
        pair = render_pair(p, styles[i % len(styles)], rng, slip_prob=1.0)
        if pair is not None:
            good.append({"prompt": p.question, "response": pair[0]})
            bad.append({"prompt": p.question, "response": pair[1]})
    if len(good) < 2:
        raise ValueError(f"only {len(good)} corrupted pairs from {len(problems)} problems; pass more problems")
    gs, gl = sequence_losses(model, tokenizer, good, template)
    bs, bl = sequence_losses(model, tokenizer, bad, template)
    diff = bs / bl - gs / gl  # (pairs,) per-token loss difference
    lo, hi = _bootstrap_mean(diff, n_boot, seed)
    return {"mean": float(diff.mean()), "ci_low": lo, "ci_high": hi, "n_pairs": len(diff),
            "frac_positive": float((diff > 0).mean()), "loss_correct": float(gs.sum() / gl.sum()),
            "loss_corrupted": float(bs.sum() / bl.sum())}


def config_checks(features, log_vocab: float, n_folds: int, nu: float, seed: int) -> dict[str, float]:
    """The per-configuration checks from one configuration's :class:`grace.features.Features`."""
    loss = float((features.loss * features.lengths).sum() / features.lengths.sum())
    return {"student_loss_per_token": loss, "loss_ratio": loss / log_vocab,
            "outside_span_share": outside_span_share(features.H, features.prompt_ids, n_folds, nu, seed)}


def acceptance(checks: dict[str, Any], min_spread_points: float = ACCEPTANCE["min_spread_points"],
               regime: str = "mixed-accuracy") -> dict[str, Any]:
    """Judge ``checks`` by the rules of ``regime`` (:data:`REGIMES`); one ``{value, rule, pass}`` entry per
    criterion, and ``all_pass``."""
    rules = regime_rules(regime)
    main = {c: v for c, v in checks["configs"].items() if v["in_pool"]}
    lo, hi = rules["teacher_accuracy"]
    by_teacher: dict[str, list[float]] = {}
    for v in main.values():
        by_teacher.setdefault(v["teacher"], []).append(v["teacher_accuracy"])
    acc = {t: float(np.mean(a)) for t, a in by_teacher.items()}
    ratio = max((v["loss_ratio"] for v in main.values()), default=math.nan)
    span = max((v["outside_span_share"] for v in main.values()), default=math.nan)
    sep = checks["loss_separation"]
    spread = checks["student_avg_at_k_spread"]
    out = {
        "loss_ratio": {"value": ratio, "rule": f"max over the main pool <= {rules['max_loss_ratio']}",
                       "pass": bool(ratio <= rules["max_loss_ratio"])},
        "loss_separation": {"value": sep["mean"], "ci": [sep["ci_low"], sep["ci_high"]], "rule": "CI above 0",
                            "pass": bool(sep["ci_low"] > 0)},
        "teacher_accuracy": {"value": acc, "rule": f"every main-pool teacher's mean over temperatures in [{lo}, {hi}]",
                             "pass": bool(acc) and all(lo <= a <= hi for a in acc.values())},
        "outside_span_share": {"value": span, "rule": f"max over the main pool <= {rules['max_outside_span_share']}",
                               "pass": bool(span <= rules["max_outside_span_share"])},
        "student_avg_at_k_spread": {"value": spread, "rule": f">= {min_spread_points:g} points",
                                    "pass": bool(spread >= min_spread_points)},
    }
    if rules["max_abs_accuracy_spearman"] is not None:  # NaN (too few or constant values) cannot pass
        rho, cap = checks.get("teacher_vs_student_spearman", math.nan), rules["max_abs_accuracy_spearman"]
        out["teacher_vs_student_spearman"] = {"value": rho, "rule": f"|rho| <= {cap} over the main pool",
                                              "pass": bool(abs(rho) <= cap)}
    out["all_pass"] = all(v["pass"] for v in out.values())
    return out


def compute_world_checks(study_dir: str | os.PathLike, n_pairs: int = 200, n_boot: int = 1000,
                         progress: bool = False, profile: Profile | None = None, results=None) -> dict[str, Any]:
    """Every check of this module for a finished study directory; writes ``analysis/world_checks.json``.

    Reads ``results.csv`` (unless ``results``, the same table, is given: the study's checks-only run has no
    scores and writes none) and each configuration's ``features/<config>/features.npz``, and the study's
    ``profile.json`` unless ``profile`` (its typed sections, as the study runner holds them) is given;
    loads the pre-trained student for ``loss_separation`` (miniature worlds only: the corrupted pairs
    are synthetic problems; a Hub-model study records ``None`` there).
    """
    import pandas as pd
    from scipy.stats import spearmanr

    from grace.analysis import main_pool
    from grace.features import Features
    from grace.synthetic import CHAIN_STYLES
    from grace.tasks import make_task
    from grace.world import load_model, load_tokenizer

    study_dir = Path(study_dir)
    if results is None and not (study_dir / "results.csv").exists():
        raise ValueError(f"{study_dir} has no results.csv; run `grace study --profile ... --out {study_dir}` first")
    P = profile if profile is not None else parse_profile(read_json(study_dir / "profile.json"))
    results = pd.read_csv(study_dir / "results.csv") if results is None else results
    in_pool = set(main_pool(results)["config"])
    sc, seed = P.scores, P.seed
    student_dir = study_dir / "world" / "bases" / P.world.student if P.world is not None else P.models.student
    tok = load_tokenizer(student_dir)
    log_vocab = math.log(len(tok))
    configs = {}
    for row in results.itertuples():
        feats = Features.load(study_dir / "features" / row.config / "features.npz")
        configs[row.config] = {"teacher": row.teacher, "temperature": float(row.temperature),
                               "in_pool": row.config in in_pool, "teacher_accuracy": float(row.teacher_accuracy),
                               **config_checks(feats, log_vocab, sc.n_folds, sc.nu, seed_for(seed, "folds"))}
    separation = None
    if P.world is not None:
        task = make_task(P.task)
        styles = sorted({t.style for t in P.world.teachers} & set(CHAIN_STYLES)) or ["calc"]
        problems = task.problems("train", n_pairs, seed_for(seed, "world-checks"))
        separation = loss_separation(load_model(student_dir), tok, problems, styles, P.template,
                                     seed=seed_for(seed, "world-checks-pairs"), n_boot=n_boot)
    pool = main_pool(results)
    spread = 100.0 * float(pool["student_avg_at_k"].max() - pool["student_avg_at_k"].min()) if len(pool) else math.nan
    varies = len(pool) >= 3 and pool["teacher_accuracy"].nunique() > 1 and pool["student_avg_at_k"].nunique() > 1
    rho = float(spearmanr(pool["teacher_accuracy"], pool["student_avg_at_k"])[0]) if varies else math.nan
    regime = P.world_checks.regime
    checks = {"log_vocab": log_vocab, "vocab": len(tok), "configs": configs, "loss_separation": separation,
              "student_avg_at_k_spread": spread, "teacher_vs_student_spearman": rho,
              "n_main_pool": int(len(pool)), "profile": P.name, "seed": seed, "regime": regime}
    if separation is None:
        separation = {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    checks["acceptance"] = acceptance({**checks, "loss_separation": separation},
                                      float(P.world_checks.min_spread_points), regime)
    write_json(study_dir / "analysis" / "world_checks.json", checks)
    return checks


def load_world_checks(study_dir: str | os.PathLike) -> dict[str, Any]:
    """``analysis/world_checks.json`` of a study, computed first if it is missing (older studies)."""
    path = Path(study_dir) / "analysis" / "world_checks.json"
    return read_json(path) if path.exists() else compute_world_checks(study_dir)


def checks_table(checks: dict[str, Any]):
    """One row per configuration: pool, teacher accuracy, the student's loss and ratio to ln V, outside-span share."""
    import pandas as pd

    rows = [{"config": c, "pool": "main" if v["in_pool"] else "anecdote", "teacher_accuracy": v["teacher_accuracy"],
             "student_loss_per_token": v["student_loss_per_token"], "loss_ratio": v["loss_ratio"],
             "outside_span_share": v["outside_span_share"]} for c, v in checks["configs"].items()]
    return pd.DataFrame(rows)


def _shown(v: dict[str, Any]) -> str:
    """An acceptance entry's value as text: per-teacher values joined, a CI appended where there is one."""
    val = v["value"]
    if not isinstance(val, dict) and not math.isfinite(val):
        return "not measured (a correlation over constant values or too few points)"
    shown = ", ".join(f"{t} {a:.2f}" for t, a in sorted(val.items())) if isinstance(val, dict) else f"{val:.3f}"
    return shown + (f" [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]" if "ci" in v else "")


def acceptance_table(checks: dict[str, Any]):
    """One row per acceptance criterion: value, rule, pass."""
    import pandas as pd

    return pd.DataFrame([{"check": key, "value": _shown(v), "rule": v["rule"], "pass": bool(v["pass"])}
                         for key, v in checks["acceptance"].items() if key != "all_pass"])


def summary_lines(checks: dict[str, Any]) -> list[str]:
    """A short human-readable summary of :func:`compute_world_checks`'s output (the CLI prints it)."""
    lines = [f"world checks: profile={checks['profile']} seed={checks['seed']} ln V={checks['log_vocab']:.3f} "
             f"main-pool configurations={checks['n_main_pool']} rules={checks.get('regime', 'mixed-accuracy')}"]
    lines += [f"  {'PASS' if r['pass'] else 'FAIL'}  {r['check']}: {r['value']}  ({r['rule']})"
              for r in acceptance_table(checks).to_dict(orient="records")]
    lines.append(f"  teacher_vs_student_spearman: {checks['teacher_vs_student_spearman']:.3f}")
    lines.append(f"  paper regime: {'yes' if checks['acceptance']['all_pass'] else 'no'}")
    return lines


__all__ = ["ACCEPTANCE", "REGIMES", "acceptance", "acceptance_table", "checks_table", "compute_world_checks", "config_checks",
           "load_world_checks", "loss_separation", "outside_span_share", "regime_rules", "sequence_losses",
           "summary_lines"]
