"""From the study's results table to the paper's correlations, gaps and robustness numbers.

Every function here is a pure function of a pandas ``DataFrame`` with one row per teacher ×
temperature configuration (see :data:`RESULT_COLUMNS`). Nothing loads a model.

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
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

#: Columns of the results table (one row per teacher × temperature configuration).
RESULT_COLUMNS = (
    "config", "teacher", "family", "size_params", "size_label", "temperature", "is_self",
    "student_avg_at_k", "student_greedy", "student_best_of_k", "teacher_accuracy", "teacher_avg_at_k",
)
#: Student-performance targets the paper correlates against (§3, Figs 2, 11, 12).
TARGETS = ("student_avg_at_k", "student_greedy", "student_best_of_k")
DEFAULT_TARGET = "student_avg_at_k"




def main_pool(results: pd.DataFrame) -> pd.DataFrame:
    """The configurations whose correlations a study reports (§3.1: the paper's pool of 15 teachers).

    Rows with ``in_pool`` true; tables written before that column existed count every teacher but the
    student itself (``is_self``). The self-distillation and answer-only anecdote teachers are left out.
    """
    keep = results["in_pool"] if "in_pool" in results.columns else ~results["is_self"].astype(bool)
    return results[keep.astype(bool)].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# validation and small helpers


def _check_table(df: pd.DataFrame, target: str, min_rows: int = 3) -> None:
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


def _orientation_dict(orientation: Mapping[str, int] | None) -> dict[str, int]:
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


def _resolve_scores(
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


def _sign(orient: Mapping[str, int], score: str) -> int:
    sign = int(orient[score])
    if sign not in (1, -1):
        raise ValueError(f"orientation of {score!r} is {orient[score]!r}; it must be +1 or -1")
    return sign


def _pair(df: pd.DataFrame, score: str, target: str) -> pd.DataFrame:
    """Rows of ``df`` where both ``score`` and ``target`` are finite."""
    sub = df[np.isfinite(df[score].astype(float)) & np.isfinite(df[target].astype(float))]
    return sub


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Raw ``scipy.stats.spearmanr`` (rho, p); NaN for fewer than 3 points or a constant input."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def _rowwise_spearman(xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
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


def _config_names(df: pd.DataFrame) -> pd.Series:
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
    _check_table(df, target)
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci!r} must be a confidence level in (0, 1), e.g. 0.95")
    if n_boot < 0:
        raise ValueError(f"n_boot={n_boot!r} must be >= 0 (0 disables the bootstrap CI)")
    orient = _orientation_dict(orientation)
    scores = _resolve_scores(df, scores, orient, target)
    alpha = (1.0 - ci) / 2.0
    rows = []
    for s in scores:
        sign = _sign(orient, s)
        sub = _pair(df, s, target)
        x, y = sub[s].to_numpy(float), sub[target].to_numpy(float)  # (n,), (n,)
        rho, p = _spearman(x, y)
        lo = hi = math.nan
        if n_boot > 0 and np.isfinite(rho):
            rng = np.random.default_rng(seed)
            idx = rng.integers(0, len(x), size=(n_boot, len(x)))  # (B, n) resampled configs
            boot = sign * _rowwise_spearman(x[idx], y[idx])  # (B,)
            boot = boot[np.isfinite(boot)]
            if len(boot):
                lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
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


def _argbest(key: np.ndarray, names: np.ndarray) -> int:
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
    return sub.iloc[_argbest(key, _config_names(sub).to_numpy(str))]


def _gap_record(df: pd.DataFrame, score: str, target: str, sign: int) -> dict[str, Any]:
    """Gap bookkeeping for one score on one group of configurations."""
    sub = _pair(df, score, target)
    if sub.empty:
        return dict(n=0, best_config=None, best_target=math.nan, picked_config=None,
                    picked_target=math.nan, gap=math.nan)
    names = _config_names(sub).to_numpy(str)
    y = sub[target].to_numpy(float)
    i_best = _argbest(y, names)
    i_pick = _argbest(sign * sub[score].to_numpy(float), names)
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
    _check_table(df, target, min_rows=1)
    orient = ({score: int(orientation)} if isinstance(orientation, (int, np.integer))
              else _orientation_dict(orientation))
    _resolve_scores(df, [score], orient, target)
    return _gap_record(_group_rows(df, group), score, target, _sign(orient, score))["gap"]


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
    _check_table(df, target, min_rows=1)
    orient = _orientation_dict(orientation)
    scores = _resolve_scores(df, scores, orient, target)
    if group_col is not None and group_col not in df.columns:
        raise ValueError(f"group_col {group_col!r} is not in the results table; "
                         f"available columns: {sorted(map(str, df.columns))}")
    groups = [("all", df)] if group_col is None else list(df.groupby(group_col, sort=True))
    rows = []
    for g, sub in groups:
        for s in scores:
            rec = _gap_record(sub, s, target, _sign(orient, s))
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
) -> pd.DataFrame:
    """Spearman and gap per score among teachers with at most ``budget`` parameters (§3.2, Figs 7, 14).

    Args:
        df: results table with a ``size_params`` column.
        budgets: parameter-count ceilings, e.g. ``[3e9, 10e9, 30e9]``; ``inf`` means no limit.

    Returns:
        Long DataFrame with columns ``group`` (e.g. ``"≤3B"``), ``budget, n, score, label, rho,
        rho_oriented, gap, picked_config``, budgets ascending. ``n`` counts configurations within
        the budget with a finite score and target; rho is NaN when ``n < 3``.
    """
    _check_table(df, target)
    if "size_params" not in df.columns:
        raise ValueError("size_budget_table needs a 'size_params' column (teacher parameter count); "
                         f"available columns: {sorted(map(str, df.columns))}")
    if len(budgets) == 0:
        raise ValueError("budgets is empty; pass parameter ceilings such as [3e9, 10e9, 30e9]")
    orient = _orientation_dict(orientation)
    scores = _resolve_scores(df, scores, orient, target)
    rows = []
    for b in sorted(float(b) for b in budgets):
        sub = df[df["size_params"].astype(float) <= b]
        for s in scores:
            sign = _sign(orient, s)
            pair = _pair(sub, s, target)
            rho, _ = _spearman(pair[s].to_numpy(float), pair[target].to_numpy(float))
            rec = _gap_record(sub, s, target, sign)
            rows.append(dict(group=f"≤{format_params(b)}", budget=b, n=rec["n"], score=s,
                             label=score_label(s), rho=rho, rho_oriented=sign * rho,
                             gap=rec["gap"], picked_config=rec["picked_config"]))
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
    _check_table(df, target)
    for col in ("teacher", "temperature"):
        if col not in df.columns:
            raise ValueError(f"temperature_table needs a {col!r} column; "
                             f"available columns: {sorted(map(str, df.columns))}")
    orient = _orientation_dict(orientation)
    scores = _resolve_scores(df, scores, orient, target)
    rows = []
    for teacher, sub in df.groupby("teacher", sort=True):
        for s in scores:
            sign = _sign(orient, s)
            pair = _pair(sub, s, target).sort_values("temperature", kind="mergesort")
            t = pair["temperature"].to_numpy(float)  # (n_temps,)
            x, y = pair[s].to_numpy(float), pair[target].to_numpy(float)
            rho, _ = _spearman(x, y)
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
    _check_table(df, target)
    if by not in ("config", "teacher"):
        raise ValueError(f"by={by!r} must be 'config' or 'teacher'")
    if not 0 < frac <= 1:
        raise ValueError(f"frac={frac!r} must be in (0, 1], e.g. 0.6")
    if n_subsets < 1:
        raise ValueError(f"n_subsets={n_subsets!r} must be >= 1")
    if by == "teacher" and "teacher" not in df.columns:
        raise ValueError("by='teacher' needs a 'teacher' column; use by='config' instead")
    orient = _orientation_dict(orientation)
    scores = _resolve_scores(df, scores, orient, target)
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
            pair = _pair(sub, s, target)
            rho, _ = _spearman(pair[s].to_numpy(float), pair[target].to_numpy(float))
            rows.append(dict(subset=i, score=s, label=score_label(s), n=len(pair),
                             rho_oriented=_sign(orient, s) * rho))
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
