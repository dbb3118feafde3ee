"""The schema of a study profile: one dataclass per section, checked once on load (paper §3's settings).

A profile is YAML (``grace/profiles/*.yaml`` or a user's file). :func:`check_profile` walks it against
the dataclasses below and raises a ``ValueError`` that names the section, the key and the valid keys
for an unknown key, and the expected type for a mistyped one — a typo such as ``distill.max_lenght``
is an error, not a silently ignored setting. Defaults live here, next to their meaning, and nowhere
else: :func:`parse_profile` turns the validated YAML into these dataclasses (an omitted key takes the
default below, an int given for a float field becomes a float), and the study runner reads their
attributes. The raw mapping is kept for what must not change when a default does: ``profile.json``
and the stage cache keys.
"""

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass
class TaskSection:
    """``task``: which prompts and which correctness check (§3: GSM8K, MATH; or the miniature)."""

    kind: str = "synthetic"  # synthetic | gsm8k | math
    difficulty: str | dict = "medium"  # synthetic: a preset name or Difficulty fields
    min_steps: int = 1
    max_steps: int = 4
    seed: int = 0
    path: str | None = None  # gsm8k/math: a local folder or jsonl
    train_path: str | None = None  # math: a MATH train jsonl


TASK_KEYS = {"synthetic": {"kind", "difficulty", "min_steps", "max_steps", "seed"},
             "gsm8k": {"kind", "path"}, "math": {"kind", "path", "train_path"}}


@dataclass
class SizeSection:
    """``world.sizes.<name>``: a Llama shape (:class:`grace.world.ModelSize`)."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    intermediate: int = 176
    max_positions: int = 256


@dataclass
class PretrainSection:
    """``world.pretrain``: the bases' pre-training corpus and schedule (the Llama-*-Base analogue)."""

    n_texts: int = 20000
    steps: dict[str, int] = field(default_factory=dict)  # size name -> optimizer steps
    learning_rate: float = 3e-3
    batch_size: int = 64
    worked_share: float = 0.0  # paper regime: share of worked solutions (grace.synthetic.pretraining_corpus)
    worked_mix: dict | None = None  # style -> weight of the worked solutions


@dataclass
class WorldTeacherSection:
    """``world.teachers[i]``: a base fine-tuned on one style (:class:`grace.world.TeacherSpec`)."""

    name: str = ""
    style: str = ""
    size: str | None = None
    steps: int = 0
    learning_rate: float | None = None
    varied: bool | None = None  # default: world.variation
    pool: str | None = None  # main | anecdote (default: anecdote for style self, else main)


@dataclass
class WorldSection:
    """``world``: build the miniature world (tokenizer, bases, teachers) with :mod:`grace.world`."""

    tokenizer_problems: int = 2000
    teacher_problems: int = 3000
    teacher_lr: float = 3e-3
    teacher_batch_size: int = 64
    sizes: dict[str, SizeSection] = field(default_factory=dict)  # name -> shape
    pretrain: PretrainSection = field(default_factory=lambda: PretrainSection())
    student: str = "S"
    teachers: list[WorldTeacherSection] = field(default_factory=list)
    variation: bool = False  # paper regime: teachers write varied chains of thought


@dataclass
class HubTeacherSection:
    """``models.teachers[i]``: a Hub model id (or local path) and its card."""

    name: str = ""
    id: str = ""
    family: str = ""
    size_label: str = ""
    size_params: float | int | str = 0
    chat: bool = False
    pool: str | None = None
    revision: str | None = None  # a Hub commit/tag to pin (goes into the cache keys)


@dataclass
class ModelsSection:
    """``models``: the student and teachers by Hub id (the ``gpu`` profile)."""

    student: str = ""
    student_params: float | int | str = 0
    student_revision: str | None = None
    teachers: list[HubTeacherSection] = field(default_factory=list)


@dataclass
class GenerationSection:
    """``generation``: D_distill, N prompts × M responses per configuration (§3)."""

    N: int = 512
    M: int = 4
    max_new_tokens: int = 512
    batch_size: int = 256
    min_new_tokens: int = 4
    backend: str = "transformers"  # transformers | vllm (generation and evaluation; vLLM on CUDA)
    tensor_parallel_size: int = 1  # vllm only


@dataclass
class FeaturesSection:
    """``features``: the student's projected gradients on D_eval (§2.1)."""

    n: int = 512
    m: int = 4
    d: int = 512
    projector: str = "rademacher"
    norms: str | None = None  # factored only: "sketch" (its default) | "exact" grad_norm (grace.factored)
    length_scale: str = "log"
    batch_size: int = 8
    memory_budget_mb: float | None = None  # per-sample gradients beyond the model (default 4·D·4 bytes, >= 64 MiB)


@dataclass
class ScoresSection:
    """``scores``: GRACE's folds C and smoothing ν (eq. 4)."""

    n_folds: int = 10
    nu: float = 1e-3


@dataclass
class DistillSection:
    """``distill``: supervised distillation (§3; :class:`grace.distill.TrainConfig`)."""

    learning_rate: float = 2e-3
    epochs: float = 4.0
    batch_size: int = 64
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    max_length: int = 256  # tokens per encoded example (prompt + response)
    filter_correct: bool = False
    save_model: bool = False
    mixed_precision: str = "no"  # no | bf16 | fp16 (GPU): autocast over float32 master weights
    gradient_checkpointing: bool = False
    gradient_accumulation_steps: int = 1
    save_steps: int = 0  # checkpoint every this many optimizer steps, resume from the last (0: no checkpoints)


    def train_config(self, seed: int):
        """The :class:`grace.distill.TrainConfig` of this section (its keys are TrainConfig's, plus ``save_model``)."""
        from grace.distill import TrainConfig

        names = {f.name for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names}, seed=seed)


@dataclass
class EvaluationSection:
    """``evaluation``: avg@k, greedy and best-of-k on held-out prompts (§3)."""

    n_test: int = 500
    k: int = 16
    max_new_tokens: int = 512
    batch_size: int = 256


@dataclass
class FilterAblationSection:
    """``filter_ablation``: App. D.1, students on correct responses only at these temperatures."""

    temperatures: list[float] = field(default_factory=list)


@dataclass
class WorldChecksSection:
    """``world_checks``: :mod:`grace.world_checks` settings."""

    min_spread_points: float | int = 15
    n_pairs: int = 200
    regime: str = "mixed-accuracy"  # whose acceptance rules judge the world (WORLD_REGIMES)


@dataclass
class AnalysisSection:
    """``analysis``: bootstrap and robustness settings (§3, App. C–D)."""

    n_boot: int = 1000
    n_subsets: int = 100
    subset_frac: float = 0.6
    size_budgets: list[float] | None = None


@dataclass
class Profile:
    """The top level of a profile."""

    name: str = ""
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"  # auto | bfloat16 | float16 | float32: how models load in every stage
    threads: int | None = None
    template: str = "Q: {prompt}\nA:"
    book_params: str | None = None  # book/build.py: use another profile's chapter parameters
    chat_instruction: str | None = None  # chat teachers: text before the problem (absent: grace.generation.CHAT_INSTRUCTION; null: none)
    task: TaskSection = field(default_factory=lambda: TaskSection())
    world: WorldSection | None = None
    models: ModelsSection | None = None
    temperatures: list[float] = field(default_factory=list)
    generation: GenerationSection = field(default_factory=lambda: GenerationSection())
    features: FeaturesSection = field(default_factory=lambda: FeaturesSection())
    scores: ScoresSection = field(default_factory=lambda: ScoresSection())
    distill: DistillSection = field(default_factory=lambda: DistillSection())
    evaluation: EvaluationSection = field(default_factory=lambda: EvaluationSection())
    filter_ablation: FilterAblationSection = field(default_factory=lambda: FilterAblationSection())
    world_checks: WorldChecksSection = field(default_factory=lambda: WorldChecksSection())
    analysis: AnalysisSection = field(default_factory=lambda: AnalysisSection())


DTYPES = ("auto", "bfloat16", "float16", "float32")
"""The profile's ``dtype`` values (:func:`grace.world.resolve_dtype`)."""
BACKENDS = ("transformers", "vllm")
"""``generation.backend`` values (:mod:`grace.generation`)."""
PROJECTORS = ("rademacher", "sparse_jl", "factored", "identity")
"""``features.projector`` values (:func:`grace.projection.make_projector`)."""
NORMS = ("sketch", "exact")
"""``features.norms`` values, with projector ``factored`` only (:class:`grace.factored.FactoredProjector`)."""
WORLD_REGIMES = ("mixed-accuracy", "strong-teacher")
"""``world_checks.regime`` values: whose acceptance rules judge a world (:data:`grace.world_checks.REGIMES`)."""

SECTIONS: dict[str, type] = {
    "generation": GenerationSection, "features": FeaturesSection, "scores": ScoresSection,
    "distill": DistillSection, "evaluation": EvaluationSection, "filter_ablation": FilterAblationSection,
    "world_checks": WorldChecksSection, "analysis": AnalysisSection, "world": WorldSection, "models": ModelsSection,
}
"""Top-level section name -> its dataclass."""


def _allowed(tp: Any) -> tuple[type, ...]:
    """The Python types a YAML value may have for annotation ``tp`` (ints are accepted for floats)."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        return tuple(t for a in typing.get_args(tp) for t in _allowed(a))
    if dataclasses.is_dataclass(tp):
        return (dict,)  # a section: checked key by key by check_profile
    if typing.get_origin(tp) is not None:
        return (typing.get_origin(tp),)  # list[...] -> list, dict[...] -> dict
    if tp is float:
        return (float, int)
    if tp is type(None):
        return (type(None),)
    return (tp,)


def _check_keys(d: Any, cls: type, where: str, keys: set[str] | None = None) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"profile section {where!r} must be a mapping, got {type(d).__name__} {d!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    valid = sorted(keys if keys is not None else fields)
    for key, value in d.items():
        if key not in valid:
            raise ValueError(f"unknown key {key!r} in profile section {where!r}; valid keys: {valid}")
        allowed = _allowed(fields[key].type)
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if not ok:
            names = sorted({t.__name__ for t in allowed})
            raise ValueError(f"profile key {where}.{key}={value!r} has type {type(value).__name__}; "
                             f"expected {' or '.join(names)}")


def check_profile(p: dict[str, Any]) -> None:
    """Raise ``ValueError`` for an unknown key or a wrongly typed value anywhere in profile ``p``.

    Every section is checked against its dataclass (unknown keys list the valid ones); ``task`` is
    checked against the keys of its ``kind``; ``world`` and ``models`` are checked down to each size,
    the pre-training section and each teacher.
    """
    _check_keys(p, Profile, "<top level>")
    task = p.get("task", {})
    _check_keys(task, TaskSection, "task")
    kind = task.get("kind", "synthetic")
    if kind not in TASK_KEYS:
        raise ValueError(f"task.kind={kind!r}: use one of {sorted(TASK_KEYS)}")
    _check_keys(task, TaskSection, "task", TASK_KEYS[kind])
    for name, cls in SECTIONS.items():
        if p.get(name) is not None:
            _check_keys(p[name], cls, name)
    for where, value, choices in (("dtype", p.get("dtype", "float32"), DTYPES),
                                  ("generation.backend", p.get("generation", {}).get("backend", "transformers"),
                                   BACKENDS),
                                  ("world_checks.regime", (p.get("world_checks") or {}).get("regime", "mixed-accuracy"),
                                   WORLD_REGIMES)):
        if value not in choices:
            raise ValueError(f"profile {where}={value!r}: use one of {choices}")
    feats = p.get("features") or {}
    if feats.get("projector", "rademacher") not in PROJECTORS:
        raise ValueError(f"profile features.projector={feats['projector']!r}: use one of {PROJECTORS}")
    if feats.get("norms") is not None and (feats["norms"] not in NORMS or feats.get("projector") != "factored"):
        raise ValueError(f"profile features.norms={feats['norms']!r}: an option of projector 'factored' only, one of "
                         f"{NORMS} (features.projector is {feats.get('projector', 'rademacher')!r}); drop the key or "
                         "set projector: factored")
    if p.get("world") is not None:
        w = p["world"]
        for size, shape in w.get("sizes", {}).items():
            _check_keys(shape, SizeSection, f"world.sizes.{size}")
        _check_keys(w.get("pretrain", {}), PretrainSection, "world.pretrain")
        for i, t in enumerate(w.get("teachers", [])):
            _check_keys(t, WorldTeacherSection, f"world.teachers[{i}]")
    if p.get("models") is not None:
        for i, t in enumerate(p["models"].get("teachers", [])):
            _check_keys(t, HubTeacherSection, f"models.teachers[{i}]")


def _convert(tp: Any, value: Any) -> Any:
    """``value`` (validated YAML) as annotation ``tp``: sections become dataclasses, ints for floats become floats."""
    if value is None:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        for a in args:
            if dataclasses.is_dataclass(a) and isinstance(value, dict):
                return _build(a, value)
        if float in args and int not in args and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value)
    if origin is list and args:
        return [_convert(args[0], v) for v in value]
    if origin is dict and len(args) == 2:
        return {k: _convert(args[1], v) for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _build(cls: type, d: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return cls(**{k: _convert(fields[k].type, v) for k, v in d.items() if k in fields})


def parse_profile(p: dict[str, Any]) -> Profile:
    """The validated profile as typed sections (:class:`Profile`), defaults filled from this module (§3's settings).

    Raises the errors of :func:`check_profile` first, so a typo never becomes a default.
    """
    check_profile(p)
    return _build(Profile, p)


__all__ = ["BACKENDS", "DTYPES", "SECTIONS", "WORLD_REGIMES", "TASK_KEYS", "Profile", "check_profile", "parse_profile"]
