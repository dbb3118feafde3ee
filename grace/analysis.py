"""From the study's results table to the paper's correlations, gaps and robustness numbers.

Every statistic of the book lives here: Spearman tables and their bootstrap CIs (§3.1), selection
gaps (App. C.2), size budgets, families and temperatures (§3.2), robustness over teacher subsets
(App. D.5), the prompt-level bootstrap of student accuracies, the summaries chapters 5–6 report, and
the App. D.4 length fits. Functions are pure functions of a pandas ``DataFrame`` with one row per
teacher × temperature configuration (see :data:`RESULT_COLUMNS`), or read a study directory's
``students/`` and ``cards/`` (:func:`student_runs`, :func:`per_prompt_matrix`). Nothing loads a model.

Conventions shared by all functions:

* A *score* is a column named by a key of ``grace.scores.SCORE_ORIENTATION`` (``"grace"``,
  ``"g_vendi"``, ...). Its *orientation* is ``+1`` if higher is better and ``-1`` if lower is better,
  fixed a priori. ``rho_oriented = orientation * rho`` is therefore positive exactly when the score
  ranks teachers the right way, whatever its sign convention (paper §3.1, Figs 1, 4).
* A *target* is a student-performance column (``"student_avg_at_k"`` by default; Figs 11 and 12 use
  ``"student_greedy"`` and ``"student_best_of_k"``).
* Rows where the score or the target is NaN are dropped per score, never globally.
* Every function accepts ``orientation=`` (a dict) so it can run without ``grace.scores``; when it is
  ``None`` the dict is imported lazily from ``grace.scores``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from grace.claims import PAPER
from grace.io import read_json, read_jsonl

#: Columns of the results table (one row per teacher × temperature configuration).
RESULT_COLUMNS = (
    "config", "teacher", "family", "size_params", "size_label", "temperature", "is_self",
    "student_avg_at_k", "student_greedy", "student_best_of_k", "teacher_accuracy", "teacher_avg_at_k",
)
#: Student-performance targets the paper correlates against (§3, Figs 2, 11, 12).
TARGETS = ("student_avg_at_k", "student_greedy", "student_best_of_k")
DEFAULT_TARGET = "student_avg_at_k"




def in_main_pool(results: pd.DataFrame) -> pd.Series:
    """Which rows of a results table belong to the main pool (§3.1: the paper's pool of 15 teachers).

    ``in_pool``; tables written before that column existed count every teacher but the student itself
    (``is_self``). The self-distillation and answer-only anecdote teachers are out.
    """
    keep = results["in_pool"] if "in_pool" in results.columns else ~results["is_self"].astype(bool)
    return keep.astype(bool)


def main_pool(results: pd.DataFrame) -> pd.DataFrame:
    """The configurations whose correlations a study reports (:func:`in_main_pool`'s rows, re-indexed)."""
    return results[in_main_pool(results)].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# validation and small helpers


def check_table(df: pd.DataFrame, target: str, min_rows: int = 3) -> None:
    """Raise a ``ValueError`` if ``df`` is not a usable results table for ``target``."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame results table, got {type(df).__name__}")
    if target not in df.columns:
        raise ValueError(
            f"target column {target!r} is not in the results table; "
            f"available columns: {sorted(map(str, df.columns))}"
        )
    if len(df) < min_rows:
        raise ValueError(
            f"the results table has {len(df)} rows but at least {min_rows} configurations are "
            "needed for a rank correlation; add more teacher × temperature configurations"
        )


def orientation_dict(orientation: Mapping[str, int] | None) -> dict[str, int]:
    """Return the orientation dict (``grace.scores.SCORE_ORIENTATION`` if ``None``)."""
    if orientation is not None:
        return dict(orientation)
    from grace.scores import SCORE_ORIENTATION

    return dict(SCORE_ORIENTATION)


def score_label(score: str, labels: Mapping[str, str] | None = None) -> str:
    """Human-readable name of a score key (``grace.scores.SCORE_LABELS`` if available)."""
    if labels is None:
        from grace.scores import SCORE_LABELS

        labels = SCORE_LABELS
    return str(labels.get(score, score))


def resolve_scores(
    df: pd.DataFrame, scores: Sequence[str] | None, orient: Mapping[str, int], target: str
) -> list[str]:
    """Validate ``scores`` (or default to every oriented score present as a column)."""
    if scores is None:
        return [s for s in orient if s in df.columns and s != target]
    if isinstance(scores, str):
        scores = [scores]
    for s in scores:
        if s not in orient:
            raise ValueError(
                f"unknown score {s!r}: it has no orientation; known scores: {sorted(orient)} "
                "(pass orientation={..., %r: +1 or -1})" % s
            )
        if s not in df.columns:
            raise ValueError(
                f"score {s!r} is not a column of the results table; "
                f"available columns: {sorted(map(str, df.columns))}"
            )
    return list(scores)


def orientation_sign(orient: Mapping[str, int], score: str) -> int:
    sign = int(orient[score])
    if sign not in (1, -1):
        raise ValueError(f"orientation of {score!r} is {orient[score]!r}; it must be +1 or -1")
    return sign


def finite_pairs(df: pd.DataFrame, score: str, target: str) -> pd.DataFrame:
    """Rows of ``df`` where both ``score`` and ``target`` are finite."""
    sub = df[np.isfinite(df[score].astype(float)) & np.isfinite(df[target].astype(float))]
    return sub


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Raw ``scipy.stats.spearmanr`` (rho, p); NaN for fewer than 3 points or a constant input."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def series_spearman(a: pd.Series, b: pd.Series) -> float:
    """:func:`spearman` ρ over the index entries two series share where both are finite (§3.1)."""
    x = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").astype(float)
    x = x[np.isfinite(x).all(axis=1)]
    return spearman(x["a"].to_numpy(), x["b"].to_numpy())[0]


def rowwise_spearman(xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair: xb, yb (B, n) -> (B,); NaN where a row is constant."""
    rx = stats.rankdata(xb, axis=1)  # (B, n) average ranks, as spearmanr does
    ry = stats.rankdata(yb, axis=1)
    rx = rx - rx.mean(axis=1, keepdims=True)
    ry = ry - ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))  # (B,)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(axis=1) / den
    rho[den == 0] = np.nan
    return np.clip(rho, -1.0, 1.0)


def config_names(df: pd.DataFrame) -> pd.Series:
    """Config names used for deterministic tie-breaking (the index if there is no ``config``)."""
    if "config" in df.columns:
        return df["config"].astype(str)
    return pd.Series(df.index.astype(str), index=df.index)


def format_params(n: float) -> str:
    """``3e9 -> '3B'``, ``1.5e6 -> '1.5M'``, ``inf -> 'all'`` (labels of size budgets, Fig 7)."""
    if not np.isfinite(n):
        return "all"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.3g}"


# ----------------------------------------------------------------------------------------------
# §3.1: rank correlation between each score and student performance


def spearman_ci(x: np.ndarray, y: np.ndarray, sign: int = 1, n_boot: int = 1000, ci: float = 0.95,
                seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap CI over configurations of ``sign · ρ(x, y)`` (§3.1's correlations).

    Resamples in which a column is constant give NaN and are dropped; ``(nan, nan)`` when
    ``n_boot`` is 0 or no resample is usable.
    """
    if n_boot < 1:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))  # (B, n) resampled configs
    boot = sign * rowwise_spearman(x[idx], y[idx])  # (B,)
    boot = boot[np.isfinite(boot)]
    if not len(boot):
        return math.nan, math.nan
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def spearman_table(
    df: pd.DataFrame,
    target: str = DEFAULT_TARGET,
    scores: Sequence[str] | None = None,
    orientation: Mapping[str, int] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Spearman correlation of every score with student performance (§3.1; Figs 1, 2, 4, 11, 12).

    Args:
        df: results table, one row per teacher × temperature configuration.
        target: student-performance column to correlate with.
        scores: score columns; default every score in ``orientation`` present in ``df``.
        orientation: ``{score: ±1}``; default ``grace.scores.SCORE_ORIENTATION``.
        n_boot: bootstrap resamples over configurations for the CI (0 disables the CI).
        ci: confidence level of the percentile bootstrap interval.
        seed: bootstrap seed; the table is a deterministic function of it.

    Returns:
        DataFrame with columns ``score, label, n, rho, rho_oriented, ci_low, ci_high, p_value``,
        sorted by ``rho_oriented`` descending (NaN last). ``rho`` is the raw
        ``scipy.stats.spearmanr`` statistic; the CI is on ``rho_oriented``. Bootstrap resamples in
        which a column is constant give NaN and are dropped. A score with fewer than 3 finite rows
        or a constant column gets NaN correlations.
    """
    check_table(df, target)
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci!r} must be a confidence level in (0, 1), e.g. 0.95")
    if n_boot < 0:
        raise ValueError(f"n_boot={n_boot!r} must be >= 0 (0 disables the bootstrap CI)")
    orient = orientation_dict(orientation)
    scores = resolve_scores(df, scores, orient, target)
    rows = []
    for s in scores:
        sign = orientation_sign(orient, s)
        sub = finite_pairs(df, s, target)
        x, y = sub[s].to_numpy(float), sub[target].to_numpy(float)  # (n,), (n,)
        rho, p = spearman(x, y)
        lo, hi = spearman_ci(x, y, sign, n_boot, ci, seed) if np.isfinite(rho) else (math.nan, math.nan)
        rows.append(dict(
            score=s, label=score_label(s), n=len(x), rho=rho, rho_oriented=sign * rho,
            ci_low=float(lo), ci_high=float(hi), p_value=p,
        ))
    out = pd.DataFrame(rows, columns=["score", "label", "n", "rho", "rho_oriented", "ci_low",
                                      "ci_high", "p_value"])
    out = out.sort_values("rho_oriented", ascending=False, na_position="last", kind="mergesort")
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# App. C.2: gap between the best teacher and the teacher a score selects


def _group_rows(df: pd.DataFrame, group: Any) -> pd.DataFrame:
    """Rows of ``df`` selected by ``group``: None (all), ``{column: value}`` or a boolean mask."""
    if group is None:
        return df
    if isinstance(group, Mapping):
        mask = pd.Series(True, index=df.index)
        for col, val in group.items():
            if col not in df.columns:
                raise ValueError(f"group column {col!r} is not in the results table; "
                                 f"available columns: {sorted(map(str, df.columns))}")
            mask &= df[col] == val
        return df[mask]
    mask = np.asarray(group)
    if mask.dtype != bool or mask.shape != (len(df),):
        raise ValueError(f"group must be None, a {{column: value}} dict or a boolean mask of length "
                         f"{len(df)}; got {type(group).__name__} with shape {mask.shape}")
    return df[mask]


def argbest(key: np.ndarray, names: np.ndarray) -> int:
    """Position of the largest ``key``; ties go to the first ``names`` in sort order."""
    return int(np.lexsort((names, -key))[0])  # lexsort: last key is the primary one


def pick_best(df: pd.DataFrame, score: str, sign: int) -> pd.Series | None:
    """The configuration a score ranks best (App. C.2; black triangles of Fig 5).

    Ties are broken deterministically by config name (first in sort order). Rows with a NaN score
    are ignored; returns ``None`` if no row is left.
    """
    sub = df[np.isfinite(df[score].astype(float))]
    if sub.empty:
        return None
    key = sign * sub[score].to_numpy(float)
    return sub.iloc[argbest(key, config_names(sub).to_numpy(str))]


def gap_record(df: pd.DataFrame, score: str, target: str, sign: int) -> dict[str, Any]:
    """Gap bookkeeping for one score on one group of configurations."""
    sub = finite_pairs(df, score, target)
    if sub.empty:
        return dict(n=0, best_config=None, best_target=math.nan, picked_config=None,
                    picked_target=math.nan, gap=math.nan)
    names = config_names(sub).to_numpy(str)
    y = sub[target].to_numpy(float)
    i_best = argbest(y, names)
    i_pick = argbest(sign * sub[score].to_numpy(float), names)
    return dict(n=len(sub), best_config=names[i_best], best_target=float(y[i_best]),
                picked_config=names[i_pick], picked_target=float(y[i_pick]),
                gap=float(y[i_best] - y[i_pick]))


def selection_gap(
    df: pd.DataFrame,
    score: str,
    target: str = DEFAULT_TARGET,
    orientation: Mapping[str, int] | int | None = None,
    group: Any = None,
) -> float:
    """Best target in the group minus the target of the configuration the score ranks best.

    Reproduces the "Gap" of App. C.2 and Figs 5, 13, 14. Zero means the score picked the best teacher.

    Args:
        df: results table.
        score: score column.
        target: student-performance column.
        orientation: ``{score: ±1}`` dict, a bare ``±1`` for this score, or ``None`` for
            ``grace.scores.SCORE_ORIENTATION``.
        group: restrict to a group of configurations: ``None`` (all rows), a ``{column: value}``
            dict such as ``{"family": "qwen"}``, or a boolean mask aligned with ``df``.

    Returns:
        The gap (>= 0, in target units), or NaN if the group has no row with a finite score.
    """
    check_table(df, target, min_rows=1)
    orient = ({score: int(orientation)} if isinstance(orientation, (int, np.integer))
              else orientation_dict(orientation))
    resolve_scores(df, [score], orient, target)
    return gap_record(_group_rows(df, group), score, target, orientation_sign(orient, score))["gap"]


def selection_gaps(
    df: pd.DataFrame,
    scores: Sequence[str] | None = None,
    target: str = DEFAULT_TARGET,
    group_col: str | None = None,
    orientation: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Selection gap of every score, optionally per group (App. C.2; Figs 5, 13, 14).

    Returns:
        Long DataFrame with columns ``group, score, label, n, best_config, best_target,
        picked_config, picked_target, gap``; ``group`` is ``"all"`` when ``group_col`` is None.
    """
    check_table(df, target, min_rows=1)
    orient = orientation_dict(orientation)
    scores = resolve_scores(df, scores, orient, target)
    if group_col is not None and group_col not in df.columns:
        raise ValueError(f"group_col {group_col!r} is not in the results table; "
                         f"available columns: {sorted(map(str, df.columns))}")
    groups = [("all", df)] if group_col is None else list(df.groupby(group_col, sort=True))
    rows = []
    for g, sub in groups:
        for s in scores:
            rec = gap_record(sub, s, target, orientation_sign(orient, s))
            rows.append(dict(group=g, score=s, label=score_label(s), **rec))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# §3.2: size budgets, model families, temperatures


def size_budget_table(
    df: pd.DataFrame,
    budgets: Sequence[float],
    scores: Sequence[str] | None = None,
    target: str = DEFAULT_TARGET,
    orientation: Mapping[str, int] | None = None,
    n_boot: int = 0,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Spearman and gap per score among teachers with at most ``budget`` parameters (§3.2, Figs 7, 14).

    Args:
        df: results table with a ``size_params`` column.
        budgets: parameter-count ceilings, e.g. ``[3e9, 10e9, 30e9]``; ``inf`` means no limit.
        scores: score columns, in the order the rows keep.
        n_boot: bootstrap resamples over the budget's configurations for a CI on ``rho_oriented``
            (Fig 7 right); 0 (default) adds no CI columns.

    Returns:
        Long DataFrame with columns ``group`` (e.g. ``"≤3B"``), ``budget, n, score, label, rho,
        rho_oriented, gap, picked_config`` (and ``ci_low, ci_high`` when ``n_boot > 0``), budgets
        ascending. ``n`` counts configurations within the budget with a finite score and target;
        rho is NaN when ``n < 3``.
    """
    check_table(df, target)
    if "size_params" not in df.columns:
        raise ValueError("size_budget_table needs a 'size_params' column (teacher parameter count); "
                         f"available columns: {sorted(map(str, df.columns))}")
    if len(budgets) == 0:
        raise ValueError("budgets is empty; pass parameter ceilings such as [3e9, 10e9, 30e9]")
    orient = orientation_dict(orientation)
    scores = resolve_scores(df, scores, orient, target)
    rows = []
    for b in sorted(float(b) for b in budgets):
        sub = df[df["size_params"].astype(float) <= b]
        for s in scores:
            sign = orientation_sign(orient, s)
            pair = finite_pairs(sub, s, target)
            x, y = pair[s].to_numpy(float), pair[target].to_numpy(float)  # (n,), (n,)
            rho, _ = spearman(x, y)
            rec = gap_record(sub, s, target, sign)
            row = dict(group=f"≤{format_params(b)}", budget=b, n=rec["n"], score=s, label=score_label(s),
                       rho=rho, rho_oriented=sign * rho, gap=rec["gap"], picked_config=rec["picked_config"])
            if n_boot > 0:
                row["ci_low"], row["ci_high"] = (spearman_ci(x, y, sign, n_boot, ci, seed) if np.isfinite(rho)
                                                 else (math.nan, math.nan))
            rows.append(row)
    return pd.DataFrame(rows)


def family_gap_table(
    df: pd.DataFrame,
    scores: Sequence[str] | None = None,
    target: str = DEFAULT_TARGET,
    orientation: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Selection gap per model family for each score, plus the mean over families (§3.2, Fig 13).

    All temperatures of a family compete together, as in the paper.

    Returns:
        Long DataFrame with columns ``group, score, label, n, gap, picked_config, best_config``;
        ``group`` is the family name, and a final block of rows has ``group == "mean"`` holding
        the mean gap over families (``n`` = number of families averaged).
    """
    if "family" not in df.columns:
        raise ValueError("family_gap_table needs a 'family' column; "
                         f"available columns: {sorted(map(str, df.columns))}")
    cols = ["group", "score", "label", "n", "gap", "picked_config", "best_config"]
    gaps = selection_gaps(df, scores, target, group_col="family", orientation=orientation)
    if gaps.empty:  # no family has enough configurations to compare (e.g. one temperature per teacher)
        return pd.DataFrame(columns=cols)
    gaps = gaps[cols]
    mean = (gaps.groupby("score", sort=False)
                .agg(label=("label", "first"), n=("gap", "count"), gap=("gap", "mean"))
                .reset_index())
    mean.insert(0, "group", "mean")
    return pd.concat([gaps, mean], ignore_index=True)


def temperature_table(
    df: pd.DataFrame,
    scores: Sequence[str] | None = None,
    target: str = DEFAULT_TARGET,
    orientation: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Per teacher, how each score tracks the target across generation temperatures (§3.2, Figs 6, 7).

    Returns:
        Long DataFrame, one row per (teacher, score), with columns ``teacher, score, label, n`` (number
        of temperatures), ``rho, rho_oriented`` (Spearman across that teacher's temperatures; NaN with
        fewer than 3), ``best_temperature`` (temperature with the highest target),
        ``predicted_temperature`` (temperature the score ranks best), ``temperature_error``
        (predicted − best) and ``gap`` (target lost by using the predicted temperature). Ties in
        either argmax go to the lowest temperature.
    """
    check_table(df, target)
    for col in ("teacher", "temperature"):
        if col not in df.columns:
            raise ValueError(f"temperature_table needs a {col!r} column; "
                             f"available columns: {sorted(map(str, df.columns))}")
    orient = orientation_dict(orientation)
    scores = resolve_scores(df, scores, orient, target)
    rows = []
    for teacher, sub in df.groupby("teacher", sort=True):
        for s in scores:
            sign = orientation_sign(orient, s)
            pair = finite_pairs(sub, s, target).sort_values("temperature", kind="mergesort")
            t = pair["temperature"].to_numpy(float)  # (n_temps,)
            x, y = pair[s].to_numpy(float), pair[target].to_numpy(float)
            rho, _ = spearman(x, y)
            best_t = pred_t = gap = math.nan
            if len(pair):
                i_best = int(np.argmax(y))  # first max = lowest temperature (sorted)
                i_pred = int(np.argmax(sign * x))
                best_t, pred_t, gap = t[i_best], t[i_pred], y[i_best] - y[i_pred]
            rows.append(dict(teacher=teacher, score=s, label=score_label(s), n=len(pair), rho=rho,
                             rho_oriented=sign * rho, best_temperature=best_t,
                             predicted_temperature=pred_t, temperature_error=pred_t - best_t,
                             gap=gap))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# App. D.5: robustness over random subsets of teachers


def robustness_subsets(
    df: pd.DataFrame,
    scores: Sequence[str] | None = None,
    target: str = DEFAULT_TARGET,
    n_subsets: int = 100,
    frac: float = 0.6,
    by: str = "config",
    seed: int = 0,
    orientation: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Oriented Spearman of each score on random subsets of the teacher pool (App. D.5, Fig 23).

    Args:
        by: ``"config"`` draws ``round(frac · #configs)`` teacher × temperature rows without
            replacement (as in Fig 23); ``"teacher"`` draws ``round(frac · #teachers)`` teachers and
            keeps all their temperatures.
        n_subsets: number of random subsets (100 in the paper).
        frac: fraction of the pool kept in each subset (0.6 in the paper).

    Returns:
        Long DataFrame with exactly ``n_subsets × len(scores)`` rows and columns ``subset, score,
        label, n, rho_oriented``; ``rho_oriented`` is NaN when a column is constant on the subset.
        The same subsets are used for every score.
    """
    check_table(df, target)
    if by not in ("config", "teacher"):
        raise ValueError(f"by={by!r} must be 'config' or 'teacher'")
    if not 0 < frac <= 1:
        raise ValueError(f"frac={frac!r} must be in (0, 1], e.g. 0.6")
    if n_subsets < 1:
        raise ValueError(f"n_subsets={n_subsets!r} must be >= 1")
    if by == "teacher" and "teacher" not in df.columns:
        raise ValueError("by='teacher' needs a 'teacher' column; use by='config' instead")
    orient = orientation_dict(orientation)
    scores = resolve_scores(df, scores, orient, target)
    units = np.arange(len(df)) if by == "config" else np.sort(df["teacher"].unique())
    k = int(round(frac * len(units)))
    if by == "config" and k < 3:
        raise ValueError(f"frac={frac} keeps only {k} of {len(units)} configurations per subset; "
                         "at least 3 are needed, raise frac")
    if k < 1:
        raise ValueError(f"frac={frac} keeps no teacher out of {len(units)}; raise frac")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_subsets):
        chosen = rng.choice(units, size=k, replace=False)
        sub = df.iloc[np.sort(chosen)] if by == "config" else df[df["teacher"].isin(chosen)]
        for s in scores:
            pair = finite_pairs(sub, s, target)
            rho, _ = spearman(pair[s].to_numpy(float), pair[target].to_numpy(float))
            rows.append(dict(subset=i, score=s, label=score_label(s), n=len(pair),
                             rho_oriented=orientation_sign(orient, s) * rho))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# App. D.4: gradient norm vs generation length


def fit_inverse_log(
    lengths: Sequence[float], values: Sequence[float], power: float = 1.0
) -> tuple[float, float, float]:
    """Least-squares fit ``value ≈ a / log(T)**power + b`` (App. D.4, Figs 21–22).

    Args:
        lengths: generation lengths ``T`` (tokens), each > 1.
        values: gradient norms, same length.
        power: exponent of ``log T`` (1 for Fig 21, 2 for Fig 22).

    Returns:
        ``(a, b, r2)`` with ``r2`` the coefficient of determination of the fit.
    """
    T, v = np.asarray(lengths, float), np.asarray(values, float)  # (N,), (N,)
    if T.shape != v.shape or T.ndim != 1:
        raise ValueError(f"lengths {T.shape} and values {v.shape} must be 1-D of the same length")
    if len(T) < 2:
        raise ValueError(f"need at least 2 (length, value) points to fit a/log(T)+b, got {len(T)}")
    if np.any(T <= 1):
        raise ValueError(f"all lengths must be > 1 token (log 1 = 0); got min {T.min()}")
    X = np.stack([1.0 / np.log(T) ** power, np.ones_like(T)], axis=1)  # (N, 2)
    (a, b), *_ = np.linalg.lstsq(X, v, rcond=None)
    resid = v - X @ np.array([a, b])
    ss_tot = float(((v - v.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else math.nan
    return float(a), float(b), r2


# ----------------------------------------------------------------------------------------------
# reading a study directory, and uncertainty for the claims (§3, App. C.2, D.1, D.5)


METRIC_LABELS = {"student_avg_at_k": "avg@k", "student_greedy": "greedy", "student_best_of_k": "best-of-k"}


def student_runs(study_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per trained student from ``study_dir/students/*/done.json`` (paper §3).

    Returns:
        DataFrame with columns ``config, base_config, filtered, steps, n_examples, train_loss,
        avg_at_k, greedy, best_of_k, seconds`` sorted by config; ``filtered`` marks the App. D.1
        students (directory suffix ``+filtered``).
    """
    sdir = Path(study_dir) / "students"
    paths = sorted(sdir.glob("*/done.json"))
    if not paths:
        raise ValueError(f"no students/*/done.json under {study_dir}; run the study first (ensure_study)")
    rows = []
    for p in paths:
        done = read_json(p)
        s = done["summary"]
        name = p.parent.name
        rows.append({
            "config": name, "base_config": name.removesuffix("+filtered"), "filtered": name.endswith("+filtered"),
            "steps": int(s["steps"]), "n_examples": int(s.get("n_examples", -1)),
            "train_loss": float(s["train_loss"]), "avg_at_k": float(s["avg_at_k"]),
            "greedy": float(s["greedy"]), "best_of_k": float(s["best_of_k"]),
            "seconds": float(done.get("seconds", math.nan)),
        })
    return pd.DataFrame(rows)


def per_prompt_matrix(study_dir: str | os.PathLike, configs: Sequence[str], metric: str = "avg_at_k",
                      kind: str = "students") -> pd.DataFrame:
    """Per-test-prompt accuracy of each student (or teacher card): rows prompts, columns configs.

    The column means are the study's avg@k / greedy / best-of-k, so resampling rows gives a
    bootstrap over test prompts (App. C.2 gaps with uncertainty).

    Args:
        study_dir: the study directory.
        configs: directory names under ``study_dir/kind``.
        metric: ``"avg_at_k"`` (n_correct / k), ``"greedy"`` or ``"best_of_k"`` (n_correct > 0).
        kind: ``"students"`` or ``"cards"``.
    """
    if metric not in ("avg_at_k", "greedy", "best_of_k"):
        raise ValueError(f"metric={metric!r}: use 'avg_at_k', 'greedy' or 'best_of_k'")
    if kind not in ("students", "cards"):
        raise ValueError(f"kind={kind!r}: use 'students' or 'cards'")
    if len(configs) == 0:
        raise ValueError("configs is empty; pass the config names (results['config'])")
    cols = {}
    for c in configs:
        path = Path(study_dir) / kind / str(c) / "per_prompt.jsonl"
        if not path.exists():
            raise ValueError(f"{path} does not exist; is {c!r} a config of this study?")
        recs = read_jsonl(path)
        if metric == "avg_at_k":
            vals = {r["prompt_id"]: r["n_correct"] / r["k"] for r in recs}
        elif metric == "greedy":
            vals = {r["prompt_id"]: float(r["greedy_correct"]) for r in recs}
        else:
            vals = {r["prompt_id"]: float(r["n_correct"] > 0) for r in recs}
        cols[str(c)] = pd.Series(vals, dtype=float)
    acc = pd.DataFrame(cols)
    if acc.isna().any().any():
        raise ValueError("the configs were evaluated on different test prompts; a paired bootstrap needs "
                         "the same prompts for every config (rerun the study with one evaluation split)")
    return acc.sort_index()


def metric_correlations(results: pd.DataFrame, metrics: Sequence[str] = TARGETS) -> pd.DataFrame:
    """Spearman ρ between the student metrics across configurations (§3.3; Figs 11–12 context).

    Returns:
        Square DataFrame of ρ (NaN where a metric is constant, e.g. on the smoke profile).
    """
    missing = [m for m in metrics if m not in results.columns]
    if missing:
        raise ValueError(f"metrics {missing} are not columns of the results table")
    out = pd.DataFrame(index=list(metrics), columns=list(metrics), dtype=float)
    for a in metrics:
        for b in metrics:
            x, y = results[a].to_numpy(float), results[b].to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            out.loc[a, b] = spearman(x[ok], y[ok])[0]
    return out.rename(index=METRIC_LABELS, columns=METRIC_LABELS)


def strongest_teacher(results: pd.DataFrame, target: str = DEFAULT_TARGET, teacher_col: str = "teacher_avg_at_k",
                      exclude_self: bool = True) -> dict[str, Any]:
    """The best-performing teacher by its own accuracy and how its students fare (§3.1, abstract).

    The paper's example: Llama-70B Instruct is the strongest teacher, yet its student trails the best
    student by 6.5 points. Ties in teacher accuracy go to the first teacher name.

    Returns:
        ``{teacher, teacher_value, configs, best_config, best_target, mean_target, overall_best_config,
        overall_best_target}``; ``best_*`` is the strongest teacher's best temperature (the naive
        choice at its most favourable), ``overall_*`` the best student of the whole table.
    """
    for col in ("teacher", teacher_col, target):
        if col not in results.columns:
            raise ValueError(f"strongest_teacher needs a {col!r} column")
    d = results[~results["is_self"].astype(bool)] if exclude_self and "is_self" in results else results
    d = d[np.isfinite(d[teacher_col].astype(float)) & np.isfinite(d[target].astype(float))]
    if d.empty:
        raise ValueError(f"no configuration with a finite {teacher_col!r} and {target!r}")
    per_teacher = d.groupby("teacher")[teacher_col].max()
    order = np.lexsort((per_teacher.index.astype(str), -per_teacher.to_numpy(float)))
    name = per_teacher.index[order[0]]
    mine = d[d["teacher"] == name]
    names = config_names(mine).to_numpy(str)
    i = argbest(mine[target].to_numpy(float), names)
    all_names = config_names(results).to_numpy(str)
    y_all = results[target].to_numpy(float)
    j = argbest(np.where(np.isfinite(y_all), y_all, -np.inf), all_names)
    return {"teacher": str(name), "teacher_value": float(per_teacher[name]), "configs": [str(c) for c in names],
            "best_config": str(names[i]), "best_target": float(mine[target].iloc[i]),
            "mean_target": float(mine[target].mean()), "overall_best_config": str(all_names[j]),
            "overall_best_target": float(y_all[j])}


def filtering_table(results: pd.DataFrame) -> pd.DataFrame:
    """Students trained with vs without correctness filtering, where both exist (App. D.1, Fig 15).

    Returns:
        DataFrame with columns ``config, teacher, family, temperature, unfiltered, filtered,
        difference`` (unfiltered − filtered avg@k) and, when present, ``greedy_unfiltered,
        greedy_filtered``; empty (same columns) when the study ran no filtering ablation.
    """
    cols = ["config", "teacher", "family", "temperature", "unfiltered", "filtered", "difference"]
    if "student_avg_at_k_filtered" not in results.columns:
        return pd.DataFrame(columns=cols)
    d = results[np.isfinite(results["student_avg_at_k_filtered"].astype(float))]
    out = pd.DataFrame({
        "config": d["config"], "teacher": d["teacher"], "family": d.get("family", d["teacher"]),
        "temperature": d["temperature"], "unfiltered": d["student_avg_at_k"].astype(float),
        "filtered": d["student_avg_at_k_filtered"].astype(float),
    })
    out["difference"] = out["unfiltered"] - out["filtered"]
    if "student_greedy_filtered" in d.columns:
        out["greedy_unfiltered"] = d["student_greedy"].astype(float)
        out["greedy_filtered"] = d["student_greedy_filtered"].astype(float)
    return out.reset_index(drop=True)


def mean_ci(values: Sequence[float], n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> tuple[float, float, float]:
    """Mean of the finite ``values`` with a percentile-bootstrap CI (NaN CI for fewer than 2 values).

    Used for the mean per-teacher temperature correlation (Fig 7 left) and the mean filtering effect
    (App. D.1).
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci!r} must be in (0, 1), e.g. 0.95")
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    if len(v) < 2 or n_boot < 1:
        return float(v.mean()), math.nan, math.nan
    rng = np.random.default_rng(seed)
    boot = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)  # (B,)
    lo, hi = np.quantile(boot, [(1 - ci) / 2, (1 + ci) / 2])
    return float(v.mean()), float(lo), float(hi)


def prompt_bootstrap(acc: pd.DataFrame, stat: Callable[[pd.Series], float], n_boot: int = 1000, seed: int = 0,
                     ci: float = 0.95) -> tuple[float, float, float]:
    """A statistic of per-config accuracies with a bootstrap CI over test prompts (App. C.2).

    Args:
        acc: per-prompt accuracy, rows test prompts, columns configs (:func:`per_prompt_matrix`).
        stat: maps the column means (a Series indexed by config) to a number, e.g. a selection gap
            (:func:`gap_stat`) or a difference (:func:`difference_stat`).
        n_boot: resamples of the test prompts (0 disables the CI).

    Returns:
        ``(value, ci_low, ci_high)`` with ``value = stat(acc.mean())``.
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci!r} must be in (0, 1), e.g. 0.95")
    if acc.empty:
        raise ValueError("acc has no test prompts; build it with per_prompt_matrix")
    value = float(stat(acc.mean()))
    if n_boot < 1:
        return value, math.nan, math.nan
    X = acc.to_numpy(float)  # (P, C)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(X), size=(n_boot, len(X)))  # (B, P)
    means = X[idx].mean(axis=1)  # (B, C)
    boot = np.array([stat(pd.Series(m, index=acc.columns)) for m in means], float)
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0:
        return value, math.nan, math.nan
    lo, hi = np.quantile(boot, [(1 - ci) / 2, (1 + ci) / 2])
    return value, float(lo), float(hi)


def gap_stat(groups: Sequence[tuple[Sequence[str], str]]) -> Callable[[pd.Series], float]:
    """Statistic for :func:`prompt_bootstrap`: mean over groups of (best config − picked config).

    ``groups`` holds ``(configs_in_group, picked_config)`` pairs: one group for the overall gap of
    §1 / Fig 5, one per family for Fig 13, one per size budget for Fig 14.
    """
    groups = [(list(map(str, g)), str(p)) for g, p in groups]
    if not groups:
        raise ValueError("groups is empty; pass [(configs, picked_config), ...]")
    for g, p in groups:
        if p not in g:
            raise ValueError(f"picked config {p!r} is not in its group {g}")

    def stat(means: pd.Series) -> float:
        return float(np.mean([means[g].max() - means[p] for g, p in groups]))

    return stat


def difference_stat(a: str, b: str) -> Callable[[pd.Series], float]:
    """Statistic for :func:`prompt_bootstrap`: accuracy of config ``a`` minus config ``b`` (abstract's
    "≥ 6% over the best-performing teacher")."""
    return lambda means: float(means[str(a)] - means[str(b)])


def paired_rho_difference(results: pd.DataFrame, a: str, b: str, target: str = DEFAULT_TARGET,
                          orientation: Mapping[str, int] | None = None, n_boot: int = 1000, seed: int = 0,
                          ci: float = 0.95) -> tuple[float, float, float]:
    """Oriented Spearman of score ``a`` minus that of ``b``, paired bootstrap over configs (Fig 2).

    Both correlations are computed on the same resampled configurations, so the CI accounts for
    their dependence. Rows where ``a``, ``b`` or the target is NaN are dropped.

    Returns:
        ``(difference, ci_low, ci_high)``; NaN difference if either correlation is undefined.
    """
    orient = orientation_dict(orientation)
    check_table(results, target)
    resolve_scores(results, [a, b], orient, target)
    x, z, y = (results[c].to_numpy(float) for c in (a, b, target))  # (n,) each; a may equal b
    ok = np.isfinite(x) & np.isfinite(z) & np.isfinite(y)
    x, z, y = x[ok], z[ok], y[ok]
    sa, sb = orientation_sign(orient, a), orientation_sign(orient, b)
    diff = sa * spearman(x, y)[0] - sb * spearman(z, y)[0]
    if not np.isfinite(diff) or n_boot < 1:
        return float(diff), math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))  # (B, n)
    boot = sa * rowwise_spearman(x[idx], y[idx]) - sb * rowwise_spearman(z[idx], y[idx])  # (B,)
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0:
        return float(diff), math.nan, math.nan
    lo, hi = np.quantile(boot, [(1 - ci) / 2, (1 + ci) / 2])
    return float(diff), float(lo), float(hi)


def nearest_temperature(results: pd.DataFrame, preferred: float = PAPER["fig5_temperature"]) -> float:
    """The available temperature closest to ``preferred`` (Fig 5 uses 0.6); ties go to the lower one."""
    temps = np.sort(results["temperature"].astype(float).unique())
    if len(temps) == 0:
        raise ValueError("the results table has no temperatures")
    return float(temps[np.argmin(np.round(np.abs(temps - preferred), 9))])  # round: 0.45 is as far from 0.3 as 0.6


def curve_teachers(results: pd.DataFrame, n: int = 2) -> list[str]:
    """Teachers for the temperature curves of Fig 6 (the paper: Qwen-1.5B and Qwen-3B).

    Prefers ``n`` non-self teachers of one family with distinct sizes (the paper's pair), the family
    with the most temperatures first; otherwise the ``n`` non-self teachers with the most
    temperatures. Ties go to names in sort order.
    """
    d = results[~results["is_self"].astype(bool)] if "is_self" in results else results
    if d.empty:
        raise ValueError("no non-self teacher in the results table")
    temps = d.groupby("teacher")["temperature"].nunique()
    fam = d.groupby("teacher")["family"].first() if "family" in d else pd.Series("", index=temps.index)
    size = d.groupby("teacher")["size_params"].first() if "size_params" in d else pd.Series(0, index=temps.index)
    best: list[str] | None = None
    best_key = None
    for f in sorted(fam.unique(), key=str):
        members = fam.index[fam == f]
        by_size = {}  # size -> teacher with most temperatures at that size
        for t in sorted(members, key=lambda t: (-temps[t], str(t))):
            by_size.setdefault(size[t], t)
        if len(by_size) >= n:
            chosen = sorted(by_size.values(), key=lambda t: (-temps[t], str(t)))[:n]
            key = (min(temps[t] for t in chosen), str(f))
            if best_key is None or key[0] > best_key[0]:
                best, best_key = sorted(chosen, key=lambda t: (size[t], str(t))), key
    if best is not None:
        return list(best)
    return sorted(temps.index, key=lambda t: (-temps[t], str(t)))[:n]


def temperature_summary(temp_df: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean over teachers of each score's temperature correlation, with a CI (Fig 7 left, §3.2).

    Args:
        temp_df: output of :func:`grace.analysis.temperature_table`.

    Returns:
        One row per score: ``score, label, n_teachers`` (with a finite ρ), ``mean_rho`` (oriented),
        ``ci_low, ci_high`` (bootstrap over teachers), ``exact_temperature`` (fraction of teachers
        whose best temperature the score predicts) and ``mean_gap``; sorted by ``mean_rho``.
    """
    need = ["score", "rho_oriented", "temperature_error", "gap"]
    missing = [c for c in need if c not in temp_df.columns]
    if missing:
        raise ValueError(f"temp_df lacks {missing}; pass grace.analysis.temperature_table(...)")
    rows = []
    for s, g in temp_df.groupby("score", sort=False):
        m, lo, hi = mean_ci(g["rho_oriented"], n_boot=n_boot, seed=seed)
        err = g["temperature_error"].astype(float)
        rows.append({"score": s, "label": g["label"].iloc[0] if "label" in g else s,
                     "n_teachers": int(np.isfinite(g["rho_oriented"].astype(float)).sum()),
                     "mean_rho": m, "ci_low": lo, "ci_high": hi,
                     "exact_temperature": float((err[np.isfinite(err)] == 0).mean()) if np.isfinite(err).any()
                     else math.nan,
                     "mean_gap": float(g["gap"].astype(float).mean())})
    out = pd.DataFrame(rows)
    return out.sort_values("mean_rho", ascending=False, na_position="last", kind="mergesort").reset_index(drop=True)




def only_score_above(spearman_df: pd.DataFrame, score: str = "grace",
                     threshold: float = PAPER["fig4_threshold"]) -> dict[str, Any]:
    """Is ``score`` the only one whose oriented Spearman exceeds ``threshold``? (Fig 4)

    Variants of the same score (keys starting with ``score``, e.g. ``grace_release``) are not
    counted as competitors.

    Returns:
        ``{holds, above, value, top, is_top}``: ``holds`` is True when ``score`` exceeds the
        threshold and no competitor does; ``above`` lists competitors above it; ``top`` is the best
        competitor-or-score by oriented ρ and ``is_top`` whether that is ``score`` (None if
        ``score``'s ρ is NaN).
    """
    d = spearman_df.set_index("score")
    if score not in d.index:
        raise ValueError(f"score {score!r} is not in the Spearman table; available: {list(d.index)}")
    value = float(d.loc[score, "rho_oriented"])
    rivals = d[~d.index.str.startswith(score)]["rho_oriented"].astype(float)
    above = [s for s, v in rivals.items() if np.isfinite(v) and v > threshold]
    if not np.isfinite(value):
        return {"holds": None, "above": above, "value": value, "top": None, "is_top": None}
    pool = pd.concat([rivals, pd.Series({score: value})]).dropna()
    top = str(pool.idxmax())
    return {"holds": bool(value > threshold and not above), "above": above, "value": value, "top": top,
            "is_top": top == score}


def robustness_summary(robust_df: pd.DataFrame, q: float = 0.05) -> pd.DataFrame:
    """Distribution of each score's correlation over random teacher subsets (App. D.5, Fig 23).

    Returns:
        One row per score: ``score, label, n_subsets`` (finite), ``median``, ``q_low``/``q_high``
        (the ``q`` and ``1 − q`` quantiles) and ``frac_positive``; sorted by median, best first.
    """
    if not 0 < q < 0.5:
        raise ValueError(f"q={q!r} must be in (0, 0.5), e.g. 0.05")
    if not {"score", "rho_oriented"} <= set(robust_df.columns):
        raise ValueError("robust_df needs 'score' and 'rho_oriented'; pass grace.analysis.robustness_subsets(...)")
    rows = []
    for s, g in robust_df.groupby("score", sort=False):
        v = g["rho_oriented"].astype(float).to_numpy()
        v = v[np.isfinite(v)]
        qs = np.quantile(v, [0.5, q, 1 - q]) if len(v) else [math.nan] * 3
        rows.append({"score": s, "label": g["label"].iloc[0] if "label" in g else s, "n_subsets": len(v),
                     "median": float(qs[0]), "q_low": float(qs[1]), "q_high": float(qs[2]),
                     "frac_positive": float((v > 0).mean()) if len(v) else math.nan})
    out = pd.DataFrame(rows)
    return out.sort_values("median", ascending=False, na_position="last", kind="mergesort").reset_index(drop=True)


def self_distillation(results: pd.DataFrame, score: str = "g_vendi", target: str = DEFAULT_TARGET,
                      orientation: Mapping[str, int] | None = None) -> dict[str, Any] | None:
    """How a score ranks the student-as-its-own-teacher, and how that student fares (§2.1).

    The paper: G-Vendi of self-distillation on GSM8K (5.93) is higher than every teacher's, yet the
    student reaches only 4%. Among the self configurations the one the score ranks best is used.

    Returns:
        ``None`` if there is no ``is_self`` configuration, else ``{config, score_value,
        score_rank, target_value, target_rank, n_configs, score_top, target_bottom_half}``;
        ranks are 1 = best among all configurations with a finite score (resp. target).
    """
    if "is_self" not in results.columns or not results["is_self"].astype(bool).any():
        return None
    orient = orientation_dict(orientation)
    resolve_scores(results, [score], orient, target)
    sign = orientation_sign(orient, score)
    d = finite_pairs(results, score, target)
    selfs = d[d["is_self"].astype(bool)]
    if selfs.empty:
        return None
    pick = pick_best(selfs, score, sign)
    key = sign * d[score].to_numpy(float)
    y = d[target].to_numpy(float)
    k0, y0 = sign * float(pick[score]), float(pick[target])
    score_rank = int((key > k0).sum()) + 1
    target_rank = int((y > y0).sum()) + 1
    return {"config": str(pick["config"]), "score_value": float(pick[score]), "score_rank": score_rank,
            "target_value": y0, "target_rank": target_rank, "n_configs": len(d),
            "score_top": score_rank == 1, "target_bottom_half": target_rank > len(d) / 2}


def study_gradient_norms(study_dir: str | os.PathLike) -> Any:
    """Every scored generation's ``|y|`` and raw ``‖g‖`` in a study, one row each (App. D.4, Fig. 21).

    Reads ``study_dir/features/<config>/features.npz`` for every configuration.

    Returns:
        A DataFrame with columns ``config``, ``length`` (``|y|``), ``grad_norm`` (raw ``‖g‖``),
        ``h_norm`` (``‖h‖``, the stored feature row), ``loss`` and ``correct`` (NaN where unknown).

    Raises:
        ValueError: if the study has no features files yet.
    """
    from grace.features import Features

    paths = sorted(Path(study_dir).glob("features/*/features.npz"))
    if not paths:
        raise ValueError(f"no features under {Path(study_dir) / 'features'}; run the study first (ensure_study)")
    parts = []
    for p in paths:
        f = Features.load(p)
        parts.append(pd.DataFrame({
            "config": p.parent.name, "length": f.lengths.astype(np.int64), "grad_norm": f.grad_norm.astype(np.float64),
            "h_norm": np.linalg.norm(f.H.astype(np.float64), axis=1), "loss": f.loss.astype(np.float64),
            "correct": np.nan if f.correct is None else f.correct.astype(np.float64),
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    xc = x - x.mean()
    ss = float(xc @ xc)
    return float(xc @ (y - y.mean()) / ss) if ss > 0 else math.nan


def _demean(v: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``v`` minus its group mean (the within-group, fixed-effects transform); ``codes`` are ints >= 0."""
    counts = np.bincount(codes)
    means = np.bincount(codes, weights=v) / np.maximum(counts, 1)
    return v - means[codes]


def length_trend(
    lengths: Sequence[float] | np.ndarray,
    grad_norms: Sequence[float] | np.ndarray,
    groups: Sequence[Any] | np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """How ``‖g‖`` falls with ``T = |y|``: the fits behind the ``log|y|`` rescaling (App. D.4, Figs 21–22).

    * ``exponent``: ``b`` in ``log‖g‖ = a + b·log(log T)`` (``b = −1`` is the paper's ``‖g‖ ∝ 1/log T``,
      ``b = −2`` Fig. 22's ``1/(log T)²``), with a percentile bootstrap CI over rows;
    * ``t_exponent``: ``e`` in ``log‖g‖ = c + e·log T`` (``−1/2`` would be independent token gradients);
    * ``r2_inv_log`` / ``r2_inv_log2``: R² of ``a/log T + b`` and ``a/(log T)² + b``
      (:func:`fit_inverse_log`);
    * with ``groups`` (e.g. the configuration of each row): ``within_exponent``, the same ``b`` fitted
      after removing each group's mean (so differences *between* teachers do not drive it), with CI.

    Rows with ``T < 2`` or ``‖g‖ <= 0`` are dropped. Fewer than 3 distinct lengths give NaNs.

    Returns:
        dict with the numbers above, their ``*_ci_low``/``*_ci_high``, ``a_inv_log``/``b_inv_log``
        (the ``a/log T + b`` coefficients), ``spearman`` (``T`` vs ``‖g‖``), ``n`` and ``n_lengths``.
    """
    T, g = np.asarray(lengths, dtype=np.float64), np.asarray(grad_norms, dtype=np.float64)
    if T.shape != g.shape or T.ndim != 1:
        raise ValueError(f"lengths {T.shape} and grad_norms {g.shape} must be 1-D of the same length")
    grp = None if groups is None else np.asarray(groups)
    if grp is not None and grp.shape != T.shape:
        raise ValueError(f"groups {grp.shape} must match lengths {T.shape}")
    if grp is not None:
        grp = np.unique(grp, return_inverse=True)[1].reshape(-1)  # integer codes
    if not 0 < level < 1 or n_boot < 0:
        raise ValueError(f"level={level} must be in (0, 1) and n_boot={n_boot} >= 0")
    keep = (T >= 2) & (g > 0) & np.isfinite(g)
    T, g = T[keep], g[keep]
    grp = None if grp is None else grp[keep]
    out: dict[str, Any] = {"n": int(len(T)), "n_lengths": int(len(np.unique(T)))}
    keys = ("exponent", "t_exponent", "within_exponent")
    nan = {k: math.nan for k in keys} | {f"{k}_ci_{s}": math.nan for k in keys for s in ("low", "high")}
    nan |= {"r2_inv_log": math.nan, "r2_inv_log2": math.nan, "a_inv_log": math.nan, "b_inv_log": math.nan,
            "spearman": math.nan}
    if out["n_lengths"] < 3:
        return out | nan
    x, lx, y = np.log(np.log(T)), np.log(T), np.log(g)

    def fits(idx: np.ndarray) -> tuple[float, float, float]:
        w = math.nan if grp is None else _slope(_demean(x[idx], grp[idx]), _demean(y[idx], grp[idx]))
        return _slope(x[idx], y[idx]), _slope(lx[idx], y[idx]), w

    point = fits(np.arange(len(T)))
    out |= dict(zip(keys, point, strict=True))
    a1, b1, r1 = fit_inverse_log(T, g, power=1.0)
    out |= {"a_inv_log": a1, "b_inv_log": b1, "r2_inv_log": r1, "r2_inv_log2": fit_inverse_log(T, g, power=2.0)[2],
            "spearman": float(stats.spearmanr(T, g).statistic)}
    boots = np.array([fits(idx) for idx in np.random.default_rng(seed).integers(0, len(T), (n_boot, len(T)))])
    q = ((1 - level) / 2, (1 + level) / 2)
    for c, k in enumerate(keys):
        col = boots[:, c] if n_boot else np.array([])
        col = col[np.isfinite(col)]
        lo, hi = np.quantile(col, q) if len(col) else (math.nan, math.nan)
        out[f"{k}_ci_low"], out[f"{k}_ci_high"] = float(lo), float(hi)
    return out


# ----------------------------------------------------------------------------------------------
# study readers for the book's chapters


def teacher_cards(study_dir: str | os.PathLike, order: Sequence[str]) -> pd.DataFrame:
    """The teacher pool with each teacher's own avg@k and greedy accuracy (paper §2; chapter 1's table).

    Read from ``study_dir/cards/*/done.json``; rows follow ``order`` (the profile's teacher order),
    teachers without a card are left out.
    """
    rows = []
    for p in sorted(Path(study_dir).glob("cards/*/done.json")):
        s = read_json(p)["summary"]
        rows.append({"teacher": p.parent.name, "family": s["family"], "size": s["size_label"],
                     "params": format_params(s["size_params"]), "training steps": s["steps"],
                     "own avg@k": s["avg_at_k"], "own greedy": s["greedy"]})
    if not rows:
        raise ValueError(f"no cards/*/done.json under {study_dir}; run the study first (ensure_study)")
    cards = pd.DataFrame(rows).set_index("teacher")
    return cards.loc[[t for t in order if t in cards.index]]






def generation_pool(results: pd.DataFrame, study_dir: str | os.PathLike) -> pd.DataFrame:
    """The teacher pool with the accuracy of its distillation sets, mean over temperatures (chapter 2.2, §3)."""
    cards = {p.parent.name: read_json(p)["summary"] for p in Path(study_dir).glob("cards/*/done.json")}
    pool = (results.groupby("teacher", sort=False)
            .agg(family=("family", "first"), style=("style", "first"), size=("size_label", "first"),
                 params=("size_params", "first"), steps=("teacher_steps", "first"),
                 generation_accuracy=("teacher_accuracy", "mean")))
    pool["params"] = [format_params(v) for v in pool["params"]]
    pool = pool.rename(columns={"generation_accuracy": "generation accuracy (mean over τ)"})
    pool.insert(5, "own avg@k", [cards[t]["avg_at_k"] for t in pool.index])
    pool.insert(6, "own greedy", [cards[t]["greedy"] for t in pool.index])
    return pool


def load_generations(study_dir: str | os.PathLike, configs: Sequence[str]) -> dict[str, list[dict]]:
    """Every configuration's distillation set, ``{config: generations.jsonl records}`` (chapter 2, §2)."""
    return {c: read_jsonl(Path(study_dir) / "generations" / c / "generations.jsonl") for c in configs}


#: A GSM8K-style final-answer line (``#### 42``), as answer checking looks for it (chapter 2.5).
FINAL_ANSWER = r"####\s*\$?-?\d"


def length_table(gens: Mapping[str, list[dict]], results: pd.DataFrame, tokenizer: Any, max_new_tokens: int,
                 max_records: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Response length in student tokens, share at the generation budget and share with a ``#### N``
    answer, per configuration (chapter 2.5; why the paper rescales by log|y|, §2.1).

    ``max_records`` caps the responses tokenised per configuration (a seeded random subset).
    """
    import re

    final = re.compile(FINAL_ANSWER)
    rows, rng = [], np.random.default_rng(seed)
    for c, recs in gens.items():
        if max_records is not None and len(recs) > max_records:
            recs = [recs[i] for i in sorted(rng.choice(len(recs), max_records, replace=False))]
        row = results.loc[results.config == c].iloc[0]
        lengths = [len(tokenizer(r["response"], add_special_tokens=False)["input_ids"]) for r in recs]
        rows.append({"config": c, "teacher": row.teacher, "temperature": row.temperature,
                     "mean length": float(np.mean(lengths)), "median length": float(np.median(lengths)),
                     "at budget": float(np.mean(np.asarray(lengths) >= int(max_new_tokens))),
                     "has final answer": float(np.mean([final.search(r["response"]) is not None for r in recs]))})
    return pd.DataFrame(rows)


def blank_table(gens: Mapping[str, list[dict]], results: pd.DataFrame) -> pd.DataFrame:
    """Blank responses per configuration, from the files and from ``results.csv`` (chapter 2.6).

    Raises if the two counts disagree: the study skips blank responses in scoring and distillation.
    """
    blank = pd.DataFrame({
        "config": list(gens),
        "responses": [len(gens[c]) for c in gens],
        "blank (files)": [sum(1 for r in gens[c] if not r["response"].strip()) for c in gens],
    }).set_index("config")
    blank["blank (results table)"] = results.set_index("config")["empty_responses"].reindex(blank.index)
    blank["share"] = blank["blank (files)"] / blank["responses"]
    if not (blank["blank (files)"] == blank["blank (results table)"]).all():
        raise AssertionError(f"blank-response counts disagree with results.csv:\n{blank}")
    return blank


def length_trend_table(trend: Mapping[str, float], rho_h: float) -> pd.DataFrame:
    """The App. D.4 fits of :func:`length_trend` as one table: R² of a/log T + b and
    a/(log T)² + b, the exponents with their CIs, and Spearman of T with ‖g‖ and ‖h‖ (chapter 3.2)."""
    return pd.DataFrame({
        "value": [trend["r2_inv_log"], trend["r2_inv_log2"], trend["exponent"], trend["within_exponent"],
                  trend["t_exponent"], trend["spearman"], rho_h],
        "CI low": [np.nan, np.nan, trend["exponent_ci_low"], trend["within_exponent_ci_low"],
                   trend["t_exponent_ci_low"], np.nan, np.nan],
        "CI high": [np.nan, np.nan, trend["exponent_ci_high"], trend["within_exponent_ci_high"],
                    trend["t_exponent_ci_high"], np.nan, np.nan],
    }, index=["R² of a/log T + b", "R² of a/(log T)² + b", "exponent b: ‖g‖ ∝ (log T)^b, pooled",
              "exponent b, within configurations", "exponent e: ‖g‖ ∝ T^e", "Spearman(T, ‖g‖)",
              "Spearman(T, ‖h‖) after the log|y| rescaling"])


def length_trend_by_config(gn: pd.DataFrame) -> pd.DataFrame:
    """The App. D.4 exponent and rank correlation fitted on each configuration's rows alone (chapter 3.2).

    ``gn`` has columns ``config, length, grad_norm`` (``grace.features.study_gradient_norms``).
    """
    rows = []
    for c, g in gn.groupby("config", sort=False):
        t = length_trend(g.length, g.grad_norm, n_boot=0)
        rows.append({"config": c, "rows": t["n"], "distinct lengths": t["n_lengths"],
                     "mean |y|": g.length.mean(), "mean ‖g‖": g.grad_norm.mean(),
                     "exponent b": t["exponent"], "Spearman(T, ‖g‖)": t["spearman"]})
    return pd.DataFrame(rows).set_index("config")


# ----------------------------------------------------------------------------------------------
# chapter 4: the definitions restated, on synthetic gradients


def rel_diff(a: float, b: float) -> float:
    """``|a − b| / |b|`` (guarded at 0): the tolerance of chapter 4's identity checks (eqs. 1–6)."""
    return float(abs(a - b) / max(abs(b), 1e-300))












def filtered_score_rhos(results: pd.DataFrame, scores: Sequence[str] = ("grace", "g_var", "g_vendi")) -> pd.DataFrame:
    """Oriented Spearman ρ of each score with the unfiltered and with the correct-only students of the
    configurations that have both (App. D.1, Fig. 16; chapter 5.5). Scores constant there are left out."""
    sub = results[np.isfinite(results["student_avg_at_k_filtered"].astype(float))]
    varying = [s for s in scores if sub[s].nunique() > 1]
    cols = []
    for target in ("student_avg_at_k", "student_avg_at_k_filtered"):
        t = spearman_table(sub, target=target, scores=varying, n_boot=0).set_index("label")["rho_oriented"]
        cols.append(t.rename(target))
    return pd.concat(cols, axis=1)


def rho_of(table: pd.DataFrame, score: str, col: str = "rho_oriented") -> float:
    """``table.loc[score, col]`` as a float, NaN when the score is not in the table (a score constant on
    the profile; chapter 6's captions quote every score whether or not it varies)."""
    return float(table.loc[score, col]) if score in table.index else math.nan


# ----------------------------------------------------------------------------------------------
# chapter 7: ablations on the saved features (App. D.1, D.3)








def filtering_rho_table(results: pd.DataFrame, target: str, scores: Sequence[str]) -> pd.DataFrame:
    """Each score's oriented ρ with the students trained without and with correctness filtering, on the
    configurations that have both, and the difference (App. D.1, Fig. 16; chapter 7.5)."""
    filt = f"{target}_filtered"
    tabs = {t: spearman_table(results, target=t, scores=scores, n_boot=0).set_index("score").rho_oriented
            for t in (target, filt)}
    out = pd.DataFrame({"without filtering": tabs[target], "with filtering": tabs[filt]})
    out["difference"] = out["with filtering"] - out["without filtering"]
    return out


# ----------------------------------------------------------------------------------------------
# chapter 8: the paper against the released code


def spread_configs(target: pd.Series, configs: Sequence[str], k: int) -> list[str]:
    """``k`` of ``configs`` evenly spread over the sorted ``target`` (all of them when ``k`` is 0 or too
    large): the configurations chapter 8.2 recomputes gradients for."""
    configs = sorted(configs)
    if not k or k >= len(configs):
        return configs
    by_y = target.reindex(configs).sort_values(kind="mergesort")
    pick = np.unique(np.linspace(0, len(by_y) - 1, k).round().astype(int))
    return sorted(by_y.index[pick])






PRE_REGISTERED_PROFILE = "full"
"""The study the strong-teacher world's hypotheses are tested on (``grace/profiles/strong-teacher.md``; pre-registered
as ``strong-full``); a study of another profile of that world (``quick``, ``strong-quick``: reduced sizes, one
world seed) gives indications."""


def hypothesis_test(pool: pd.DataFrame, all_pass: bool) -> pd.DataFrame:
    """The strong-teacher world's pre-registered test of the paper's claim (§3; ``grace/profiles/strong-teacher.md``).

    ``pool`` is a study's ``analysis/spearman_student_avg_at_k_pool.csv`` (oriented ρ with its percentile
    bootstrap CI per score, over the main pool's configurations); ``all_pass`` whether the world passed
    every GRACE-free acceptance check. Rows:

    * **H1**: GRACE's oriented ρ is positive and its 95 % CI lies above 0;
    * **H2 (loss)**, **H2 (accuracy)**: GRACE's oriented ρ is above that of the student's loss on the
      teacher's data, and above that of the teacher's accuracy (point estimates).

    ``verdict`` is ``supported`` / ``not supported``, ``not measured`` when a number is missing, and
    ``not a test`` when the world failed a check (the numbers are then what they are, not evidence).
    """
    by = pool.set_index("score")

    def get(score: str, col: str) -> float:
        return float(by.at[score, col]) if score in by.index else float("nan")

    g, lo = get("grace", "rho_oriented"), get("grace", "ci_low")
    rows = [("H1", "GRACE's oriented ρ > 0 with its 95 % CI above 0", g, lo, bool(g > 0 and lo > 0))]
    for score, name in (("student_loss", "the student's loss"), ("teacher_accuracy", "the teacher's accuracy")):
        other = get(score, "rho_oriented")
        rows.append((f"H2 ({score})", f"GRACE's oriented ρ above {name}'s", g, other, bool(g > other)))
    out = []
    for h, rule, value, against, ok in rows:
        missing = not (np.isfinite(value) and np.isfinite(against))
        verdict = ("not measured" if missing else "not a test" if not all_pass
                   else "supported" if ok else "not supported")
        out.append({"hypothesis": h, "rule": rule, "grace_rho": value, "against": against, "verdict": verdict})
    return pd.DataFrame(out)
