"""Students of the other distillation methods on a study's world: same student, teachers, prompts and test set.

The study (:mod:`grace.study`) trains one SFT student per teacher × temperature configuration (paper §3).
Chapters 11 and 12 train more students from the same pieces — soft labels (:mod:`grace.methods.soft`) and
rationales (:mod:`grace.methods.rationale`, :mod:`grace.saliency`) — and compare their avg@k, the GRACE scores
the study already computed (read from ``results.csv``, never recomputed) and the teacher rankings. Every
student is cached as a study stage is (``done.json`` with the hash of what it depends on).
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grace.io import read_json, read_jsonl, seed_for, stable_hash, write_jsonl


@dataclass
class StudyWorld:
    """What a chapter needs of a finished miniature study: its profile, task, prompts and model folders."""

    study_dir: Path
    prof: dict[str, Any]
    typed: Any
    task: Any
    prompts: list[dict[str, Any]]
    test_prompts: list[dict[str, Any]]

    @property
    def template(self) -> str:
        return self.prof["template"]

    @property
    def student_path(self) -> Path:
        return self.study_dir / "world" / "bases" / self.prof["world"]["student"]

    def teacher_path(self, teacher: str) -> Path:
        """A main-pool teacher's folder (the student itself, teacher ``student``, is its base)."""
        path = self.study_dir / "world" / "teachers" / teacher
        if not (path / "config.json").exists():
            raise ValueError(f"teacher {teacher!r} has no model under {path.parent}; use one of the study's teachers "
                             f"{sorted(p.name for p in path.parent.iterdir())}")
        return path

    def generations(self, config: str) -> list[dict[str, Any]]:
        """The configuration's non-blank teacher generations (the study's D_distill, paper §3)."""
        return [r for r in read_jsonl(self.study_dir / "generations" / config / "generations.jsonl")
                if r["response"].strip()]

    def problems(self) -> dict[str, Any]:
        """``prompt_id → grace.synthetic.Problem`` of the distillation prompts (their gold operands)."""
        g = self.typed.generation
        return {p.uid: p for p in self.task.problems("train", g.N, seed_for(self.typed.seed, "distill-prompts"))}


def open_study(study_dir: str | os.PathLike) -> StudyWorld:
    """The :class:`StudyWorld` of a finished miniature study (its ``profile.json``; prompts as the study drew them)."""
    from grace.study import validate_profile
    from grace.tasks import make_task

    study_dir = Path(study_dir)
    prof = read_json(study_dir / "profile.json")
    if "world" not in prof:
        raise ValueError(f"{study_dir} is a Hub-model study; these chapters train miniature students only")
    P = validate_profile(prof)
    task = make_task(P.task)
    prompts = task.train_prompts(P.generation.N, seed_for(P.seed, "distill-prompts"))
    test = task.test_prompts(P.evaluation.n_test, seed_for(P.seed, "test-prompts"))
    return StudyWorld(study_dir, prof, P, task, prompts, test)


def recipe(w: StudyWorld, seed: int, max_steps: int | None = None):
    """The study's distillation recipe (paper §3 as the profile sets it), seeded, optionally capped in steps."""
    cfg = w.typed.distill.train_config(seed=seed)
    return dataclasses.replace(cfg, max_steps=max_steps) if max_steps else cfg


def run_student(w: StudyWorld, out: str | os.PathLike, name: str, method: str, method_cfg: Any,
                examples: list[dict[str, Any]], teacher: str | None = None, seed: int = 0,
                max_steps: int | None = None, n_test: int | None = None) -> dict[str, Any]:
    """Train the study's student with ``method`` on ``examples`` and evaluate it as the study does (paper §3:
    avg@k at temperature 1, greedy, best-of-k); cached in ``out/name/done.json``.

    Returns ``{avg_at_k, greedy, best_of_k, train_loss, steps, n_examples, seconds}``.
    """
    from grace import methods
    from grace.evaluation import evaluate
    from grace.study import Log, cached, partial_dir
    from grace.world import load_model, load_tokenizer

    e = w.typed.evaluation
    tests = w.test_prompts[:n_test] if n_test else w.test_prompts
    cfg = recipe(w, seed_for(seed, "method-student", name), max_steps)
    sdir = Path(out) / name
    key = {"stage": "method-student", "method": method, "cfg": dataclasses.asdict(method_cfg),
           "recipe": dataclasses.asdict(cfg), "teacher": teacher, "student": str(w.prof["world"]["student"]),
           "study": read_json(w.study_dir / "complete.json"), "data": stable_hash(examples),
           "eval": w.prof["evaluation"], "tests": [p["prompt_id"] for p in tests], "template": w.template}

    def _run() -> dict[str, Any]:
        model, tok = load_model(w.student_path), load_tokenizer(w.student_path)
        t_model = t_tok = None
        if teacher is not None and methods.get_method(method).needs == "logits":
            t_model, t_tok = load_model(w.teacher_path(teacher)), load_tokenizer(w.teacher_path(teacher))
        train = methods.train(method, model, tok, examples, cfg, method_cfg, w.template,
                              partial_dir(sdir) / "trainer", teacher=t_model, teacher_tokenizer=t_tok)
        metrics, per_prompt = evaluate(model, tok, tests, w.task.is_correct, k=e.k, temperature=1.0,
                                       max_new_tokens=e.max_new_tokens, seed=seed_for(w.typed.seed, "eval"),
                                       template=w.template, batch_size=e.batch_size)
        write_jsonl(sdir / "per_prompt.jsonl", per_prompt)
        return {"avg_at_k": metrics["avg_at_k"], "greedy": metrics["greedy"], "best_of_k": metrics["best_of_k"],
                "train_loss": train["train_loss"], "steps": train["steps"], "n_examples": train["n_examples"],
                "seconds": train["seconds"]}

    out_summary = cached(sdir, key, _run, f"{method}/{name}", Log(Path(out)))
    return {k: v for k, v in out_summary.items() if not k.startswith("_")}


# ------------------------------------------------------------------------------------------------ rationale data


def gold_label(prompt: dict[str, Any]) -> str:
    """The answer-task target: the gold answer in GSM8K's ``#### N`` form (SVAMP-like labels, arXiv 2409.12586)."""
    return f"#### {prompt['answer']}"


def cot_body(response: str) -> str:
    """A teacher's chain of thought without its final ``#### N`` line (Distilling step-by-step's rationale)."""
    return response.rsplit("####", 1)[0].strip()


def first_samples(gens: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """``prompt_id → the teacher's first sampled response`` (lowest ``sample``)."""
    out: dict[Any, dict[str, Any]] = {}
    for r in sorted(gens, key=lambda r: r.get("sample", 0)):
        out.setdefault(r["prompt_id"], r)
    return out


def dual_records(prompts: list[dict[str, Any]], rationales: dict[Any, str] | None) -> list[dict[str, Any]]:
    """``{prompt_id, prompt, label, rationale}`` for :mod:`grace.methods.rationale` (``rationales=None``: answer only)."""
    return [{"prompt_id": p["prompt_id"], "prompt": p["prompt"], "label": gold_label(p),
             "rationale": (rationales or {}).get(p["prompt_id"], "")} for p in prompts]


def subsample(prompts: list[dict[str, Any]], n: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded subset of ``n`` prompts (all when ``n`` is None or larger), in their original order."""
    if n is None or n >= len(prompts):
        return list(prompts)
    keep = set(random.Random(seed).sample(range(len(prompts)), n))
    return [p for i, p in enumerate(prompts) if i in keep]


# ------------------------------------------------------------------------------------------------ rankings


def rank_agreement(a: pd.Series, b: pd.Series) -> dict[str, Any]:
    """Do two accuracy columns over the same teachers rank them alike? Spearman ρ and whether the top teacher is
    the same (``scipy.stats.spearmanr``; NaN with fewer than 3 teachers or a constant column)."""
    from grace.analysis import series_spearman

    both = pd.concat([a, b], axis=1).dropna()
    rho = series_spearman(both.iloc[:, 0], both.iloc[:, 1]) if len(both) >= 3 else float("nan")
    same_top = bool(both.iloc[:, 0].idxmax() == both.iloc[:, 1].idxmax()) if len(both) else None
    return {"n": len(both), "rho": rho, "same_best": same_top,
            "best_a": both.iloc[:, 0].idxmax() if len(both) else None,
            "best_b": both.iloc[:, 1].idxmax() if len(both) else None}


def grace_rho(results: pd.DataFrame, target: pd.Series, n_boot: int, seed: int) -> tuple[float, float, float]:
    """GRACE's oriented Spearman ρ (paper §3.1) with another set of students' avg@k, over the configurations in
    ``target``'s index; GRACE read from the study's ``results.csv``. Returns ``(rho, ci_low, ci_high)``."""
    from grace.analysis import spearman_table

    df = results.set_index("config").loc[list(target.index)].copy()
    df["method_avg_at_k"] = target.to_numpy(float)
    if len(df) < 3:
        return float("nan"), float("nan"), float("nan")
    tab = spearman_table(df.reset_index(), target="method_avg_at_k", scores=["grace"], n_boot=n_boot, seed=seed)
    r = tab.iloc[0]
    return float(r["rho_oriented"]), float(r["ci_low"]), float(r["ci_high"])


def seed_ci(values: np.ndarray | list[float], ci: float = 0.95) -> tuple[float, float, float]:
    """Mean over seeds with a t-interval (``scipy.stats.t``); NaN bounds with one seed."""
    from scipy import stats

    v = np.asarray(values, float)
    m = float(v.mean()) if len(v) else float("nan")
    if len(v) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + ci / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


# ------------------------------------------------------------------------------------------------ soft labels


def grid_cells(taus: list[float], alphas: list[float]) -> list[tuple[float | None, float]]:
    """The (τ, α) cells of a soft-label grid: α = 0 is SFT whatever τ, so it is one cell ``(None, 0)``."""
    cells: list[tuple[float | None, float]] = [(None, 0.0)] if 0 in [float(a) for a in alphas] else []
    cells += [(float(t), float(a)) for a in alphas if float(a) > 0 for t in taus]
    return cells


def soft_label_grid(w: StudyWorld, results: pd.DataFrame, configs: list[str], taus: list[float], alphas: list[float],
                    out: str | os.PathLike, seed: int = 0, max_steps: int | None = None,
                    n_test: int | None = None) -> pd.DataFrame:
    """One student per configuration × (τ, α) cell (Hinton et al. 2015 §2 on the study's teacher texts).

    Returns rows ``config, teacher, tau, alpha, method, avg_at_k, greedy, best_of_k, train_loss, steps, seconds``
    (``tau`` NaN and method ``sft`` for α = 0).
    """
    from grace.methods.sft import SFTConfig
    from grace.methods.soft import SoftLabelConfig

    by = results.set_index("config")
    rows = []
    for config in configs:
        teacher, gens = by.loc[config, "teacher"], w.generations(config)
        for tau, alpha in grid_cells(taus, alphas):
            if tau is None:
                name, method, cfg = f"{config}/sft", "sft", SFTConfig()
            else:
                name, method, cfg = f"{config}/soft-t{tau:g}-a{alpha:g}", "soft", SoftLabelConfig(temperature=tau,
                                                                                                  alpha=alpha)
            r = run_student(w, out, name, method, cfg, gens, teacher=teacher, seed=seed, max_steps=max_steps,
                            n_test=n_test)
            rows.append({"config": config, "teacher": teacher, "tau": np.nan if tau is None else tau, "alpha": alpha,
                         "method": method, **r})
    return pd.DataFrame(rows)


def entropy_by_tau(w: StudyWorld, results: pd.DataFrame, configs: list[str], taus: list[float],
                   n_examples: int = 256) -> pd.DataFrame:
    """Mean entropy (nats) of each configuration's teacher soft labels on its own text, per τ (the overview's
    "dark knowledge": how much probability lies off the argmax). Rows: configuration; columns: τ."""
    from grace.encoding import encode_all
    from grace.methods.soft import teacher_entropy
    from grace.world import load_model, load_tokenizer

    by = results.set_index("config")
    rows = {}
    for config in configs:
        path = w.teacher_path(by.loc[config, "teacher"])
        model, tok = load_model(path), load_tokenizer(path)
        enc = encode_all(tok, w.generations(config)[:n_examples], w.template, 256)
        rows[config] = teacher_entropy(model, enc, taus, tok.pad_token_id)
    return pd.DataFrame.from_dict(rows, orient="index")


# ------------------------------------------------------------------------------------------------ rationales


def nearest_config(results: pd.DataFrame, teacher: str, temperature: float) -> str:
    """The teacher's configuration at the study temperature nearest ``temperature``."""
    sub = results[results["teacher"] == teacher]
    if not len(sub):
        raise ValueError(f"teacher={teacher!r} is not in the study; use one of {sorted(results['teacher'].unique())}")
    return str(sub.iloc[int(np.argmin(np.abs(sub["temperature"].to_numpy(float) - temperature)))]["config"])


def strongest_teacher(pool: pd.DataFrame) -> str:
    """The main-pool teacher with the highest own avg@k (its card; ties: first by name) — a GRACE-free choice."""
    t = pool.groupby("teacher")["teacher_avg_at_k"].first().sort_index()
    return str(t.idxmax())


def rationales_for(w: StudyWorld, config: str, prompts: list[dict[str, Any]], kind: str, ks: list[int],
                   seed: int = 0, ig_steps: int = 16, max_target_tokens: int | None = None) -> pd.DataFrame:
    """Rationales of one configuration's teacher for ``prompts`` (arXiv 2409.12586 §3 and its checks).

    ``kind``: ``saliency`` or ``integrated_gradients`` (Captum on the teacher, target: its first sampled response
    to the prompt), ``random`` (k question tokens drawn uniformly) or ``cot`` (the teacher's chain of thought,
    Distilling step-by-step; ``k`` is 0). Rows: ``prompt_id, k, rationale, operand_share``.
    """
    from grace import saliency as S
    from grace.world import load_model, load_tokenizer

    teacher = config.split("@")[0]
    first = first_samples(w.generations(config))
    if kind == "cot":
        return pd.DataFrame([{"prompt_id": p["prompt_id"], "k": 0, "rationale": cot_body(first[p["prompt_id"]]["response"])
                              if p["prompt_id"] in first else "", "operand_share": np.nan} for p in prompts])
    probs = w.problems()
    tok = load_tokenizer(w.teacher_path(teacher))
    model = None if kind == "random" else load_model(w.teacher_path(teacher))
    method = "saliency" if kind == "random" else kind
    cfg = S.SaliencyConfig(method=method, k=max(ks), ig_steps=ig_steps, max_target_tokens=max_target_tokens)
    recs = [{"prompt_id": p["prompt_id"], "prompt": p["prompt"], "target": first[p["prompt_id"]]["response"]}
            for p in prompts if p["prompt_id"] in first]
    rows = S.extract(model, tok, recs, w.template, cfg, lambda r: probs[r["prompt_id"]].operands, ks=ks,
                     random_seed=(seed, "random") if kind == "random" else None)
    return pd.DataFrame(rows)


def operand_base_rate(w: StudyWorld, prompts: list[dict[str, Any]], tokenizer) -> float:
    """Mean share of a question's tokens that are gold operands: the random pick's expected share."""
    from grace import saliency as S

    probs = w.problems()
    return float(np.mean([S.operand_base_rate(tokenizer, p["prompt"], w.template, probs[p["prompt_id"]].operands)
                          for p in prompts]))


# ------------------------------------------------------------------------------------------------ chapter tables


def grid_cell(grid: pd.DataFrame, tau: float, alpha: float) -> pd.Series:
    """``config → avg@k`` of the soft-label students of one (τ, α) cell of :func:`soft_label_grid`."""
    sel = grid[(grid["method"] == "soft") & (grid["tau"] == tau) & (grid["alpha"] == alpha)]
    return sel.set_index("config")["avg_at_k"]


def rationale_records(prompts: list[dict[str, Any]], table: pd.DataFrame | None, k: int | None = None) -> list[dict]:
    """:func:`dual_records` from a :func:`rationales_for` table (its rows of ``k``; None: answer only)."""
    if table is None:
        return dual_records(prompts, None)
    sub = table if k is None else table[table["k"] == k]
    return dual_records(prompts, dict(zip(sub["prompt_id"], sub["rationale"], strict=True)))


def paired_seed_diff(runs: pd.DataFrame, a: str, b: str, ci: float = 0.95) -> tuple[float, float, float]:
    """Mean over seeds of avg@k(condition a) − avg@k(condition b), paired by seed, with :func:`seed_ci`."""
    x = runs[runs["condition"] == a].set_index("seed")["avg_at_k"]
    y = runs[runs["condition"] == b].set_index("seed")["avg_at_k"]
    return seed_ci((x - y).dropna().to_numpy(), ci)


def better_verdict(m: float, lo: float, what: str) -> tuple[str, str]:
    """Verdict for "A beats B" from a mean difference and its CI low (grace.claims.verdict_bool): reproduced if
    the CI is above 0 (or, without a CI, the mean), partly if the mean is above 0."""
    from grace.claims import verdict_bool

    holds = None if not np.isfinite(m) else (bool(lo > 0) if np.isfinite(lo) else bool(m > 0))
    return verdict_bool(holds, partly=bool(np.isfinite(m) and m > 0),
                        rule=f"reproduced if the CI of {what} is above 0; partly if the mean is above 0")
