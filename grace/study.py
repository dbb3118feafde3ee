"""The study runner: the paper's teacher-selection experiment end to end, cached stage by stage (paper §3).

For every teacher × temperature configuration the runner

1. samples the distillation set D_distill: N prompts × M responses              (paper §2, §3)
2. computes the student's gradient features on an n × m subset D_eval            (paper §2.1)
3. scores the configuration with GRACE and every baseline                       (eqs. 1–6, App. C.1)
4. distils the student on all of D_distill and evaluates avg@k, greedy, best-of-k (paper §3)

and then writes one tidy table (``results.csv``, one row per configuration) and the analysis tables
(Spearman with bootstrap CIs, selection gaps, size budgets, families, temperatures, robustness).

The miniature profiles (``smoke``, ``quick``, ``full``) first *build the world* — tokenizer, base
models, teacher pool — with :mod:`grace.world`; the ``gpu`` profile names Hub models instead.

Caching: each stage writes its outputs and finally a ``done.json`` holding the hash of everything
it depends on (its config and the hashes of its inputs). A rerun skips stages whose ``done.json``
matches. Inside a stage, generation and evaluation keep every finished batch and distillation its
checkpoints (``distill.save_steps``) in the stage's ``_partial/`` directory, so a ``kill -9`` loses at
most the batch in flight (or the steps since the last checkpoint) and a rerun continues there. Every
stage and batch is seeded from the profile seed and its own identity, never from what ran before, so
a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grace.config import Profile, parse_profile
from grace.io import read_json, read_jsonl, seed_for, stable_hash, write_json, write_jsonl
from grace.tasks import make_task

PROFILE_DIR = Path(__file__).parent / "profiles"
RESULT_TARGETS = ("student_avg_at_k", "student_greedy", "student_best_of_k")


# --------------------------------------------------------------------------------------------------
# profiles


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """Load a study profile: a bundled name (``smoke``, ``quick``, ``full``, ``gpu``) or a YAML path."""
    from grace.validate import yaml_mapping

    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ValueError(f"unknown profile {str(name_or_path)!r}: use one of {available_profiles()} "
                             "or a path to a YAML file (copy one from grace/profiles/)")
    elif not path.exists():
        raise FileNotFoundError(f"profile file {str(path)!r} does not exist")
    profile = yaml_mapping(path, "profile")  # a YAML syntax error is path:line:col; a list or scalar is refused
    profile.setdefault("name", path.stem)
    try:
        validate_profile(profile)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return profile


def validate_profile(p: dict[str, Any]) -> Profile:
    """Check a profile's structure and return its typed sections; errors name the key and the fix (schema:
    :mod:`grace.config`)."""
    P = parse_profile(p)  # unknown or mistyped keys raise here
    for key in ("task", "temperatures", "generation", "features", "scores", "distill", "evaluation"):
        if key not in p:
            raise ValueError(f"profile {p.get('name')!r} lacks '{key}'; copy grace/profiles/quick.yaml as a template")
    if ("world" in p) == ("models" in p):
        raise ValueError("a profile needs exactly one of 'world' (build the miniature world) or 'models' (Hub ids)")
    temps, g, f, e = P.temperatures, P.generation, P.features, P.evaluation
    if not temps or any(t <= 0 for t in temps):
        raise ValueError(f"temperatures={temps}: every sampling temperature must be > 0 (the paper uses 0.3–1.0)")
    if g.M < 1 or g.N < 1:
        raise ValueError(f"generation N={g.N}, M={g.M} must be >= 1")
    if e.k < 1:
        raise ValueError(f"evaluation k={e.k} must be >= 1 (the paper uses k=16)")
    if f.n > g.N or f.m > g.M:
        raise ValueError(f"features n={f.n}, m={f.m} must not exceed generation N={g.N}, M={g.M} "
                         "(D_eval is a subset of D_distill, paper §2.1)")
    if P.scores.n_folds > f.n:
        raise ValueError(f"scores n_folds={P.scores.n_folds} exceeds features n={f.n} prompts")
    return P


@dataclass(frozen=True)
class StudyProfile:
    """A profile parsed once for a whole run (paper §3's settings), handed to every stage.

    ``typed`` holds the sections the stages read (:class:`grace.config.Profile`, defaults filled in);
    ``raw`` is the mapping as written, which ``profile.json`` and the stage cache keys hash, so that a
    changed default in :mod:`grace.config` is never mistaken for the same configuration.
    """

    raw: dict[str, Any]
    typed: Profile


# --------------------------------------------------------------------------------------------------
# caching


class Log:
    """One line per stage with its time; the runner's only printing."""

    def __init__(self, out: Path, quiet: bool = False):
        self.path, self.quiet = out / "study.log", quiet
        out.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, file=sys.stderr, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def cached(stage_dir: Path, key: dict[str, Any], fn: Callable[[], dict[str, Any]], label: str, log: Log,
           donors: Sequence[Path] = ()) -> dict[str, Any]:
    """Run ``fn`` unless ``stage_dir/done.json`` records the same ``key``; return its summary.

    ``donors`` are the same stage in other studies (e.g. a teacher two regimes share): the first whose
    ``done.json`` records this key is copied into ``stage_dir`` instead of running ``fn``.
    """
    from grace import __version__

    marker = stage_dir / "done.json"
    h = stable_hash({**key, "grace_version": __version__})
    if marker.exists():
        done = read_json(marker)
        if done.get("key") == h:
            return done["summary"] | {"_key": h}
    for donor in donors:
        given = read_json(donor / "done.json") if (donor / "done.json").exists() else {}
        if given.get("key") == h:
            tmp = stage_dir.with_name(stage_dir.name + ".copying")  # done.json last, then one rename: a kill
            shutil.rmtree(tmp, ignore_errors=True)                   # leaves no half-copied stage marked done
            shutil.copytree(donor, tmp, ignore=shutil.ignore_patterns(partial_dir(donor).name, "done.json"))
            shutil.copy2(donor / "done.json", tmp / "done.json")
            shutil.rmtree(stage_dir, ignore_errors=True)
            tmp.rename(stage_dir)
            log(f"{label}: copied from {donor}")
            return given["summary"] | {"_key": h}
    scratch = partial_dir(stage_dir)
    resumed = (scratch / "key.json").exists() and read_json(scratch / "key.json").get("key") == h
    if stage_dir.exists():  # stale or interrupted: start clean, but keep an interrupted run's own batches
        for child in stage_dir.iterdir():
            if not (resumed and child == scratch):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    stage_dir.mkdir(parents=True, exist_ok=True)
    write_json(scratch / "key.json", {"key": h})
    t0 = time.time()
    summary = fn()
    seconds = time.time() - t0
    write_json(marker, {"key": h, "config": key, "summary": summary, "seconds": round(seconds, 2)})
    shutil.rmtree(scratch, ignore_errors=True)
    brief = ", ".join(f"{k}={_fmt(v)}" for k, v in summary.items() if isinstance(v, int | float) and not k.startswith("_"))
    log(f"{label}: {seconds:.1f}s{' (resumed)' if resumed else ''}  {brief}")
    return summary | {"_key": h}


def partial_dir(stage_dir: Path) -> Path:
    """Where a stage keeps its finished batches and checkpoints while it runs (removed when it is done).

    :func:`cached` keeps this directory when a rerun has the same key, so a killed stage resumes from
    there (generation and evaluation batches as :class:`grace.io.Journal` files, distillation from its
    last checkpoint); any other key starts it empty.
    """
    return stage_dir / "_partial"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# --------------------------------------------------------------------------------------------------
# world / models


def build_world(sp: StudyProfile, task, out: Path, log: Log, progress: bool,
                donors: Sequence[Path] = ()) -> dict[str, Any]:
    """Build (or reuse) the miniature world: tokenizer, bases, teachers (:mod:`grace.world`).

    ``donors``: other studies' directories whose world stages may be copied where their cache keys match.
    """
    import random

    from grace import world as W
    from grace.distill import TrainConfig
    from grace.synthetic import FIT_STYLES, STYLES, pretraining_corpus, render_solution

    profile, P = sp.raw, sp.typed
    w, raw_pre, seed, template = P.world, profile["world"].get("pretrain", {}), P.seed, P.template
    sizes = {k: W.ModelSize(**asdict(v)) for k, v in w.sizes.items()}
    wdir = out / "world"

    n_tok, varied, pre = w.tokenizer_problems, w.variation, w.pretrain
    tok_key = {"stage": "tokenizer", "seed": seed, "n": n_tok, "task": profile["task"], "pattern": W.TOKEN_PATTERN,
               "corpus": pre.n_texts, "template": template}
    if varied or pre.worked_share:  # keys of the original world stay as they were
        tok_key.update(variation=varied, worked_share=raw_pre.get("worked_share"), worked_mix=pre.worked_mix)
    # the strong world's vocabulary holds every FIT_STYLES family, whichever of them its pool uses; worlds
    # without one keep their keys and vocabulary as they were
    uses_fit = ({t.style for t in w.teachers} | set(pre.worked_mix or {})) & set(FIT_STYLES)
    fit = sorted(FIT_STYLES) if uses_fit else []
    if fit:
        tok_key["fit_styles"] = fit

    def _tokenizer() -> dict[str, Any]:
        probs = task.problems("train", n_tok, seed_for(seed, "tokenizer"))
        rng = random.Random(seed)
        texts = [p.question for p in probs] + [render_solution(p, s, rng) for p in probs for s in STYLES]
        if varied:  # every word a varied chain of thought can use is in the vocabulary
            texts += [render_solution(p, s, rng, varied=True) for p in probs for s in STYLES]
        texts += [render_solution(p, s, rng) for p in probs for s in fit]
        texts += pretraining_corpus(n_tok, seed_for(seed, "tokenizer-corpus"), task.difficulty)
        texts += [template.format(prompt="")]
        tok = W.build_tokenizer(texts)
        tok.save_pretrained(wdir / "tokenizer")
        return {"vocab": len(tok)}

    def given(stage: str) -> list[Path]:  # the same stage in the donor studies
        return [Path(d) / "world" / stage for d in donors]

    tok_sum = cached(wdir / "tokenizer", tok_key, _tokenizer, "world/tokenizer", log, given("tokenizer"))
    tokenizer = W.load_tokenizer(wdir / "tokenizer")

    needed = sorted({w.student} | {t.size or w.student for t in w.teachers if t.style != "self"})
    bases: dict[str, dict[str, Any]] = {}
    for size in needed:
        if size not in sizes:
            raise ValueError(f"world size {size!r} is not defined under world.sizes ({sorted(sizes)})")
        steps = int(pre.steps[size])
        key = {"stage": "base", "size": size, "shape": profile["world"]["sizes"][size], "steps": steps, "pre": raw_pre,
               "tok": tok_sum["_key"], "seed": seed}

        def _base(size=size, steps=steps) -> dict[str, Any]:
            texts = pretraining_corpus(pre.n_texts, seed_for(seed, "pretrain-corpus"), task.difficulty,
                                       worked_share=pre.worked_share, worked_mix=pre.worked_mix, template=template,
                                       min_steps=task.min_steps, max_steps=task.max_steps)
            cfg = TrainConfig(learning_rate=pre.learning_rate, max_steps=steps, batch_size=pre.batch_size,
                              seed=seed_for(seed, "base", size))
            s = W.pretrain_base(sizes[size], tokenizer, texts, cfg, wdir / "bases" / size, seed_for(seed, "init", size),
                                progress=progress)
            shutil.rmtree(wdir / "bases" / size / "_trainer", ignore_errors=True)
            return s

        s = cached(wdir / "bases" / size, key, _base, f"world/base-{size}", log, given(f"bases/{size}"))
        bases[size] = {"path": wdir / "bases" / size, "key": s["_key"], "params": s["params"]}

    student = bases[w.student]
    n_teacher_problems = w.teacher_problems
    teachers: dict[str, dict[str, Any]] = {}
    for t in w.teachers:
        spec = W.TeacherSpec(name=t.name, style=t.style, size=t.size or w.student, steps=t.steps,
                             learning_rate=w.teacher_lr if t.learning_rate is None else t.learning_rate,
                             seed=seed_for(seed, "teacher", t.name), varied=varied if t.varied is None else t.varied,
                             pool=t.pool or W.default_pool(t.style))
        if spec.style == "self":
            teachers[spec.name] = {"path": student["path"], "key": student["key"], "family": "self",
                                   "size_label": w.student, "size_params": student["params"], "style": "self",
                                   "steps": 0, "pool": spec.pool}
            continue
        base = bases[spec.size]
        spec_key = {k: v for k, v in spec.__dict__.items() if k not in ("varied", "pool")}
        if spec.varied:
            spec_key["varied"] = True
        key = {"stage": "teacher", "spec": spec_key, "base": base["key"], "n_problems": n_teacher_problems,
               "template": template, "batch": w.teacher_batch_size}
        tdir = wdir / "teachers" / spec.name

        def _teacher(spec=spec, base=base, tdir=tdir) -> dict[str, Any]:
            probs = task.problems("train", n_teacher_problems, seed_for(seed, "teacher-data", spec.style))
            s = W.train_teacher(spec, base["path"], probs, template, tdir, batch_size=w.teacher_batch_size,
                                progress=progress)
            shutil.rmtree(tdir / "_trainer", ignore_errors=True)
            return {k: v for k, v in s.items() if isinstance(v, int | float | str)}

        s = cached(tdir, key, _teacher, f"world/teacher-{spec.name}", log, given(f"teachers/{spec.name}"))
        teachers[spec.name] = {"path": tdir, "key": s["_key"], "family": spec.family, "size_label": spec.size,
                               "size_params": s["params"], "style": spec.style, "steps": spec.steps, "pool": spec.pool}
    return {"student": student, "teachers": teachers}


def hub_models(sp: StudyProfile) -> dict[str, Any]:
    """The ``models`` section of a GPU profile: Hub ids or local paths for the student and teachers."""
    from grace.world import default_pool

    profile, m = sp.raw, sp.typed.models
    rev = m.student_revision  # pinned revisions go into every cache key
    student = {"path": m.student, "key": stable_hash([m.student, rev] if rev else m.student),
               "params": m.student_params, "revision": rev}
    teachers = {}
    for raw, t in zip(profile["models"]["teachers"], m.teachers, strict=True):
        teachers[t.name] = {"path": t.id, "key": stable_hash(raw), "family": t.family, "size_label": t.size_label,
                            "size_params": int(float(t.size_params)), "style": t.family, "steps": 0, "chat": t.chat,
                            "pool": t.pool or default_pool(t.family), "revision": t.revision}
    return {"student": student, "teachers": teachers}


# --------------------------------------------------------------------------------------------------
# per-configuration stages


def _load(path, device: str, dtype: str | None = None, revision: str | None = None):
    """A model and its tokenizer in the profile's ``dtype`` (float32 when absent), at ``revision`` (Hub)."""
    from grace.world import load_model, load_tokenizer

    return (load_model(path, device=device, dtype=dtype or "float32", revision=revision),
            load_tokenizer(path, revision=revision))


def _dtype_key(P: Profile) -> dict[str, Any]:
    """The cache-key part of the profile's dtype (empty for float32, so the miniature's keys are unchanged)."""
    dtype = P.dtype
    return {"dtype": dtype} if dtype != "float32" else {}


def _chat_kwargs(profile: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """``chat``/``chat_instruction`` for a teacher: instruct models (``chat: true``) get their chat template."""
    from grace.generation import CHAT_INSTRUCTION

    if not t.get("chat", False):
        return {"chat": False}
    # absent: the default instruction; an explicit null: none (so the raw mapping is read here)
    return {"chat": True, "chat_instruction": profile.get("chat_instruction", CHAT_INSTRUCTION)}


def _chat_key(profile: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """The cache-key part of :func:`_chat_kwargs` (empty for base models, so their keys are unchanged)."""
    kw = _chat_kwargs(profile, t)
    return kw if kw["chat"] else {}


def _backend(sp: StudyProfile, path) -> Any:
    """A :class:`grace.generation.VLLMBackend` for ``path`` when ``generation.backend`` is ``vllm``, else ``None``."""
    profile, P = sp.raw, sp.typed
    if P.generation.backend != "vllm":
        return None
    from grace.generation import VLLMBackend
    from grace.world import load_tokenizer

    # vLLM keeps the checkpoint's own dtype ("auto") unless the profile names one
    return VLLMBackend(path, load_tokenizer(path), tensor_parallel_size=P.generation.tensor_parallel_size,
                       dtype=P.dtype if "dtype" in profile else "auto", seed=P.seed)


def _teacher(sp: StudyProfile, t: dict[str, Any], device: str):
    """``(model, tokenizer, backend)`` for sampling a teacher: vLLM's (no model loaded) or transformers'."""
    backend = _backend(sp, t["path"])
    if backend is not None:
        return None, backend.tokenizer, backend
    return (*_load(t["path"], device, sp.typed.dtype, t.get("revision")), None)


def stage_teacher_card(sp: StudyProfile, task, name: str, t: dict[str, Any], test_prompts, out: Path, log: Log, progress: bool):
    """Teacher card: family, size, training steps and its own avg@k on the test split (paper Fig. 4)."""
    from grace.evaluation import evaluate

    profile, P = sp.raw, sp.typed
    e, device = P.evaluation, P.device
    key = {"stage": "card", "teacher": t["key"], "eval": profile["evaluation"], "n_test": len(test_prompts), "template": profile["template"],
           "test": stable_hash([p["prompt_id"] for p in test_prompts]), **_chat_key(profile, t), **_dtype_key(P)}
    cdir = out / "cards" / name

    def _card() -> dict[str, Any]:
        model, tok, backend = _teacher(sp, t, device)
        metrics, per_prompt = evaluate(model, tok, test_prompts, task.is_correct, k=e.k, temperature=1.0,
                                       max_new_tokens=e.max_new_tokens, seed=seed_for(P.seed, "card", name),
                                       template=P.template, batch_size=e.batch_size,
                                       device=device, progress=progress, backend=backend,
                                       resume_dir=partial_dir(cdir), **_chat_kwargs(profile, t))
        write_jsonl(cdir / "per_prompt.jsonl", per_prompt)
        return {"avg_at_k": metrics["avg_at_k"], "greedy": metrics["greedy"], "best_of_k": metrics["best_of_k"],
                "family": t["family"], "size_label": t["size_label"], "size_params": int(t["size_params"]),
                "steps": int(t["steps"])}

    return cached(cdir, key, _card, f"card/{name}", log)


def stage_generate(sp: StudyProfile, task, name: str, t: dict[str, Any], temperature: float, prompts, out: Path, log: Log,
                   progress: bool) -> tuple[dict[str, Any], Path]:
    """D_distill for one configuration: N prompts × M responses at ``temperature`` (paper §3)."""
    from grace.generation import generate_records

    profile, P = sp.raw, sp.typed
    g, device = P.generation, P.device
    config = f"{name}@{temperature:g}"
    gdir = out / "generations" / config
    key = {"stage": "generate", "teacher": t["key"], "T": temperature, "gen": profile["generation"], "template": profile["template"],
           "prompts": stable_hash([p["prompt_id"] for p in prompts]), "seed": profile["seed"], **_chat_key(profile, t),
           **_dtype_key(P)}

    def _gen() -> dict[str, Any]:
        model, tok, backend = _teacher(sp, t, device)
        recs = generate_records(model, tok, prompts, g.M, temperature, teacher=name, is_correct=task.is_correct,
                                backend=backend, max_new_tokens=g.max_new_tokens, seed=seed_for(P.seed, "gen", config),
                                template=P.template, batch_size=g.batch_size, device=device,
                                min_new_tokens=g.min_new_tokens, progress=progress,
                                resume=partial_dir(gdir) / "generate.jsonl", **_chat_kwargs(profile, t))
        empty = sum(1 for r in recs if not r["response"].strip())
        write_jsonl(gdir / "generations.jsonl", recs)
        return {"records": len(recs), "teacher_accuracy": float(np.mean([r["correct"] for r in recs])),
                "empty_responses": empty}

    s = cached(gdir, key, _gen, f"generate/{config}", log)
    return s, gdir / "generations.jsonl"


def scoring_subset(records: list[dict[str, Any]], prompt_ids: list[Any], m: int) -> list[dict[str, Any]]:
    """D_eval ⊂ D_distill: the first ``m`` non-blank responses of each chosen prompt, grouped by prompt.

    Blank (whitespace-only) responses carry no signal to score; they are counted in the results
    table (``empty_responses``) and skipped here and in distillation.
    """
    by_prompt: dict[Any, list[dict[str, Any]]] = {}
    for r in records:
        if r["response"].strip():
            by_prompt.setdefault(r["prompt_id"], []).append(r)
    out = []
    for pid in prompt_ids:
        rs = sorted(by_prompt.get(pid, []), key=lambda r: r.get("sample", 0))
        if len(rs) < m:
            raise ValueError(f"prompt_id {pid!r} has {len(rs)} non-blank generations, need m={m}; "
                             "raise generation.min_new_tokens or lower features.m")
        out.extend(rs[:m])
    return out


def stage_features(sp: StudyProfile, config: str, student: dict[str, Any], gen_key: str, gen_path: Path, score_prompt_ids,
                   out: Path, log: Log, progress: bool) -> Path:
    """Student gradient features on D_eval for one configuration (paper §2.1)."""
    from grace.features import compute_features
    from grace.projectors import make_projector

    profile, P = sp.raw, sp.typed
    f, device = P.features, P.device
    fdir = out / "features" / config
    key = {"stage": "features", "student": student["key"], "gen": gen_key, "features": profile["features"], "template": profile["template"],
           "prompts": stable_hash(list(score_prompt_ids)), "seed": profile["seed"], **_dtype_key(P)}

    def _feat() -> dict[str, Any]:
        model, tok = _load(student["path"], device, P.dtype, student.get("revision"))
        subset = scoring_subset(read_jsonl(gen_path), score_prompt_ids, f.m)
        extra = {}
        if f.lora is not None:  # gradients with respect to LoRA adapters (grace.lora)
            from grace.lora import LoraSpec, lora_student

            spec = LoraSpec(**f.lora)
            model, extra = lora_student(model, spec, seed_for(P.seed, "lora")), {"lora": spec.meta()}
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        proj = make_projector(f.projector, n_params, f.d, seed_for(P.seed, "proj"), device=device, model=model,
                              norms=f.norms, **({"precision": f.precision} if f.precision else {}))
        budget = int(f.memory_budget_mb * 2**20) if f.memory_budget_mb else None
        feats = compute_features(model, tok, subset, proj, length_scale=f.length_scale, template=P.template,
                                 batch_size=f.batch_size, device=device, progress=progress, memory_budget=budget,
                                 extra_meta=extra)
        feats.save(fdir / "features.npz")
        return {"rows": int(feats.H.shape[0]), "d": int(feats.H.shape[1])}

    cached(fdir, key, _feat, f"features/{config}", log)
    return fdir / "features.npz"


def stage_student(sp: StudyProfile, task, config: str, student: dict[str, Any], gen_key: str, gen_path: Path, test_prompts,
                  out: Path, log: Log, progress: bool, filtered: bool = False) -> dict[str, Any]:
    """Distil the student on all of D_distill, then evaluate it (paper §3).

    ``filtered=True`` trains on correct responses only, resampled per prompt (App. D.1).
    """
    from grace.distill import distill
    from grace.evaluation import evaluate

    profile, P = sp.raw, sp.typed
    d, e, device = dict(profile["distill"]), P.evaluation, P.device
    ds = dataclasses.replace(P.distill, filter_correct=True) if filtered else P.distill
    if filtered:
        d["filter_correct"] = True
        config = f"{config}+filtered"
    sdir = out / "students" / config
    key = {"stage": "student", "student": student["key"], "gen": gen_key, "distill": d, "eval": profile["evaluation"],
           "template": profile["template"], "test": stable_hash([p["prompt_id"] for p in test_prompts]),
           "seed": profile["seed"], **_dtype_key(P)}

    def _student() -> dict[str, Any]:
        model, tok = _load(student["path"], device, None, student.get("revision"))  # fp32 masters
        cfg = ds.train_config(seed=seed_for(P.seed, "distill"))
        train = distill(model, tok, [r for r in read_jsonl(gen_path) if r["response"].strip()], cfg,
                        P.template, partial_dir(sdir) / "trainer", progress=progress)
        backend = None
        if ds.save_model or P.generation.backend == "vllm":
            from grace.world import save_model

            save_model(model, tok, sdir / "model")  # vLLM samples the distilled student from disk
            backend = _backend(sp, sdir / "model")
        metrics, per_prompt = evaluate(model, tok, test_prompts, task.is_correct, k=e.k, temperature=1.0,
                                       max_new_tokens=e.max_new_tokens, seed=seed_for(P.seed, "eval"),
                                       template=P.template, batch_size=e.batch_size,
                                       device=device, progress=progress, backend=backend,
                                       resume_dir=partial_dir(sdir) / "eval")
        write_jsonl(sdir / "per_prompt.jsonl", per_prompt)
        return {"avg_at_k": metrics["avg_at_k"], "greedy": metrics["greedy"], "best_of_k": metrics["best_of_k"],
                "train_loss": train["train_loss"], "steps": train["steps"], "n_examples": train["n_examples"]}

    return cached(sdir, key, _student, f"student/{config}", log)


def stage_world_checks(sp: StudyProfile, out: Path, log: Log, results=None) -> dict[str, Any]:
    """GRACE-free acceptance checks of the world (``analysis/world_checks.json``; paper §3's setting).

    ``results``: the configurations' table when it is not (yet) ``out/results.csv``.
    """
    from grace.world_checks import compute_world_checks, summary_lines

    P = sp.typed
    checks = compute_world_checks(out, n_pairs=P.world_checks.n_pairs, n_boot=P.analysis.n_boot, profile=P,
                                  results=results)
    log("\n".join(summary_lines(checks)))
    return checks


# --------------------------------------------------------------------------------------------------
# the study


def env_threads() -> int | None:
    """``GRACE_THREADS`` (torch threads for a study, over the profile's ``threads``), checked; None when unset."""
    v = os.environ.get("GRACE_THREADS", "").strip()
    if not v:
        return None
    if not v.isdigit() or int(v) < 1:
        raise ValueError(f"GRACE_THREADS={v!r} is not a whole number >= 1; unset it, or set e.g. GRACE_THREADS=1")
    return int(v)


def run_study(profile: dict[str, Any], out: str | os.PathLike, progress: bool = True, checks_only: bool = False,
              share_world_from: Sequence[str | os.PathLike] = ()):
    """Run every stage for every configuration and write ``results.csv`` + ``analysis/`` (paper §3).

    ``checks_only=True`` runs the same stages (world, generations, features, students) but computes no
    score: it writes only ``analysis/world_checks.json`` (:mod:`grace.world_checks`), so a new world is
    judged by its GRACE-free acceptance checks before any score exists. A later full run reuses every
    stage from the cache. ``share_world_from``: other studies whose trained world stages (tokenizer,
    bases, teachers) are copied where their cache keys match, instead of training them again.

    Returns:
        The results table (a pandas DataFrame, one row per teacher × temperature configuration; without
        score columns when ``checks_only``).
    """
    import pandas as pd
    import torch

    from grace.features import Features
    from grace.scores import score_features

    profile = copy.deepcopy(profile)
    P = validate_profile(profile)  # the one parse of this run: the stages get its typed sections
    sp = StudyProfile(profile, P)
    out = Path(out)
    log = Log(out)
    t_start = time.time()
    # GRACE_THREADS overrides the profile (e.g. 1 each for two studies side by side on 2 cores)
    torch.set_num_threads(env_threads() or P.threads or torch.get_num_threads())
    log(f"study profile={profile['name']} out={out} seed={profile['seed']}")
    write_json(out / "profile.json", profile)

    task = make_task(P.task)
    g, f, sc, seed = P.generation, P.features, P.scores, P.seed
    prompts = task.train_prompts(g.N, seed_for(seed, "distill-prompts"))
    test_prompts = task.test_prompts(P.evaluation.n_test, seed_for(seed, "test-prompts"))
    rng = np.random.default_rng(seed_for(seed, "score-prompts"))
    score_prompt_ids = [prompts[i]["prompt_id"] for i in sorted(rng.choice(len(prompts), f.n, replace=False))]

    models = build_world(sp, task, out, log, progress, share_world_from) if "world" in profile else hub_models(sp)
    student = models["student"]

    rows = []
    for name, t in models["teachers"].items():
        card = stage_teacher_card(sp, task, name, t, test_prompts, out, log, progress)
        for temperature in P.temperatures:
            config = f"{name}@{temperature:g}"
            gsum, gpath = stage_generate(sp, task, name, t, temperature, prompts, out, log, progress)
            fpath = stage_features(sp, config, student, gsum["_key"], gpath, score_prompt_ids, out, log, progress)
            ssum = stage_student(sp, task, config, student, gsum["_key"], gpath, test_prompts, out, log, progress)
            filt = {}
            if temperature in P.filter_ablation.temperatures and gsum["teacher_accuracy"] > 0:
                fs = stage_student(sp, task, config, student, gsum["_key"], gpath, test_prompts, out, log,
                                   progress, filtered=True)
                filt = {"student_avg_at_k_filtered": fs["avg_at_k"], "student_greedy_filtered": fs["greedy"]}
            scores = {} if checks_only else score_features(Features.load(fpath), n_folds=sc.n_folds, nu=sc.nu,
                                                           seed=seed_for(seed, "folds"))
            rows.append({
                "config": config, "teacher": name, "family": t["family"], "style": t["style"],
                "size_label": t["size_label"], "size_params": int(t["size_params"]), "temperature": temperature,
                "is_self": t["style"] == "self", "in_pool": t.get("pool", "main") == "main",
                "teacher_steps": int(t["steps"]),
                "student_avg_at_k": ssum["avg_at_k"], "student_greedy": ssum["greedy"],
                "student_best_of_k": ssum["best_of_k"], "student_train_loss": ssum["train_loss"],
                "teacher_accuracy": gsum["teacher_accuracy"], "teacher_avg_at_k": card["avg_at_k"],
                "empty_responses": gsum["empty_responses"], **filt, **scores,
            })
    results = pd.DataFrame(rows)
    if checks_only:  # no score was computed; results.csv and complete.json stay for the real run
        stage_world_checks(sp, out, log, results)
        log(f"world checks (no scores) done in {time.time() - t_start:.1f}s")
        return results
    from grace.io import atomic_write_text

    atomic_write_text(out / "results.csv", results.to_csv(index=False, float_format="%.10g"))
    log(f"results: {len(results)} configurations -> {out / 'results.csv'}")
    write_analysis(results, sp, out, log)
    stage_world_checks(sp, out, log)
    write_json(out / "complete.json", {"profile": stable_hash(profile), "configs": len(results)})
    log(f"study done in {time.time() - t_start:.1f}s")
    return results


def ensure_study(profile: str | os.PathLike | dict[str, Any], out: str | os.PathLike | None = None,
                 progress: bool = False, share_world_from: Sequence[str | os.PathLike] = ()):
    """Run (or reuse, thanks to the stage cache) a study and return ``(results, out_dir)``.

    Notebooks call this: the first chapter to need the study pays for it, later ones read the cache.
    ``out`` defaults to ``$GRACE_ARTIFACTS/<profile>/study`` (``GRACE_ARTIFACTS`` defaults to
    ``artifacts``).
    """
    import pandas as pd

    prof = profile if isinstance(profile, dict) else load_profile(profile)
    out = Path(out) if out is not None else Path(os.environ.get("GRACE_ARTIFACTS", "artifacts")) / prof["name"] / "study"
    if not (out / "results.csv").exists() or not _results_current(prof, out):
        run_study(prof, out, progress=progress, share_world_from=share_world_from)
    return pd.read_csv(out / "results.csv"), out


def _results_current(profile: dict[str, Any], out: Path) -> bool:
    """True if ``out`` holds a finished study of exactly this profile."""
    try:
        return read_json(out / "complete.json")["profile"] == stable_hash(profile)
    except (OSError, ValueError, KeyError):
        return False


def write_analysis(results, sp: StudyProfile, out: Path, log: Log) -> None:
    """Spearman tables (+ bootstrap CIs), gaps, budgets, families, temperatures, robustness (paper §3, App. C–D)."""
    from grace import analysis as A
    from grace.io import atomic_write_text
    from grace.scores import SCORE_ORIENTATION

    a = sp.typed.analysis
    adir = out / "analysis"
    scores = [s for s in SCORE_ORIENTATION if s in results.columns and results[s].notna().sum() >= 3
              and results[s].nunique() > 1]
    seed, n_boot = sp.typed.seed, a.n_boot
    if len(pool := A.main_pool(results)) >= 3:
        # the main pool alone (no self-distillation or answer-only anecdote), as the paper's 15 teachers
        tab = A.spearman_table(pool, target="student_avg_at_k", scores=scores, n_boot=n_boot, seed=seed)
        atomic_write_text(adir / "spearman_student_avg_at_k_pool.csv", tab.to_csv(index=False))
    for target in RESULT_TARGETS:
        tab = A.spearman_table(results, target=target, scores=scores, n_boot=n_boot, seed=seed)
        atomic_write_text(adir / f"spearman_{target}.csv", tab.to_csv(index=False))
        if target == "student_avg_at_k":
            log("spearman vs student avg@k (oriented: + means the score ranks teachers the right way)\n"
                + tab.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    atomic_write_text(adir / "gaps.csv", A.selection_gaps(results, scores, "student_avg_at_k").to_csv(index=False))
    budgets = a.size_budgets or sorted(results["size_params"].unique().tolist())
    atomic_write_text(adir / "size_budgets.csv",
                      A.size_budget_table(results, budgets, scores, "student_avg_at_k").to_csv(index=False))
    atomic_write_text(adir / "families.csv", A.family_gap_table(results, scores, "student_avg_at_k").to_csv(index=False))
    atomic_write_text(adir / "temperatures.csv",
                      A.temperature_table(results, scores, "student_avg_at_k").to_csv(index=False))
    rob = A.robustness_subsets(results, scores, "student_avg_at_k", n_subsets=a.n_subsets, frac=a.subset_frac, seed=seed)
    atomic_write_text(adir / "robustness.csv", rob.to_csv(index=False))
