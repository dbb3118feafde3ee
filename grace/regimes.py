"""A map of when GRACE works: the study over regimes × world seeds (paper §3).

A *regime* is a world design (a profile): ``format-shock`` (the student never saw a worked
solution, every teacher renders one canonical solution), ``paper`` (the student has read worked
solutions in mixed surface forms, teachers are competent and their samples vary), and any dose
between them. For each regime and each world seed the study is run (or reused from its stage cache)
and two things are collected:

* its GRACE-free acceptance checks (:mod:`grace.world_checks`), and
* every score's oriented Spearman ρ with the distilled student's avg@k over the main pool, with its
  bootstrap CI (:func:`grace.analysis.spearman_table`).

Outputs under ``out``: ``<regime>/seed<k>/`` (each study), ``regime_map.csv`` (one row per regime ×
seed × score), ``regime_checks.csv`` (one row per regime × seed) and ``provenance.json`` (when and at which
commit the map was computed, and a digest of each study's profile), so that a book built later from the
same map says how old it is and whether a world has changed since (:func:`provenance_sentence`).

Regimes that share part of a world (the ``between`` regime trains strong-teacher's teachers and adds
short-trained ones) share its trained stages: each study may take a world stage (tokenizer, base,
teacher) from the other regimes' studies of the same seed when that stage's cache key is the one it would train
(:func:`grace.study.cached`), so a shared teacher is trained once, in whichever regime comes first,
and the numbers are those of a study run alone.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from grace.io import atomic_write_text, read_json, stable_hash, write_json

#: GRACE's scale-free factor (§6.10): GRACE / G-Var, the effect of whitening; a map column beside the scores
WHITENING = "spectral_factor"
WHITENING_LABEL = "GRACE / G-Var (whitening)"
#: the map's provenance record beside its two tables
PROVENANCE = "provenance.json"


def study_rows(regime: str, seed: int | str, study_dir: Path, n_boot: int = 1000) -> tuple[list[dict], dict]:
    """One study's map rows (every score's oriented ρ over the main pool) and its checks row.

    Beside the scores, GRACE's two factors (chapter 6 §6.10, :func:`grace.ablations.grace_drivers`): G-Var,
    the gradient scale, is a score already; the scale-free whitening factor GRACE / G-Var is one more row
    (:data:`WHITENING`, oriented like GRACE), and the checks row gets the median share of GRACE set by the
    smoothing ν/d (eq. 6) — so the map can say, per regime, which factor carries GRACE's ranking.
    """
    from grace import ablations as AB
    from grace import analysis as A
    from grace.scores import SCORE_ORIENTATION

    pool = A.main_pool(pd.read_csv(study_dir / "results.csv"))
    scores = [s for s in SCORE_ORIENTATION if s in pool.columns and pool[s].notna().sum() >= 3 and pool[s].nunique() > 1]
    drv, _ = AB.study_drivers(study_dir, pool)  # raises if GRACE recomputed from the features is not results.csv's
    pool = pool.merge(drv[[WHITENING, "smoothing_frac"]], left_on="config", right_index=True, how="left")
    tab = A.spearman_table(pool, target="student_avg_at_k", scores=[*scores, WHITENING],
                           orientation={**SCORE_ORIENTATION, WHITENING: -1}, n_boot=n_boot, seed=0)
    tab.loc[tab["score"] == WHITENING, "label"] = WHITENING_LABEL
    gaps = A.selection_gaps(pool, scores, "student_avg_at_k").set_index("score")["gap"] if scores else {}
    rows = [{"regime": regime, "seed": seed, "score": r.score, "label": r.label, "n": int(r.n),
             "rho_oriented": r.rho_oriented, "ci_low": r.ci_low, "ci_high": r.ci_high,
             "gap": float(gaps[r.score]) if r.score in gaps else float("nan")} for r in tab.itertuples()]
    checks = read_json(study_dir / "analysis" / "world_checks.json")
    acc = checks["acceptance"]
    sep = checks["loss_separation"] or {}
    check_row = {
        "regime": regime, "seed": seed, "profile": checks["profile"], "n_main_pool": checks["n_main_pool"],
        "loss_ratio_max": acc["loss_ratio"]["value"], "loss_separation": sep.get("mean"),
        "loss_separation_ci_low": sep.get("ci_low"), "loss_separation_ci_high": sep.get("ci_high"),
        "teacher_accuracy_min": min(acc["teacher_accuracy"]["value"].values()),
        "teacher_accuracy_max": max(acc["teacher_accuracy"]["value"].values()),
        "outside_span_share_max": acc["outside_span_share"]["value"],
        "student_avg_at_k_spread": checks["student_avg_at_k_spread"],
        "teacher_vs_student_spearman": checks["teacher_vs_student_spearman"],
        "smoothing_share_median": float(pool["smoothing_frac"].median()),
        "all_pass": acc["all_pass"],
    }
    return rows, check_row


def run_regime_map(regimes: dict[str, str | os.PathLike], seeds: list[int], out: Path,
                   extra: dict[str, str | os.PathLike] | None = None, progress: bool = False,
                   n_boot: int = 1000) -> pd.DataFrame:
    """Run (or reuse) every regime × seed study and write ``regime_map.csv`` and ``regime_checks.csv``.

    Args:
        regimes: ``{regime name: profile name or YAML path}``.
        seeds: world seeds; each overrides the profile's ``seed`` (the whole world is redrawn).
        out: output directory.
        extra: ``{name: finished study directory}`` added as one more row each (e.g. the ``full`` study).
        progress: progress bars in the studies.
        n_boot: bootstrap resamples for every CI.

    Returns:
        The map table (also in ``out/regime_map.csv``).
    """
    from grace.study import ensure_study, load_profile

    t0 = time.time()
    if not regimes or not seeds:
        raise ValueError("regime map needs at least one regime and one seed, e.g. --regime mixed-accuracy=mixed-quick --seeds 0 1 2")
    rows, checks, studies = [], [], []
    for regime, profile_name in regimes.items():
        for seed in seeds:
            profile = load_profile(profile_name)
            profile["seed"] = int(seed)
            others = [out / r / f"seed{seed}" for r in regimes if r != regime]  # the same seed's other worlds
            _, study_dir = ensure_study(profile, out / regime / f"seed{seed}", progress=progress,
                                        share_world_from=others)
            r, c = study_rows(regime, seed, study_dir, n_boot)
            rows += r
            checks.append(c)
            studies.append(_study_record(regime, seed, str(profile_name), read_json(study_dir / "profile.json")))
    for name, study_dir in (extra or {}).items():
        study_dir = Path(study_dir)
        if not (study_dir / "analysis" / "world_checks.json").exists():
            raise ValueError(f"--extra {name}={study_dir}: no finished study with world checks there; "
                             "run `grace study` (and `grace world-check --study DIR`) first")
        built = read_json(study_dir / "profile.json")
        r, c = study_rows(name, built["seed"], study_dir, n_boot)
        rows += r
        checks.append(c)
        studies.append(_study_record(name, built["seed"], built["name"], built))
    table = pd.DataFrame(rows)
    atomic_write_text(out / "regime_map.csv", table.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out / "regime_checks.csv", pd.DataFrame(checks).to_csv(index=False, float_format="%.6g"))
    write_json(out / PROVENANCE, {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": git_commit(),
        "wall_s": round(time.time() - t0, 1), "seeds": [int(x) for x in seeds],
        "regimes": {k: str(v) for k, v in regimes.items()}, "extra": {k: str(v) for k, v in (extra or {}).items()},
        "studies": studies})
    return table


def profile_digest(profile: dict) -> str:
    """A short digest of a profile (:func:`grace.io.stable_hash`): which world a study was built from (its
    ``profile.json``)."""
    return stable_hash(profile, n=16)


def git_commit(repo: str | os.PathLike | None = None) -> str | None:
    """The short commit of the ``grace`` checkout (``+`` appended when tracked files differ from it), or ``None``
    outside a git checkout."""
    repo = Path(repo) if repo else Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def _study_record(regime: str, seed: int | str, profile: str, built: dict) -> dict:
    """One study's line of the provenance record: its regime, seed, the profile it was asked for and the digest
    of the profile it was built from (``built``: its ``profile.json``)."""
    return {"regime": regime, "seed": int(seed), "profile": profile, "digest": profile_digest(built)}


def load_provenance(out: str | os.PathLike) -> dict | None:
    """The map's provenance record (:func:`run_regime_map`), or ``None`` for a map written without one."""
    path = Path(out) / PROVENANCE
    return read_json(path) if path.exists() else None


def changed_worlds(provenance: dict) -> dict[str, list[str]]:
    """Which of the map's studies would be built from another world today: ``{"changed": [...], "unknown": [...]}``
    of ``regime seed k`` labels — a profile whose digest (with the study's seed) differs from the recorded one,
    or one that cannot be loaded here (a profile file of another machine)."""
    from grace.study import load_profile

    out: dict[str, list[str]] = {"changed": [], "unknown": []}
    for st in provenance.get("studies", []):
        label = f"{st['regime']} seed {st['seed']}"
        try:
            profile = load_profile(st["profile"])
        except (ValueError, FileNotFoundError):
            out["unknown"].append(label)
            continue
        profile["seed"] = int(st["seed"])
        if profile_digest(profile) != st["digest"]:
            out["changed"].append(label)
    return out


def provenance_sentence(provenance: dict | None, changed: dict[str, list[str]] | None = None,
                        head: str | None = None) -> str:
    """What the reader is told about the map's age (chapter 6 §6.11 and the landing page): when and at which commit
    it was computed, how many studies it holds, and whether its worlds or the code have changed since (``changed``:
    :func:`changed_worlds`; ``head``: this build's commit, :func:`git_commit`). Plain text, no Markdown: the
    landing page pastes it as text."""
    if provenance is None:
        return ("This map carries no record of when it was computed (it was written before maps kept one); "
                "make map rebuilds it with one.")
    when = provenance["created"][:10]
    n = len(provenance.get("studies", []))
    wall = float(provenance.get("wall_s") or 0)
    took = f" in {wall / 3600:.1f} h" if wall >= 3600 else f" in {max(1, round(wall / 60))} min" if wall else ""
    made = provenance.get("commit")
    at = (f" at commit {made.rstrip('+')}" + (" with uncommitted changes" if made.endswith("+") else "")) if made else ""
    text = f"This map was computed on {when}{at} from {n} {'study' if n == 1 else 'studies'}{took}. "
    changed = changed or {"changed": [], "unknown": []}
    if changed["changed"]:
        text += (f"The profiles of {', '.join(changed['changed'])} have changed since, so those rows describe the "
                 "worlds as they were then; make map recomputes them. ")
    else:
        text += "Every world in it is built from the profile this build has. "
    if changed["unknown"]:
        text += f"The profiles of {', '.join(changed['unknown'])} are not on this machine, so they are not checked. "
    if head and made and head != made:
        text += f"The code has changed since (this build: {head})."
    return text.strip()


def load_regime_map(out: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """``(regime_map, regime_checks)`` from a directory written by :func:`run_regime_map`, or ``None``."""
    out = Path(out)
    if not (out / "regime_map.csv").exists() or not (out / "regime_checks.csv").exists():
        return None
    return pd.read_csv(out / "regime_map.csv"), pd.read_csv(out / "regime_checks.csv")


def summarize(table: pd.DataFrame, scores: list[str] | None = None) -> pd.DataFrame:
    """Per regime and score: the seeds' oriented ρ (mean, min, max) and how many seeds' CIs lie above 0.

    Args:
        table: :func:`run_regime_map`'s table.
        scores: restrict to these score keys (default all).
    """
    t = table if scores is None else table[table["score"].isin(scores)]
    g = t.groupby(["regime", "score", "label"], sort=False)
    agg = dict(seeds=("seed", "nunique"), measured=("rho_oriented", "count"), rho_mean=("rho_oriented", "mean"), rho_min=("rho_oriented", "min"),
               rho_max=("rho_oriented", "max"), ci_above_0=("ci_low", lambda x: int((x > 0).sum())),
               ci_below_0=("ci_high", lambda x: int((x < 0).sum())))
    if "gap" in t.columns:  # maps written before the decision metric was recorded have no gap column
        agg["gap_mean"] = ("gap", "mean")
    return g.agg(**agg).reset_index()


def describe(summary: pd.DataFrame, checks: pd.DataFrame) -> str:
    """A paragraph per regime, assembled from the numbers (the book glues it; nothing is hard-coded).

    Args:
        summary: :func:`summarize`'s table.
        checks: ``regime_checks.csv``.
    """
    parts = []
    for regime, c in checks.groupby("regime", sort=False):
        n = len(c)
        lo, hi = c["student_avg_at_k_spread"].min(), c["student_avg_at_k_spread"].max()
        spread = f"{lo:.1f}" if n == 1 else f"{lo:.1f}–{hi:.1f}"
        text = (f"**{regime}** ({n} stud{'y' if n == 1 else 'ies'}): the acceptance checks pass in {int(c['all_pass'].sum())} "
                f"of {n}; the student's loss on teacher data is at most {c['loss_ratio_max'].max():.2f} × ln V, the "
                f"outside-span share at most {c['outside_span_share_max'].max():.2f}, the student spread "
                f"{spread} points.")
        rows = summary[summary["regime"] == regime].set_index("score")
        for score in ("grace", "g_var", "g_vendi", "student_loss", "teacher_accuracy"):
            if score in rows.index:
                text += " " + _score_sentence(rows.loc[score])
        text += _factors(rows, c)
        parts.append(text)
    return "\n\n".join(parts)


def _score_sentence(r: pd.Series) -> str:
    """One score's line of :func:`describe`: its seeds' mean oriented ρ, their range, how many CIs exclude 0,
    and the mean gap of its pick; seeds where ρ is undefined (constant students or scores) are said so."""
    from grace.formatting import number

    seeds, measured = int(r["seeds"]), int(r.get("measured", r["seeds"]))
    if measured == 0:
        return f"{r['label']}: {number(None, why='constant students or scores in every seed')}."
    spread = (f"seeds {number(r['rho_min'], '+.2f')} to {number(r['rho_max'], '+.2f')}" if measured > 1 else "one seed")
    if measured < seeds:
        spread += f", measured in {measured} of {seeds}"
    gap = (f"; its pick trails the best student by {100 * r['gap_mean']:.1f} points on average"
           if pd.notna(r.get("gap_mean", float("nan"))) else "")
    return (f"{r['label']}: oriented ρ {number(r['rho_mean'], '+.2f')} on average ({spread}; CI above 0 in "
            f"{int(r['ci_above_0'])}, below 0 in {int(r['ci_below_0'])} of {seeds}{gap}).")


def _factors(rows: pd.DataFrame, checks: pd.DataFrame) -> str:
    """Which of GRACE's two factors (§6.10) carries its ranking in a regime: the one whose mean oriented ρ
    has GRACE's sign (both, or neither, said as such); plus the median share of GRACE set by smoothing."""
    from grace.formatting import number

    if not {"grace", "g_var", WHITENING} <= set(rows.index):
        return ""
    g, s, w = (float(rows.at[k, "rho_mean"]) for k in ("grace", "g_var", WHITENING))
    if any(np.isnan(v) for v in (g, s, w)):
        return ""
    with_grace = [name for name, v in (("the gradient scale (G-Var)", s), ("the whitening (GRACE / G-Var)", w))
                  if np.sign(v) == np.sign(g)]
    carried = (f"GRACE's sign is that of {with_grace[0]}" if len(with_grace) == 1 else
               "both factors share GRACE's sign" if with_grace else "neither factor alone has GRACE's sign")
    share = checks["smoothing_share_median"].median() if "smoothing_share_median" in checks.columns else float("nan")
    smooth = (f"; the smoothing ν/d sets a median {share:.0%} of GRACE" if not np.isnan(share) else "")
    return (f" Of GRACE's two factors (§6.10), the scale ranks teachers with mean ρ {number(s, '+.2f')} and the "
            f"whitening with {number(w, '+.2f')}: {carried}{smooth}.")


def contrast(summary: pd.DataFrame) -> str:
    """What changes between regimes, in words chosen by the signs of the seeds' mean ρ (never hard-coded).

    Compares GRACE with its two factors' stand-ins — the gradient scale (G-Var, eq. 3) and the gradient
    diversity (G-Vendi, eq. 2) — and with the student's loss, per regime.
    """
    if summary.empty:
        return ""
    from grace.formatting import number

    m = summary.pivot_table(index="regime", columns="score", values="rho_mean", sort=False)
    way = lambda r: "the paper's way" if r > 0 else "the wrong way"  # noqa: E731
    parts = []
    for regime, row in m.iterrows():
        bits = [f"{label} ranks teachers {way(row[k])} ({number(row[k], '+.2f')})" for k, label in
                (("grace", "GRACE"), ("g_var", "the gradient scale G-Var"), (WHITENING, "the whitening GRACE / G-Var"),
                 ("g_vendi", "the gradient diversity G-Vendi"), ("student_loss", "the student's loss"))
                if k in row and pd.notna(row[k])]
        parts.append(f"In `{regime}`, averaged over its seeds, " + "; ".join(bits) + ".")
    if {"g_var", "g_vendi", "grace"} <= set(m.columns) and len(m) > 1:
        flips = [k for k in ("g_var", WHITENING, "g_vendi", "student_loss", "grace") if k in m.columns
                 and (m[k] > 0).nunique() > 1]
        names = {"g_var": "G-Var", WHITENING: "GRACE / G-Var", "g_vendi": "G-Vendi", "student_loss": "the student's loss",
                 "grace": "GRACE"}
        if flips:
            parts.append("Between the regimes the direction changes for " + ", ".join(names[k] for k in flips)
                         + "; it does not for " + (", ".join(names[k] for k in names if k in m.columns and k not in flips)
                                                     or "any other") + ".")
        else:
            parts.append("No score changes direction between the regimes.")
    return " ".join(parts)


def describe_strong_study(hyp: pd.DataFrame, checks: dict, pool: pd.DataFrame, results: pd.DataFrame) -> str:
    """The strong-teacher world's paragraph (chapter 6), assembled from its numbers, whatever they are.

    Besides the pre-registered verdicts: whether the study is the pre-registered one
    (:data:`grace.analysis.PRE_REGISTERED_PROFILE`) or an indication; the paper's decision metric on the
    main pool (the gap between the best student and the student of the teacher each score ranks first;
    App. C.2, Figs. 7, 13); and where GRACE puts the teachers beside the pool (self-distillation,
    answer-only), which the paper's pool does not have.

    Args:
        hyp: :func:`grace.analysis.hypothesis_test`'s table.
        checks: the study's ``analysis/world_checks.json``.
        pool: its ``analysis/spearman_student_avg_at_k_pool.csv``.
        results: its ``results.csv``.
    """
    from grace.analysis import PRE_REGISTERED_PROFILE, main_pool
    from grace.formatting import rho_ci

    main = main_pool(results)
    acc, y = main["teacher_accuracy"].astype(float), main["student_avg_at_k"].astype(float)
    by = pool.set_index("score")
    rho = {k: rho_ci(*by.loc[k, ["rho_oriented", "ci_low", "ci_high"]]) if k in by.index else "not measured"
           for k in ("grace", "student_loss", "teacher_accuracy", "g_var")}
    passed = bool(checks["acceptance"]["all_pass"])
    failed = [k for k, v in checks["acceptance"].items() if k != "all_pass" and not v["pass"]]
    text = (f"In this world ({len(main)} main-pool configurations) the teachers' generations are "
            f"{acc.min():.0%} to {acc.max():.0%} correct and their students reach {y.min():.1%} to {y.max():.1%} "
            f"avg@k. The world {'passes every acceptance check' if passed else 'fails ' + ', '.join(failed)}. "
            f"Oriented Spearman ρ with the students (95 % CI): GRACE {rho['grace']}, the student's loss "
            f"{rho['student_loss']}, the teacher's accuracy {rho['teacher_accuracy']}, G-Var {rho['g_var']}.")
    text += _pool_gaps(main) + _beside_pool(results, main)
    verdicts = "; ".join(f"{r.hypothesis}: **{r.verdict}**" for r in hyp.itertuples())
    if not passed:
        return text + f" The pre-registered hypotheses are therefore not tested here ({verdicts})."
    profile = checks.get("profile")
    if profile != PRE_REGISTERED_PROFILE:
        return text + (f" The pre-registered rules applied to this study (`{profile}`: reduced size, one world seed) "
                       f"give {verdicts} — an indication only: the pre-registered test is the `{PRE_REGISTERED_PROFILE}` "
                       "study, with two teacher sizes per family and three temperatures.")
    h1 = hyp.set_index("hypothesis").at["H1", "verdict"]
    reading = {"supported": "In the paper's regime, where every teacher is strong and what differs is how well its "
                            "solutions fit the student, GRACE ranks the teachers the right way in this miniature.",
               "not supported": "Even in the paper's regime, where every teacher is strong and what differs is how "
                                "well its solutions fit the student, GRACE does not rank the teachers the right way "
                                "in this miniature, with the confidence the test asks for."}
    return text + f" Pre-registered verdicts: {verdicts}. " + reading.get(h1, "GRACE's correlation was not measured.")


def _pool_gaps(main: pd.DataFrame) -> str:
    """The paper's decision metric on the main pool, one clause per score (App. C.2); "" or a sentence with a
    leading space, as :func:`_beside_pool`."""
    from grace.analysis import selection_gaps

    keys = [k for k in ("grace", "student_loss", "teacher_accuracy") if k in main.columns and main[k].notna().any()]
    if not keys or len(main) < 2:
        return ""
    g = selection_gaps(main, keys, "student_avg_at_k").set_index("score")
    names = {"grace": "GRACE", "student_loss": "the student's loss", "teacher_accuracy": "the teacher's accuracy"}
    parts = [f"{names[k]} picks {g.at[k, 'picked_config']} ({100 * g.at[k, 'gap']:.1f} points below the best)"
             for k in keys]
    return (f" Choosing the teacher each score ranks first (the paper's decision metric; the best student here "
            f"learns from {g.at[keys[0], 'best_config']}, {g.at[keys[0], 'best_target']:.1%}): " + "; ".join(parts) + ".")


def _beside_pool(results: pd.DataFrame, main: pd.DataFrame) -> str:
    """Where GRACE ranks the teachers beside the pool (self-distillation, answer-only) against the pool."""
    from grace.analysis import in_main_pool
    from grace.scores import SCORE_ORIENTATION

    if "grace" not in results.columns or main["grace"].isna().all():
        return ""
    sign = SCORE_ORIENTATION["grace"]  # +1: higher is better; -1: lower is better
    best_in_pool = (sign * main["grace"].astype(float)).max()
    out = results[~in_main_pool(results)]
    if out.empty:
        return ""
    ahead = [r for r in out.itertuples() if sign * float(r.grace) > best_in_pool]
    if not ahead:
        return " Beside the pool, GRACE ranks no anecdote teacher (self-distillation, answer-only) above the pool's best."
    who = ", ".join(f"{r.teacher}@{r.temperature:g} ({r.teacher_accuracy:.0%} correct, its student {r.student_avg_at_k:.1%})"
                    for r in ahead)
    return (f" Beside the pool, GRACE ranks {who} above every pool teacher: the score does not see whether a "
            "solution is right, so it should rank only a pool of competent teachers, as the paper's is.")


def seeds_sentence(summary: pd.DataFrame, checks: pd.DataFrame, regime: str, world: str | None = None) -> str:
    """One sentence for the landing page: GRACE across a regime's world seeds in the map, beside the student's
    loss, with how many seeds pass their checks ("" when the map has no such regime). ``world``: how the
    sentence names the regime's world (default: "the <regime> regime")."""
    from grace.formatting import number

    rows = summary[summary["regime"] == regime].set_index("score")
    if "grace" not in rows.index:
        return ""
    g = rows.loc["grace"]
    world = world or f"the {regime} regime"
    n_pass = int(checks.loc[checks["regime"] == regime, "all_pass"].astype(bool).sum())
    if int(g.seeds) == 1:  # one study: its ρ, not a range
        text = (f"In the regime map (§6.11), one world seed of {world}, which {'passes' if n_pass else 'fails'} "
                f"its checks, gives GRACE an oriented ρ of {number(g.rho_mean, 'rho')} (CI "
                f"{'above 0' if g.ci_above_0 else 'not above 0'})")
        if "student_loss" in rows.index:
            text += f" and the student's loss {number(rows.loc['student_loss'].rho_mean, 'rho')}"
        return text + "."
    passes = "passes" if n_pass == 1 else "pass"
    text = (f"Over {int(g.seeds)} world seeds of {world} in the regime map (§6.11), {n_pass} of which {passes} "
            f"every check, GRACE's oriented ρ runs from {number(g.rho_min, 'rho')} to {number(g.rho_max, 'rho')} "
            f"(mean {number(g.rho_mean, 'rho')}; CI above 0 in {int(g.ci_above_0)})")
    if "student_loss" in rows.index:
        l = rows.loc["student_loss"]
        text += (f", the student's loss from {number(l.rho_min, 'rho')} to {number(l.rho_max, 'rho')} "
                 f"(mean {number(l.rho_mean, 'rho')})")
    return text + "."


def own_regime(checks: pd.DataFrame, profile: str, default: str = "strong-teacher") -> tuple[str, str]:
    """The map regime whose seeds redraw this build's world (its studies ran ``profile``, over several seeds), and
    how to name it; else ``default`` (the strong-teacher world at reduced size)."""
    mine = checks.loc[checks["profile"] == profile, "regime"].value_counts()
    mine = mine[mine > 1]
    if len(mine):
        return str(mine.index[0]), f"this build's world (the {mine.index[0]} regime)"
    return default, f"the {default} regime"


def _map_claims(strong_rho: float, gap_partly: float):
    """The paper's claims that the regime map measures in every study, as ``(claim, judge)``; ``judge``
    takes one study's map rows (indexed by score) and returns a verdict (:mod:`grace.claims`' rules, as
    chapter 6 applies them to the book's own study; the map keeps no CI of a gap, so the gap's point
    estimate is judged)."""
    from grace import claims as C

    def rho(rows, score, col="rho_oriented"):
        return float(rows.at[score, col]) if score in rows.index else float("nan")

    def above(other):
        def judge(rows):
            g, o = rho(rows, "grace"), rho(rows, other)
            return C.verdict_bool(None if pd.isna(g) or pd.isna(o) else bool(g > o))[0]
        return judge

    def gap(rows):
        v = rho(rows, "grace", "gap") if "gap" in rows.columns else float("nan")
        return C.verdict_at_most(v, v, C.PAPER["gap_to_best"], partly=gap_partly)[0]

    return [
        (f"GRACE's oriented ρ with the students is high (Fig 2; CI low ≥ {strong_rho:g})",
         lambda rows: C.verdict_at_least(rho(rows, "grace"), rho(rows, "grace", "ci_low"), strong_rho)[0]),
        ("GRACE's ρ above the student's loss's (Fig 1; point estimates)",
         above("student_loss")),
        ("GRACE's ρ above the teacher's accuracy's (Fig 1; point estimates)",
         above("teacher_accuracy")),
        ("GRACE's ρ above G-Var's (Fig 2; point estimates)", above("g_var")),
        (f"GRACE's pick within {100 * C.PAPER['gap_to_best']:g} point of the best student (§1; partly within "
         f"{100 * gap_partly:g})", gap),
    ]


VERDICT_COLUMNS = ("verdicts over the seeds", "checks passed")


def claim_verdicts(table: pd.DataFrame, checks: pd.DataFrame, strong_rho: float = 0.75,
                   gap_partly: float | None = None) -> pd.DataFrame:
    """The paper's map-measurable claims judged in every study of the regime map, counted per regime.

    Each claim of :func:`_map_claims` is judged per study (regime × seed) with the rule chapter 6 applies to
    the book's own study; a cell counts the verdicts over the regime's seeds, e.g. ``reproduced 2/3, not
    reproduced 1/3``. Beside it: in how many of those studies the world passed its acceptance checks (a
    verdict in a world outside the paper's regime is a finding about that world, not a test of the paper).

    Args:
        table: :func:`run_regime_map`'s table (``regime, seed, score, rho_oriented, ci_low[, gap]``).
        checks: its ``regime_checks.csv`` (``regime, seed, all_pass``).
        strong_rho: chapter 6's "strong correlation" bar (the paper's 0.75 in Fig 7).
        gap_partly: a gap up to this is *partly* reproduced (default :data:`grace.claims.GAP_PARTLY`).

    Returns:
        One row per claim × regime (index ``claim, regime``; regimes in the map's order) and the two
        :data:`VERDICT_COLUMNS` — long rather than one column per regime, so that it stays narrow.
    """
    from grace.claims import GAP_PARTLY, VERDICTS

    regimes = list(dict.fromkeys(table["regime"]))
    rules = _map_claims(strong_rho, GAP_PARTLY if gap_partly is None else gap_partly)
    passed = {r: f"{int(c['all_pass'].astype(bool).sum())}/{len(c)}" for r, c in checks.groupby("regime", sort=False)}
    studies = {regime: [g.set_index("score") for _, g in table[table["regime"] == regime].groupby("seed", sort=False)]
               for regime in regimes}  # each regime's studies, split once
    rows = []
    for claim, judge in rules:
        for regime in regimes:
            verdicts = [judge(r) for r in studies[regime]]
            rows.append({"claim": claim, "regime": regime,
                         VERDICT_COLUMNS[0]: ", ".join(f"{v} {verdicts.count(v)}/{len(verdicts)}" for v in VERDICTS
                                                       if v in verdicts),
                         VERDICT_COLUMNS[1]: passed.get(regime, "–")})
    return pd.DataFrame(rows).set_index(["claim", "regime"])


__all__ = ["claim_verdicts", "contrast", "describe", "describe_strong_study", "load_regime_map", "run_regime_map",
           "own_regime", "seeds_sentence", "study_rows", "summarize"]
