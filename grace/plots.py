"""The paper's figures, drawn from the results table and the tables of :mod:`grace.analysis`.

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``.
Figures are built with ``matplotlib.figure.Figure`` directly rather than through pyplot, so this
module never chooses or changes the backend, leaves no open pyplot figures behind, and works in
scripts, tests and notebooks alike (in Jupyter, a returned Figure is rendered by the inline
backend). Scripts that want a headless backend call ``matplotlib.use("Agg")`` themselves.

Look: seaborn ``"whitegrid"`` applied per figure (global rcParams are untouched), one colour per
model family and one marker per temperature (or size), the same across all figures of one table.
"""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from grace import analysis as A
from grace import formatting as F

MARKERS = ("o", "s", "D", "v", "P", "X", "*", "h", "<", ">", "p", "8")
STYLE = "whitegrid"


# ----------------------------------------------------------------------------------------------
# shared look


def _styled(fn):
    """Run a plotting function under the shared seaborn style without touching global rcParams."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with sns.axes_style(STYLE), sns.plotting_context("notebook", font_scale=0.9):
            return fn(*args, **kwargs)

    return wrapper


def _figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 3.8),
            sharey: bool = False) -> tuple[Figure, np.ndarray]:
    """A pyplot-free figure with ``nrows × ncols`` axes of ``size`` inches each; axes flat (k,)."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, axes.ravel()


def _fig_and_ax(ax: Axes | None, size: tuple[float, float] = (5.0, 3.8)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, axes = _figure(size=size)
    return fig, axes[0]


def family_palette(families: Sequence[Any]) -> dict[Any, Any]:
    """One colour per family (sorted names → ``tab10``/``tab20``), stable for a given table."""
    fams = sorted(set(families), key=str)
    colors = sns.color_palette("tab10" if len(fams) <= 10 else "tab20", len(fams))
    return dict(zip(fams, colors, strict=True))


def marker_map(values: Sequence[Any]) -> dict[Any, str]:
    """One marker per distinct value (temperature or size), in sorted order."""
    vals = sorted(set(values), key=lambda v: (str(type(v)), v))
    return {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(vals)}


def _size_markers(df: pd.DataFrame) -> dict[Any, str]:
    """One marker per ``size_label``, ordered by ``size_params`` when available."""
    if "size_params" in df.columns:
        labels = df.sort_values("size_params", kind="mergesort")["size_label"].unique()
    else:
        labels = sorted(df["size_label"].unique(), key=str)
    return {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(labels)}


def _score_palette(scores: Sequence[str]) -> dict[str, Any]:
    """One colour per score; GRACE variants get the dark red the paper uses for its method."""
    others = [s for s in scores if not str(s).startswith("grace")]
    colors = dict(zip(others, sns.color_palette("Set2", max(len(others), 1)), strict=False))
    for s in scores:
        if str(s).startswith("grace"):
            colors[s] = "#b2182b"
    return colors


def _orientation_note(sign: int) -> str:
    return "(higher is better →)" if sign > 0 else "(← lower is better)"


def _check_columns(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs columns {missing}; available columns: "
                         f"{sorted(map(str, df.columns))}")


def _rotate_xticks(ax: Axes, angle: float = 45) -> None:
    ax.tick_params(axis="x", rotation=angle)
    for lab in ax.get_xticklabels():
        lab.set_horizontalalignment("right")


def _legend_outside(ax: Axes, **kw) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize="small", frameon=False, **kw)


def _grouped_bars(ax: Axes, df: pd.DataFrame, group_col: str, hue_col: str, value_col: str,
                  label_col: str | None = None, scale: float = 1.0) -> None:
    """Bars of ``value_col`` at each ``group_col`` level, one colour per ``hue_col`` level."""
    groups = list(dict.fromkeys(df[group_col]))
    hues = list(dict.fromkeys(df[hue_col]))
    colors = _score_palette(hues)
    width = 0.8 / max(len(hues), 1)
    x = np.arange(len(groups))  # (G,)
    for j, h in enumerate(hues):
        sub = df[df[hue_col] == h].set_index(group_col)
        vals = np.array([sub[value_col].get(g, np.nan) for g in groups], float) * scale  # (G,)
        label = str(sub[label_col].iloc[0]) if label_col and len(sub) else str(h)
        ax.bar(x - 0.4 + width * (j + 0.5), np.nan_to_num(vals), width, label=label,
               color=colors[h], edgecolor="white")
    ax.set_xticks(x, [str(g) for g in groups])
    ax.axhline(0, color="0.3", lw=0.8)


# ----------------------------------------------------------------------------------------------
# §3.1: correlations (Figs 1-4, 8-12)


@_styled
def plot_correlation_bars(spearman_df: pd.DataFrame, title: str = "Spearman correlation with "
                          "student performance", value: str = "rho_oriented",
                          ax: Axes | None = None) -> Figure:
    """Bar per score of its (oriented) Spearman correlation with CI error bars (Figs 1 left, 4).

    Args:
        spearman_df: output of :func:`grace.analysis.spearman_table` (bars keep its order).
        value: ``"rho_oriented"`` (positive = ranks teachers the right way) or ``"rho"``.
        ax: draw into this axes instead of a new figure.
    """
    _check_columns(spearman_df, ["score", value], "plot_correlation_bars")
    fig, ax = _fig_and_ax(ax, size=(max(4.0, 0.7 * len(spearman_df) + 1.5), 3.8))
    d = spearman_df.reset_index(drop=True)
    vals = d[value].to_numpy(float)  # (S,)
    labels = d["label"] if "label" in d else d["score"]
    colors = _score_palette(list(d["score"]))
    yerr = None
    if value == "rho_oriented" and {"ci_low", "ci_high"} <= set(d.columns):
        lo, hi = d["ci_low"].to_numpy(float), d["ci_high"].to_numpy(float)
        yerr = np.nan_to_num(np.clip(np.stack([vals - lo, hi - vals]), 0, None))  # (2, S)
    x = np.arange(len(d))
    ax.bar(x, np.nan_to_num(vals), color=[colors[s] for s in d["score"]], yerr=yerr, capsize=3,
           error_kw=dict(ecolor="0.2", lw=1))
    for xi, v in zip(x, vals, strict=True):
        if np.isfinite(v):
            ax.annotate(f"{v:.2f}", (xi, v), xytext=(0, 3 if v >= 0 else -10),
                        textcoords="offset points", ha="center", fontsize="x-small")
    ax.set_xticks(x, [str(s) for s in labels], rotation=45, ha="right")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_ylim(min(-0.1, np.nanmin(vals, initial=0) - 0.15), 1.15)
    ax.set_ylabel("Spearman ρ (oriented)" if value == "rho_oriented" else "Spearman ρ")
    ax.set_title(title)
    return fig


@_styled
def plot_score_vs_target(df: pd.DataFrame, score: str, target: str = A.DEFAULT_TARGET,
                         hue: str = "family", style: str | None = "temperature",
                         orientation: Mapping[str, int] | None = None, title: str | None = None,
                         mark_pick: bool = True, ax: Axes | None = None) -> Figure:
    """Scatter of one score against student performance, Spearman ρ in the title (Figs 1–3, 11, 12).

    Colour is the model family (``hue``), marker the temperature (``style``); a black star marks
    the configuration the score ranks best (Fig 24). The x label notes the score's orientation.
    """
    orient = A.orientation_dict(orientation)
    A.check_table(df, target)
    A.resolve_scores(df, [score], orient, target)
    sign = A.orientation_sign(orient, score)
    d = A.finite_pairs(df, score, target)
    fig, ax = _fig_and_ax(ax, size=(6.0, 4.2))
    hue = hue if hue in d.columns else None
    style = style if style in d.columns else None
    sns.scatterplot(data=d, x=score, y=target, hue=hue, style=style, s=60, ax=ax,
                    palette=family_palette(df[hue]) if hue else None,
                    markers=marker_map(df[style]) if style else True, edgecolor="0.2", lw=0.3)
    if mark_pick and len(d):
        pick = A.pick_best(d, score, sign)
        ax.scatter([pick[score]], [pick[target]], marker="*", s=260, facecolor="none",
                   edgecolor="black", lw=1.4, label="score's pick", zorder=5)
    rho, _ = A.spearman(d[score].to_numpy(float), d[target].to_numpy(float))
    label = A.score_label(score)
    ax.set_xlabel(f"{label} {_orientation_note(sign)}")
    ax.set_ylabel(target)
    ax.set_title(title or F.rho_title(label, sign * rho, len(d)))  # oriented, as the captions print it
    _legend_outside(ax)
    return fig


@_styled
def plot_teacher_case_study(df: pd.DataFrame, temperature: float, scores: Sequence[str],
                            target: str = A.DEFAULT_TARGET,
                            orientation: Mapping[str, int] | None = None) -> Figure:
    """Teachers at one temperature: each score vs the target, the score's pick as a black triangle.

    Reproduces Fig 5: one panel per score, colour = family, marker = teacher size; the legend of each
    panel gives the selection gap (best student − student of the picked teacher).
    """
    _check_columns(df, ["temperature"], "plot_teacher_case_study")
    d = df[np.isclose(df["temperature"].astype(float), float(temperature))]
    if d.empty:
        raise ValueError(f"no configuration at temperature {temperature}; available: "
                         f"{sorted(df['temperature'].unique())}")
    orient = A.orientation_dict(orientation)
    A.check_table(d, target)
    scores = A.resolve_scores(d, scores, orient, target)
    pal = family_palette(df["family"]) if "family" in df else None
    size_col = "size_label" if "size_label" in df else None
    fig, axes = _figure(ncols=len(scores), size=(3.6, 3.4), sharey=True)
    for ax, s in zip(axes, scores, strict=True):
        sign, p = A.orientation_sign(orient, s), A.finite_pairs(d, s, target)
        sns.scatterplot(data=p, x=s, y=target, hue="family" if pal else None, palette=pal,
                        style=size_col, markers=_size_markers(df) if size_col else True,
                        s=60, ax=ax, legend=False, edgecolor="0.2")
        rho, _ = A.spearman(p[s].to_numpy(float), p[target].to_numpy(float))
        if len(p):
            pick = A.pick_best(p, s, sign)
            gap = A.gap_record(p, s, target, sign)["gap"]
            ax.scatter([pick[s]], [pick[target]], marker="^", s=140, color="black", zorder=5,
                       label=f"pick: {pick.get('teacher', pick.name)}\ngap = {gap:.3f}")
            ax.legend(loc="best", fontsize="x-small")
        ax.set_title(F.rho_title(A.score_label(s), sign * rho))  # oriented, as the captions print it
        ax.set_xlabel(f"{A.score_label(s)} {_orientation_note(sign)}", fontsize="small")
    handles = [Line2D([], [], ls="", marker="o", color=c, label=str(f)) for f, c in (pal or {}).items()]
    if size_col:
        handles += [Line2D([], [], ls="", marker=m, color="0.4", label=str(v))
                    for v, m in _size_markers(df).items()]
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize="x-small", frameon=False)
    axes[0].set_ylabel(target)
    fig.suptitle(f"Teachers at temperature {temperature:g}")
    return fig


# ----------------------------------------------------------------------------------------------
# §3.2: temperature, size budgets, families (Figs 6, 7, 13, 14)


def _minmax(v: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant vector maps to 0.5."""
    span = np.nanmax(v) - np.nanmin(v) if np.isfinite(v).any() else 0.0
    return np.full_like(v, 0.5) if span == 0 else (v - np.nanmin(v)) / span


@_styled
def plot_temperature_curves(df: pd.DataFrame, teachers: Sequence[str], scores: Sequence[str],
                            target: str = A.DEFAULT_TARGET,
                            orientation: Mapping[str, int] | None = None) -> Figure:
    """Per teacher, the target and every score against temperature, normalised to [0, 1] (Fig 6).

    Lower-is-better scores (loss, G-Var, GRACE) are sign-inverted first, so every curve is
    higher-is-better; the dashed vertical line is the true best temperature and a triangle marks
    each score's predicted best.
    """
    _check_columns(df, ["teacher", "temperature"], "plot_temperature_curves")
    orient = A.orientation_dict(orientation)
    A.check_table(df, target)
    scores = A.resolve_scores(df, scores, orient, target)
    unknown = [t for t in teachers if t not in set(df["teacher"])]
    if unknown or not teachers:
        raise ValueError(f"unknown teachers {unknown or teachers}; available: "
                         f"{sorted(df['teacher'].unique())}")
    colors = _score_palette(scores)
    fig, axes = _figure(ncols=len(teachers), size=(4.2, 3.4), sharey=True)
    for ax, teacher in zip(axes, teachers, strict=True):
        d = df[df["teacher"] == teacher].sort_values("temperature", kind="mergesort")
        t = d["temperature"].to_numpy(float)  # (n_temps,)
        y = d[target].to_numpy(float)
        ax.plot(t, _minmax(y), color="black", lw=2.4, marker="o", label=target)
        if np.isfinite(y).any():
            ax.axvline(t[int(np.nanargmax(y))], color="black", ls="--", lw=1)
        for j, s in enumerate(scores):
            sign = A.orientation_sign(orient, s)
            v = _minmax(sign * d[s].to_numpy(float))
            name = ("−" if sign < 0 else "") + A.score_label(s)
            ax.plot(t, v, color=colors[s], lw=1.5, marker=".", label=name)
            if np.isfinite(v).any():
                i = int(np.nanargmax(v))
                ax.scatter([t[i]], [1.04 + 0.035 * j], marker="v", color=colors[s], s=40, clip_on=False)
        ax.set_title(str(teacher), fontsize="medium")
        ax.set_xlabel("generation temperature")
    axes[0].set_ylabel("normalised value (higher is better)")
    _legend_outside(axes[-1])
    return fig


@_styled
def plot_temperature_violins(temperature_df: pd.DataFrame, value: str = "rho_oriented",
                             ax: Axes | None = None) -> Figure:
    """Distribution over teachers of each score's Spearman across temperatures (Fig 7 left).

    Args:
        temperature_df: output of :func:`grace.analysis.temperature_table`.
        value: ``"rho_oriented"`` or ``"rho"`` (the paper's panel shows raw ρ).
    """
    _check_columns(temperature_df, ["score", value], "plot_temperature_violins")
    d = temperature_df.dropna(subset=[value])
    if d.empty:
        raise ValueError(f"no finite {value!r} values: each teacher needs >= 3 temperatures")
    fig, ax = _fig_and_ax(ax, size=(max(4.0, 0.8 * d["score"].nunique() + 1.5), 3.8))
    x = "label" if "label" in d else "score"
    order = list(dict.fromkeys(d[x]))
    colors = _score_palette(list(dict.fromkeys(d["score"])))
    lab2score = dict(zip(d[x], d["score"], strict=True))
    pal = {lab: colors[lab2score[lab]] for lab in order}
    sns.violinplot(data=d, x=x, y=value, hue=x, order=order, palette=pal, cut=0, inner=None,
                   density_norm="width", ax=ax, legend=False)
    sns.stripplot(data=d, x=x, y=value, order=order, color="0.15", size=3, ax=ax)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("")
    ax.set_ylabel("Spearman ρ across temperatures" + (" (oriented)" if "orient" in value else ""))
    _rotate_xticks(ax)
    ax.set_title("Per-teacher temperature correlation")
    return fig


@_styled
def plot_size_budgets(size_df: pd.DataFrame, value: str = "rho_oriented",
                      ax: Axes | None = None) -> Figure:
    """Grouped bars per size budget, one bar per score (Fig 7 right).

    Args:
        size_df: output of :func:`grace.analysis.size_budget_table`.
        value: ``"rho_oriented"`` (Fig 7 right) or ``"gap"`` (Fig 14).
    """
    _check_columns(size_df, ["group", "score", value], "plot_size_budgets")
    fig, ax = _fig_and_ax(ax, size=(6.0, 3.8))
    _grouped_bars(ax, size_df, "group", "score", value, label_col="label" if "label" in size_df
                  else None)
    if "n" in size_df:
        n = size_df.groupby("group", sort=False)["n"].max()
        ax.set_xticks(ax.get_xticks(), [f"{g}\n(n={n[g]})" for g in n.index])
    ax.set_xlabel("teacher size budget")
    ax.set_ylabel("Spearman ρ (oriented)" if value == "rho_oriented" else value)
    ax.set_title("Teacher selection under a size budget")
    _legend_outside(ax)
    return fig


@_styled
def plot_gaps(gap_df: pd.DataFrame, title: str = "Gap to the best teacher", percent: bool = True,
              ax: Axes | None = None) -> Figure:
    """Grouped bars of selection gaps per group (family or size budget) and score (Figs 13, 14).

    Args:
        gap_df: output of :func:`grace.analysis.family_gap_table`, :func:`size_budget_table` or
            :func:`selection_gaps` (columns ``group, score, gap``).
        percent: show gaps in percentage points (targets are accuracies in [0, 1]).
    """
    _check_columns(gap_df, ["group", "score", "gap"], "plot_gaps")
    fig, ax = _fig_and_ax(ax, size=(max(5.0, 0.9 * gap_df["group"].nunique() + 2), 3.8))
    _grouped_bars(ax, gap_df, "group", "score", "gap",
                  label_col="label" if "label" in gap_df else None, scale=100.0 if percent else 1.0)
    ax.set_ylabel("gap (percentage points)" if percent else "gap")
    ax.set_xlabel("")
    ax.set_title(title)
    _legend_outside(ax)
    return fig


# ----------------------------------------------------------------------------------------------
# §3.3 and App. D: ablations, robustness, gradient norm vs length (Figs 19–23)


@_styled
def plot_robustness(robust_df: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Violins of each score's oriented Spearman over random teacher subsets (App. D.5, Fig 23).

    Scores are ordered by median correlation, best first.
    """
    _check_columns(robust_df, ["score", "rho_oriented"], "plot_robustness")
    d = robust_df.dropna(subset=["rho_oriented"])
    if d.empty:
        raise ValueError("robust_df has no finite rho_oriented values to plot")
    x = "label" if "label" in d else "score"
    med = d.groupby(x, sort=False)["rho_oriented"].median().sort_values(ascending=False)
    order = list(med.index)
    colors = _score_palette(list(dict.fromkeys(d["score"])))
    lab2score = dict(zip(d[x], d["score"], strict=True))
    fig, ax = _fig_and_ax(ax, size=(max(4.0, 0.7 * len(order) + 1.5), 3.8))
    sns.violinplot(data=d, x=x, y="rho_oriented", hue=x, order=order, cut=0, inner="quart",
                   palette={lab: colors[lab2score[lab]] for lab in order}, density_norm="width",
                   ax=ax, legend=False)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("")
    ax.set_ylabel("Spearman ρ (oriented)")
    _rotate_xticks(ax)
    n = d["subset"].nunique() if "subset" in d else len(d)
    ax.set_title(f"Robustness over {n} random teacher subsets")
    return fig


@_styled
def plot_grad_norm_vs_length(lengths: Sequence[float], grad_norms: Sequence[float],
                             power: float = 1.0, ax: Axes | None = None) -> Figure:
    """Gradient norm against generation length with the fitted ``a / log(T)**power + b`` (Fig 21).

    ``power=2`` gives the Fig 22 variant.
    """
    T, g = np.asarray(lengths, float), np.asarray(grad_norms, float)
    a, b, r2 = A.fit_inverse_log(T, g, power=power)
    fig, ax = _fig_and_ax(ax, size=(5.0, 3.8))
    ax.scatter(T, g, s=10, alpha=0.5, color="#4c72b0", label="generations")
    grid = np.linspace(T.min(), T.max(), 200)
    p = "" if power == 1 else f"^{power:g}"
    ax.plot(grid, a / np.log(grid) ** power + b, color="#b2182b", lw=2,
            label=f"{a:.3g}/log(T){p} + {b:.3g}  (R² = {r2:.2f})")
    ax.set_xlabel("generation length T (tokens)")
    ax.set_ylabel("gradient norm ‖g‖")
    ax.set_title("Gradient norm vs length")
    ax.legend(fontsize="small")
    return fig


@_styled
def plot_ablation(ablation_df: pd.DataFrame, x: str, y: str = "rho_oriented",
                  hue: str | None = None, title: str | None = None,
                  ax: Axes | None = None) -> Figure:
    """Line plot of a correlation against an ablated hyper-parameter (Figs 19, 20).

    Args:
        ablation_df: one row per ablation setting, e.g. columns ``d, n, rho_oriented``.
        x: the varied hyper-parameter (``"d"``, ``"n"``, ``"m"``, ``"C"``...).
        y: the plotted quantity.
        hue: optional column drawing one line per level (e.g. the fixed ``n`` or the dataset).
    """
    _check_columns(ablation_df, [x, y] + ([hue] if hue else []), "plot_ablation")
    fig, ax = _fig_and_ax(ax, size=(5.0, 3.8))
    levels = list(dict.fromkeys(ablation_df[hue])) if hue else [None]
    pal = sns.color_palette("tab10", max(len(levels), 1))
    for color, lev in zip(pal, levels, strict=True):
        d = ablation_df if lev is None else ablation_df[ablation_df[hue] == lev]
        d = d.sort_values(x, kind="mergesort")
        ax.plot(d[x], d[y], marker="o", color=color,
                label=None if lev is None else f"{hue} = {lev}")
    ax.set_xlabel(x)
    ax.set_ylabel("Spearman ρ (oriented)" if y == "rho_oriented" else y)
    if np.issubdtype(np.asarray(ablation_df[x]).dtype, np.number):
        vals = np.asarray(ablation_df[x], float)
        if vals.min() > 0 and vals.max() / vals.min() >= 8:  # d, n are powers of two
            ax.set_xscale("log", base=2)
    ax.set_title(title or f"Ablation over {x}")
    if hue:
        ax.legend(fontsize="small")
    return fig


# ----------------------------------------------------------------------------------------------
# chapter figures (the book's own, beside the paper's)


def plot_rank_vs_student(ranked: pd.DataFrame, temperature: float) -> Figure:
    """A few teachers ranked by ``grace rank`` beside their distilled students (chapter 1.2; paper §3).

    ``ranked`` has the columns ``GRACE (grace rank)`` and ``student avg@k``, GRACE's pick first.
    """
    _check_columns(ranked, ["GRACE (grace rank)", "student avg@k"], "plot_rank_vs_student")
    fig = Figure(figsize=(9, 0.45 * len(ranked) + 2.0))
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(ranked))[::-1]
    axes[0].barh(y, ranked["GRACE (grace rank)"], color="#4C72B0")
    axes[0].set(xlabel="GRACE (lower is better)", yticks=y, yticklabels=ranked.index)
    axes[1].barh(y, ranked["student avg@k"], color="#55A868")
    axes[1].set(xlabel="distilled student's avg@k (higher is better)")
    fig.suptitle(f"Teachers at T = {temperature:g}, ranked by GRACE (top = GRACE's pick)")
    fig.tight_layout()
    return fig


def plot_teacher_accuracy(acc: pd.DataFrame, teachers: Sequence[str]) -> Figure:
    """Accuracy of each teacher's distillation responses against the sampling temperature (chapter 2.4; §3)."""
    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    pal = family_palette(teachers)
    for t in teachers:
        ax.plot(acc.index, acc[t], marker="o", color=pal[t], label=t)
    ax.set(xlabel="sampling temperature τ", ylabel="accuracy of the generated responses",
           title="Teacher accuracy vs temperature")
    ax.legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig


def plot_length_vs_temperature(lens: pd.DataFrame, teachers: Sequence[str]) -> Figure:
    """Mean response length and share with a ``#### N`` answer against temperature (chapter 2.5; §2.1)."""
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    pal = family_palette(teachers)
    for t in teachers:
        d = lens[lens.teacher == t].sort_values("temperature")
        axes[0].plot(d.temperature, d["mean length"], marker="o", color=pal[t], label=t)
        axes[1].plot(d.temperature, d["has final answer"], marker="o", color=pal[t], label=t)
    axes[0].set(xlabel="sampling temperature τ", ylabel="mean response length (student tokens)",
                title="Response length vs temperature")
    axes[1].set(xlabel="sampling temperature τ", ylabel="share with a '#### N' answer", title="Answer format",
                ylim=(-0.02, 1.02))
    axes[1].legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig


def plot_grad_norm_fits(lengths: Sequence[float], grad_norms: Sequence[float]) -> Figure:
    """The gradient norm against the length with both App. D.4 fits side by side (Figs 21–22; chapter 3.2)."""
    fig = Figure(figsize=(11, 4.0))
    axes = fig.subplots(1, 2, sharey=True)
    plot_grad_norm_vs_length(lengths, grad_norms, power=1.0, ax=axes[0])
    plot_grad_norm_vs_length(lengths, grad_norms, power=2.0, ax=axes[1])
    axes[0].set_title("Fig. 21 form: a / log T + b")
    axes[1].set_title("Fig. 22 form: a / (log T)² + b")
    fig.tight_layout()
    return fig


def plot_jl_check(jl_tab: pd.DataFrame, agg: pd.DataFrame, dims: Sequence[int], nnz: int) -> Figure:
    """Relative errors of squared norms and inner products after projection against d, one point per
    seed, with the exact prediction and √(2/d) (chapter 3.3's Johnson–Lindenstrauss check, §2.1).

    ``jl_tab`` is ``grace.jl.jl_table``'s output and ``agg`` its mean per ``(kind, d)``.
    """
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2, sharey=True)
    dd = np.array(dims, dtype=float)
    for ax, col, pred, title in ((axes[0], "rms_norm", "pred_norm", "squared norms"),
                                 (axes[1], "rms_inner", "pred_inner", "inner products / (‖x‖‖y‖)")):
        for kind, mk, colr in (("rademacher", "o", "#4C72B0"), ("sparse_jl", "s", "#DD8452")):
            sub = jl_tab[jl_tab.kind == kind]
            label = "Rademacher Π (paper)" if kind == "rademacher" else f"sparse JL (nnz={nnz})"
            ax.scatter(sub.d * (1.04 if kind == "sparse_jl" else 0.96), sub[col], marker=mk, color=colr, alpha=0.5,
                       label=f"{label}, one seed")
        ax.plot(dd, agg.loc["rademacher", pred].reindex(dd.astype(int)).values, "k-", label="exact prediction")
        ax.plot(dd, np.sqrt(2 / dd), "k:", label="√(2/d)")
        ax.set(xscale="log", yscale="log", xlabel="projection dimension d", title=f"relative error of {title}")
        ax.set_xticks(dims, [str(x) for x in dims], minor=False)
        ax.set_xticks([], minor=True)
    axes[0].set_ylabel("RMS relative error")
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_cmi_bounds(grid: pd.DataFrame, ns: Sequence[int]) -> Figure:
    """Monte Carlo CMI against the Jensen bound and Lemma B.1, per preconditioner and n, over the noise
    level σ (chapter 4.3; paper App. A–B). ``grid`` is ``grace.theory.lemma_grid``'s table."""
    from matplotlib import colormaps

    from grace import theory

    fig = Figure(figsize=(10, 4.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, pc_ in zip(axes, theory.PRECONDITIONERS, strict=True):
        for n_, c_ in zip(ns, colormaps["viridis"](np.linspace(0, 0.8, len(ns))), strict=True):
            g = grid[(grid.preconditioner == pc_) & (grid.n == n_)]
            ax.errorbar(g.sigma_rel, g.cmi, yerr=2 * g.cmi_stderr, marker="o", color=c_, label=f"CMI (MC), n={n_}")
            ax.plot(g.sigma_rel, g.jensen, "--", color=c_, label=f"Jensen bound, n={n_}")
            ax.plot(g.sigma_rel, g.lemma_total, ":", color=c_, label=f"Lemma B.1, n={n_}")
            ax.axhline(np.log(n_), color=c_, lw=0.6, alpha=0.5)
        title = r"$M = I$ (G-Var)" if pc_ == "identity" else r"$M = \tilde\Sigma^{-1/2}$ (GRACE)"
        ax.set(xscale="log", yscale="log", xlabel=r"$\sigma$ / spread of $\delta$", title=title)
    axes[0].set_ylabel("nats (thin lines: log n)")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(ns) * 3 // 2 or 1, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def plot_sensitivity_ratio(sweep: pd.DataFrame, anisotropies: Sequence[float], ns: Sequence[int]) -> Figure:
    """Lemma B.1's gradient term over its preconditioner-sensitivity term against the mean strength, with
    the appendix's claimed 5–10× band (chapter 4.4). ``sweep`` is ``grace.theory.sensitivity_sweep``'s."""
    from matplotlib import colormaps

    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    ax.axhspan(5, 10, color="0.9", label="claimed 5–10×")
    for a_, c_ in zip(anisotropies, colormaps["plasma"](np.linspace(0, 0.8, len(anisotropies))), strict=True):
        for n_, mk in zip(ns, "os^v", strict=False):  # at most four n
            g = sweep[(sweep.anisotropy == a_) & (sweep.n == n_)].groupby("mean_scale").ratio.mean()
            ax.plot(g.index, g.values, marker=mk, color=c_, label=f"anisotropy {a_}, n={n_}")
    ax.set(yscale="log", xlabel="mean_scale (shared gradient direction)", ylabel="gradient term / sensitivity term")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_fig1(spearman_df: pd.DataFrame, results: pd.DataFrame) -> Figure:
    """Paper Fig. 1: the oriented ρ of the student's loss, the teacher's accuracy, G-Vendi and GRACE with
    student avg@k (left) and GRACE against the student (right); chapter 6.1."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.3])
    present = set(spearman_df["score"])
    fig1_scores = [s for s in ("student_loss", "teacher_avg_at_k", "g_vendi", "grace") if s in present]
    plot_correlation_bars(spearman_df[spearman_df["score"].isin(fig1_scores)], title="Spearman ρ with student avg@k",
                          ax=ax1)
    plot_score_vs_target(results, "grace", ax=ax2)
    return fig


def plot_size_budget_panels(size_df: pd.DataFrame) -> Figure:
    """Paper Figs. 7 right and 14: ρ per size budget (left) and the gap to the best student within each
    budget (right); ``size_df`` is ``grace.analysis.size_budget_table``'s (chapter 6.5)."""
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    axa, axb = fig.subplots(1, 2)
    plot_size_budgets(size_df, ax=axa)
    plot_gaps(size_df, title="Gap to the best student within the budget (Fig 14)", ax=axb)
    return fig


def plot_metric_panels(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """Paper Figs. 11–12: every score's oriented ρ with the student's greedy accuracy and best-of-k, one
    panel per ``{target: grace.analysis.spearman_table}`` (chapter 6.7)."""
    fig = Figure(figsize=(12, 4), layout="constrained")
    axes = fig.subplots(1, len(tables), sharey=True)
    for ax, (target, tab) in zip(np.atleast_1d(axes), tables.items(), strict=True):
        plot_correlation_bars(tab, title=f"vs student {A.METRIC_LABELS[target]}", ax=ax)
    return fig


def plot_grace_factors(df: pd.DataFrame, orientation: Mapping[str, int]) -> Figure:
    """GRACE's two factors against the student: G-Var, the gradient scale (left), and the spectral factor
    GRACE / G-Var (right, log x); no paper figure (chapter 6.10, ``grace.ablations.grace_drivers``)."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    axd = fig.subplots(1, 2)
    plot_score_vs_target(df, "g_var", ax=axd[0], orientation=orientation)
    plot_score_vs_target(df, "spectral_factor", ax=axd[1], orientation=orientation,
                         title="Spectral factor GRACE / G-Var")
    axd[1].set_xscale("log")
    return fig


def _sd_band(ax: Axes, table: pd.DataFrame, x: str) -> None:
    """Shade mean ± sd of an ablation table's ρ over its repeats."""
    ok = table.dropna(subset=["rho_sd"])
    ax.fill_between(ok[x], ok.rho_oriented - ok.rho_sd, ok.rho_oriented + ok.rho_sd, alpha=0.2)


def plot_fig19(tab_d: pd.DataFrame, tab_n: pd.DataFrame) -> Figure:
    """Paper Fig. 19: GRACE's ρ with the student as the projection dimension d (a) and the number of prompts
    n (b) vary, mean ± sd over repeats (App. D.3; chapter 7.1)."""
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    for ax, tab, p in ((axes[0], tab_d, "d"), (axes[1], tab_n, "n")):
        plot_ablation(tab, p, title=f"Fig. 19 ({'a' if p == 'd' else 'b'}): vary {p}", ax=ax)
        _sd_band(ax, tab, p)
        ax.axhline(0, color="0.6", lw=0.8)
    fig.tight_layout()
    return fig


def plot_ablation_m(tab_m: pd.DataFrame) -> Figure:
    """GRACE's ρ against the generations per prompt m (App. D.3's 0.70 / 0.86 / 0.87; chapter 7.2)."""
    fig = Figure(figsize=(5, 3.6))
    ax = fig.subplots()
    plot_ablation(tab_m, "m", title="Generations per prompt m", ax=ax)
    ax.axhline(0, color="0.6", lw=0.8)
    fig.tight_layout()
    return fig


def plot_fig20(tab_c: pd.DataFrame, stable_from: int) -> Figure:
    """Paper Fig. 20: GRACE's ρ against the number of folds C, mean ± sd, with the C from which the paper
    calls it stable (§3.3; chapter 7.3)."""
    fig = Figure(figsize=(5, 3.6))
    ax = fig.subplots()
    plot_ablation(tab_c, "n_folds", title="Fig. 20: cross-validation folds C", ax=ax)
    _sd_band(ax, tab_c, "n_folds")
    ax.axvline(stable_from, color="0.6", ls=":", lw=1)
    ax.set_xlabel("C (folds)")
    fig.tight_layout()
    return fig


def plot_ablation_nu(tab_nu: pd.DataFrame) -> Figure:
    """GRACE's ρ against the smoothing ν of M = Σ̃ + (ν/d) I, which the paper does not state (chapter 7.4)."""
    fig = Figure(figsize=(5, 3.6))
    ax = fig.subplots()
    plot_ablation(tab_nu, "nu", title="Smoothing ν", ax=ax)
    ax.set_xscale("log")
    fig.tight_layout()
    return fig


def plot_fig15_16(filtered: pd.DataFrame, target: str, rho_table: pd.DataFrame) -> Figure:
    """Paper Figs. 15–16: students without against with correctness filtering (left) and the scores' ρ with
    each (right); ``rho_table`` is ``grace.analysis.filtering_rho_table``'s (App. D.1; chapter 7.5)."""
    filt_col = f"{target}_filtered"
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    ax = axes[0]
    lo = float(min(filtered[target].min(), filtered[filt_col].min()))
    hi = float(max(filtered[target].max(), filtered[filt_col].max()))
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=0.8)
    for fam, g in filtered.groupby("family"):
        ax.scatter(g[target], g[filt_col], label=str(fam), s=25)
    ax.set(xlabel=f"{target} (no filtering)", ylabel=f"{target} (correct only)", title="Fig. 15: students")
    ax.legend(fontsize=7)
    rho_table[["without filtering", "with filtering"]].plot.bar(ax=axes[1], rot=0)
    axes[1].set(ylabel="oriented Spearman ρ", title="Fig. 16: scores vs students")
    axes[1].axhline(0, color="0.6", lw=0.8)
    fig.tight_layout()
    return fig


def plot_variants(summary: pd.DataFrame, target: str) -> Figure:
    """Each released-code variant's agreement with eq. 4's ranking (left, bootstrap CI) and its oriented ρ
    with the student (right, red where the top teacher changes); chapter 8.1."""
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2, sharey=True)
    lab = summary.variant
    axes[0].barh(lab, summary.spearman_vs_eq4, color="#4575b4")
    axes[0].errorbar(summary.spearman_vs_eq4, np.arange(len(summary)), fmt="none", color="k", lw=1,
                     xerr=np.vstack([(summary.spearman_vs_eq4 - summary.ci_low).clip(lower=0).fillna(0),
                                     (summary.ci_high - summary.spearman_vs_eq4).clip(lower=0).fillna(0)]))
    axes[0].set(xlabel="Spearman ρ with eq. 4's ranking", xlim=(-1.05, 1.05), title="Agreement with the paper")
    axes[1].barh(lab, summary.rho_oriented, color=["#b2182b" if t else "#999999" for t in summary.top_changed])
    axes[1].set(xlabel=f"oriented Spearman ρ with {target}", xlim=(-1.05, 1.05),
                title="Correlation with the student (red: top teacher changes)")
    for ax in axes:
        ax.axvline(0, color="0.5", lw=0.8)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def plot_projection_ratios(at512: pd.DataFrame, block: int) -> Figure:
    """Projection time over gradient time at d = 512 per student size: (b), its GEMM floor and the sparse
    JL (c), against the package's targets (Appendix A.3)."""
    fig = Figure(figsize=(7, 3.4))
    ax = fig.subplots()
    x = np.arange(len(at512))
    for k, (col, lab) in enumerate([("rademacher_ratio", "(b) Rademacher"), ("gemm_floor_ratio", "fp32 GEMM floor"),
                                    ("sparse_jl_ratio", "(c) SJLT block 1"),
                                    ("sparse_jl_block_ratio", f"(c) SJLT block {block}")]):
        ax.bar(x + (k - 1.5) * 0.2, at512[col], width=0.2, label=lab)
    ax.axhline(0.25, color="k", ls="--", lw=1, label="target (b): 0.25")
    ax.axhline(0.05, color="k", ls=":", lw=1, label="target (c): 0.05")
    ax.set(xticks=x, xticklabels=[f"{s} (D = {p:,})" for s, p in zip(at512["size"], at512.params, strict=True)],
           yscale="log", ylabel="projection time / gradient time", title="d = 512")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_study_cost(cost: Mapping[str, Mapping[str, float]], configs: int) -> Figure:
    """GPU-hours of the whole study by stage against selecting a teacher with GRACE (Appendix B.5,
    ESTIMATES from ``grace.costs.study_cost``)."""
    fig = Figure(figsize=(6.5, 3.2))
    ax = fig.subplots()
    ax.barh(["full study"], [0], color="w")
    left = 0.0
    for s_ in ["generate_full", "distill", "evaluate", "features_dense"]:
        ax.barh(["full study"], [cost[s_]["gpu_h"]], left=left, label=s_)
        left += cost[s_]["gpu_h"]
    ax.barh(["select by GRACE"], [cost["select_by_grace"]["gpu_h"]], color="k", label="select_by_grace")
    ax.set(xlabel="H100 GPU-hours (ESTIMATE)", title=f"{configs} configurations, Llama-3.2-1B student")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# output


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
    fig, axes = _figure(ncols=2, size=(4.4, 3.8))
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
        rho = A.spearman(x, y)[0] if np.isfinite(x).all() and np.isfinite(y).all() else math.nan
        ax.set(xlim=lim, ylim=lim, xlabel="student avg@k", ylabel=f"student {A.METRIC_LABELS[col]}",
               title=F.rho_title(f"{A.METRIC_LABELS[col]} vs avg@k", rho, oriented=False))  # two metrics, no score
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
    fig, (ax,) = _figure(size=(5.6, 4.0))
    pal = family_palette(results["family"]) if "family" in results else {None: "C0"}
    marks = marker_map(results["temperature"])
    for r in results.itertuples():
        ax.scatter(getattr(r, teacher_col), getattr(r, target), color=pal[getattr(r, "family", None)],
                   marker=marks[r.temperature], s=50, edgecolor="0.2", lw=0.3)
    d = results[[teacher_col, target]].astype(float).dropna()
    rho = A.spearman(d[teacher_col].to_numpy(), d[target].to_numpy())[0]
    ax.set(xlabel=f"teacher's own accuracy ({teacher_col})", ylabel=f"student {A.METRIC_LABELS.get(target, target)}",
           title=F.rho_title("Teacher vs student", rho, len(d)))  # the teacher's accuracy: higher is better, ρ as is
    handles = [Line2D([], [], ls="", marker="o", color=c, label=str(f)) for f, c in pal.items()]
    handles += [Line2D([], [], ls="", marker=m, color="0.4", label=f"T = {t:g}") for t, m in marks.items()]
    fig.legend(handles=handles, loc="outside right upper", fontsize="x-small", frameon=False)
    return fig


@_styled
def plot_filtering(filter_df: pd.DataFrame) -> Figure:
    """Student avg@k without (x) vs with (y) correctness filtering, one point per config (Fig 15)."""
    if filter_df.empty:
        raise ValueError("filter_df is empty: the study ran no filtering ablation (profile filter_ablation)")
    fig, (ax,) = _figure(size=(4.6, 4.0))
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
    if len(scores) == 0:
        raise ValueError("scores is empty; pass e.g. ['grace', 'g_var', 'g_vendi']")
    fig, axes = _figure(ncols=len(scores), size=(4.4, 3.8))
    for ax, s in zip(axes, scores, strict=True):
        plot_score_vs_target(results, s, target=target, ax=ax)
    for ax in axes[:-1]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    for ax in axes[1:]:
        ax.set_ylabel("")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> None:
    """Write ``fig`` atomically (``grace.io.atomic_write_bytes``); PNG unless the suffix says
    ``.pdf`` or ``.svg``."""
    from grace.io import atomic_write_bytes

    fmt = os.path.splitext(str(path))[1].lower().lstrip(".") or "png"
    if fmt not in ("png", "pdf", "svg"):
        raise ValueError(f"cannot save a figure as {fmt!r} ({path}); use a .png, .pdf or .svg path")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------------------------
# When does GRACE work? The regime map (chapter 6, §6.11)


@_styled
def plot_regime_map(table: pd.DataFrame, scores: Sequence[str] | None = None) -> Figure:
    """Regimes × scores: each cell's colour is the seeds' mean oriented Spearman ρ with the students,
    its number that mean, and one dot per world seed (coloured by that seed's ρ) along the cell's foot.

    Args:
        table: :func:`grace.regimes.run_regime_map`'s table (``regime, seed, score, label, rho_oriented``).
        scores: the columns, in order (default: every score in the table).
    """
    _check_columns(table, ["regime", "seed", "score", "label", "rho_oriented"], "plot_regime_map")
    scores = list(scores) if scores is not None else list(dict.fromkeys(table["score"]))
    t = table[table["score"].isin(scores)]
    regimes = list(dict.fromkeys(t["regime"]))
    labels = dict(zip(t["score"], t["label"], strict=False))
    mean = t.groupby(["regime", "score"])["rho_oriented"].mean().unstack("score")  # all-NaN cells kept
    mean = mean.reindex(index=regimes, columns=[s for s in scores if s in set(t["score"])])
    fig, ax = _fig_and_ax(None, size=(1.1 * mean.shape[1] + 2.5, 0.75 * len(regimes) + 1.6))
    cmap, norm = sns.color_palette("vlag_r", as_cmap=True), (-1.0, 1.0)
    ax.imshow(mean.to_numpy(float), cmap=cmap, vmin=norm[0], vmax=norm[1], aspect="auto")
    for i, regime in enumerate(mean.index):
        for j, score in enumerate(mean.columns):
            v = mean.iat[i, j]
            ax.text(j, i - 0.1, "—" if pd.isna(v) else f"{v:+.2f}", ha="center", va="center", fontsize=9)
            seeds = t[(t["regime"] == regime) & (t["score"] == score)]["rho_oriented"].to_numpy(float)
            xs = j + (np.arange(len(seeds)) - (len(seeds) - 1) / 2) * 0.18
            ax.scatter(xs, np.full(len(seeds), i + 0.28), c=seeds, cmap=cmap, vmin=norm[0], vmax=norm[1],
                       s=28, edgecolors="black", linewidths=0.6, zorder=3)
    ax.set_xticks(range(mean.shape[1]), [labels.get(s, s) for s in mean.columns])
    ax.set_yticks(range(len(mean.index)), list(mean.index))
    _rotate_xticks(ax, 30)
    ax.grid(False)
    ax.set_title("Oriented Spearman ρ with the students (+ = the paper's way); dots: world seeds")
    return fig



__all__ = [
    "plot_regime_map",
    "family_palette", "marker_map", "plot_correlation_bars", "plot_score_vs_target",
    "plot_teacher_case_study", "plot_temperature_curves", "plot_temperature_violins",
    "plot_size_budgets", "plot_gaps", "plot_robustness", "plot_grad_norm_vs_length",
    "plot_ablation", "save_figure", "placeholder_figure", "plot_metric_scatter",
    "plot_teacher_vs_student", "plot_filtering", "plot_score_panels",
    "plot_study_cost",
    "plot_projection_ratios",
    "plot_variants",
    "plot_fig19", "plot_ablation_m", "plot_fig20", "plot_ablation_nu", "plot_fig15_16",
    "plot_fig1", "plot_size_budget_panels", "plot_metric_panels", "plot_grace_factors",
    "plot_cmi_bounds", "plot_sensitivity_ratio",
    "plot_grad_norm_fits", "plot_jl_check",
    "plot_teacher_accuracy", "plot_length_vs_temperature",
    "plot_rank_vs_student",
]
