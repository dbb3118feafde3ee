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
    precision: str | None = None  # rademacher on CUDA: the fused kernel's product (grace.kernels; None: its default)
    lora: dict | None = None  # {rank, alpha, target_modules}: gradients w.r.t. LoRA adapters (grace.lora); None: all weights


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
"""``features.projector`` values (:data:`grace.projectors.PROJECTORS`)."""
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Default ``features.lora.target_modules``: every projection of a Llama-style block (:mod:`grace.lora`)."""


@dataclass
class LoraSpec:
    """``features.lora``: adapters whose gradients are the features (peft ``LoraConfig``)."""

    rank: int = 8
    alpha: float = 16.0
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))

    def __post_init__(self):
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"lora rank={self.rank!r}: pass a positive integer, e.g. 8")
        if not self.alpha > 0:
            raise ValueError(f"lora alpha={self.alpha!r}: pass a positive number (scale α/r; e.g. 2·rank)")
        if not self.target_modules or not all(isinstance(t, str) and t for t in self.target_modules):
            raise ValueError(f"lora target_modules={self.target_modules!r}: pass module names such as {list(LORA_TARGETS)}")

    def meta(self) -> dict:
        return {"rank": self.rank, "alpha": float(self.alpha), "target_modules": sorted(self.target_modules)}


PRECISIONS = ("ieee", "bf16x3", "tf32x3", "tf32")
"""``features.precision`` values: how the fused dense-Π kernel multiplies (:mod:`grace.kernels`)."""
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
    if feats.get("precision") is not None and (feats["precision"] not in PRECISIONS
                                               or feats.get("projector", "rademacher") != "rademacher"):
        raise ValueError(f"profile features.precision={feats['precision']!r}: an option of projector 'rademacher' "
                         f"only, one of {PRECISIONS}; drop the key or set projector: rademacher")
    if feats.get("lora") is not None:
        try:
            LoraSpec(**feats["lora"]) if isinstance(feats["lora"], dict) else LoraSpec(rank=feats["lora"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"profile features.lora={feats['lora']!r}: {e}; give {{rank, alpha, target_modules}}") from e
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
    from grace.validate import check_device

    check_device(p.get("device", "cpu"), "profile key device", available=False)
    check_ranges(p)
    check_teachers(p)


AT_LEAST_1, AT_LEAST_0, POSITIVE, SHARE = (">=", 1), (">=", 0), (">", 0), ("in", (0, 1))
RANGES: dict[str, tuple[str, Any]] = {
    "seed": AT_LEAST_0, "threads": AT_LEAST_1, "temperatures[]": POSITIVE,
    "task.min_steps": AT_LEAST_1, "task.max_steps": AT_LEAST_1, "task.seed": AT_LEAST_0,
    "world.tokenizer_problems": AT_LEAST_1, "world.teacher_problems": AT_LEAST_1, "world.teacher_lr": POSITIVE,
    "world.teacher_batch_size": AT_LEAST_1,
    **{f"world.sizes.*.{k}": AT_LEAST_1 for k in ("hidden", "layers", "heads", "intermediate", "max_positions")},
    "world.pretrain.n_texts": AT_LEAST_1, "world.pretrain.steps.*": AT_LEAST_0, "world.pretrain.learning_rate": POSITIVE,
    "world.pretrain.batch_size": AT_LEAST_1, "world.pretrain.worked_share": SHARE, "world.pretrain.worked_mix.*": AT_LEAST_0,
    "world.teachers[].steps": AT_LEAST_0, "world.teachers[].learning_rate": POSITIVE,
    **{f"generation.{k}": AT_LEAST_1 for k in ("N", "M", "max_new_tokens", "batch_size", "tensor_parallel_size")},
    "generation.min_new_tokens": AT_LEAST_0,
    **{f"features.{k}": AT_LEAST_1 for k in ("n", "m", "d", "batch_size")}, "features.memory_budget_mb": POSITIVE,
    "scores.n_folds": (">=", 2), "scores.nu": POSITIVE,
    "distill.learning_rate": POSITIVE, "distill.epochs": POSITIVE, "distill.batch_size": AT_LEAST_1,
    "distill.warmup_ratio": SHARE, "distill.weight_decay": AT_LEAST_0, "distill.max_length": (">=", 2),
    "distill.gradient_accumulation_steps": AT_LEAST_1, "distill.save_steps": AT_LEAST_0,
    **{f"evaluation.{k}": AT_LEAST_1 for k in ("n_test", "k", "max_new_tokens", "batch_size")},
    "filter_ablation.temperatures[]": POSITIVE,
    "world_checks.min_spread_points": AT_LEAST_0, "world_checks.n_pairs": AT_LEAST_1,
    "analysis.n_boot": AT_LEAST_1, "analysis.n_subsets": AT_LEAST_1, "analysis.subset_frac": ("in", (0, 1), "(0, 1]"),
    "analysis.size_budgets[]": POSITIVE,
}
"""Every numeric profile field's range, by key path (``*``: any key of a mapping, ``[]``: every list item)."""


def _at(node: Any, parts: list[str], where: str):
    """``(key path, value)`` for every value of ``node`` at the pattern ``parts`` (see :data:`RANGES`)."""
    if not parts:
        yield where, node
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        for k, v in (node.items() if isinstance(node, dict) else ()):
            yield from _at(v, rest, f"{where}.{k}")
        return
    key = head.removesuffix("[]")
    if not isinstance(node, dict) or node.get(key) is None:
        return
    path = f"{where}.{key}" if where else key
    if head.endswith("[]"):
        for i, v in enumerate(node[key] if isinstance(node[key], list) else ()):
            yield from _at(v, rest, f"{path}[{i}]")
    else:
        yield from _at(node[key], rest, path)


def _in_range(v: float, rule: tuple) -> bool:
    op, bound = rule[0], rule[1]
    if op == ">=":
        return v >= bound
    if op == ">":
        return v > bound
    lo, hi = bound  # "in": lo < v <= hi for (0, 1] fractions, lo <= v <= hi otherwise
    return (lo < v <= hi) if len(rule) == 3 else (lo <= v <= hi)


def _number(v: Any) -> Any:
    """``v``, or the float a YAML string such as ``3.5e9`` spells (YAML 1.1 reads it as a string)."""
    try:
        return float(v) if isinstance(v, str) else v
    except ValueError:
        return v


def check_ranges(p: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the key path of the first numeric profile field outside its range (:data:`RANGES`)."""
    for pattern, rule in RANGES.items():
        for where, v in _at(p, pattern.split("."), ""):
            text = rule[2] if len(rule) == 3 else (f"{rule[0]} {rule[1]}" if rule[0] != "in" else f"in {list(rule[1])}")
            v = _number(v)
            if isinstance(v, bool) or not isinstance(v, int | float) or v != v or not _in_range(v, rule):
                raise ValueError(f"profile key {where}={v!r} is out of range; it must be a number {text}")


def _teacher_pool(t: dict[str, Any], kind_key: str) -> str:
    """A teacher's pool as the study assigns it (grace.world.default_pool: the student itself is an anecdote)."""
    return t.get("pool") or ("anecdote" if t.get(kind_key) == "self" else "main")


def check_teachers(p: dict[str, Any]) -> None:
    """The teacher list of ``world`` or ``models``: non-empty, names unique and safe as directory names, a main pool."""
    from grace.validate import safe_name

    for section, kind_key in (("world", "style"), ("models", "family")):
        if not isinstance(p.get(section), dict):
            continue
        teachers = p[section].get("teachers") or []
        if not teachers:
            raise ValueError(f"profile key {section}.teachers is empty; list at least one teacher "
                             "(copy the section from grace/profiles/quick.yaml)")
        seen: dict[str, int] = {}
        for i, t in enumerate(teachers):
            name = safe_name(t.get("name", ""), f"profile key {section}.teachers[{i}].name")
            if name in seen:
                raise ValueError(f"profile key {section}.teachers[{i}].name={name!r} repeats "
                                 f"{section}.teachers[{seen[name]}]; give every teacher its own name")
            seen[name] = i
        if not any(_teacher_pool(t, kind_key) == "main" for t in teachers):
            raise ValueError(f"profile key {section}.teachers: no teacher is in the main pool (all are "
                             "pool: anecdote or the student itself); set pool: main on at least one")


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


__all__ = ["BACKENDS", "DTYPES", "RANGES", "SECTIONS", "TASK_KEYS", "WORLD_REGIMES", "Profile", "check_profile",
           "check_ranges", "check_teachers", "parse_profile"]
