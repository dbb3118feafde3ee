"""The miniature world's task: procedurally generated GSM-style word problems and their solutions (paper §3).

The paper distils from 15 teachers on GSM8K (§3, "Settings"). The miniature stands in for it with short
word problems over a closed vocabulary of names, items and verbs, 1–4 exact integer steps and small
numbers, whose solutions can be rendered in several teacher *styles* (``calc``, ``verbose``, ``terse``,
``answer``, ``slip``) — canonical (:data:`STYLES`) or varied per sample (:data:`VARIED_STYLES`) — plus a
pre-training corpus for the student (:func:`pretraining_corpus`) that may mix in worked solutions.
Answers use GSM8K's ``#### N`` convention, so :mod:`grace.answers` checks them.

Sequence length is the main cost in the miniature world, so every text here is short. Measured with
:func:`count_tokens` on ``medium`` problems with 1–4 steps: questions ~24 words (~30 tokens); solutions
~45 tokens (``calc``), ~51 (``verbose``), ~19 (``terse``), ~3 (``answer``). With 1–3 steps: ~27 + ~37.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from grace.io import stable_hash

if TYPE_CHECKING:
    import pandas as pd

# ----------------------------------------------------------------------------------------------
# Closed vocabulary of the miniature world

NAMES: tuple[tuple[str, str], ...] = (  # (name, subject pronoun)
    ("Tom", "he"), ("Sam", "he"), ("Ben", "he"), ("Max", "he"), ("Leo", "he"), ("Jack", "he"),
    ("Dan", "he"), ("Carl", "he"), ("Paul", "he"), ("Omar", "he"), ("Ravi", "he"), ("Juan", "he"),
    ("Mia", "she"), ("Ann", "she"), ("Eva", "she"), ("Lily", "she"), ("Zoe", "she"), ("Kate", "she"),
    ("Rosa", "she"), ("Emma", "she"), ("Nina", "she"), ("Ava", "she"), ("Lucy", "she"), ("Sara", "she"),
)
ITEMS: tuple[str, ...] = (
    "apples", "pens", "books", "cards", "coins", "stamps", "shells", "marbles", "stickers",
    "cookies", "eggs", "toys", "balls", "flowers", "rocks", "candies",
)
_OBJ = {"he": "him", "she": "her"}

# Question sentences per step, keyed by a phrase id stored on each Step. ``{P}`` is the capitalised
# pronoun, ``{F}`` a friend's name, ``{o}`` the object pronoun, ``{b}`` the operand.
_PHRASES: dict[str, dict[str, str]] = {
    "+": {"buys": "{P} buys {b} more.", "finds": "{P} finds {b} more.",
          "gets": "{F} gives {o} {b} more."},
    "-": {"gives": "{P} gives {b} to {F}.", "sells": "{P} sells {b}.", "loses": "{P} loses {b}."},
    "*": {"times": "Then {p} has {b} times as many.", "grows": "The number grows {b} times."},
    "/": {"splits": "{P} splits them into {b} piles and keeps one.",
          "shares": "{P} keeps one of {b} equal shares."},
}
# Verbose-style explanations, one per phrase id (present tense, short).
_EXPLAIN: dict[str, str] = {
    "buys": "{N} buys {b} more, so we add", "finds": "{N} finds {b} more, so we add",
    "gets": "{F} gives {b} more, so we add", "gives": "{N} gives away {b}, so we subtract",
    "sells": "{N} sells {b}, so we subtract", "loses": "{N} loses {b}, so we subtract",
    "times": "There are {b} times as many, so we multiply",
    "grows": "The number grows {b} times, so we multiply",
    "splits": "{N} keeps one of {b} piles, so we divide",
    "shares": "{N} keeps one of {b} shares, so we divide",
}
_QUESTIONS = ("How many {item} does {N} have now?", "How many {item} does {N} end with?")

_MAX_MISSES = 20_000
TEST_FRACTION = 0.2  # share of the canonical problem space that belongs to the test split
_OPS = ("+", "-", "*", "/")


# ----------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class Step:
    """One arithmetic step ``a op b = result`` and the phrase id used to state it."""

    op: str
    a: int
    b: int
    result: int
    phrase: str


@dataclass
class Problem:
    """A synthetic GSM-style word problem (the miniature world's stand-in for GSM8K, paper §3)."""

    uid: str
    question: str
    steps: list[Step]
    answer: int
    name: str
    pronoun: str
    friend: str
    item: str
    start: int
    split: str
    difficulty: str

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def operands(self) -> set[str]:
        """The numbers the gold solution computes with: the start value and each step's operand ``b`` (the
        ground truth a saliency rationale is checked against, arXiv 2409.12586 §4)."""
        return {str(self.start)} | {str(s.b) for s in self.steps}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``steps`` become dicts)."""
        d = asdict(self)
        d["n_steps"] = self.n_steps
        return d


@dataclass(frozen=True)
class Difficulty:
    """The difficulty knob of the synthetic task.

    Attributes:
        name: label stored on generated problems.
        ops: allowed operations, a subset of ``"+-*/"``.
        max_add: largest operand of ``+``/``-`` (and largest start value).
        max_factor: largest operand of ``*``/``/`` (smallest is 2).
        max_value: every intermediate result lies in ``[1, max_value]``.
    """

    name: str = "medium"
    ops: str = "+-*/"
    max_add: int = 20
    max_factor: int = 5
    max_value: int = 999

    def __post_init__(self):
        if not self.ops or set(self.ops) - set(_OPS):
            raise ValueError(f"Difficulty.ops={self.ops!r}: use a non-empty subset of '+-*/'")
        if self.max_add < 2 or self.max_factor < 2 or self.max_value < self.max_add:
            raise ValueError(
                f"Difficulty(max_add={self.max_add}, max_factor={self.max_factor}, "
                f"max_value={self.max_value}): need max_add>=2, max_factor>=2, max_value>=max_add"
            )


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty("easy", ops="+-", max_add=9, max_factor=2, max_value=99),
    "medium": Difficulty("medium", ops="+-*/", max_add=20, max_factor=5, max_value=999),
    "hard": Difficulty("hard", ops="+-*/", max_add=99, max_factor=9, max_value=999),
}


def get_difficulty(difficulty: str | Difficulty | dict) -> Difficulty:
    """Resolve a preset name (``easy``/``medium``/``hard``), a dict of :class:`Difficulty` fields
    (as written in a YAML profile), or pass a :class:`Difficulty` through."""
    if isinstance(difficulty, Difficulty):
        return difficulty
    if isinstance(difficulty, dict):
        return Difficulty(**difficulty)
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty={difficulty!r}: use one of {sorted(DIFFICULTIES)} or a Difficulty")
    return DIFFICULTIES[difficulty]


def _feasible_operands(op: str, v: int, d: Difficulty) -> list[int]:
    """Operands ``b`` such that ``v op b`` is an exact integer in ``[1, d.max_value]``."""
    if op == "+":
        return list(range(1, min(d.max_add, d.max_value - v) + 1))
    if op == "-":
        return list(range(1, min(d.max_add, v - 1) + 1))
    if op == "*":
        return [b for b in range(2, d.max_factor + 1) if v * b <= d.max_value]
    return [b for b in range(2, d.max_factor + 1) if v % b == 0]  # "/": exact division only


def apply_op(op: str, a: int, b: int) -> int:
    """Exact integer ``a op b``; raises ``ValueError`` on an unknown op or inexact division."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0 or a % b:
            raise ValueError(f"{a}/{b} is not an exact integer division; pick b dividing a")
        return a // b
    raise ValueError(f"op={op!r}: use one of {_OPS}")


def _content_key(name: str, item: str, start: int, steps: list[Step]) -> dict[str, Any]:
    """Canonical content of a problem (ignores phrasing), which decides its split."""
    return {"name": name, "item": item, "start": start, "ops": [[s.op, s.b] for s in steps]}


def split_of(content_key: dict[str, Any]) -> str:
    """``"test"`` for a fixed ``TEST_FRACTION`` of content hashes, else ``"train"``.

    Train/test disjointness holds by construction: a question is fully determined by content plus
    phrasing, so two equal questions share a content key and therefore a split.
    """
    bucket = int(stable_hash(content_key, n=8), 16) % 1000
    return "test" if bucket < int(TEST_FRACTION * 1000) else "train"


def _sample_steps(rng: random.Random, start: int, n_steps: int, d: Difficulty) -> list[Step] | None:
    steps, v = [], start
    for _ in range(n_steps):
        options = [(op, bs) for op in d.ops if (bs := _feasible_operands(op, v, d))]
        if not options:
            return None
        op, bs = rng.choice(options)
        b = rng.choice(bs)
        phrase = rng.choice(sorted(_PHRASES[op]))
        r = apply_op(op, v, b)
        steps.append(Step(op, v, b, r, phrase))
        v = r
    return steps


def _render_question(name: str, pronoun: str, friend: str, item: str, start: int,
                     steps: list[Step], q_template: str) -> str:
    parts = [f"{name} has {start} {item}."]
    for s in steps:
        parts.append(_PHRASES[s.op][s.phrase].format(
            P=pronoun.capitalize(), p=pronoun, F=friend, o=_OBJ[pronoun], b=s.b))
    parts.append(q_template.format(item=item, N=name))
    return " ".join(parts)


def seed_int(*parts: Any) -> int:
    return int(stable_hash(list(parts), n=15), 16)


def generate_problems(n: int, seed: int = 0, split: str = "train", min_steps: int = 1,
                      max_steps: int = 4, difficulty: str | Difficulty = "medium") -> list[Problem]:
    """Generate ``n`` distinct synthetic word problems of one split (the miniature GSM8K, paper §3).

    Each problem states a start quantity of an item owned by a named person, then ``n_steps`` in
    ``[min_steps, max_steps]`` actions (``+ - * /``, exact, every intermediate in
    ``[1, max_value]``), then asks for the final quantity. Deterministic in all arguments; a
    smaller ``n`` gives a prefix of a larger one. Train and test are disjoint by construction
    (:func:`split_of` of the canonical content), and no two problems of one call share content.

    Args:
        n: number of problems.
        seed: random seed.
        split: ``"train"`` or ``"test"``.
        min_steps, max_steps: range of arithmetic steps (1–4 in the default world).
        difficulty: preset name or :class:`Difficulty` (operand range and allowed ops).

    Returns:
        ``n`` :class:`Problem` objects.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: use 'train' or 'test'")
    if not 1 <= min_steps <= max_steps:
        raise ValueError(f"min_steps={min_steps}, max_steps={max_steps}: need 1 <= min_steps <= max_steps")
    if n < 0:
        raise ValueError(f"n={n}: must be >= 0")
    d = get_difficulty(difficulty)
    rng = random.Random(seed_int("generate_problems", seed, split, min_steps, max_steps, asdict(d)))
    out: list[Problem] = []
    seen: set[str] = set()
    misses = 0  # consecutive draws that gave nothing new: the space of this split is exhausted
    while len(out) < n:
        misses += 1
        if misses > _MAX_MISSES:
            raise ValueError(
                f"only {len(out)} distinct {split} problems found for n={n} with difficulty={d.name!r}, "
                f"steps {min_steps}-{max_steps}; ask for fewer or widen the difficulty/steps"
            )
        name, pronoun = rng.choice(NAMES)
        friend = rng.choice([f for f, _ in NAMES if f != name])
        item = rng.choice(ITEMS)
        start = rng.randint(2, d.max_add)
        steps = _sample_steps(rng, start, rng.randint(min_steps, max_steps), d)
        q_template = rng.choice(_QUESTIONS)
        if steps is None:
            continue
        key = _content_key(name, item, start, steps)
        if split_of(key) != split:
            continue
        key_hash = stable_hash(key)
        if key_hash in seen:
            continue
        seen.add(key_hash)
        misses = 0
        question = _render_question(name, pronoun, friend, item, start, steps, q_template)
        out.append(Problem(
            uid=f"syn-{stable_hash(question)}", question=question, steps=steps,
            answer=steps[-1].result, name=name, pronoun=pronoun, friend=friend, item=item,
            start=start, split=split, difficulty=d.name,
        ))
    return out


# ----------------------------------------------------------------------------------------------
# Teacher solution styles


def _rng_for(problem: Problem, style: str, rng: random.Random | None) -> random.Random:
    return rng if rng is not None else random.Random(seed_int("style", style, problem.uid))


def style_calc(problem: Problem, rng: random.Random | None = None) -> str:
    """GSM8K calculator style: ``5+3=<<5+3=8>>8 apples.`` per step, then ``#### N``.

    This is the canonical solution of a synthetic problem (the format of GSM8K references, kept
    to the expression, its annotation and the unit, since sequence length is the world's budget).
    """
    lines = [f"{s.a}{s.op}{s.b}=<<{s.a}{s.op}{s.b}={s.result}>>{s.result} {problem.item}."
             for s in problem.steps]
    return "\n".join(lines + [f"#### {problem.answer}"])


def style_verbose(problem: Problem, rng: random.Random | None = None) -> str:
    """Explained style: a short reason then the equation per step, no calculator annotations.

    e.g. ``Tom buys 3 more, so we add: 5+3=8.`` ... ``The answer is 8.`` then ``#### 8``.
    """
    lines = []
    for s in problem.steps:
        why = _EXPLAIN[s.phrase].format(N=problem.name, F=problem.friend, b=s.b)
        lines.append(f"{why}: {s.a}{s.op}{s.b}={s.result}.")
    lines.append(f"The answer is {problem.answer}.")
    return "\n".join(lines + [f"#### {problem.answer}"])


def style_terse(problem: Problem, rng: random.Random | None = None) -> str:
    """Equations only: ``5+3=8`` per line, then ``#### 8``."""
    lines = [f"{s.a}{s.op}{s.b}={s.result}" for s in problem.steps]
    return "\n".join(lines + [f"#### {problem.answer}"])


def style_answer(problem: Problem, rng: random.Random | None = None) -> str:
    """Answer only: ``#### N`` with no reasoning."""
    return f"#### {problem.answer}"


SLIP_PROB = 0.25  # per-step probability of an arithmetic slip in the ``slip`` style


def slip_steps(problem: Problem, rng: random.Random, slip_prob: float = SLIP_PROB) -> list[Step]:
    """The steps a flawed teacher writes: slips of ±1/±2 that propagate to later steps.

    Each step's result is off by a small nonzero amount with probability ``slip_prob`` (never below
    0); later steps start from the slipped value, a later division by a ``b`` that no longer
    divides is done as floor division and a negative result is written as 0 (the teacher's habits).
    """
    steps, v = [], problem.start
    for s in problem.steps:
        r = max(0, v // s.b if s.op == "/" else apply_op(s.op, v, s.b))
        if rng.random() < slip_prob:
            deltas = [d for d in (-2, -1, 1, 2) if r + d >= 0]
            r += rng.choice(deltas)
        steps.append(Step(s.op, v, s.b, r, s.phrase))
        v = r
    return steps


def style_slip(problem: Problem, rng: random.Random | None = None) -> str:
    """Calculator style with systematic slips (see :func:`slip_steps`); ``#### N`` may be wrong.

    The annotations are written as the flawed teacher believes them (``<<8*2=17>>17``).
    """
    rng = _rng_for(problem, "slip", rng)
    flawed = slip_steps(problem, rng)
    lines = [f"{s.a}{s.op}{s.b}=<<{s.a}{s.op}{s.b}={s.result}>>{s.result} {problem.item}." for s in flawed]
    return "\n".join(lines + [f"#### {flawed[-1].result}"])


STYLES: dict[str, Callable[..., str]] = {
    "calc": style_calc,
    "verbose": style_verbose,
    "terse": style_terse,
    "answer": style_answer,
    "slip": style_slip,
}


# ----------------------------------------------------------------------------------------------
# Varied chains of thought (the paper-regime world)
#
# Real teachers do not write one canonical solution per problem: m samples of one prompt differ in
# phrasing, optional explanations, the order of a commutative step's operands and unit words. The
# varied renderers below keep each family's surface form (calculator annotations, bare equations,
# explained steps) and draw those choices from ``rng``, so a teacher trained on them samples diverse
# solutions. The random draws never depend on the numbers, so the same ``rng`` state renders a
# correct and a slipped solution with identical wording (used by the world checks).

_LEADS = ("", "", "", "So ", "Then ", "Now ")  # optional openers of a later step
_VERBOSE_WHY: dict[str, tuple[str, ...]] = {
    "buys": ("{N} buys {b} more, so we add", "{N} gets {b} more, so we add", "Buying {b} more means we add"),
    "finds": ("{N} finds {b} more, so we add", "{N} gets {b} more, so we add", "Finding {b} more means we add"),
    "gets": ("{F} gives {b} more, so we add", "{N} gets {b} more from {F}, so we add", "{F} adds {b}, so we add"),
    "gives": ("{N} gives away {b}, so we subtract", "{N} has {b} less now, so we subtract",
              "Giving {b} to {F} means we subtract"),
    "sells": ("{N} sells {b}, so we subtract", "{N} has {b} less now, so we subtract", "Selling {b} means we subtract"),
    "loses": ("{N} loses {b}, so we subtract", "{N} has {b} less now, so we subtract", "Losing {b} means we subtract"),
    "times": ("There are {b} times as many, so we multiply", "{N} has {b} times as many, so we multiply",
              "The number is {b} times bigger, so we multiply"),
    "grows": ("The number grows {b} times, so we multiply", "{N} has {b} times as many, so we multiply",
              "The number is {b} times bigger, so we multiply"),
    "splits": ("{N} keeps one of {b} piles, so we divide", "{N} keeps one part in {b}, so we divide",
               "One of {b} equal piles means we divide"),
    "shares": ("{N} keeps one of {b} shares, so we divide", "{N} keeps one part in {b}, so we divide",
               "One of {b} equal shares means we divide"),
}
_VERBOSE_END = ("The answer is {r}.", "So {N} has {r} {item}.", "{N} has {r} {item} now.", "")


def _expr(s: Step, rng: random.Random) -> str:
    """``a op b``, with the operands of ``+``/``*`` swapped 30 % of the time (an equivalent order)."""
    swap = rng.random() < 0.3
    return f"{s.b}{s.op}{s.a}" if swap and s.op in "+*" else f"{s.a}{s.op}{s.b}"


def _lead(i: int, rng: random.Random) -> str:
    lead = rng.choice(_LEADS)
    return lead if i > 0 else ""


def varied_calc(problem: Problem, rng: random.Random, steps: list[Step] | None = None) -> str:
    """Calculator style with varied wording: ``Then 3+5=<<3+5=8>>8 apples.`` (unit word optional)."""
    steps = problem.steps if steps is None else steps
    lines = []
    for i, s in enumerate(steps):
        lead, e, unit = _lead(i, rng), _expr(s, rng), rng.random() < 0.7
        lines.append(f"{lead}{e}=<<{e}={s.result}>>{s.result}" + (f" {problem.item}." if unit else "."))
    return "\n".join(lines + [f"#### {steps[-1].result}"])


def varied_terse(problem: Problem, rng: random.Random, steps: list[Step] | None = None) -> str:
    """Equations only, with varied spacing and operand order: ``5 + 3 = 8`` or ``3+5=8``."""
    steps = problem.steps if steps is None else steps
    lines = []
    for s in steps:
        e, spaced = _expr(s, rng), rng.random() < 0.4
        lines.append(e.replace(s.op, f" {s.op} ", 1) + f" = {s.result}" if spaced else f"{e}={s.result}")
    return "\n".join(lines + [f"#### {steps[-1].result}"])


def varied_verbose(problem: Problem, rng: random.Random, steps: list[Step] | None = None) -> str:
    """Explained steps with one of three phrasings each, optional openers and an optional closing line."""
    steps = problem.steps if steps is None else steps
    lines = []
    for i, s in enumerate(steps):
        why = rng.choice(_VERBOSE_WHY[s.phrase]).format(N=problem.name, F=problem.friend, b=s.b)
        lead = _lead(i, rng)
        if lead:
            why = why[0].lower() + why[1:] if why.split()[0] not in {problem.name, problem.friend} else why
        lines.append(f"{lead}{why}: {_expr(s, rng)}={s.result}.")
    end = rng.choice(_VERBOSE_END).format(r=steps[-1].result, N=problem.name, item=problem.item)
    return "\n".join(lines + ([end] if end else []) + [f"#### {steps[-1].result}"])


def varied_slip(problem: Problem, rng: random.Random, steps: list[Step] | None = None) -> str:
    """Varied calculator style with the slips of :func:`slip_steps` (``#### N`` may be wrong)."""
    return varied_calc(problem, rng, slip_steps(problem, rng) if steps is None else steps)


VARIED_STYLES: dict[str, Callable[..., str]] = {
    "calc": varied_calc,
    "verbose": varied_verbose,
    "terse": varied_terse,
    "answer": lambda problem, rng, steps=None: style_answer(problem),
    "slip": varied_slip,
}
"""The paper-regime renderers, keyed like :data:`STYLES`: ``f(problem, rng, steps=None)``."""


# ----------------------------------------------------------------------------------------------
# Strong teachers that differ in fit (the compatibility world)
#
# The paper's teachers are all competent instruct models; what separates their students is how well
# each teacher's solutions fit the student. The renderers below all write correct arithmetic and keep
# the GSM8K ``#### N`` ending; each changes one property of the solution that is known to change how
# learnable it is for a small model, fixed here before any study ran on them:
#
# * ``fused`` — step granularity: the whole computation in one expression, ``(5+3)*2=16``, with no
#   intermediate result. A small student must do two operations in one step ("small models struggle to
#   learn from strong reasoners"; intermediate steps are what makes rationales learnable).
# * ``prefix`` — a surface form rare in the student's pre-training: ``mul(8, 2) = 16``, the arithmetic
#   the corpus states as ``8*2=16`` written in function notation (the corpus holds it at most at a
#   small ``worked_mix`` weight).
# * ``distract`` — text irrelevant to the answer: before a step, with probability 0.7, a sentence about
#   the problem's people that carries another number (``Ava has 7 stamps.``), in the corpus's own
#   narrative words (irrelevant context distracts, GSM-IC).
# * ``resfirst`` — order unlike the computation's: each step writes its result before the operation
#   that produces it, ``8 = 5+3`` (the output order of arithmetic decides how well small transformers
#   learn it).
#
# ``calc`` (the GSM8K calculator format, the one the corpus holds most, one operation per step) is the
# reference family beside them. Like :data:`VARIED_STYLES` these renderers take ``steps`` (for
# :func:`render_pair`) and draw from ``rng`` independently of the numbers.

_FIT_LEADS = ("", "", "So ", "Then ")
_FUNCS = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
_DISTRACTORS = ("{F} has {x} {item2}.", "{F} has no {item}.", "{F} gives {x} {item2} to {G}.",
                "{F} has {x} {item2} and {y} {item3}.", "Now {F} has {x} {item2}.")


def fit_fused(problem: Problem, rng: random.Random, steps: list[Step] | None = None) -> str:
    """Every operation in one expression, no intermediate result: ``(5+3)*2=16`` (or ``2*(5+3) = 16``).

    A strong teacher's coarse step (paper §3's teacher responses; the strong world's granularity family).
    """
    steps = problem.steps if steps is None else steps
    expr = str(steps[0].a)
    for i, s in enumerate(steps):
        left = f"({expr})" if i > 0 else expr
        swap = rng.random() < 0.3 and s.op in "+*"
        expr = f"{s.b}{s.op}{left}" if swap else f"{left}{s.op}{s.b}"
    eq = f" = {steps[-1].result}" if rng.random() < 0.4 else f"={steps[-1].result}"
    unit = f" {problem.item}." if rng.random() < 0.5 else ""
    return "\n".join([f"{rng.choice(_FIT_LEADS)}{expr}{eq}{unit}", f"#### {steps[-1].result}"])


def fit_prefix(problem: Problem, rng: random.Random, steps: list[Step] | None = None) -> str:
    """Function notation per step: ``add(5, 3) = 8`` then ``mul(8, 2) = 16`` (operands of + and * in either order).

    A surface form rare in the student's pre-training (paper §3's teacher responses; the strong world).
    """
    steps = problem.steps if steps is None else steps
    lines = []
    for i, s in enumerate(steps):
        a, b = (s.b, s.a) if rng.random() < 0.3 and s.op in "+*" else (s.a, s.b)
        lines.append(f"{_lead(i, rng)}{_FUNCS[s.op]}({a}, {b}) = {s.result}")
    return "\n".join(lines + [f"#### {steps[-1].result}"])


def _distractor(problem: Problem, rng: random.Random) -> str:
    """A sentence about someone in the problem, with numbers that play no part in the answer."""
    others = [f for f, _ in NAMES if f not in (problem.name, problem.friend)]
    items = [i for i in ITEMS if i != problem.item]
    item2, item3 = rng.sample(items, 2)
    return rng.choice(_DISTRACTORS).format(F=rng.choice([problem.friend, *others[:3]]), G=rng.choice(others),
                                           item=problem.item, item2=item2, item3=item3,
                                           x=rng.randint(2, 20), y=rng.randint(2, 20))


def fit_distract(problem: Problem, rng: random.Random, steps: list[Step] | None = None) -> str:
    """Equations with irrelevant sentences between them: ``Ava has 7 stamps.`` / ``5+3=8`` / ...

    Text irrelevant to the answer (paper §3's teacher responses; the strong world).
    """
    steps = problem.steps if steps is None else steps
    lines = []
    for s in steps:
        if rng.random() < 0.7:
            lines.append(_distractor(problem, rng))
        lines.append(f"{_expr(s, rng)}={s.result}")
    return "\n".join(lines + [f"#### {steps[-1].result}"])


def fit_resfirst(problem: Problem, rng: random.Random, steps: list[Step] | None = None) -> str:
    """Each step's result before its operation: ``8 = 5+3`` then ``16 = 8*2``.

    An order unlike the computation's (paper §3's teacher responses; the strong world).
    """
    steps = problem.steps if steps is None else steps
    lines = [f"{_lead(i, rng)}{s.result} = {_expr(s, rng)}" for i, s in enumerate(steps)]
    return "\n".join(lines + [f"#### {steps[-1].result}"])


FIT_STYLES: dict[str, Callable[..., str]] = {
    "fused": fit_fused,
    "prefix": fit_prefix,
    "distract": fit_distract,
    "resfirst": fit_resfirst,
}
"""The strong world's families, keyed by style: ``f(problem, rng, steps=None)``, varied by nature."""

CHAIN_STYLES: tuple[str, ...] = ("calc", "verbose", "terse", *FIT_STYLES)
"""Every chain-of-thought style (correct step by step arithmetic; :func:`render_pair` and the worked corpus)."""


def _varied_renderer(style: str) -> Callable[..., str]:
    return FIT_STYLES[style] if style in FIT_STYLES else VARIED_STYLES[style]


def render_solution(problem: Problem, style: str = "calc", rng: random.Random | None = None,
                    varied: bool = False) -> str:
    """Render ``problem``'s solution in a teacher style (the teachers' responses of paper §3).

    Args:
        problem: a synthetic :class:`Problem`.
        style: a key of :data:`STYLES` or :data:`FIT_STYLES`.
        rng: randomness for stochastic styles (``slip``, every :data:`FIT_STYLES` style, and every style
            when ``varied``); ``None`` derives it from the problem uid, so the same problem always renders
            the same way.
        varied: draw wording, operand order and unit words per call (:data:`VARIED_STYLES`), as real
            chains of thought vary between samples; ``False`` renders today's one canonical form. The
            :data:`FIT_STYLES` exist only varied (they draw from ``rng`` either way).

    Returns:
        The solution text; it always ends with a ``#### N`` line.
    """
    if style not in STYLES and style not in FIT_STYLES:
        raise ValueError(f"style={style!r}: use one of {sorted(STYLES) + sorted(FIT_STYLES)}")
    rng = _rng_for(problem, style, rng)
    if style in FIT_STYLES:
        return FIT_STYLES[style](problem, rng)
    return VARIED_STYLES[style](problem, rng) if varied else STYLES[style](problem, rng)


def render_pair(problem: Problem, style: str, rng: random.Random,
                slip_prob: float = SLIP_PROB) -> tuple[str, str] | None:
    """A correct and a corrupted (arithmetic-slipped) varied solution with identical wording.

    Used by the world checks' ``loss_separation``: the two texts differ only in numbers. Returns
    ``None`` when the texts would be equal (no step slipped, or only hidden intermediate results did).
    """
    if style not in CHAIN_STYLES:
        raise ValueError(f"style={style!r}: render_pair needs a chain-of-thought style ({', '.join(CHAIN_STYLES)})")
    flawed = slip_steps(problem, rng, slip_prob)
    if [s.result for s in flawed] == [s.result for s in problem.steps]:
        return None
    wording = random.Random(rng.random())
    wording_state = wording.getstate()
    render = _varied_renderer(style)
    good = render(problem, wording)
    wording.setstate(wording_state)
    bad = render(problem, wording, flawed)
    return (good, bad) if good != bad else None  # a fused solution shows only the last result


# ----------------------------------------------------------------------------------------------
# Pre-training corpus for the student

_FACT_FORMS = {
    "+": ("{a} + {b} = {r}", "{a}+{b}={r}", "{a} plus {b} is {r}"),
    "-": ("{a} - {b} = {r}", "{a}-{b}={r}", "{a} minus {b} is {r}"),
    "*": ("{a} * {b} = {r}", "{a}*{b}={r}", "{a} times {b} is {r}"),
    "/": ("{a} / {b} = {r}", "{a}/{b}={r}", "{a} divided by {b} is {r}"),
}


def _arithmetic_fact(rng: random.Random, d: Difficulty) -> str:
    """One true arithmetic fact over the same operand space the task's steps use.

    The left operand is any value a step can start from (``1..max_value``) and the right one a
    feasible operand for it (:func:`_feasible_operands`), so the base model has seen the arithmetic
    a solution needs — as a Llama base has — but never a solution.
    """
    while True:
        op, a = rng.choice(d.ops), rng.randint(1, d.max_value)
        bs = _feasible_operands(op, a, d)
        if bs:
            b = rng.choice(bs)
            return rng.choice(_FACT_FORMS[op]).format(a=a, b=b, r=apply_op(op, a, b))


def _narrative(rng: random.Random, d: Difficulty) -> str:
    (name, pronoun), item = rng.choice(NAMES), rng.choice(ITEMS)
    friend = rng.choice([f for f, _ in NAMES if f != name])
    a = rng.randint(3, d.max_add)
    b = rng.randint(1, a - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return f"{name} has {a} {item}. {pronoun.capitalize()} gives {b} to {friend}. Now {name} has {a - b} {item}."
    if kind == 1:
        return f"{name} has {a} {item}. {friend} gives {_OBJ[pronoun]} {b} more. Now {name} has {a + b} {item}."
    item2 = rng.choice([i for i in ITEMS if i != item])
    return f"{name} has {a} {item} and {b} {item2}. {friend} has no {item}."


def _base_corpus(n: int, seed: int, d: Difficulty) -> list[str]:
    rng = random.Random(seed_int("pretraining_corpus", seed, asdict(d)))
    kinds = [rng.choices(("question", "facts", "narrative"), weights=(4, 3, 3))[0] for _ in range(n)]
    questions = iter(generate_problems(kinds.count("question"), seed=seed_int("pretrain-q", seed),
                                       split="train", difficulty=d))
    out = []
    for kind in kinds:
        if kind == "question":
            out.append(next(questions).question)
        elif kind == "facts":
            out.append(". ".join(_arithmetic_fact(rng, d) for _ in range(3)) + ".")
        else:
            out.append(_narrative(rng, d))
    return out


def worked_solutions(n: int, seed: int, d: Difficulty, mix: dict[str, float], template: str,
                     min_steps: int = 1, max_steps: int = 4) -> list[str]:
    """``n`` worked solutions ``template(question) + solution`` in the surface forms of ``mix``.

    The analogue of the worked math in a web corpus (the paper regime): train-split problems,
    correct arithmetic, each solution a varied rendering (:data:`VARIED_STYLES`) in a style drawn with
    the weights of ``mix`` (e.g. ``{"calc": 0.5, "terse": 0.3, "verbose": 0.2}``; any of
    :data:`CHAIN_STYLES`, so a strong world can hold a :data:`FIT_STYLES` form at a small weight).
    """
    bad = set(mix) - set(CHAIN_STYLES)
    if bad or not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
        raise ValueError(f"worked-solution mix {mix!r}: use positive weights over {', '.join(CHAIN_STYLES)}")
    if "{prompt}" not in template:
        raise ValueError(f"template {template!r} has no '{{prompt}}' placeholder")
    rng = random.Random(seed_int("worked-solutions", seed, asdict(d), sorted(mix.items())))
    probs = generate_problems(n, seed=seed_int("pretrain-worked", seed), split="train",
                              min_steps=min_steps, max_steps=max_steps, difficulty=d)
    styles, weights = zip(*sorted(mix.items()), strict=True)
    return [template.format(prompt=p.question) + _varied_renderer(rng.choices(styles, weights)[0])(p, rng)
            for p in probs]


def pretraining_corpus(n: int, seed: int = 0, difficulty: str | Difficulty = "medium", worked_share: float = 0.0,
                       worked_mix: dict[str, float] | None = None, template: str = "Q: {prompt}\nA:",
                       min_steps: int = 1, max_steps: int = 4) -> list[str]:
    """Generic domain text to pre-train the student before distillation (paper §3's base model).

    A mix of train-split questions without solutions (40%), lines of three arithmetic facts
    (``5 + 3 = 8. 7 times 6 is 42. ...``, 30%) and short narratives about the same entities (30%).
    With ``worked_share = 0`` (the ``format-shock`` world) there is no teacher style at all: no
    ``####`` and no ``<<...>>`` annotations, and the corpus is exactly the original one.
    With ``worked_share > 0`` (the paper regime) that share of the ``n`` texts is replaced by
    :func:`worked_solutions` in the surface forms of ``worked_mix``, shuffled in: the student has read
    worked math before it meets any teacher, as Llama-*-Base has.

    Args:
        n: number of texts.
        seed: random seed.
        difficulty: number ranges, as in :func:`generate_problems`.
        worked_share: fraction of worked solutions, in ``[0, 1)``.
        worked_mix: style weights of the worked solutions (required when ``worked_share > 0``).
        template: the Q/A prompt template the worked solutions are written in.
        min_steps, max_steps: step range of the worked solutions' problems.
    """
    d = get_difficulty(difficulty)
    if not 0.0 <= worked_share < 1.0:
        raise ValueError(f"worked_share={worked_share}: use a fraction in [0, 1)")
    n_worked = round(n * worked_share)
    if n_worked == 0:
        return _base_corpus(n, seed, d)
    if not worked_mix:
        raise ValueError("worked_share > 0 needs worked_mix, e.g. {calc: 0.5, terse: 0.3, verbose: 0.2}")
    texts = _base_corpus(n - n_worked, seed, d) + worked_solutions(n_worked, seed, d, dict(worked_mix), template,
                                                                   min_steps, max_steps)
    random.Random(seed_int("pretraining-shuffle", seed, n, worked_share)).shuffle(texts)
    return texts


_TOKEN_RE = re.compile(r"\d|[A-Za-z]+|<<|>>|####|\S")


def count_tokens(text: str) -> int:
    """Approximate length in word-level tokens with digits split (the miniature world's budget).

    Words, single digits, ``<<``, ``>>``, ``####`` and each other symbol count as one token.
    """
    return len(_TOKEN_RE.findall(text))



def style_table(task: Any, tokenizer: Any, problems: Sequence[Any], rng: Any,
                styles: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean length (student tokens) and correctness of each solution style written out faithfully
    (chapter 2.1; the miniature's stand-in for the paper's teacher formats, §3).

    ``rng`` (a ``random.Random``) draws the styles' random choices, style after style. ``styles``: the
    styles to measure (default: every :data:`STYLES` style, then every :data:`FIT_STYLES` one).
    """
    import numpy as np
    import pandas as pd

    rows = []
    for style in (list(STYLES) + list(FIT_STYLES) if styles is None else styles):
        sols = [render_solution(p, style, rng) for p in problems]
        rows.append({
            "style": style,
            "mean tokens": np.mean([len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in sols]),
            "correct": np.mean([task.is_correct(s, str(p.answer)) for s, p in zip(sols, problems, strict=True)]),
        })
    return pd.DataFrame(rows).set_index("style")


__all__ = [
    "CHAIN_STYLES", "DIFFICULTIES", "FIT_STYLES", "ITEMS", "NAMES", "STYLES", "TEST_FRACTION", "VARIED_STYLES", "Difficulty", "Problem", "Step",
    "apply_op", "count_tokens", "generate_problems", "get_difficulty", "pretraining_corpus", "render_pair",
    "render_solution", "seed_int", "slip_steps", "split_of", "style_table", "worked_solutions",
]
