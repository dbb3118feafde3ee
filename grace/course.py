"""Exercises of the book and their checks: ``check("ch4-ex2", answer)`` says right or wrong, and why.

Every chapter ends with exercises (``exercise`` blocks, worked answers in ``solution`` blocks that the
student build leaves out). An exercise whose answer is a number, a name or a yes/no has an entry in
:data:`EXERCISES`; :func:`check` compares a student's answer with the value the package computes
*now* — from the smoke world's study on disk (``artifacts/smoke/study`` unless ``study_dir=`` names
another), from a synthetic draw with a fixed seed, or from a closed form evaluated by the package —
so a check never drifts from the code it teaches. The expected value is never printed: a wrong answer
is told in which direction it is off, or which known mistake it matches.

    >>> from grace import course
    >>> course.check("ch4-ex4", 2.77)          # doctest: +SKIP
    ch4-ex4: right (2.77 is within 1% of the expected value).

:func:`exercise_ids` lists the registered ids (``tests/test_course.py`` checks that every coded
exercise of the chapters has one, and that each chapter's solution cell passes its check).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("number", "text", "names")
"""How an answer is compared: a number within a tolerance, a name (case-insensitive), a set of names."""


# ----------------------------------------------------------------------------- context


class Context:
    """What an expected value may read: the study's folder (results, features, world checks, claims).

    Everything is loaded lazily and once, so a closed-form exercise never touches the disk.
    """

    def __init__(self, study_dir: str | Path | None = None):
        from grace.notebook import profile_root

        self.study_dir = Path(study_dir) if study_dir is not None else profile_root("smoke") / "study"

    def _need(self, rel: str) -> Path:
        path = self.study_dir / rel
        if not path.exists():
            raise ValueError(f"{path} is missing: this exercise reads a finished study; run "
                             "`python book/build.py --profile smoke` (or `grace study --profile smoke`) first, "
                             "or pass study_dir= the study folder of your profile")
        return path

    @functools.cached_property
    def results(self):
        """The study's ``results.csv`` (one row per teacher × temperature configuration)."""
        import pandas as pd

        return pd.read_csv(self._need("results.csv"))

    @functools.cached_property
    def pool(self):
        """The main pool of :attr:`results` (:func:`grace.analysis.main_pool`)."""
        from grace.analysis import main_pool

        return main_pool(self.results)

    @functools.cached_property
    def features(self) -> dict:
        """Every configuration's saved :class:`grace.features.Features` (:func:`grace.ablations.load_study_features`)."""
        from grace.ablations import load_study_features

        self._need("features")
        return load_study_features(self.study_dir)

    @functools.cached_property
    def profile(self) -> dict:
        """The study's ``profile.json``."""
        from grace.io import read_json

        return read_json(self._need("profile.json"))

    @property
    def first_config(self) -> str:
        """The first configuration of ``results.csv``: the one the single-configuration exercises use."""
        return str(self.results["config"].iloc[0])


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Exercise:
    """One checked exercise: what it asks, how the package computes the answer, and known mistakes.

    ``expected(ctx)`` returns the answer (a number, a name, or a collection of names). ``mistakes`` maps a
    sentence that explains a known mistake to a function computing the answer that mistake gives; a wrong
    answer matching one is told that sentence.
    """

    id: str
    ask: str
    expected: Callable[[Context], Any]
    kind: str = "number"
    rtol: float = 1e-3
    atol: float = 0.0
    mistakes: Mapping[str, Callable[[Context], Any]] = field(default_factory=dict)
    reads_study: bool = False


EXERCISES: dict[str, Exercise] = {}
"""Every checked exercise by id (``ch<chapter>-ex<k>``)."""


def register(ex: Exercise) -> Exercise:
    """Add ``ex`` to :data:`EXERCISES` (its id must be new, its kind one of :data:`KINDS`)."""
    if ex.id in EXERCISES:
        raise ValueError(f"exercise {ex.id!r} is registered twice; give the second one a new id")
    if ex.kind not in KINDS:
        raise ValueError(f"exercise {ex.id!r}: kind {ex.kind!r} is not one of {KINDS}")
    EXERCISES[ex.id] = ex
    return ex


def exercise_ids() -> list[str]:
    """The registered ids, in chapter then exercise order."""
    def key(i: str) -> tuple[int, int]:
        ch, ex = i.split("-")
        return int(ch[2:]), int(ex[2:])

    return sorted(EXERCISES, key=key)


# ----------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`check`: ``ok`` and a sentence. True when right, so ``assert check(...)`` works;
    a notebook cell ending in a check shows the sentence."""

    exercise: str
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return self.message

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        mark = "**right**" if self.ok else "**not yet**"
        return f"{mark} — {self.message}"


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    return bool(np.isfinite(a) and np.isfinite(b) and abs(a - b) <= atol + rtol * abs(b))


def _as_number(answer: Any, ex: Exercise) -> float:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise ValueError(f"{ex.id}: the answer must be a number, got {answer!r}; {ex.ask}") from None
    return value


def _norm_names(x: Any) -> frozenset[str] | str:
    if isinstance(x, str):
        return x.strip().lower()
    return frozenset(str(v).strip().lower() for v in x)


def _same(ex: Exercise, answer: Any, value: Any) -> bool:
    if ex.kind == "number":
        return _close(_as_number(answer, ex), float(value), ex.rtol, ex.atol)
    if ex.kind == "text":
        return isinstance(answer, str | bool | int | float) and str(answer).strip().lower() == str(value).strip().lower()
    return not isinstance(answer, str) and _norm_names(answer) == _norm_names(value)


def _tolerance_text(ex: Exercise) -> str:
    parts = []
    if ex.rtol:
        parts.append(f"{ex.rtol:.0%}" if ex.rtol >= 0.01 else f"a relative {ex.rtol:.0e}")
    if ex.atol:
        parts.append(f"{ex.atol:g} absolute")
    return " or ".join(parts) or "exactly"


def _why_wrong(ex: Exercise, answer: Any, value: Any) -> str:
    if ex.kind == "number":
        a, v = _as_number(answer, ex), float(value)
        if not np.isfinite(a):
            return "the answer is not a finite number"
        if v != 0 and np.sign(a) == -np.sign(v):
            return "the sign is wrong"
        if abs(a) > abs(v):
            return f"it is too large in magnitude (off by {abs(a - v) / max(abs(v), 1e-300):.0%})"
        return f"it is too small in magnitude (off by {abs(a - v) / max(abs(v), 1e-300):.0%})"
    if ex.kind == "names":
        if isinstance(answer, str):
            return "give a list of names, not a single string"
        a, v = _norm_names(answer), _norm_names(value)
        return f"{len(a & v)} of your {len(a)} names are right, and {len(v - a)} are missing"
    return "that is not the one"


def check(exercise_id: str, answer: Any, *, study_dir: str | Path | None = None) -> Verdict:
    """Is ``answer`` right for exercise ``exercise_id``? Prints and returns a :class:`Verdict`.

    The expected value is computed by the package now (see the module docstring); a number is right
    within the exercise's tolerance. A wrong answer is told why: the known mistake it matches, or how
    it is off (direction and relative size, never the value).

    Args:
        exercise_id: e.g. ``"ch4-ex2"`` (:func:`exercise_ids` lists them).
        answer: a number, a name, or a list of names, as the exercise asks.
        study_dir: the study an exercise on the smoke world reads (default ``artifacts/smoke/study``;
            a chapter passes its own, ``ch.study_dir``).
    """
    if exercise_id not in EXERCISES:
        raise ValueError(f"unknown exercise {exercise_id!r}; choose one of {exercise_ids()}")
    ex = EXERCISES[exercise_id]
    ctx = Context(study_dir)
    value = ex.expected(ctx)
    if _same(ex, answer, value):
        tol = f" within {_tolerance_text(ex)} of the expected value" if ex.kind == "number" else ""
        verdict = Verdict(ex.id, True, f"{ex.id}: right ({_show(answer)} is correct{tol}).")
    else:
        why = next((text for text, wrong in ex.mistakes.items() if _same(ex, answer, wrong(ctx))), None)
        why = why or _why_wrong(ex, answer, value)
        verdict = Verdict(ex.id, False, f"{ex.id}: not right — {why}. {ex.ask}")
    print(verdict.message)
    return verdict


def _show(answer: Any) -> str:
    if isinstance(answer, str):
        return f"'{answer}'"
    if isinstance(answer, bool | np.bool_):
        return "yes" if answer else "no"
    if isinstance(answer, int | float | np.floating | np.integer):
        return f"{float(answer):.6g}"
    return ", ".join(str(v) for v in answer)


# ----------------------------------------------------------------------------- small helpers the exercises share


def oriented_rho(df, score: str, target: str = "student_avg_at_k") -> float:
    """Spearman ρ of ``score`` with ``target`` over ``df``, times the score's orientation (§3.1)."""
    from grace.analysis import finite_pairs, spearman
    from grace.scores import SCORE_ORIENTATION

    sub = finite_pairs(df, score, target)
    return SCORE_ORIENTATION[score] * spearman(sub[score].to_numpy(float), sub[target].to_numpy(float))[0]


def grace_pick(df, score: str = "grace") -> str:
    """The configuration ``score`` ranks best in ``df`` (:func:`grace.analysis.pick_best`)."""
    from grace.analysis import pick_best
    from grace.scores import SCORE_ORIENTATION

    return str(pick_best(df, score, SCORE_ORIENTATION[score])["config"])


def two_by_two_example() -> tuple[np.ndarray, np.ndarray, float]:
    """The hand exercise of chapter 4 (ch4-ex1, eqs. 4–5): two prompts, two responses each, d = 2, ν = 0.2.

    Returns ``H`` (4, 2), ``prompt_ids`` (4,) and ν; each prompt is its own fold (C = n = 2).
    """
    H = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, 1.0]])  # (4, 2)
    return H, np.array([0, 0, 1, 1]), 0.2


def in_span_example(nu: float) -> float:
    """GRACE (eq. 4, C = 4 folds, §2.2) of 16 prompts × 2 responses in d = 4, every fold spanning R^4 (ch4-ex2)."""
    from grace import scores, theory

    H, pid = theory.synthetic_gradients(16, 2, 4, seed=3)
    return scores.grace(H, pid, nu=nu, n_folds=4, seed=0)


def outside_span_example(nu: float) -> float:
    """The same as :func:`in_span_example` (eq. 4), with one held-out row given a direction no other row has:
    that direction has eigenvalue 0 in the other folds' Σ̃ and is weighted by d/ν."""
    from grace import scores, theory

    H, pid = theory.synthetic_gradients(16, 2, 4, seed=3)
    H = np.concatenate([H, np.zeros((len(H), 1))], axis=1)  # (32, 5): a fifth coordinate, zero for all ...
    H[0, 4] = 1.0  # ... but the first row
    return scores.grace(H, pid, nu=nu, n_folds=4, seed=0)


def ledger_counts(ctx: Context) -> dict[str, int]:
    """How many of the profile's recorded claims got each verdict (:func:`grace.claims.load`; chapter 9's ledger
    of the paper's claims)."""
    from grace import claims

    ledger = claims.load(ctx.study_dir.parent)  # the claims ledger sits next to the study (chapter 9)
    if len(ledger):
        ledger = ledger[ledger["profile"].isin([ctx.study_dir.parent.name, ""])]
    return {v: int((ledger["verdict"] == v).sum()) for v in claims.VERDICTS}


def failing_criteria(ctx: Context, min_spread_points: float) -> list[str]:
    """The acceptance criteria of the study's world that fail with this spread threshold (§3 "Settings")."""
    from grace import world_checks

    checks = world_checks.load_world_checks(ctx.study_dir)
    got = world_checks.acceptance(checks, min_spread_points=min_spread_points,
                                  regime=checks.get("regime", "mixed-accuracy"))
    return sorted(k for k, v in got.items() if k != "all_pass" and not v["pass"])


def rescored(ctx: Context, **kw) -> Any:
    """GRACE of every configuration rescored from the saved features (:func:`grace.ablations.rescore`, App. D.3),
    with the study's C, ν and seed (:func:`grace.ablations.score_settings`) unless ``kw`` changes them."""
    from grace.ablations import rescore, score_settings

    return rescore(ctx.features, **{**score_settings(ctx.study_dir), **kw})


def _temperature_with_higher_accuracy(ctx: Context) -> float:
    acc = ctx.pool.groupby("temperature")["teacher_accuracy"].mean()
    return float(acc.idxmax())


def _gap_to_most_accurate(ctx: Context) -> float:
    from grace.analysis import argbest, config_names

    pool = ctx.pool
    names = config_names(pool).to_numpy(str)
    top = argbest(pool["teacher_accuracy"].to_numpy(float), names)
    return float(100 * (pool["student_avg_at_k"].max() - pool["student_avg_at_k"].iloc[top]))


def _projection_gb() -> float:
    from grace import costs

    return costs.dense_projection(costs.LLAMA_3_2_1B, costs.Workload(), costs.Hardware())["pi_fp32_bytes"] / 1e9


def _smoke_feature_bytes(ctx: Context) -> float:
    from grace import costs

    f = ctx.profile["features"]
    return costs.feature_storage(costs.Workload(n=f["n"], m=f["m"], d=f["d"]))["feature_bytes"]


def _spearman(a, b) -> float:
    from grace.analysis import series_spearman

    return series_spearman(a, b)


# ----------------------------------------------------------------------------- the exercises


def _ex(id: str, ask: str, expected: Callable[[Context], Any], **kw) -> None:
    register(Exercise(id, ask, expected, **kw))


_ex("ch1-ex1", "Answer with the configuration name GRACE ranks best in the main pool (e.g. 'calc-S@0.5').",
    lambda c: grace_pick(c.pool), kind="text", reads_study=True,
    mistakes={"that is the configuration with the *largest* GRACE; lower GRACE is the better teacher":
              lambda c: str(c.pool.loc[c.pool["grace"].idxmax(), "config"])})
_ex("ch1-ex2", "Answer with the Spearman ρ between GRACE and G-Var over the main pool.",
    lambda c: _spearman(c.pool.set_index("config")["grace"], c.pool.set_index("config")["g_var"]),
    rtol=0.0, atol=0.01, reads_study=True)
_ex("ch2-ex1", "Answer with the temperature whose main-pool teachers are more accurate on average.",
    _temperature_with_higher_accuracy, rtol=0.0, atol=1e-9, reads_study=True)
_ex("ch3-ex1", "Answer with G-Var (eq. 3) of the first configuration's saved features.",
    lambda c: _g_var_of(c, c.first_config), rtol=1e-4, reads_study=True,
    mistakes={"that is G-Var of the unit-normalised rows; eq. 3 uses the raw rows h":
              lambda c: _g_var_of(c, c.first_config, unit=True),
              "that is the variance around the prompt means, not the mean μ(D) over all rows":
              lambda c: _within_prompt_var(c, c.first_config)})
_ex("ch3-ex2", "Answer with ‖h‖ for a 64-token response divided by ‖h‖ for an 8-token one (same Πg, log scaling).",
    lambda c: _length_ratio(64, 8), rtol=1e-3,
    mistakes={"that is the ratio of the lengths themselves; §2.1 scales by log|y|, not |y|": lambda c: 8.0})
_ex("ch4-ex1", "Answer with eq. 5 (global centring) minus eq. 4 (fold centring) on the 2×2 example.",
    lambda c: _two_by_two("between"), rtol=1e-3,
    mistakes={"that is eq. 4 itself; the exercise asks for the difference eq. 5 − eq. 4":
              lambda c: _two_by_two("fold"),
              "that is eq. 5 itself; subtract eq. 4": lambda c: _two_by_two("global")})
_ex("ch4-ex2", "Answer with GRACE at ν = 1e-6 divided by GRACE at ν = 1e-3 on the in-span example.",
    lambda c: in_span_example(1e-6) / in_span_example(1e-3), rtol=1e-3,
    mistakes={"a ratio near 1000 is what a held-out direction *outside* the span gives (weight d/ν); "
              "here every fold spans all directions": lambda c: 1e3})
_ex("ch4-ex3", "Answer with the Spearman ρ between eq. 4's teacher ranking at ν = 1e-3 and at ν = 1.",
    lambda c: _nu_rank_rho(), rtol=0.0, atol=0.01)
_ex("ch4-ex4", "Answer with the largest G-Vendi a d = 16 feature matrix can have.",
    lambda c: _gvendi_max(16), rtol=1e-3,
    mistakes={"that is d itself; G-Vendi is an entropy, its maximum is a logarithm": lambda c: 16.0,
              "that is the base-2 logarithm; G-Vendi uses the natural logarithm": lambda c: 4.0})
_ex("ch5-ex1", "Answer with best-of-k for the 4 × 3 correctness matrix of the exercise.",
    lambda c: _best_of_k(), rtol=1e-6,
    mistakes={"that is avg@k (the mean over all samples); best-of-k counts a prompt as solved when any sample is":
              lambda c: _avg_at_k()})
_ex("ch5-ex2", "Answer with the gap, in avg@k points, between the best student and the most accurate teacher's.",
    _gap_to_most_accurate, rtol=0.0, atol=0.05, reads_study=True)
_ex("ch6-ex1", "Answer with the list of acceptance criteria that still fail when min_spread_points = 0.",
    lambda c: failing_criteria(c, 0.0), kind="names", reads_study=True,
    mistakes={"that list includes the spread criterion, which cannot fail at a threshold of 0 points":
              lambda c: sorted(set(failing_criteria(c, 0.0)) | {"student_avg_at_k_spread"})})
_ex("ch6-ex2", "Answer with the gap, in avg@k points, between the best student and GRACE's pick.",
    lambda c: _gap_of(c, "grace"), rtol=0.0, atol=0.05, reads_study=True)
_ex("ch7-ex1", "Answer with the configuration GRACE ranks best after rescoring with ν = 1.",
    lambda c: str(rescored(c, nu=1.0).idxmin()), kind="text", reads_study=True,
    mistakes={"that is the configuration with the largest GRACE at ν = 1; lower is better":
              lambda c: str(rescored(c, nu=1.0).idxmax())})
_ex("ch7-ex2", "Answer with the Spearman ρ between GRACE with C = 2 and with the study's C, over all configurations.",
    lambda c: _spearman(rescored(c, n_folds=2), rescored(c)), rtol=0.0, atol=0.01, reads_study=True)
_ex("ch8-ex1", "Answer with the Spearman ρ between the paper's GRACE and the released code's over the main pool.",
    lambda c: _spearman(c.pool.set_index("config")["grace"], c.pool.set_index("config")["grace_release"]),
    rtol=0.0, atol=0.01, reads_study=True)
_ex("ch9-ex1", "Answer with how many claims of this build's ledger are 'reproduced'.",
    lambda c: ledger_counts(c)["reproduced"], rtol=0.0, atol=0.0, reads_study=True)
_ex("ch10-ex1", "Answer with the bytes of the smoke world's stored features of one configuration (fp32).",
    _smoke_feature_bytes, rtol=1e-9, reads_study=True,
    mistakes={"that counts one generation per prompt; there are n·m rows": lambda c: _smoke_feature_bytes(c)
              / c.profile["features"]["m"]})
_ex("ch11-ex1", "Answer with the size in GB of the dense Π (fp32) for the paper's student and d.",
    lambda c: _projection_gb(), rtol=0.01,
    mistakes={"that is Π stored as bits (±1 signs); the question asks for fp32 entries":
              lambda c: _projection_gb() / 32})

_ex("ch13-ex1", "Answer with the soft-label loss at α = 1, τ = 2 for the logits of the exercise.",
    lambda c: _soft_example(compensate=True), rtol=1e-4,
    mistakes={"that leaves out the τ² factor that keeps the soft term's gradients the same size as τ changes":
              lambda c: _soft_example(compensate=False),
              "that is KL(student ‖ teacher); distillation's soft term is KL(teacher ‖ student)":
              lambda c: _soft_example(compensate=True, reverse=True)})
_ex("ch14-ex1", "Answer with the expected share of gold operands among k random tokens of the question.",
    lambda c: _random_share(), rtol=1e-6,
    mistakes={"that is the expected *count* of operands among the k tokens; the share divides it by k":
              lambda c: _random_share() * RANDOM_PICK_EXAMPLE["k"]})
_ex("ch14-ex2", "Answer with the sum of the Integrated-Gradients attributions of the exercise's linear model.",
    lambda c: _ig_sum(absolute=False), rtol=1e-3,
    mistakes={"that sums the attributions' magnitudes; completeness holds for the signed sum":
              lambda c: _ig_sum(absolute=True)})

SOFT_EXAMPLE = {"teacher": [2.0, 1.0, 0.0], "student": [0.0, 0.0, 0.0], "tau": 2.0}
"""Exercise ch13-ex1: one token's teacher and student logits over a 3-token vocabulary, and τ."""

RANDOM_PICK_EXAMPLE = {"n": 12, "operands": 3, "k": 5}
"""Exercise ch14-ex1: question tokens, how many of them are gold operands, tokens picked at random."""

IG_EXAMPLE = {"w": [1.0, -2.0, 3.0], "x": [1.0, 1.0, 1.0]}
"""Exercise ch14-ex2: the linear model f(x) = w·x and the input; the baseline is 0."""


def _soft_example(compensate: bool, reverse: bool = False) -> float:
    import torch

    from grace.methods.soft import SoftLabelConfig, soft_label_loss

    t = torch.tensor([[SOFT_EXAMPLE["teacher"]]])  # (B=1, T=1, V=3)
    s = torch.tensor([[SOFT_EXAMPLE["student"]]])
    if reverse:
        t, s = s, t
    cfg = SoftLabelConfig(temperature=SOFT_EXAMPLE["tau"], alpha=1.0, compensate=compensate)
    return float(soft_label_loss(s, t, torch.tensor([[0]]), cfg)["loss"])


def _random_share() -> float:
    from scipy.stats import hypergeom

    n, g, k = RANDOM_PICK_EXAMPLE["n"], RANDOM_PICK_EXAMPLE["operands"], RANDOM_PICK_EXAMPLE["k"]
    return float(hypergeom(n, g, k).mean() / k)  # E[operands among k drawn without replacement] / k


def _ig_sum(absolute: bool) -> float:
    import torch
    from captum.attr import IntegratedGradients

    w, x = torch.tensor(IG_EXAMPLE["w"]), torch.tensor([IG_EXAMPLE["x"]])
    attr = IntegratedGradients(lambda v: v @ w).attribute(x, baselines=torch.zeros_like(x), n_steps=64)
    return float(attr.abs().sum() if absolute else attr.sum())


def _g_var_of(ctx: Context, config: str, unit: bool = False) -> float:
    from grace import scores

    H = ctx.features[config].H.astype(np.float64)
    if unit:
        H = H / np.linalg.norm(H, axis=1, keepdims=True)
    return scores.g_var(H)


def _within_prompt_var(ctx: Context, config: str) -> float:
    f = ctx.features[config]
    H = f.H.astype(np.float64)
    means = np.stack([H[f.prompt_ids == p].mean(0) for p in f.prompt_ids])  # (N, d) each row's prompt mean
    return float(((H - means) ** 2).sum(1).mean())


def _length_ratio(a: int, b: int) -> float:
    from grace.features import length_scale_factor

    s = length_scale_factor(np.array([a, b]), "log")
    return float(s[0] / s[1])


def _two_by_two(which: str) -> float:
    from grace import scores, theory

    H, pid, nu = two_by_two_example()
    if which == "between":
        return theory.between_fold_term(H, pid, nu)
    return scores.grace(H, pid, nu=nu, folds=pid, center=which)


@functools.lru_cache(maxsize=1)
def _nu_rank_rho() -> float:
    from grace import theory

    small = theory.synthetic_teacher_table(8, 32, 2, 8, 4, 1e-3, seed=0)["eq. 4"]
    large = theory.synthetic_teacher_table(8, 32, 2, 8, 4, 1.0, seed=0)["eq. 4"]
    return _spearman(small, large)


def _gvendi_max(d: int) -> float:
    from grace import scores

    return scores.g_vendi(np.eye(d))  # d orthonormal rows: Σ̃ = I/d, the flattest spectrum


CORRECTNESS_EXAMPLE = np.array([[1, 0, 0], [1, 1, 1], [0, 0, 0], [0, 1, 0]], dtype=bool)
"""The (n_prompts, k) correctness matrix of exercise ch5-ex1."""


def _best_of_k() -> float:
    from grace.evaluation import accuracy_metrics

    return accuracy_metrics(CORRECTNESS_EXAMPLE)["best_of_k"]


def _avg_at_k() -> float:
    from grace.evaluation import accuracy_metrics

    return accuracy_metrics(CORRECTNESS_EXAMPLE)["avg_at_k"]


def _gap_of(ctx: Context, score: str) -> float:
    from grace.analysis import gap_record
    from grace.scores import SCORE_ORIENTATION

    return 100 * gap_record(ctx.pool, score, "student_avg_at_k", SCORE_ORIENTATION[score])["gap"]


def known_mistakes(exercise_id: str) -> Sequence[str]:
    """The sentences :func:`check` may answer a wrong answer of ``exercise_id`` with (besides the direction)."""
    return list(EXERCISES[exercise_id].mistakes)
