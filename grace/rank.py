"""What a practitioner runs on their own candidates: features → scores → a ranked table (paper §2–3).

``grace rank --student S --teacher A=a.jsonl --teacher B=b.jsonl`` computes the student's gradient
features on each teacher's generations (paper §2.1), every score (eqs. 1–6, App. C.1) and ranks
the teachers by GRACE (lower is better). ``grace features`` and ``grace score`` are the two halves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grace.io import read_jsonl_lines
from grace.validate import REQUIRED_FIELDS, check_records, problem

__all__ = ["REQUIRED_FIELDS", "features_for_file", "features_for_records", "load_generations", "load_prompts",
           "rank_candidates", "rank_teachers", "run_demo", "score_dirs", "subset"]


def load_generations(path: str | os.PathLike, known_prompt_ids: set | None = None) -> list[dict[str, Any]]:
    """Read and validate a generations jsonl (records ``{prompt_id, prompt, response[, correct]}``, paper §2.1).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is not a JSON object, or a record fails :func:`grace.validate.check_records`
            (a missing field, a wrongly typed value, an empty response, a non-boolean ``correct``, two
            prompts under one ``prompt_id``), or has an unknown ``prompt_id``; the message names ``file:line``.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"generations file {str(path)!r} does not exist")
    numbered = read_jsonl_lines(path)
    records, lines = [r for _, r in numbered], [i for i, _ in numbered]
    check_records(records, str(path), lines)
    for i, r in zip(lines, records, strict=True):
        if known_prompt_ids is not None and r["prompt_id"] not in known_prompt_ids:
            raise ValueError(f"{path}:{i}: unknown prompt_id {r['prompt_id']!r}; all teachers must answer the same prompts")
    return records


def subset(records: Sequence[dict[str, Any]], n: int | None, m: int | None, seed: int) -> list[dict[str, Any]]:
    """D_eval ⊂ D_distill (paper §2.1): ``n`` random prompts (seeded) × their first ``m`` responses."""
    for flag, v in (("--n", n), ("--m", m)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1):
            raise problem(flag, v, "is not a count >= 1", "pass a whole number >= 1, or leave it out for all")
    by_prompt: dict[Any, list[dict[str, Any]]] = {}
    for r in records:
        by_prompt.setdefault(r["prompt_id"], []).append(r)
    keys = sorted(by_prompt, key=str)
    if n is not None:
        if n > len(keys):
            raise ValueError(f"n={n} exceeds the {len(keys)} prompts in the generations; use n <= {len(keys)}")
        rng = np.random.default_rng(seed)
        keys = [keys[i] for i in sorted(rng.choice(len(keys), n, replace=False))]
    out = []
    for k in keys:
        rs = by_prompt[k]
        if m is not None:
            if len(rs) < m:
                raise ValueError(f"prompt_id {k!r} has {len(rs)} responses, fewer than m={m}; lower m")
            rs = rs[:m]
        out.extend(rs)
    return out


def load_prompts(spec: str, split: str = "train", n: int | None = None, seed: int = 0) -> tuple[list[dict], Any]:
    """Prompts for ``grace generate``: ``gsm8k``, ``math`` or a jsonl of ``{prompt_id, prompt[, answer]}``.

    Returns ``(prompts, is_correct)``; ``is_correct`` is ``None`` for a file without answers.
    """
    from grace.answers import gsm8k_is_correct
    from grace.tasks import get_task

    if spec in ("gsm8k", "math"):
        task = get_task(spec)
        rows = task.train_prompts(n, seed) if split == "train" else task.test_prompts(n, seed)
        return rows, task.is_correct
    path = Path(spec)
    if not path.exists():
        raise ValueError(f"--prompts {spec!r}: not gsm8k, math or an existing jsonl file")
    numbered = read_jsonl_lines(path)
    seen: dict[Any, int] = {}
    for i, r in numbered:
        if "prompt_id" not in r or "prompt" not in r:
            raise ValueError(f"{path}:{i}: row has keys {sorted(r)}; each row needs prompt_id and prompt")
        check_records([{**r, "response": "-"}], str(path), [i])  # prompt_id and prompt types
        if r["prompt_id"] in seen:
            raise problem(f"{path}:{i}", r["prompt_id"], f"repeats the prompt_id of line {seen[r['prompt_id']]}",
                          "give every prompt its own id")
        seen[r["prompt_id"]] = i
    rows = [r for _, r in numbered]
    rows = rows if n is None else rows[:n]
    return rows, (gsm8k_is_correct if rows and all("answer" in r for r in rows) else None)


def generate_cli(args) -> list[dict]:
    """``grace generate``: a teacher's responses to prompts, resumable, ready for ``grace rank``."""
    from grace.generation import CHAT_INSTRUCTION, VLLMBackend, generate_to_file
    from grace.validate import loading, model_source
    from grace.world import load_model, load_tokenizer

    prompts, is_correct = load_prompts(args.prompts, args.split, args.n_prompts, args.seed)
    model_source(args.model, "--model")
    with loading(args.model, "--model"):
        tok = load_tokenizer(args.model)
    chat = args.chat if args.chat is not None else getattr(tok, "chat_template", None) is not None
    kw = {"chat": chat, "chat_instruction": CHAT_INSTRUCTION if args.instruction is None else (args.instruction or None),
          "max_new_tokens": args.max_new_tokens}
    if args.template:
        kw["template"] = args.template
    if args.backend == "vllm":
        backend = VLLMBackend(args.model, tok, tensor_parallel_size=args.tensor_parallel_size, dtype=args.dtype,
                              seed=args.seed)
        return generate_to_file(None, tok, prompts, args.out, args.n_samples, args.temperature,
                                teacher=Path(args.model).name, is_correct=is_correct, seed=args.seed,
                                backend=backend, batch_size=args.batch_size, **kw)
    with loading(args.model, "--model"):
        model = load_model(args.model, device=args.device, dtype=args.dtype)
    check_prompt_lengths(tok, prompts, args.max_new_tokens, model_context(model))
    return generate_to_file(model, tok, prompts, args.out, args.n_samples, args.temperature,
                            teacher=Path(args.model).name, is_correct=is_correct, seed=args.seed,
                            batch_size=args.batch_size, device=args.device, **kw)


def check_prompt_lengths(tok, prompts: list[dict], max_new_tokens: int, context: int | None) -> None:
    """Refuse prompts whose tokens plus ``max_new_tokens`` exceed the model's ``context`` (before generating).

    The prompt's own tokens are a lower bound (a chat template or a prompt template adds a few more).
    """
    if context is None:
        return
    for p in prompts:
        n = len(tok(p["prompt"], add_special_tokens=False)["input_ids"])
        if n + max_new_tokens > context:
            raise ValueError(f"prompt_id={p['prompt_id']!r} is at least {n} tokens; with --max-new-tokens "
                             f"{max_new_tokens} it exceeds the model's context of {context} positions; pass "
                             f"--max-new-tokens {max(1, context - n - 1)} or less, or drop the prompt")


def features_for_records(student, records, out: Path, *, d: int = 512, projector: str = "auto",
                         length_scale: str = "log", template: str | None = None, batch_size: int = 8,
                         device: str = "cpu", seed: int = 0, progress: bool = True, memory_budget: int | None = None,
                         norms: str | None = None, lora: dict | None = None, max_length: int | None = None,
                         source: str = "records", flag: str = "--student"):
    """Features of ``student`` (a path/Hub id or a ``(model, tokenizer)`` pair) on ``records`` (paper §2.1).

    ``projector``: a name of :data:`grace.projectors.PROJECTORS`, or ``"auto"``
    (:func:`grace.projectors.choose_projector`: from the student's size and the device; printed).
    ``lora``: ``{rank, alpha, target_modules}`` to take the gradients with respect to LoRA adapters
    (:mod:`grace.lora`; None: all weights, the paper's setting).
    ``norms``: the factored projector's ``grad_norm`` (``"sketch"``, its default, or ``"exact"``;
    :class:`grace.factored.FactoredProjector`); an error with any other projector. ``max_length``: the
    truncation policy (:func:`grace.validate.fit_context`): ``None`` refuses a record longer than the
    student's context; a number cuts records to that many tokens and is recorded in the sidecar.
    """
    from grace.encoding import DEFAULT_TEMPLATE
    from grace.features import compute_features
    from grace.projectors import choose_projector, make_projector
    from grace.validate import fit_context, loading, model_source

    if isinstance(student, str | Path):
        model_source(student, flag)
        with loading(student, flag):
            tok = load_tokenizer_checked(student, flag)
            model = load_model_checked(student, device)
    else:
        model, tok = student
    template = template or DEFAULT_TEMPLATE
    n_cut = fit_context(tok, records, template, model_context(model), max_length, source)
    if n_cut:
        print(f"grace: {n_cut} of {len(records)} records are longer than --max-length {max_length} tokens and are "
              "cut on the right (recorded as max_length in features.json)", file=sys.stderr)
    extra = {}
    if lora is not None:
        from grace.lora import LoraSpec, lora_student

        spec = LoraSpec(**lora)
        model, extra = lora_student(model, spec, seed), {"lora": spec.meta()}
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    projector, why = choose_projector(projector, n_params, d, device)
    if progress:
        print(f"projector: {projector} ({why})", file=sys.stderr)
    proj = make_projector(projector, n_params, d, seed, device=device, model=model, norms=norms)
    feats = compute_features(model, tok, records, proj, length_scale=length_scale, template=template,
                             batch_size=batch_size, device=device, progress=progress, out=out / "features.npz",
                             memory_budget=memory_budget, max_length=max_length, extra_meta=extra)
    return feats


def load_tokenizer_checked(spec: str | os.PathLike, flag: str = "--student"):
    """:func:`grace.world.load_tokenizer`, with a tokenizer that cannot be built named as the model's fault."""
    from grace.world import load_tokenizer

    try:
        return load_tokenizer(spec)
    except ValueError as e:  # transformers' "install sentencepiece or tiktoken" for a directory with no tokenizer
        raise problem(flag, str(spec), f"has no usable tokenizer ({str(e).splitlines()[0][:160]})",
                      "save the tokenizer files next to the weights (tokenizer.save_pretrained)") from None


def load_model_checked(spec: str | os.PathLike, device: str):
    """:func:`grace.world.load_model` (float32 on ``device``)."""
    from grace.world import load_model

    return load_model(spec, device=device)


def model_context(model) -> int | None:
    """The positions a causal LM can attend over (``max_position_embeddings`` or ``n_positions``), if it says."""
    cfg = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        v = getattr(cfg, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def features_for_file(student: str, generations: str, out: Path, *, n: int | None = None, m: int | None = None,
                      seed: int = 0, **kwargs):
    """``grace features``: validate a generations file, subset it, compute and save features."""
    records = subset(load_generations(generations), n, m, seed)
    return features_for_records(student, records, out, seed=seed, source=str(generations), flag="--model", **kwargs)


def _features_path(p: str | os.PathLike) -> Path:
    p = Path(p)
    path = p / "features.npz" if p.is_dir() else p
    if not path.exists():
        raise FileNotFoundError(f"no features at {str(path)!r}; run `grace features ... --out {p}` first")
    return path


def _load_checked(path: Path):
    """The features at ``path`` if their sidecar agrees with their arrays (shapes, hash, counts), else an error."""
    from grace.features import Features
    from grace.io import has_array_check

    f = Features.load(path)  # a damaged archive, and arrays that disagree with the sidecar's hash, fail here
    if not has_array_check(path):
        raise ValueError(f"{path}: its sidecar {path.with_suffix('.json').name} records no hash of the arrays "
                         "(written by an older grace, or edited); recompute the features (grace features ...)")
    N, meta = len(f.H), f.meta
    d = (meta.get("projector") or {}).get("dim_out")
    bad = [f"n_examples={meta.get('n_examples')} but H has {N} rows"] if meta.get("n_examples") != N else []
    bad += [f"projector.dim_out={d} but H has {f.H.shape[1]} columns"] if d is not None and d != f.H.shape[1] else []
    bad += [f"{k} has {len(v)} rows, H {N}" for k, v in (("prompt_ids", f.prompt_ids), ("lengths", f.lengths),
                                                          ("loss", f.loss)) if len(v) != N]
    if N and (f.prompt_ids.min() < 0 or f.prompt_ids.max() >= len(f.prompt_keys)):
        bad.append(f"prompt_ids point past the {len(f.prompt_keys)} prompt_keys")
    if bad:
        raise ValueError(f"{path}: the sidecar disagrees with the arrays ({'; '.join(bad)}); delete it and "
                         "recompute the features")
    return f


def feature_shape(f) -> tuple:
    """``(n prompts, m responses per prompt, d, projector)`` of saved features (m is ``"varies"`` if it does)."""
    counts = np.bincount(f.prompt_ids)
    counts = counts[counts > 0]
    m = int(counts[0]) if len(counts) and (counts == counts[0]).all() else "varies"
    return len(counts), m, int(f.H.shape[1]), (f.meta.get("projector") or {}).get("kind")


def score_dirs(dirs: Sequence[str | os.PathLike], n_folds: int = 10, nu: float = 1e-3, seed: int = 0,
               names: Sequence[str] | None = None, allow_mixed: bool = False):
    """``grace score``: a table (teachers × scores) for saved feature directories, best GRACE first (eqs. 1–6).

    Rows are keyed by ``names`` (default: each path as given, so two directories with the same base
    name stay two rows). Each file must agree with its sidecar; features of different
    ``(n, m, d, projector)`` are refused unless ``allow_mixed`` (their scores are not comparable).
    """
    import pandas as pd

    from grace.scores import score_features

    names = [str(d) for d in dirs] if names is None else list(names)
    repeated = sorted({k for k in names if names.count(k) > 1})
    if repeated:
        raise ValueError(f"features {repeated} are given twice; give each directory once")
    feats = {name: _load_checked(_features_path(d)) for name, d in zip(names, dirs, strict=True)}
    shapes = {name: feature_shape(f) for name, f in feats.items()}
    if len(set(shapes.values())) > 1 and not allow_mixed:
        listed = ", ".join(f"{k}: n={s[0]} m={s[1]} d={s[2]} {s[3]}" for k, s in shapes.items())
        raise ValueError(f"features of different (n, m, d, projector) cannot be ranked together ({listed}); "
                         "recompute them with the same --n --m --d --projector, or pass --allow-mixed")
    rows = {name: score_features(f, n_folds=n_folds, nu=nu, seed=seed) for name, f in feats.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "teacher"
    return table.dropna(axis=1, how="all").sort_values("grace")


def rank_teachers(student: str, teachers: Mapping[str, str], out: Path, *, n: int | None = None, m: int | None = None,
                  n_folds: int = 10, nu: float = 1e-3, plot: bool = False, seed: int = 0, **kwargs):
    """``grace rank``: features + scores for each candidate, ranked by GRACE (lower is better, paper §2.2)."""
    from grace.io import atomic_write_text
    from grace.validate import safe_name

    if not teachers:
        raise ValueError("no teachers given; pass --teacher NAME=generations.jsonl at least once")
    for name in teachers:
        safe_name(name, f"--teacher {name}={teachers[name]}")
    records = {name: load_generations(path) for name, path in teachers.items()}
    common = set.intersection(*({r["prompt_id"] for r in rs} for rs in records.values()))
    if not common:
        raise ValueError("the teachers' generations share no prompt_id; GRACE compares teachers on the same prompts")
    for name, rs in records.items():
        sub = subset([r for r in rs if r["prompt_id"] in common], n, m, seed)
        features_for_records(student, sub, out / name, seed=seed, source=str(teachers[name]), **kwargs)
    try:
        table = score_dirs([out / name for name in teachers], n_folds=n_folds, nu=nu, seed=seed, names=list(teachers))
    except ValueError as e:
        if "cannot be ranked together" not in str(e) or m is not None:
            raise
        raise ValueError(f"{e}; here the teachers give different numbers of responses per prompt: pass --m") from None
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    atomic_write_text(out / "ranking.csv", table.to_csv())
    if plot:
        from grace.plots import save_figure

        save_figure(_grace_bar(table), out / "ranking.png")
    return table


def rank_candidates(study_dir: str | os.PathLike, configs: Sequence[str], teachers: Sequence[str],
                    temperature: float, m: int, n: int, out: str | os.PathLike) -> dict[str, Path]:
    """Generation files for ``grace rank`` (chapter 1.2, paper §3): each teacher's non-blank responses at
    ``temperature``, restricted to the prompts that keep ``m`` of them from every teacher.

    Returns ``{teacher: out/generations/<teacher>.jsonl}``. Blank responses cannot be scored, so
    they are dropped first.
    """
    import pandas as pd

    from grace.io import read_jsonl, write_jsonl

    missing = [t for t in teachers if f"{t}@{temperature:g}" not in set(configs)]
    if missing:
        raise ValueError(f"teachers {missing} at T={temperature:g} are not configurations of the study; "
                         f"use teachers and a temperature from {sorted(configs)}")
    recs = {t: [r for r in read_jsonl(Path(study_dir) / "generations" / f"{t}@{temperature:g}" / "generations.jsonl")
                if r["response"].strip()] for t in teachers}
    counts = [pd.Series([r["prompt_id"] for r in rs]).value_counts() for rs in recs.values()]
    keep = set.intersection(*(set(c.index[c >= m]) for c in counts))
    if len(keep) < n:
        raise ValueError(f"only {len(keep)} prompts have {m} non-blank responses from every teacher; "
                         f"lower n={n} (chapter 1: rank_n)")
    files = {}
    for t, rs in recs.items():
        files[t] = Path(out) / "generations" / f"{t}.jsonl"
        write_jsonl(files[t], [r for r in rs if r["prompt_id"] in keep])
    return files


def _grace_bar(table):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 0.4 * len(table) + 1.5))
    ax = fig.subplots()
    ax.barh(table.index[::-1], table["grace"].values[::-1], color="#4C72B0")
    ax.set_xlabel("GRACE (lower is better, eq. 4)")
    ax.set_title("Teachers ranked by GRACE")
    fig.tight_layout()
    return fig


def run_demo(out: Path, seed: int = 0) -> None:
    """``grace demo``: a tiny end-to-end example — no training, seconds on a CPU.

    A randomly initialised tiny Llama student scores three synthetic "teachers" that answer the same
    synthetic problems in different solution styles (``grace.tasks`` styles): features (paper §2.1),
    then every score (eqs. 1–6, App. C.1), printed as a ranked table.
    """
    import random

    from grace import synthetic, tasks, world
    from grace.io import write_jsonl

    task = tasks.SyntheticTask(difficulty="easy", max_steps=2)
    problems = task.problems("train", 40, seed)
    styles = ["calc", "terse", "slip"]
    rng = random.Random(seed)
    texts = [p.question for p in problems] + [synthetic.render_solution(p, s, rng) for p in problems for s in styles]
    tok = world.build_tokenizer(texts)
    model = world.make_model(world.ModelSize(hidden=32, layers=2, heads=2, intermediate=64), tok, seed)
    world.save_model(model, tok, out / "student")
    files = {}
    for style in styles:
        recs = [{"prompt_id": p.uid, "prompt": p.question, "response": synthetic.render_solution(p, style, random.Random(j)),
                 "correct": None} for p in problems for j in range(2)]
        for r, p in zip(recs, [p for p in problems for _ in range(2)], strict=True):
            r["correct"] = task.is_correct(r["response"], str(p.answer))
        files[style] = out / "generations" / f"{style}.jsonl"
        write_jsonl(files[style], recs)
    table = rank_teachers(str(out / "student"), {k: str(v) for k, v in files.items()}, out / "rank",
                          d=64, n_folds=5, seed=seed, batch_size=8, progress=False)
    cols = [c for c in ("rank", "grace", "g_vendi", "g_var", "student_loss", "avg_prob") if c in table.columns]
    print(table[cols].to_string(float_format=lambda x: f"{x:.4g}"))
    print(f"\nwrote {out / 'rank' / 'ranking.csv'} (all scores) and per-teacher features under {out / 'rank'}")
