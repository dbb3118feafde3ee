"""Ablations of GRACE's parameters and the paper-vs-release variants, from the study's saved features.

Paper §3.3 and App. D.3 (Figs 19–20: n, m, d, C), App. D.1 (Figs 15–16: filtering) and the
released code (``abhishekpanigrahi1996/GRACE``). Everything here is a pure function of what the
study already saved — the feature files ``study_dir/features/<config>/features.npz`` and the
results table — so no ablation needs a new gradient, because:

* **d.** The study projects with the dense :class:`~grace.projection.RademacherProjector`, whose
  entry ``Π[r, c]`` depends only on ``(seed, r, c)`` and is ``±1/√D``. Row ``r`` of ``Π`` is
  output column ``r`` of ``H``, so the first ``d'`` columns of ``H`` are *exactly* the features a
  ``d'``-dimensional projection would give, and any ``d'`` of its columns are a ``d'``-dimensional
  projection with other i.i.d. rows of ``Π`` (tested in ``tests/test_ablations.py``).
* **n, m.** Rows are (prompt, generation) pairs grouped by prompt, so a subset of prompts and of
  generations per prompt is a row subset.
* **length scaling.** Rows were multiplied by ``length_scale_factor(|y|)`` (§2.1: ``log|y|``); the
  study saved ``|y|``, so ``H / log|y|`` (no scaling) and ``H · log|y|`` (``(log|y|)²``) are exact.

Only the projector-seed / fp16 experiment of chapter 8 recomputes gradients
(:func:`recompute_features`), and then only on the study's own miniature student.

Notation: N rows = n prompts × m generations, d feature dimension, C folds.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from grace import analysis as A
from grace import scores as S
from grace.features import LENGTH_SCALES, Features, length_scale_factor
from grace.io import read_json
from grace.projection import Projector, RademacherProjector

__all__ = [
    "ABLATION_PARAMS",
    "RESCORE_SCORES",
    "VARIANTS",
    "Fp16CastProjector",
    "ablation_table",
    "block_scores",
    "load_study_features",
    "oriented_spearman",
    "ranking_agreement",
    "recompute_features",
    "study_drivers",
    "release_slice_prompts",
    "rescale_length",
    "rescore",
    "score_settings",
    "spread_from",
    "study_shape",
    "subset_features",
    "trend",
    "variant_scores",
    "variant_summary",
]

ABLATION_PARAMS = ("n", "m", "d", "n_folds", "nu", "length_scale")
"""Parameters :func:`ablation_table` can vary (Figs 19–20 and two extra ablations)."""

RESCORE_SCORES = S.FEATURE_SCORES
"""Scores :func:`rescore` can recompute from features alone (those of :data:`grace.scores.SCORES` that
read only ``H`` and the prompt ids)."""

VARIANTS: dict[str, dict[str, str]] = {
    "eq4": {
        "label": "eq. 4 (fold centring)",
        "paper": "§2.2 eq. 4: C prompt folds; fold rows centred at the fold mean; M(D₋ᵢ) = Σ̃ + (ν/d)I",
        "release": "(reference: the paper's definition; the book's grace.scores.grace)",
    },
    "eq5_global": {
        "label": "eq. 5 as printed (global centring)",
        "paper": "§2.2 eq. 5 writes the same sum with h − μ(D), the mean of all rows",
        "release": "(not in the release; a second reading of the paper)",
    },
    "release": {
        "label": "release split scheme",
        "paper": "C = 10 disjoint prompt folds covering every prompt once; rows centred",
        "release": "10 random splits, default_rng(s) permutation, last 10% of prompts as test; "
                   "test rows raw and uncentred; tr(K_train⁻¹ K_test) with eigenvalue smoothing "
                   "(1−s)w + s·mean(w)",
    },
    "release_test_normalised": {
        "label": "release, test rows normalised",
        "paper": "eq. 4 whitens the raw (unnormalised) rows h",
        "release": "a normalize_test option exists; the shipped entry point leaves it off",
    },
    "release_train_raw": {
        "label": "release, train rows not normalised",
        "paper": "eq. 1: Σ̃ is built from unit-norm rows h̃",
        "release": "one stored version of GRACE_computation.py exposes normalize_train as an opt-in "
                   "flag that scripts/grace.sh does not pass (the other hard-codes it on)",
    },
    "release_no_log": {
        "label": "release without log|y|",
        "paper": "§2.1: h = log|y| · Πg",
        "release": "gradient_computation.py saves Πg/√D with no log|y| factor",
    },
    "release_slice": {
        "label": "release subsampling slice",
        "paper": "§3: n = 512 random prompts × m = 4 generations",
        "release": "tokenize_data.py shuffles the questions with random.Random(42) and keeps the "
                   "first SUBSAMPLE_RESPONSES (= m = 4) of them, not SUBSAMPLE_QUESTIONS (= 512)",
    },
    "release_as_shipped": {
        "label": "release as shipped (slice + no log|y|)",
        "paper": "all of the above",
        "release": "scripts/grace.sh end to end: m prompts, no log|y|, random splits",
    },
}
"""The score variants of chapter 8: key → label, what the paper says, what the release does."""


# ---------------------------------------------------------------------------------------------
# loading the study
# ---------------------------------------------------------------------------------------------


def _study_profile(study_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(study_dir) / "profile.json"
    if not path.exists():
        raise ValueError(f"{path} does not exist; pass the directory returned by "
                         "grace.study.ensure_study (it holds profile.json)")
    return read_json(path)


def load_study_features(study_dir: str | os.PathLike) -> dict[str, Features]:
    """Every configuration's saved features (paper §2.1's G(D)), keyed by config name.

    Args:
        study_dir: the study directory (``$GRACE_ARTIFACTS/<profile>/study``).

    Returns:
        ``{config: Features}`` sorted by config name.
    """
    fdir = Path(study_dir) / "features"
    paths = sorted(fdir.glob("*/features.npz"))
    if not paths:
        raise ValueError(f"no feature files under {fdir}; run the study first "
                         "(grace.study.ensure_study(profile))")
    return {p.parent.name: Features.load(p) for p in paths}


def score_settings(study_dir: str | os.PathLike) -> dict[str, Any]:
    """The scoring settings the study used for its score columns: ``n_folds``, ``nu``, ``seed``.

    ``seed`` is the fold-assignment seed (``grace.study.seed_for(profile seed, "folds")``), so
    ``rescore(feats, **score_settings(study_dir))`` reproduces the results table's ``grace`` column.
    """
    from grace.study import seed_for

    p = _study_profile(study_dir)
    return {"n_folds": int(p["scores"]["n_folds"]), "nu": float(p["scores"]["nu"]),
            "seed": seed_for(int(p["seed"]), "folds")}


def study_shape(features_by_config: Mapping[str, Features]) -> dict[str, Any]:
    """``n`` prompts, ``m`` generations per prompt, ``d`` and the length scaling of the saved features (§2.1).

    Every configuration must share them (the study scores all teachers on the same prompts).
    """
    shapes = set()
    for cfg, f in features_by_config.items():
        _, counts = np.unique(f.prompt_ids, return_counts=True)
        if (counts != counts[0]).any():
            raise ValueError(f"config {cfg!r}: prompts have unequal numbers of generations "
                             f"({sorted(set(counts.tolist()))}); ablations need m rows per prompt")
        shapes.add((len(counts), int(counts[0]), f.H.shape[1], f.meta.get("length_scale", "log")))
    if len(shapes) != 1:
        raise ValueError(f"configurations have different (n, m, d, length_scale): {sorted(shapes)}; "
                         "ablate configurations scored in one study")
    n, m, d, ls = shapes.pop()
    return {"n": n, "m": m, "d": d, "length_scale": ls}


# ---------------------------------------------------------------------------------------------
# exact transformations of saved features
# ---------------------------------------------------------------------------------------------


def rescale_length(features: Features, length_scale: str = "log") -> np.ndarray:
    """``H`` under another length scaling (§2.1's ``log|y|``; App. D.4), as float64 (N, d).

    The saved rows are ``f_saved(|y|)·Πg``; this returns ``f_new(|y|)·Πg`` exactly, e.g.
    ``H / log|y|`` for ``"none"`` and ``H · log|y|`` for ``"log2"`` when the study used ``"log"``.
    """
    if length_scale not in LENGTH_SCALES:
        raise ValueError(f"unknown length_scale {length_scale!r}; choose one of {LENGTH_SCALES}")
    H = np.asarray(features.H, dtype=np.float64)
    saved = features.meta.get("length_scale", "log")
    if saved == length_scale:
        return H
    old = length_scale_factor(features.lengths, saved)  # (N,)
    if np.any(old == 0):
        raise ValueError(f"some rows have |y| = {features.lengths[old == 0][:3].tolist()} so the saved "
                         f"'{saved}' factor is 0 and cannot be undone; drop one-token responses")
    return H * (length_scale_factor(features.lengths, length_scale) / old)[:, None]


def _rows_by_prompt(prompt_ids: np.ndarray) -> dict[int, np.ndarray]:
    """Row indices of each prompt id, in stored (generation) order."""
    order = np.argsort(prompt_ids, kind="stable")
    ids, starts = np.unique(prompt_ids[order], return_index=True)
    return dict(zip(ids.tolist(), np.split(order, starts[1:]), strict=True))


def _choose(k_all: int, k: int | None, rng: np.random.Generator | None, what: str) -> np.ndarray:
    """Positions of a size-``k`` subset of ``range(k_all)``: the first ``k``, or random with ``rng``."""
    if k is None:
        return np.arange(k_all)
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= k_all:
        raise ValueError(f"{what}={k!r} is out of range: the saved features have {what} = {k_all}; "
                         f"pass an integer in [1, {k_all}]")
    if rng is None:
        return np.arange(int(k))
    return np.sort(rng.choice(k_all, int(k), replace=False))


def subset_features(features: Features, *, prompt_keys: Sequence[Any] | None = None,
                    m: int | None = None, columns: np.ndarray | None = None,
                    gen_rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of chosen prompts and generations and chosen columns of ``H`` (App. D.3 subsets).

    Args:
        features: one configuration's features.
        prompt_keys: keep these prompts (original ``prompt_id`` values); ``None`` keeps all.
        m: generations kept per prompt: the first ``m`` in stored order, or ``m`` random ones with
            ``gen_rng``; ``None`` keeps all.
        columns: column indices of ``H`` to keep (``None``: all).
        gen_rng: random generator for the generation subset.

    Returns:
        ``(rows, prompt_ids, columns)``: row indices into ``features.H`` (grouped by prompt), their
        prompt ids, and the column indices.
    """
    groups = _rows_by_prompt(np.asarray(features.prompt_ids))
    if prompt_keys is None:
        pids = list(groups)
    else:
        index = {k: i for i, k in enumerate(features.prompt_keys)}
        missing = [k for k in prompt_keys if k not in index]
        if missing:
            raise ValueError(f"prompts {missing[:3]} are not in these features; subset only prompts "
                             "every configuration was scored on")
        pids = [index[k] for k in prompt_keys]
    rows = []
    for p in pids:
        g = groups[p]
        rows.append(g[_choose(len(g), m, gen_rng, "m")])
    rows = np.concatenate(rows)
    cols = np.arange(features.H.shape[1]) if columns is None else np.asarray(columns)
    return rows, np.asarray(features.prompt_ids)[rows], cols




def _feature_score(H: np.ndarray, ids: np.ndarray, score: str, n_folds: int, nu: float, seed: int) -> float:
    """One score of :data:`RESCORE_SCORES` from (N, d) rows and their prompt ids, through the registry."""
    if score not in RESCORE_SCORES:
        raise ValueError(f"unknown score {score!r}; rescoring supports {RESCORE_SCORES}")
    return S.SCORES[score](S.ScoreInputs(H, ids, n_folds=n_folds, nu=nu, seed=seed))


def rescore(features_by_config: Mapping[str, Features], *, n: int | None = None, m: int | None = None,
            d: int | None = None, n_folds: int = 10, nu: float = 1e-3, length_scale: str = "log",
            score: str = "grace", seed: int = 0, subset_seed: int | None = None) -> pd.Series:
    """Recompute one score for every configuration on a subset of the saved features (App. D.3).

    The same prompts and columns are used for every configuration (one D_eval prompt set, one Π).

    Args:
        features_by_config: ``{config: Features}`` from :func:`load_study_features`.
        n: prompts kept (``None``: all). Without ``subset_seed`` the first ``n`` prompts in stored
            order (the study drew its prompts at random, so these are a random subset too).
        m: generations kept per prompt (``None``: all); the first ``m`` without ``subset_seed``.
        d: projection dimension kept (``None``: all); the first ``d`` columns without
            ``subset_seed``, which equal a fresh ``d``-dimensional projection exactly.
        n_folds, nu, seed: GRACE's C, ν and fold-assignment seed (eq. 4).
        length_scale: ``"log"`` (§2.1), ``"log2"`` or ``"none"``; see :func:`rescale_length`.
        score: one of :data:`RESCORE_SCORES`.
        subset_seed: ``None`` for the canonical (first-k) subsets, else the seed of random subsets of
            prompts, generations and columns.

    Returns:
        ``pd.Series`` config → score, named ``score``.
    """
    if score not in RESCORE_SCORES:
        raise ValueError(f"unknown score {score!r}; rescore supports {RESCORE_SCORES}")
    if not features_by_config:
        raise ValueError("features_by_config is empty; load it with load_study_features(study_dir)")
    first = next(iter(features_by_config.values()))
    keys = list(first.prompt_keys)
    rng = None if subset_seed is None else np.random.default_rng([int(subset_seed), 0])
    chosen = [keys[i] for i in _choose(len(keys), n, rng, "n")]
    columns = _choose(first.H.shape[1], d, rng, "d")
    out = {}
    for cfg, f in features_by_config.items():
        gen_rng = None if subset_seed is None else np.random.default_rng([int(subset_seed), 1])
        rows, ids, cols = subset_features(f, prompt_keys=chosen, m=m, columns=columns, gen_rng=gen_rng)
        H = rescale_length(f, length_scale)[np.ix_(rows, cols)]  # (n'·m', d')
        out[cfg] = _feature_score(H, ids, score, n_folds, nu, seed)
    return pd.Series(out, name=score, dtype=float)


#: Components of :func:`grace_drivers`, each lower-is-better like GRACE itself.
DRIVERS = ("grace", "g_var", "spectral_factor", "spanned", "smoothing", "smoothing_frac")


def grace_drivers(features_by_config: Mapping[str, Features], results: pd.DataFrame, *, n_folds: int = 10,
                  nu: float = 1e-3, seed: int = 0, target: str = "student_avg_at_k") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decompose GRACE per configuration and correlate each part with the student (§2.2, eqs. 3, 6).

    GRACE = G-Var × spectral factor, where G-Var (eq. 3) is the scale of the centred gradients and
    ``spectral_factor = GRACE / G-Var`` the whitening's effect on it (scale-free). Eq. 6 also splits
    GRACE into the variance along directions the other folds span and the part set by the smoothing
    ν/d (:func:`grace.scores.grace_spectral_split`).

    Returns:
        ``(per_config, rho)``: one row per configuration with the parts, ``dims_below`` and the target;
        and each part's oriented Spearman ρ with the target (lower-is-better orientation, like GRACE).
    """
    tgt = _target_series(results, target)
    rows = {}
    for cfg, f in features_by_config.items():
        split = S.grace_spectral_split(f.H, f.prompt_ids, n_folds=n_folds, nu=nu, seed=seed)
        gv = S.g_var(f.H)
        rows[cfg] = {**split, "g_var": gv, "spectral_factor": split["grace"] / gv if gv > 0 else math.nan}
    per = pd.DataFrame.from_dict(rows, orient="index")
    per[target] = tgt.reindex(per.index)
    rho = pd.DataFrame([{"part": p, "rho_oriented": oriented_spearman(per[p], per[target], "grace")}
                        for p in DRIVERS]).set_index("part")
    return per, rho


def study_drivers(study_dir: str | os.PathLike, results: pd.DataFrame, *, nu: float | None = None,
                  target: str = "student_avg_at_k") -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`grace_drivers` on a study's saved features with the study's own C, ν and fold seed (§2.2, eqs. 3, 6).

    With the study's ν it first checks that GRACE recomputed from the features equals ``results``'
    ``grace`` column, and raises ``ValueError`` if not (the features are not that study's). ``nu``: another
    smoothing for the same features (no check then).
    """
    feats = load_study_features(study_dir)
    settings = score_settings(study_dir)
    if nu is not None:
        settings["nu"] = float(nu)
    per, rho = grace_drivers({c: feats[c] for c in results["config"]}, results, target=target, **settings)
    if nu is None:
        saved = results.set_index("config")["grace"].reindex(per.index).to_numpy(float)
        if not np.allclose(per["grace"].to_numpy(float), saved, rtol=1e-6, equal_nan=True):
            raise ValueError(f"{study_dir}: GRACE recomputed from the saved features differs from results.csv; "
                             "the features are not the study's (rerun `grace study` on that directory)")
    return per, rho


# ---------------------------------------------------------------------------------------------
# correlations and the ablation table (Figs 19–20)
# ---------------------------------------------------------------------------------------------


def oriented_spearman(score_values: pd.Series, target: pd.Series, score: str = "grace") -> float:
    """Orientation × Spearman ρ between a score and a student target over shared configs (§3.1).

    Positive means the score ranks teachers the right way (``grace.scores.SCORE_ORIENTATION``; all
    GRACE variants are lower-is-better). NaN with fewer than 3 finite pairs or a constant input.
    """
    if score not in S.SCORE_ORIENTATION:
        raise ValueError(f"score {score!r} has no orientation; use a key of grace.scores.SCORE_ORIENTATION")
    return S.SCORE_ORIENTATION[score] * A.series_spearman(score_values, target)


def _target_series(results: pd.DataFrame, target: str) -> pd.Series:
    if target not in results.columns:
        raise ValueError(f"target {target!r} is not a column of the results table; available: "
                         f"{sorted(c for c in results.columns if c.startswith('student'))}")
    return results.set_index("config")[target].astype(float)


def ablation_table(study_dir: str | os.PathLike, results: pd.DataFrame, param: str, values: Sequence[Any],
                   target: str = "student_avg_at_k", score: str = "grace", n_repeats: int = 5,
                   seed: int = 0, features_by_config: Mapping[str, Features] | None = None) -> pd.DataFrame:
    """Oriented Spearman ρ of a score with the student target as one GRACE parameter varies.

    Paper App. D.3: Fig. 19 (``d`` and ``n``), the ``m`` = 2/4/8 numbers, Fig. 20 (``n_folds`` = C);
    ``nu`` (ν) and ``length_scale`` (log vs log² vs none) are extra ablations. All other parameters
    stay at the study's values (:func:`score_settings`, all saved prompts/generations/columns).

    Repeat 0 uses the canonical subsets (first n'/m'/d') and the study's fold seed, so at the study's
    own setting it reproduces the study's correlation exactly; repeats 1.. redraw random subsets of
    prompts/generations/columns *and* the fold assignment, giving a mean ± sd.

    Args:
        study_dir: the study directory.
        results: the study's results table (``config`` + ``target`` columns).
        param: one of :data:`ABLATION_PARAMS`.
        values: the settings of ``param`` to try.
        target: student column to correlate with.
        score: one of :data:`RESCORE_SCORES`.
        n_repeats: draws per value (>= 1).
        seed: seed of the random draws.
        features_by_config: already-loaded features (default: load from ``study_dir``).

    Returns:
        DataFrame with one row per value: ``<param>, rho_oriented`` (mean over repeats), ``rho_sd``,
        ``rho_min, rho_max, rho_canonical`` (repeat 0), ``n_repeats, n_configs, score, target``.
    """
    if param not in ABLATION_PARAMS:
        raise ValueError(f"unknown ablation param {param!r}; choose one of {ABLATION_PARAMS}")
    if isinstance(n_repeats, bool) or int(n_repeats) != n_repeats or n_repeats < 1:
        raise ValueError(f"n_repeats={n_repeats!r} must be an integer >= 1")
    if len(values) == 0:
        raise ValueError(f"values is empty; pass the settings of {param!r} to try")
    feats = load_study_features(study_dir) if features_by_config is None else features_by_config
    base = score_settings(study_dir)
    saved_scale = study_shape(feats)["length_scale"]
    y = _target_series(results, target)
    rows = []
    for v in values:
        rhos = []
        for r in range(int(n_repeats)):
            kw: dict[str, Any] = {"n_folds": base["n_folds"], "nu": base["nu"], "score": score,
                                  "seed": base["seed"] + r,
                                  "subset_seed": None if r == 0 else int(seed) * 100_003 + r}
            kw["length_scale"] = saved_scale if param != "length_scale" else v
            if param in ("n", "m", "d", "n_folds", "nu"):
                kw[param] = v
            rhos.append(oriented_spearman(rescore(feats, **kw), y, score))
        a = np.asarray(rhos, dtype=float)
        fin = a[np.isfinite(a)]
        rows.append({param: v, "rho_oriented": float(fin.mean()) if len(fin) else math.nan,
                     "rho_sd": float(fin.std(ddof=1)) if len(fin) > 1 else math.nan,
                     "rho_min": float(fin.min()) if len(fin) else math.nan,
                     "rho_max": float(fin.max()) if len(fin) else math.nan,
                     "rho_canonical": float(a[0]), "n_repeats": int(n_repeats),
                     "n_configs": int(len(set(feats) & set(y.index))), "score": score, "target": target})
    return pd.DataFrame(rows)


def trend(table: pd.DataFrame, param: str, col: str = "rho_oriented") -> dict[str, float]:
    """How ``col`` moves with a numeric ``param`` in an :func:`ablation_table` (Fig. 19's claims).

    Returns:
        ``delta`` (``col`` at the largest ``param`` minus at the smallest), ``spearman`` (rank
        correlation of ``param`` with ``col``; +1 = monotone increase) and ``argmax`` (the ``param``
        value with the largest ``col``); NaN where fewer than 2 finite points exist.
    """
    if param not in table.columns or col not in table.columns:
        raise ValueError(f"table needs columns {param!r} and {col!r}; got {list(table.columns)}")
    t = table[[param, col]].astype(float).dropna().sort_values(param)
    if len(t) < 2:
        return {"delta": math.nan, "spearman": math.nan, "argmax": math.nan}
    sp = A.series_spearman(t[param], t[col]) if len(t) >= 3 else float(np.sign(t[col].iloc[-1] - t[col].iloc[0]))
    return {"delta": float(t[col].iloc[-1] - t[col].iloc[0]), "spearman": sp,
            "argmax": float(t[param].iloc[int(np.argmax(t[col].to_numpy()))])}


def spread_from(table: pd.DataFrame, param: str, start: float, col: str = "rho_oriented") -> float:
    """``max − min`` of ``col`` over rows with ``param ≥ start`` (Fig. 20's "stable for C ≥ 6").

    NaN when fewer than 2 such rows have a finite ``col``.
    """
    if param not in table.columns or col not in table.columns:
        raise ValueError(f"table needs columns {param!r} and {col!r}; got {list(table.columns)}")
    v = table.loc[table[param].astype(float) >= start, col].astype(float).dropna()
    return float(v.max() - v.min()) if len(v) >= 2 else math.nan


# ---------------------------------------------------------------------------------------------
# the released code's score, with its switches (chapter 8)
# ---------------------------------------------------------------------------------------------






def release_slice_prompts(prompt_keys: Sequence[Any], n_keep: int, seed: int = 42) -> list[Any]:
    """The prompts (§3: n = 512 intended) the release's ``tokenize_data.py`` keeps: a ``random.Random(seed)`` shuffle, first
    ``n_keep``. In the shipped script ``n_keep`` is ``SUBSAMPLE_RESPONSES`` (m = 4), not
    ``SUBSAMPLE_QUESTIONS`` (512). Emulated on the study's scored prompts (itself a random subset)."""
    keys = list(prompt_keys)
    if not 1 <= n_keep <= len(keys):
        raise ValueError(f"n_keep={n_keep} must be in [1, {len(keys)}] (the number of scored prompts)")
    random.Random(seed).shuffle(keys)
    return keys[:n_keep]


def _grouped(f: Features, H: np.ndarray, keys: Sequence[Any] | None = None) -> tuple[np.ndarray, int]:
    """Rows of ``keys`` (default all prompts), grouped consecutively by prompt, and m."""
    rows, ids, _ = subset_features(f, prompt_keys=keys)
    m = len(rows) // len(np.unique(ids))
    return H[rows], m


def variant_scores(features_by_config: Mapping[str, Features], *, n_folds: int = 10, nu: float = 1e-3,
                   seed: int = 0, n_splits: int = 10, test_fraction: float = 0.1, smooth: float = 1e-3,
                   slice_prompts: int | None = None) -> pd.DataFrame:
    """Every paper/release variant of GRACE for every configuration (chapter 8; keys of :data:`VARIANTS`).

    Args:
        features_by_config: ``{config: Features}`` saved with ``log|y|`` scaling (or any; the
            ``*_no_log`` variants undo whatever was saved).
        n_folds, nu, seed: eq. 4's C, ν and fold seed (use :func:`score_settings`).
        n_splits, test_fraction, smooth: the release's split count, test fraction and smoothing.
        slice_prompts: prompts kept by the release's subsampling slice; default ``m`` (what
            ``data[:SUBSAMPLE_RESPONSES]`` keeps).

    Returns:
        DataFrame indexed by config with one column per variant (lower is better for all).
    """
    shape = study_shape(features_by_config)
    k = shape["m"] if slice_prompts is None else int(slice_prompts)
    rel = {"n_splits": n_splits, "test_fraction": test_fraction, "smooth": smooth, "method": "eigh"}
    rows = {}
    for cfg, f in features_by_config.items():
        H_log, H_raw = rescale_length(f, "log"), rescale_length(f, "none")
        ids = np.asarray(f.prompt_ids)
        Hg, m = _grouped(f, H_log)
        Hg_raw, _ = _grouped(f, H_raw)
        sl = release_slice_prompts(f.prompt_keys, k)
        Hs, _ = _grouped(f, H_log, sl)
        Hs_raw, _ = _grouped(f, H_raw, sl)
        rows[cfg] = {
            "eq4": S.grace(H_log, ids, n_folds=n_folds, nu=nu, seed=seed, center="fold"),
            "eq5_global": S.grace(H_log, ids, n_folds=n_folds, nu=nu, seed=seed, center="global"),
            "release": S.grace_release(Hg, m, **rel),
            "release_test_normalised": S.grace_release(Hg, m, normalize_test=True, **rel),
            "release_train_raw": S.grace_release(Hg, m, normalize_train=False, **rel),
            "release_no_log": S.grace_release(Hg_raw, m, **rel),
            "release_slice": S.grace_release(Hs, m, **rel),
            "release_as_shipped": S.grace_release(Hs_raw, m, **rel),
        }
    return pd.DataFrame.from_dict(rows, orient="index")[list(VARIANTS)]


def _top(s: pd.Series) -> str | None:
    """The config a lower-is-better score ranks first (ties: first config name)."""
    s = s.dropna()
    if s.empty:
        return None
    return str(sorted(s.index[s == s.min()].astype(str))[0])


def variant_summary(variants: pd.DataFrame, results: pd.DataFrame, target: str = "student_avg_at_k",
                    reference: str = "eq4") -> pd.DataFrame:
    """How much each variant of §2.2's score changes the miniature's teacher ranking (chapter 8 table).

    Returns:
        DataFrame indexed by variant: ``spearman_vs_<reference>`` (ranking agreement across
        configs), ``rho_oriented`` (with ``target``), ``top_config``, ``top_changed`` (whether the
        top-ranked teacher differs from the reference's), ``top_target`` (the target of the pick).
    """
    if reference not in variants.columns:
        raise ValueError(f"reference {reference!r} is not a variant column; choose one of {list(variants.columns)}")
    y = _target_series(results, target)
    ref_top = _top(variants[reference])
    rows = {}
    for v in variants.columns:
        agree = A.series_spearman(variants[reference], variants[v])
        top = _top(variants[v])
        rows[v] = {f"spearman_vs_{reference}": agree, "rho_oriented": oriented_spearman(variants[v], y, "grace"),
                   "top_config": top, "top_changed": top != ref_top,
                   "top_target": float(y.get(top, math.nan)) if top is not None else math.nan}
    return pd.DataFrame.from_dict(rows, orient="index")




def ranking_agreement(score_table: pd.DataFrame) -> pd.DataFrame:
    """Pairwise Spearman ρ (§3.1's statistic) between the columns of a config × variant table (NaN if constant)."""
    cols = list(score_table.columns)
    return pd.DataFrame([[A.series_spearman(score_table[a], score_table[b]) for b in cols] for a in cols],
                        index=cols, columns=cols)


# ---------------------------------------------------------------------------------------------
# fast_jl's device-dependent matrix and fp16 cast (chapter 8): recompute on the miniature student
# ---------------------------------------------------------------------------------------------


class Fp16CastProjector(Projector):
    """Wraps a projector and rounds every gradient entry to float16 first, as ``fast_jl`` does.

    The release projects with TRAK's ``CudaProjector``, whose ``fast_jl`` kernel converts each
    gradient entry to ``half`` before the tensor-core product (the ±1 signs are exact in half, the
    accumulation is fp32). This wrapper reproduces that rounding and counts what it does:
    ``n_entries`` seen, ``n_flushed`` non-zero entries that became 0, ``n_subnormal`` entries left in
    fp16's subnormal range (|x| < 2⁻¹⁴, fewer than 10 significant bits).
    """

    kind = "fp16_cast"

    def __init__(self, inner: Projector):
        super().__init__(inner.dim_in, inner.dim_out, inner.seed, inner.device)
        self.inner = inner
        self.n_entries = self.n_flushed = self.n_subnormal = 0

    def _accumulate(self, out: torch.Tensor, G_cols: torch.Tensor, start: int) -> None:
        G16 = G_cols.to(torch.float16)
        self.n_entries += G_cols.numel()
        self.n_flushed += int(((G16 == 0) & (G_cols != 0)).sum())
        self.n_subnormal += int(((G16 != 0) & (G16.abs() < 2.0**-14)).sum())
        self.inner._accumulate(out, G16.to(torch.float32), start)

    def meta(self) -> dict[str, Any]:
        return {**self.inner.meta(), "fp16_cast": True}


class _Fp32Fp16PairProjector(Projector):
    """``[Π g | Π fp16(g)]``: one gradient pass gives the fp32 features and their fp16-cast twin."""

    kind = "fp32_fp16_pair"

    def __init__(self, inner: Projector):
        super().__init__(inner.dim_in, 2 * inner.dim_out, inner.seed, inner.device)
        self.inner, self.cast = inner, Fp16CastProjector(inner)

    def _accumulate(self, out: torch.Tensor, G_cols: torch.Tensor, start: int) -> None:
        d = self.inner.dim_out
        self.inner._accumulate(out[:, :d], G_cols, start)  # writes through the column views
        self.cast._accumulate(out[:, d:], G_cols, start)

    def meta(self) -> dict[str, Any]:
        return {**self.inner.meta(), "pair": "fp32|fp16"}


def recompute_features(study_dir: str | os.PathLike, configs: Sequence[str], *, d: int, n: int | None = None,
                       with_fp16: bool = False, device: str | None = None, threads: int = 1,
                       batch_size: int | None = None, progress: bool = False,
                       ) -> tuple[dict[str, Features], dict[str, Features] | None, dict[str, int]]:
    """Recompute configurations' features on the study's student at projection dimension ``d``.

    Uses the study's projector seed, template and length scaling and the first ``n`` of the scored
    prompts (default all), so with ``d`` ≥ the saved d₀ the first d₀ columns reproduce the saved
    features (up to fp32 summation order) and the column blocks ``[k·d₀, (k+1)·d₀)`` are
    independent draws of §2.1's Π — the emulation of ``fast_jl``'s GPU-dependent matrix (chapter 8).
    With ``with_fp16`` the same gradient pass also projects the gradients rounded to float16
    (:class:`Fp16CastProjector`), as ``fast_jl`` does.

    Args:
        study_dir: the study directory (its student, generations and feature files are read).
        configs: configurations to recompute.
        d: projection dimension (a multiple of the saved d to get whole Π blocks).
        n: number of scored prompts to use (the first ``n``; default all).
        with_fp16: also return the fp16-cast features.
        device: where to compute (default: the study profile's ``device``).
        threads: torch threads on CPU during the call (many small per-sample ops: 1 thread was
            several times faster than 2 on the shared 2-core build machine).
        batch_size, progress: as in :func:`grace.features.compute_features` (default batch size:
            the profile's).

    Returns:
        ``(fp32 features, fp16 features or None, fp16 counts)`` with features keyed by config and the
        counts (``n_entries, n_flushed, n_subnormal``, summed over configs) ``{}`` without fp16.
    """
    import dataclasses

    from grace.features import compute_features
    from grace.io import read_jsonl
    from grace.study import scoring_subset
    from grace.world import load_model, load_tokenizer

    study_dir = Path(study_dir)
    prof = _study_profile(study_dir)
    if not configs:
        raise ValueError("configs is empty; pass the configurations to recompute")
    student = (study_dir / "world" / "bases" / prof["world"]["student"] if "world" in prof
               else prof["models"]["student"])
    fcfg = prof["features"]
    device = device or prof.get("device", "cpu")
    saved = {c: Features.load(study_dir / "features" / c / "features.npz") for c in configs}
    seeds = {int(f.meta["projector"]["seed"]) for f in saved.values()}
    if len(seeds) != 1:
        raise ValueError(f"configs were projected with different seeds {sorted(seeds)}; recompute one study at a time")
    old_threads = torch.get_num_threads()
    if str(device).startswith("cpu"):
        torch.set_num_threads(int(threads))
    try:
        model, tok = load_model(student, device=device), load_tokenizer(student)
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        base = RademacherProjector(n_params, int(d), seed=seeds.pop(), device=device)  # one Π, cached across configs
        proj: Projector = _Fp32Fp16PairProjector(base) if with_fp16 else base
        out32, out16 = {}, {}
        for cfg, f in saved.items():
            _, per_prompt = np.unique(f.prompt_ids, return_counts=True)
            keys = list(f.prompt_keys)[: None if n is None else int(n)]
            records = scoring_subset(read_jsonl(study_dir / "generations" / cfg / "generations.jsonl"),
                                     keys, int(per_prompt[0]))
            feats = compute_features(model, tok, records, proj, length_scale=fcfg.get("length_scale", "log"),
                                     template=prof["template"], device=device, progress=progress,
                                     batch_size=int(batch_size or fcfg.get("batch_size", 8)))
            out32[cfg] = dataclasses.replace(feats, H=feats.H[:, : int(d)])
            if with_fp16:
                out16[cfg] = dataclasses.replace(feats, H=feats.H[:, int(d) :])
    finally:
        torch.set_num_threads(old_threads)
    if not with_fp16:
        return out32, None, {}
    c = proj.cast
    return out32, out16, {"n_entries": c.n_entries, "n_flushed": c.n_flushed, "n_subnormal": c.n_subnormal}


def block_scores(features_by_config: Mapping[str, Features], block_d: int, *, score: str = "grace",
                 n_folds: int = 10, nu: float = 1e-3, seed: int = 0) -> pd.DataFrame:
    """A score on each ``block_d``-column block of ``H``: one column per independent draw of §2.1's Π.

    Returns:
        DataFrame config × ``"Π block k"`` (k = 0 is the study's own Π).
    """
    out: dict[str, dict[str, float]] = {}
    for cfg, f in features_by_config.items():
        d = f.H.shape[1]
        if d % block_d:
            raise ValueError(f"config {cfg!r}: d={d} is not a multiple of block_d={block_d}; recompute "
                             "features at a multiple of the block size")
        H = np.asarray(f.H, dtype=np.float64)
        ids = np.asarray(f.prompt_ids)
        out[cfg] = {f"Π block {k}": _feature_score(H[:, k * block_d : (k + 1) * block_d], ids, score, n_folds,
                                                            nu, seed)
                    for k in range(d // block_d)}
    return pd.DataFrame.from_dict(out, orient="index")


# ---------------------------------------------------------------------------------------------
# chapter 7–8 tables
# ---------------------------------------------------------------------------------------------


def ablation_within(study_dir: str | os.PathLike, results: pd.DataFrame, param: str, values: Sequence[Any],
                    limit: float | None = None, **kw: Any) -> pd.DataFrame:
    """``grace.ablations.ablation_table`` over the values of ``param`` the saved features allow (≤ ``limit``,
    the study's n/m/d), printing the values dropped (App. D.3, Figs 19–20; chapter 7)."""
    keep = [v for v in values if limit is None or v <= limit]
    dropped = [v for v in values if v not in keep]
    if dropped:
        print(f"{param}: dropped {dropped} (the study saved {param} = {limit})")
    return ablation_table(study_dir, results, param, keep, **kw)


#: The columns chapter 7 shows of an ablation table (mean, sd, range and the canonical draw of ρ).
ABLATION_VIEW = ("rho_oriented", "rho_sd", "rho_min", "rho_max", "rho_canonical")


def ablation_view(table: pd.DataFrame, param: str) -> pd.DataFrame:
    """``table``'s ``param`` column and :data:`ABLATION_VIEW`, rounded for display (chapter 7)."""
    return table[[param, *ABLATION_VIEW]].round(3)


def projection_draws(B: pd.DataFrame, B16: pd.DataFrame, R: Mapping[str, Any], R16: Mapping[str, Any],
                     target: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How GRACE's ranking moves with the draw of Π and with fp16-cast gradients (chapter 8.2: what TRAK's
    ``fast_jl`` does on another GPU). ``B``/``B16`` are ``grace.ablations.block_scores`` of the fp32 and fp16
    recomputed features ``R``/``R16``, one column per Π block (block 0 = the study's Π).

    Returns ``(pi_tab, fp_tab)``: per other block, its Spearman with block 0, its oriented ρ with the
    target and whether the top configuration changes; per block, the same for fp16 against fp32.
    """
    ref = B["Π block 0"]
    feat_change = max(float(np.abs(R16[c].H - R[c].H).max() / np.abs(R[c].H).max()) for c in R)
    pi_rows, fp_rows = [], []
    for k, col in enumerate(B.columns):
        if k:
            pi_rows.append({"draw": col, "spearman_vs_block0": ranking_agreement(B[["Π block 0", col]]).iloc[0, 1],
                            "rho_oriented": oriented_spearman(B[col], target, "grace"),
                            "top_changed": B[col].idxmin() != ref.idxmin()})
        fp_rows.append({"draw": col, "spearman_fp16_vs_fp32": ranking_agreement(
                            pd.DataFrame({"a": B[col], "b": B16[col]})).iloc[0, 1],
                        "rho_oriented_fp16": oriented_spearman(B16[col], target, "grace"),
                        "top_changed": B16[col].idxmin() != B[col].idxmin(),
                        "max_rel_feature_change": feat_change})
    return pd.DataFrame(pi_rows), pd.DataFrame(fp_rows)


def discrepancy_table(variants: pd.DataFrame, summary: pd.DataFrame, pi_tab: pd.DataFrame, fp_tab: pd.DataFrame,
                      rho_block0: float) -> pd.DataFrame:
    """One row per difference between the paper and the released code (chapter 8.3): what each says, the
    variant's Spearman with eq. 4's ranking (CI), its ρ with the student and whether the top teacher changes.

    ``variants``/``summary`` are ``grace.ablations.variant_scores``/``variant_summary`` (with CIs); the two
    projection rows come from :func:`projection_draws` (their interval is the min–max over the Π draws).
    """
    rows = [{"discrepancy": VARIANTS[key]["label"], "paper says": VARIANTS[key]["paper"],
             "release does": VARIANTS[key]["release"], "spearman_vs_eq4": summary.spearman_vs_eq4[key],
             "ci_low": summary.ci_low[key], "ci_high": summary.ci_high[key],
             "rho_oriented": summary.rho_oriented[key], "rho_eq4": summary.rho_oriented["eq4"],
             "top_changed": bool(summary.top_changed[key])} for key in variants.columns if key != "eq4"]
    some = len(pi_tab) > 0
    rows.append({"discrepancy": "fast_jl: GPU-dependent Π (emulated: other Π draws)",
                 "paper says": "§2.1: one Rademacher Π ∈ {±1/√D}^{d×D}",
                 "release does": "Π's signs depend on the GPU's SM count through fast_jl's feature tiling",
                 "spearman_vs_eq4": float(pi_tab.spearman_vs_block0.mean()) if some else math.nan,
                 "ci_low": float(pi_tab.spearman_vs_block0.min()) if some else math.nan,
                 "ci_high": float(pi_tab.spearman_vs_block0.max()) if some else math.nan,
                 "rho_oriented": float(pi_tab.rho_oriented.mean()) if some else math.nan,
                 "rho_eq4": rho_block0, "top_changed": bool(pi_tab.top_changed.any()) if some else False})
    rows.append({"discrepancy": "fast_jl: fp16 cast of gradients", "paper says": "(not stated; fp32 implied)",
                 "release does": "every gradient entry is rounded to fp16 before projection",
                 "spearman_vs_eq4": float(fp_tab.spearman_fp16_vs_fp32.mean()),
                 "ci_low": float(fp_tab.spearman_fp16_vs_fp32.min()),
                 "ci_high": float(fp_tab.spearman_fp16_vs_fp32.max()),
                 "rho_oriented": float(fp_tab.rho_oriented_fp16.iloc[0]), "rho_eq4": rho_block0,
                 "top_changed": bool(fp_tab.top_changed.iloc[0])})
    return pd.DataFrame(rows)

