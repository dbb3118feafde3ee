"""Figure- and claim-level helpers for chapters 5 (distillation) and 6 (scores vs students).

:mod:`grace.analysis` turns the results table into the paper's correlation, gap and robustness
tables and :mod:`grace.plots` draws them. This module adds what the two chapters need on top:

* the paper's printed numbers (:data:`PAPER`, :data:`PAPER_RECIPE`), so notebooks never type them;
* readers of the study directory (``students/*/done.json``, ``*/per_prompt.jsonl``);
* uncertainty for the claims: bootstrap over *test prompts* for student-accuracy gaps (App. C.2),
  paired bootstrap over configurations for differences of Spearman correlations (Fig 2), bootstrap
  over teachers for the mean temperature correlation (Fig 7 left);
* the few figures not in :mod:`grace.plots` (metric scatter, teacher vs student, Fig 15).

Every function is a pure function of the results DataFrame (one row per teacher × temperature
configuration, see :data:`grace.analysis.RESULT_COLUMNS`) or of a study directory, and names the
paper figure or section it serves. Figures are ``matplotlib.figure.Figure`` objects built without
pyplot, as in :mod:`grace.plots`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from grace import analysis as A
from grace.claims import verdict_at_most  # noqa: F401  (re-exported for the notebooks)
from grace.io import read_json, read_jsonl
from grace.plots import _styled, family_palette, marker_map

#: Numbers printed in the paper, keyed by figure/section (Llama-1B student on GSM8K unless noted).
PAPER: dict[str, float] = {
    "fig1_student_loss_rho": 0.44,  # §3.1: base student's loss on teacher generations
    "fig1_teacher_rho": 0.11,  # §3.1: the teacher's own avg@16
    "fig2_grace_rho": 0.86,  # Fig 2
    "fig2_g_var_rho": 0.55,  # Fig 2
    "fig2_g_vendi_rho": 0.44,  # Fig 2
    "fig4_threshold": 0.80,  # Fig 4: "the only score achieving more than 80%"
    "fig5_temperature": 0.6,  # Fig 5: the fixed-temperature case study
    "fig5_grace_rho": 0.92,  # Fig 5
    "fig6_best_temperature_small": 0.4,  # Fig 6: Qwen-2.5-1.5B-Instruct, best temperature ...
    "fig6_predicted_temperature_small": 0.5,  # ... and GRACE's prediction
    "fig6_best_temperature_large": 0.8,  # Fig 6: Qwen-2.5-3B-Instruct
    "fig6_predicted_temperature_large": 0.9,
    "fig7_temperature_rho": 0.75,  # Fig 7 left: GRACE, mean over teachers
    "fig7_g_var_temperature_rho": 0.53,  # §3.2
    "fig7_g_vendi_temperature_rho": 0.59,  # §3.2
    "fig7_size_rho": 0.75,  # Fig 7 right: "75% and above" under every size budget
    "fig11_grace_greedy_rho": 0.70,  # Fig 11
    "fig12_grace_best_of_k_rho": 0.64,  # Fig 12
    "fig13_family_gap": 0.01,  # Fig 13: mean gap over families, GRACE
    "fig13_other_family_gap": 0.03,  # Fig 13: "other metrics ... at least 3%"
    "fig14_size_gap": 0.01,  # Fig 14 / §3.2: GRACE gap under every size budget
    "gap_to_best": 0.01,  # §1: GRACE-selected student within 1% of the best
    "improvement_over_strongest": 0.06,  # abstract: >= 6% over the best-performing teacher
    "strongest_teacher_gap": 0.065,  # §3.1: Llama-70B's student 46% vs best 52.5%
    "self_g_vendi": 5.93,  # §2.1: G-Vendi of the student as its own teacher
    "self_student_avg_at_k": 0.04,  # §2.1: that student's accuracy
    "fig23_n_subsets": 100,  # App. D.5
    "fig23_subset_frac": 0.6,  # App. D.5
}

#: The distillation recipe of paper §3 ("Settings") and App. D.1 (no filtering by default).
PAPER_RECIPE: dict[str, Any] = {
    "learning_rate": 1e-5,
    "epochs": 4,
    "scheduler": "cosine",
    "warmup_ratio": 0.05,
    "weight_decay": 0.0,
    "batch_size": 64,
    "filter_correct": False,
}

#: GSM8K's training split (Cobbe et al., 2021): the N of the paper's distillation set.
GSM8K_TRAIN = 7473
#: Responses per prompt in the paper's distillation set (§3: M = 16).
PAPER_M = 16

METRIC_LABELS = {"student_avg_at_k": "avg@k", "student_greedy": "greedy", "student_best_of_k": "best-of-k"}


# ----------------------------------------------------------------------------------------------
# chapter 5: the recipe and the trained students (paper §3 "Settings", App. D.1)


def recipe_table(distill: Mapping[str, Any]) -> pd.DataFrame:
    """The profile's ``distill`` section beside the paper's recipe (paper §3 "Settings").

    Keys the profile omits take the value the study runner uses (``grace.distill.TrainConfig``
    defaults; the runner always sets the learning rate, epochs and batch size from the profile).

    Returns:
        DataFrame indexed by hyper-parameter with columns ``paper``, ``profile``, ``same``.
    """
    from grace.distill import TrainConfig

    if not isinstance(distill, Mapping):
        raise ValueError(f"distill must be the profile's 'distill' mapping, got {type(distill).__name__}")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    rows = []
    for key, paper in PAPER_RECIPE.items():
        value = distill.get(key, defaults[key])
        same = (math.isclose(float(value), float(paper), rel_tol=1e-9, abs_tol=0.0)
                if isinstance(paper, int | float) and not isinstance(paper, bool) else value == paper)
        rows.append({"hyper-parameter": key, "paper": paper, "profile": value, "same": bool(same)})
    return pd.DataFrame(rows).set_index("hyper-parameter")


def lr_schedule(learning_rate: float, steps: int, warmup_ratio: float = 0.05, scheduler: str = "cosine") -> np.ndarray:
    """Per-step learning rate of the recipe (paper §3: cosine, 5% linear warm-up), as HF ``Trainer`` runs it.

    Same formula as ``transformers.get_cosine_schedule_with_warmup`` (or ``..._linear_...``) with
    ``warmup_steps = round(warmup_ratio · steps)``. Its sum is the total distance Adam can move one
    weight (each Adam step moves a weight by at most about the learning rate), which is how chapter 5
    compares the paper's 1e-5 with the miniature's larger rate.

    Returns:
        Array of shape ``(steps,)``.
    """
    if steps < 1 or learning_rate <= 0 or not 0 <= warmup_ratio < 1:
        raise ValueError(f"need steps >= 1, learning_rate > 0 and 0 <= warmup_ratio < 1; got {steps}, "
                         f"{learning_rate}, {warmup_ratio}")
    if scheduler not in ("cosine", "linear", "constant"):
        raise ValueError(f"scheduler={scheduler!r}: use 'cosine' (paper), 'linear' or 'constant'")
    t = np.arange(steps, dtype=float)
    w = round(warmup_ratio * steps)
    progress = np.clip((t - w) / max(1, steps - w), 0.0, 1.0)
    decay = {"cosine": 0.5 * (1 + np.cos(np.pi * progress)), "linear": 1 - progress,
             "constant": np.ones_like(t)}[scheduler]
    warm = t / max(1, w)
    return learning_rate * np.where(t < w, warm, np.maximum(decay, 0.0))


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


def metric_correlations(results: pd.DataFrame, metrics: Sequence[str] = A.TARGETS) -> pd.DataFrame:
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
            out.loc[a, b] = A._spearman(x[ok], y[ok])[0]
    return out.rename(index=METRIC_LABELS, columns=METRIC_LABELS)


def strongest_teacher(results: pd.DataFrame, target: str = A.DEFAULT_TARGET, teacher_col: str = "teacher_avg_at_k",
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
    names = A._config_names(mine).to_numpy(str)
    i = A._argbest(mine[target].to_numpy(float), names)
    all_names = A._config_names(results).to_numpy(str)
    y_all = results[target].to_numpy(float)
    j = A._argbest(np.where(np.isfinite(y_all), y_all, -np.inf), all_names)
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


# ----------------------------------------------------------------------------------------------
# uncertainty


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


def paired_rho_difference(results: pd.DataFrame, a: str, b: str, target: str = A.DEFAULT_TARGET,
                          orientation: Mapping[str, int] | None = None, n_boot: int = 1000, seed: int = 0,
                          ci: float = 0.95) -> tuple[float, float, float]:
    """Oriented Spearman of score ``a`` minus that of ``b``, paired bootstrap over configs (Fig 2).

    Both correlations are computed on the same resampled configurations, so the CI accounts for
    their dependence. Rows where ``a``, ``b`` or the target is NaN are dropped.

    Returns:
        ``(difference, ci_low, ci_high)``; NaN difference if either correlation is undefined.
    """
    orient = A._orientation_dict(orientation)
    A._check_table(results, target)
    A._resolve_scores(results, [a, b], orient, target)
    x, z, y = (results[c].to_numpy(float) for c in (a, b, target))  # (n,) each; a may equal b
    ok = np.isfinite(x) & np.isfinite(z) & np.isfinite(y)
    x, z, y = x[ok], z[ok], y[ok]
    sa, sb = A._sign(orient, a), A._sign(orient, b)
    diff = sa * A._spearman(x, y)[0] - sb * A._spearman(z, y)[0]
    if not np.isfinite(diff) or n_boot < 1:
        return float(diff), math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))  # (B, n)
    boot = sa * A._rowwise_spearman(x[idx], y[idx]) - sb * A._rowwise_spearman(z[idx], y[idx])  # (B,)
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0:
        return float(diff), math.nan, math.nan
    lo, hi = np.quantile(boot, [(1 - ci) / 2, (1 + ci) / 2])
    return float(diff), float(lo), float(hi)


# ----------------------------------------------------------------------------------------------
# chapter 6: choices and summaries (Figs 4–7, 23, §2.1)


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


def size_budget_spearman(results: pd.DataFrame, budgets: Sequence[float], scores: Sequence[str],
                         target: str = A.DEFAULT_TARGET, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Spearman with a bootstrap CI among teachers within each size budget (Fig 7 right).

    Returns:
        Long DataFrame ``group, budget, score, label, n, rho_oriented, ci_low, ci_high``; a budget
        with fewer than 3 configurations gets NaN correlations.
    """
    if "size_params" not in results.columns:
        raise ValueError("size_budget_spearman needs a 'size_params' column")
    if len(budgets) == 0:
        raise ValueError("budgets is empty; pass parameter ceilings, e.g. sorted(results.size_params.unique())")
    rows = []
    for b in sorted(float(b) for b in budgets):
        sub = results[results["size_params"].astype(float) <= b]
        group = f"≤{A.format_params(b)}"
        if len(sub) >= 3:
            tab = A.spearman_table(sub, target=target, scores=scores, n_boot=n_boot, seed=seed)
            tab = tab.set_index("score").loc[list(scores)].reset_index()  # keep the caller's order
            for r in tab.itertuples():
                rows.append({"group": group, "budget": b, "score": r.score, "label": r.label, "n": r.n,
                             "rho_oriented": r.rho_oriented, "ci_low": r.ci_low, "ci_high": r.ci_high})
        else:
            for s in scores:
                rows.append({"group": group, "budget": b, "score": s, "label": A.score_label(s), "n": len(sub),
                             "rho_oriented": math.nan, "ci_low": math.nan, "ci_high": math.nan})
    return pd.DataFrame(rows)


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


def self_distillation(results: pd.DataFrame, score: str = "g_vendi", target: str = A.DEFAULT_TARGET,
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
    orient = A._orientation_dict(orientation)
    A._resolve_scores(results, [score], orient, target)
    sign = A._sign(orient, score)
    d = A._pair(results, score, target)
    selfs = d[d["is_self"].astype(bool)]
    if selfs.empty:
        return None
    pick = A.pick_best(selfs, score, sign)
    key = sign * d[score].to_numpy(float)
    y = d[target].to_numpy(float)
    k0, y0 = sign * float(pick[score]), float(pick[target])
    score_rank = int((key > k0).sum()) + 1
    target_rank = int((y > y0).sum()) + 1
    return {"config": str(pick["config"]), "score_value": float(pick[score]), "score_rank": score_rank,
            "target_value": y0, "target_rank": target_rank, "n_configs": len(d),
            "score_top": score_rank == 1, "target_bottom_half": target_rank > len(d) / 2}


# ----------------------------------------------------------------------------------------------
# figures not in grace.plots


def _figure(ncols: int = 1, size: tuple[float, float] = (5.0, 3.8)):
    fig = Figure(figsize=(size[0] * ncols, size[1]), layout="constrained")
    return fig, np.atleast_1d(fig.subplots(1, ncols, squeeze=False).ravel())


def placeholder_figure(message: str, size: tuple[float, float] = (5.0, 1.6)) -> Figure:
    """A figure holding only ``message``, for a paper figure the profile cannot draw (e.g. Fig 7 left
    with fewer than 3 temperatures), so a chapter's captioned figure always exists."""
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize="medium", color="0.3")
    return fig


@_styled
def plot_metric_scatter(results: pd.DataFrame, k: int | None = None) -> Figure:
    """Greedy and best-of-k against avg@k, one point per student (§3.3; context of Figs 11–12).

    With ``k`` given, the right panel shades where best-of-k must lie: ``avg@k ≤ best-of-k ≤
    min(1, k·avg@k)``.
    """
    for c in A.TARGETS:
        if c not in results.columns:
            raise ValueError(f"plot_metric_scatter needs a {c!r} column")
    fig, axes = _figure(2, (4.4, 3.8))
    pal = family_palette(results["family"]) if "family" in results else None
    x = results["student_avg_at_k"].to_numpy(float)
    hi = float(np.nanmax(results[list(A.TARGETS)].to_numpy(float), initial=0.0))
    lim = (-0.02, max(0.1, min(1.02, hi * 1.1 + 0.02)))
    for ax, col in zip(axes, ("student_greedy", "student_best_of_k"), strict=True):
        y = results[col].to_numpy(float)
        colors = [pal[f] for f in results["family"]] if pal else None
        ax.scatter(x, y, c=colors, s=40, edgecolor="0.2", lw=0.3, zorder=3)
        grid = np.linspace(0, 1, 101)
        ax.plot(grid, grid, color="0.5", lw=0.8, ls="--", label="y = x")
        if col == "student_best_of_k" and k:
            ax.fill_between(grid, grid, np.minimum(1, k * grid), color="0.85", label=f"feasible (k = {k})")
        rho = A._spearman(x, y)[0] if np.isfinite(x).all() and np.isfinite(y).all() else math.nan
        ax.set(xlim=lim, ylim=lim, xlabel="student avg@k", ylabel=f"student {METRIC_LABELS[col]}",
               title=f"{METRIC_LABELS[col]} vs avg@k: Spearman ρ = {rho:.2f}")
        ax.legend(fontsize="x-small", loc="upper left")
    if pal:
        handles = [Line2D([], [], ls="", marker="o", color=c, label=str(f)) for f, c in pal.items()]
        fig.legend(handles=handles, loc="outside right upper", fontsize="x-small", frameon=False)
    return fig


@_styled
def plot_teacher_vs_student(results: pd.DataFrame, teacher_col: str = "teacher_avg_at_k",
                            target: str = A.DEFAULT_TARGET) -> Figure:
    """The teacher's own accuracy against its student's avg@k (§3.1: "a stronger teacher is not
    always a better one"; the paper's ρ is 0.11)."""
    for c in (teacher_col, target, "temperature"):
        if c not in results.columns:
            raise ValueError(f"plot_teacher_vs_student needs a {c!r} column")
    fig, (ax,) = _figure(1, (5.6, 4.0))
    pal = family_palette(results["family"]) if "family" in results else {None: "C0"}
    marks = marker_map(results["temperature"])
    for r in results.itertuples():
        ax.scatter(getattr(r, teacher_col), getattr(r, target), color=pal[getattr(r, "family", None)],
                   marker=marks[r.temperature], s=50, edgecolor="0.2", lw=0.3)
    d = results[[teacher_col, target]].astype(float).dropna()
    rho = A._spearman(d[teacher_col].to_numpy(), d[target].to_numpy())[0]
    ax.set(xlabel=f"teacher's own accuracy ({teacher_col})", ylabel=f"student {METRIC_LABELS.get(target, target)}",
           title=f"Teacher vs student: Spearman ρ = {rho:.2f} (n = {len(d)})")
    handles = [Line2D([], [], ls="", marker="o", color=c, label=str(f)) for f, c in pal.items()]
    handles += [Line2D([], [], ls="", marker=m, color="0.4", label=f"T = {t:g}") for t, m in marks.items()]
    fig.legend(handles=handles, loc="outside right upper", fontsize="x-small", frameon=False)
    return fig


@_styled
def plot_filtering(filter_df: pd.DataFrame) -> Figure:
    """Student avg@k without (x) vs with (y) correctness filtering, one point per config (Fig 15)."""
    if filter_df.empty:
        raise ValueError("filter_df is empty: the study ran no filtering ablation (profile filter_ablation)")
    fig, (ax,) = _figure(1, (4.6, 4.0))
    pal = family_palette(filter_df["family"])
    ax.scatter(filter_df["unfiltered"], filter_df["filtered"], c=[pal[f] for f in filter_df["family"]], s=50,
               edgecolor="0.2", lw=0.3, zorder=3)
    v = filter_df[["unfiltered", "filtered"]].to_numpy(float)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    pad = 0.05 * max(hi - lo, 0.05)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", ls="--", lw=0.8)
    ax.set(xlabel="student avg@k, no filtering", ylabel="student avg@k, correct-only filtering",
           title="Filtering ablation (App. D.1)")
    ax.legend(handles=[Line2D([], [], ls="", marker="o", color=c, label=str(f)) for f, c in pal.items()],
              fontsize="x-small")
    return fig


@_styled
def plot_score_panels(results: pd.DataFrame, scores: Sequence[str], target: str = A.DEFAULT_TARGET) -> Figure:
    """One scatter per score against the target, the score's pick starred (Figs 1 right, 2, 11, 12).

    Each panel is :func:`grace.plots.plot_score_vs_target`; only the last keeps its legend.
    """
    from grace.plots import plot_score_vs_target

    if len(scores) == 0:
        raise ValueError("scores is empty; pass e.g. ['grace', 'g_var', 'g_vendi']")
    fig, axes = _figure(len(scores), (4.4, 3.8))
    for ax, s in zip(axes, scores, strict=True):
        plot_score_vs_target(results, s, target=target, ax=ax)
    for ax in axes[:-1]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    for ax in axes[1:]:
        ax.set_ylabel("")
    return fig


__all__ = [
    "PAPER", "PAPER_RECIPE", "GSM8K_TRAIN", "PAPER_M", "recipe_table", "lr_schedule", "student_runs", "per_prompt_matrix", "metric_correlations",
    "strongest_teacher", "filtering_table", "mean_ci", "prompt_bootstrap", "gap_stat", "difference_stat",
    "paired_rho_difference", "verdict_at_most", "nearest_temperature", "curve_teachers",
    "temperature_summary", "size_budget_spearman", "only_score_above", "robustness_summary",
    "self_distillation", "placeholder_figure", "plot_metric_scatter", "plot_teacher_vs_student", "plot_filtering",
    "plot_score_panels",
]
