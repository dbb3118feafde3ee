"""Tests for grace.tasks: synthetic task, teacher styles, answer checking, real-data loaders."""

from __future__ import annotations

import ast
import operator
import re
import statistics

import pytest

from grace import synthetic
from grace.answers import (
    extract_boxed,
    extract_gsm8k_answer,
    gsm8k_is_correct,
    math_is_correct,
    normalize_math_answer,
)
from grace.data import default_data_dir, load_gsm8k, load_math
from grace.synthetic import (
    DIFFICULTIES,
    STYLES,
    Difficulty,
    count_tokens,
    generate_problems,
    pretraining_corpus,
    render_solution,
    split_of,
)
from grace.tasks import GSM8KTask, MathTask, SyntheticTask, get_task

# ---------------------------------------------------------------------------------------------
# helpers: an independent, safe evaluator for calculator annotations

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def safe_eval(expr: str) -> float:
    """Evaluate +,-,*,/ over integer literals only (no names, calls or attributes)."""

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        raise ValueError(f"unsafe or unsupported expression: {expr!r}")

    return ev(ast.parse(expr, mode="eval"))


ANNOT = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
ANNOT_SHOWN = re.compile(r"(\S+)=<<([^=<>]+)=([^<>]+)>>(\S+) ")


@pytest.fixture(scope="module")
def train_problems():
    return generate_problems(600, seed=0, split="train")


@pytest.fixture(scope="module")
def test_problems():
    return generate_problems(300, seed=0, split="test")


# ---------------------------------------------------------------------------------------------
# synthetic problems


def test_deterministic_by_seed_and_prefix_stable():
    a = generate_problems(40, seed=3, split="train")
    b = generate_problems(40, seed=3, split="train")
    c = generate_problems(40, seed=4, split="train")
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]
    assert [p.question for p in a] != [p.question for p in c]
    assert [p.uid for p in generate_problems(15, seed=3, split="train")] == [p.uid for p in a[:15]]


def test_train_test_disjoint_by_construction(train_problems, test_problems):
    more_train = generate_problems(1500, seed=1, split="train")
    train_q = {p.question for p in train_problems + more_train}
    test_q = {p.question for p in test_problems}
    assert len(test_q) == len(test_problems)  # no duplicates within a call
    assert not train_q & test_q
    assert all(p.split == "train" for p in train_problems) and all(p.split == "test" for p in test_problems)
    for p in train_problems[:100] + test_problems[:100]:
        key = {"name": p.name, "item": p.item, "start": p.start, "ops": [[s.op, s.b] for s in p.steps]}
        assert split_of(key) == p.split
    # the split rule sends roughly TEST_FRACTION of contents to test
    keys = [{"k": i} for i in range(2000)]
    frac = sum(split_of(k) == "test" for k in keys) / len(keys)
    assert abs(frac - synthetic.TEST_FRACTION) < 0.04


def test_canonical_solution_annotations_and_answer(train_problems, test_problems):
    for p in train_problems + test_problems:
        sol = render_solution(p, "calc")
        lines = sol.split("\n")
        assert lines[-1] == f"#### {p.answer}"
        assert int(extract_gsm8k_answer(sol)) == p.answer
        annots = ANNOT.findall(sol)
        assert len(annots) == p.n_steps == len(lines) - 1
        for expr, value in annots:
            assert safe_eval(expr) == int(value), (p.uid, expr, value)
        # GSM8K form "a+b=<<a+b=c>>c": the text repeats the annotated expression and its value
        shown = ANNOT_SHOWN.findall(sol)
        assert len(shown) == p.n_steps
        for before, expr, value, after in shown:
            assert before == expr and after == value, sol
        # the steps chain: each step starts from the previous result, the last result is the answer
        assert p.steps[0].a == p.start and p.steps[-1].result == p.answer
        for prev, cur in zip(p.steps, p.steps[1:], strict=False):
            assert cur.a == prev.result
        # every number in the question that states an operand actually appears there
        assert str(p.start) in p.question and all(str(s.b) in p.question for s in p.steps)


@pytest.mark.parametrize("difficulty", sorted(DIFFICULTIES))
def test_bounds_exact_division_and_step_range(difficulty):
    d = DIFFICULTIES[difficulty]
    probs = generate_problems(300, seed=2, split="train", min_steps=1, max_steps=4, difficulty=difficulty)
    assert {p.n_steps for p in probs} == {1, 2, 3, 4}
    assert {s.op for p in probs for s in p.steps} == set(d.ops)
    for p in probs:
        assert 2 <= p.start <= d.max_add and p.difficulty == difficulty
        for s in p.steps:
            assert 1 <= s.result <= d.max_value
            if s.op in "+-":
                assert 1 <= s.b <= d.max_add
            else:
                assert 2 <= s.b <= d.max_factor
            if s.op == "/":
                assert s.a % s.b == 0 and s.result * s.b == s.a
    two = generate_problems(50, seed=2, split="test", min_steps=2, max_steps=2)
    assert {p.n_steps for p in two} == {2}


def test_generate_problems_rejects_bad_arguments_and_exhaustion():
    with pytest.raises(ValueError, match="split"):
        generate_problems(3, split="dev")
    with pytest.raises(ValueError, match="min_steps"):
        generate_problems(3, min_steps=3, max_steps=2)
    with pytest.raises(ValueError, match="difficulty"):
        generate_problems(3, difficulty="impossible")
    with pytest.raises(ValueError, match="ops"):
        Difficulty("bad", ops="+^")
    tiny = Difficulty("tiny", ops="+", max_add=2, max_factor=2, max_value=10)
    with pytest.raises(ValueError, match="distinct"):  # at most 24*16*2 one-step contents exist
        generate_problems(1000, split="train", min_steps=1, max_steps=1, difficulty=tiny)


def test_problem_lengths_are_short(train_problems):
    words = [len(p.question.split()) for p in train_problems]
    calc = [count_tokens(render_solution(p, "calc")) for p in train_problems]
    assert statistics.mean(words) <= 30 and max(words) <= 45
    assert statistics.mean(calc) <= 50
    short = generate_problems(300, seed=0, split="train", max_steps=3)
    assert statistics.mean(count_tokens(p.question) + count_tokens(render_solution(p, "calc"))
                           for p in short) <= 70
    assert count_tokens("Tom has 12 apples.") == 6  # "Tom has 1 2 apples ."


# ---------------------------------------------------------------------------------------------
# teacher styles


def test_styles_registry_and_docstrings():
    assert {"calc", "verbose", "terse", "answer", "slip"} <= set(STYLES)
    for fn in STYLES.values():
        assert fn.__doc__ and len(fn.__doc__.strip()) > 10
    with pytest.raises(ValueError, match="style"):
        render_solution(generate_problems(1)[0], "poetry")


@pytest.mark.parametrize("style", ["calc", "verbose", "terse", "answer"])
def test_faithful_styles_parse_to_the_answer(style, train_problems):
    for p in train_problems:
        sol = render_solution(p, style)
        assert re.search(r"(^|\n)#### \d+$", sol), sol
        assert gsm8k_is_correct(sol, p.answer)
        assert not gsm8k_is_correct(sol, p.answer + 1)


def test_styles_have_their_shape(train_problems):
    p = next(q for q in train_problems if q.n_steps == 3)
    terse = render_solution(p, "terse").split("\n")
    assert len(terse) == 4
    for line in terse[:-1]:
        lhs, rhs = line.split("=")
        assert safe_eval(lhs) == int(rhs)
    assert "<<" not in render_solution(p, "verbose") and "<<" in render_solution(p, "calc")
    lengths = {s: statistics.mean(count_tokens(render_solution(q, s)) for q in train_problems)
               for s in ("answer", "terse", "calc", "verbose")}
    assert lengths["answer"] <= 4 < lengths["terse"] < lengths["calc"] < lengths["verbose"]
    assert all(render_solution(q, "answer") == f"#### {q.answer}" for q in train_problems)


def test_slip_style_is_wrong_at_a_measurable_rate(train_problems):
    sols = [render_solution(p, "slip") for p in train_problems]
    assert all(s.split("\n")[-1].startswith("#### ") for s in sols)
    wrong = sum(not gsm8k_is_correct(s, p.answer) for s, p in zip(sols, train_problems, strict=True)) / len(sols)
    assert 0.2 < wrong < 0.8, wrong
    # deterministic without rng; varies with an explicit rng
    p = train_problems[0]
    assert render_solution(p, "slip") == render_solution(p, "slip")
    import random

    rng = random.Random(0)
    assert len({render_solution(p, "slip", rng) for _ in range(30)}) > 1
    # errors propagate: every annotation's left operand is the previous (possibly slipped) result
    bad = 0
    for s in sols:
        annots = ANNOT.findall(s)
        bad += any(safe_eval(e) != int(v) for e, v in annots)
        prev = None
        for expr, value in annots:
            left = int(re.match(r"\d+", expr).group(0))
            assert prev is None or left == prev
            prev = int(value)
        assert s.split("\n")[-1] == f"#### {prev}"
    assert bad > 0


# ---------------------------------------------------------------------------------------------
# pre-training corpus


def test_pretraining_corpus_has_no_teacher_style(test_problems):
    corpus = pretraining_corpus(400, seed=0)
    assert corpus == pretraining_corpus(400, seed=0) and corpus != pretraining_corpus(400, seed=1)
    assert len(corpus) == 400
    assert not any("####" in t or "<<" in t or ">>" in t for t in corpus)
    questions = [t for t in corpus if t.endswith("?")]
    facts = [t for t in corpus if re.match(r"^\d", t)]
    narratives = [t for t in corpus if t not in questions and t not in facts]
    assert min(len(questions), len(facts), len(narratives)) > 50
    assert not set(questions) & {p.question for p in test_problems}
    words = {"plus": "+", "minus": "-", "times": "*", "divided by": "/", "is": "="}
    for t in facts:
        for fact in t.rstrip(".").split(". "):
            for w, sym in words.items():
                fact = fact.replace(f" {w} ", f" {sym} ")
            lhs, rhs = fact.split("=")
            assert safe_eval(lhs) == int(rhs), fact
    assert statistics.mean(len(t.split()) for t in corpus) <= 30


# ---------------------------------------------------------------------------------------------
# GSM8K answers


@pytest.mark.parametrize("text,expected", [
    ("Tom has 1,000+234=<<1000+234=1234>>1234.\n#### 1,234", "1234"),
    ("so she has 8 apples in total.", "8"),
    ("First 3 then 5+3=8\nThe answer is 12.", "12"),
    ("#### $5.", "5"),
    ("#### -3", "-3"),
    ("it is 10-3", "3"),  # a binary minus is not a sign
    ("#### 8.00", "8.00"),
    ("5 apples #### 7 and later 9", "7"),
    ("#### 1\n#### 2", "2"),
    ("no numbers here", None),
    ("", None),
])
def test_extract_gsm8k_answer(text, expected):
    assert extract_gsm8k_answer(text) == expected


def test_gsm8k_is_correct():
    assert gsm8k_is_correct("#### 8.00", "8")
    assert gsm8k_is_correct("x\n#### 1,234", 1234)
    assert gsm8k_is_correct("The answer is 72.", "Natalia sold 48+24 = <<48+24=72>>72.\n#### 72")
    assert not gsm8k_is_correct("#### 9", "8")
    assert not gsm8k_is_correct("I do not know", "8")
    assert not gsm8k_is_correct(None, "8")
    with pytest.raises(ValueError, match="reference"):
        gsm8k_is_correct("#### 8", "eight")


# ---------------------------------------------------------------------------------------------
# MATH answers


def test_extract_boxed():
    assert extract_boxed(r"so $\boxed{\frac{1}{\sqrt{2}}}$.") == r"\frac{1}{\sqrt{2}}"
    assert extract_boxed(r"\boxed{1} then \boxed{x^{2}+\{1\}}") == r"x^{2}+\{1\}"
    assert extract_boxed(r"\fbox{3}") == "3"
    assert extract_boxed(r"is $\boxed 5$") == "5"
    assert extract_boxed(r"\boxed{1") is None
    assert extract_boxed("no box") is None and extract_boxed(None) is None


@pytest.mark.parametrize("a,b", [
    (r"\frac{1}{2}", "0.5"),
    (r"\frac12", r"\dfrac{1}{2}"),
    (r"\tfrac{2}{4}", "1/2"),
    ("x = 5", "5"),
    (r"5\text{ cm}", "5"),
    (r"90^\circ", "90"),
    (r"10,\!000", "10000"),
    (r"\$5.00", "5"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"),
    (r"11\sqrt2", r"11\sqrt{2}"),
    (r"\text{Evelyn}", "Evelyn"),
    (".25", r"\frac{1}{4}"),
])
def test_normalize_math_answer_equivalences(a, b):
    assert normalize_math_answer(a) == normalize_math_answer(b)


@pytest.mark.parametrize("a,b", [("0.5", r"\frac{1}{3}"), ("(3,4)", "34"), ("2", "-2"), (r"\sqrt{2}", "2")])
def test_normalize_math_answer_keeps_differences(a, b):
    assert normalize_math_answer(a) != normalize_math_answer(b)


def test_math_is_correct_fallback():
    assert math_is_correct(r"We get $\boxed{\dfrac{1}{2}}$.", "0.5", use_math_verify=False)
    assert math_is_correct(r"Thus \boxed{x=3}", "3", use_math_verify=False)
    assert not math_is_correct(r"Thus \boxed{4}", "3", use_math_verify=False)
    assert not math_is_correct("", "3", use_math_verify=False)


def test_math_is_correct_with_math_verify():
    pytest.importorskip("math_verify")
    # symbolic equivalence that the string fallback cannot see
    assert math_is_correct(r"so $\boxed{(x+1)^2}$", "x^2+2x+1", use_math_verify=True)
    assert not math_is_correct(r"so $\boxed{(x+1)^2}$", "x^2+2x+1", use_math_verify=False)
    assert not math_is_correct(r"We get $\boxed{\frac{1}{3}}$.", "0.5", use_math_verify=True)
    assert math_is_correct(r"costs $\boxed{\$36}$", r"\$36", use_math_verify=True)


# ---------------------------------------------------------------------------------------------
# real data (skipped when the shared folder is absent)


def _need(path):
    if not path.exists():
        pytest.skip(f"{path} not found (set GRACE_DATA_DIR)")
    return path


def test_default_data_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("GRACE_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("GRACE_DATA_DIR")
    assert default_data_dir().parts[-2:] == ("shared", "data")


@pytest.mark.parametrize("split,rows", [("train", 7473), ("test", 1319)])
def test_load_gsm8k_local(split, rows):
    path = _need(default_data_dir() / "gsm8k" / f"{split}.jsonl")
    data = load_gsm8k(split, path)
    assert len(data) == rows
    assert len({r["prompt_id"] for r in data}) == rows
    assert set(data[0]) == {"prompt_id", "prompt", "answer", "reference_solution"}
    for r in data:
        assert r["answer"] is not None and gsm8k_is_correct(r["reference_solution"], r["answer"])
    assert load_gsm8k(split, path.parent)[0] == data[0]  # folder form


def test_load_math500_local_boxed_matches_answer():
    path = _need(default_data_dir() / "math500" / "test.jsonl")
    data = load_math(path)
    assert len(data) == 500 and len({r["prompt_id"] for r in data}) == 500
    same = [normalize_math_answer(extract_boxed(r["reference_solution"])) == normalize_math_answer(r["answer"])
            for r in data]
    rate = sum(same) / len(same)
    print(f"MATH500 boxed-vs-answer agreement after normalisation: {rate:.3f}")
    assert rate >= 0.95
    assert all("subject" in r and "level" in r for r in data)


def test_loaders_bad_path_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_gsm8k("test", tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="split"):
        load_gsm8k("validation", tmp_path)
    bad = tmp_path / "test.jsonl"
    bad.write_text('{"q": 1}\n')
    with pytest.raises(ValueError, match="question"):
        load_gsm8k("test", tmp_path)


# ---------------------------------------------------------------------------------------------
# Task objects


def test_synthetic_task():
    task = get_task("synthetic", difficulty="easy", max_steps=2, seed=5)
    train, test = task.train_prompts(30), task.test_prompts(20)
    assert train == task.train_prompts(30) and train != task.train_prompts(30, seed=1)
    assert set(train[0]) >= {"prompt_id", "prompt", "answer", "reference_solution"}
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
    for r in train:
        assert task.is_correct(r["reference_solution"], r["answer"])
        assert not task.is_correct("#### 100000", r["answer"])
        assert task.extract_answer(r["reference_solution"]) == r["answer"]
    assert isinstance(task, SyntheticTask)
    with pytest.raises(ValueError, match="n=None"):
        task.train_prompts()
    with pytest.raises(ValueError, match="task"):
        get_task("imagenet")


def test_gsm8k_task_local():
    _need(default_data_dir() / "gsm8k" / "test.jsonl")
    task = GSM8KTask()
    a, b = task.test_prompts(20, seed=0), task.test_prompts(50, seed=0)
    assert a == b[:20] and a != task.test_prompts(20, seed=1)
    assert task.is_correct(a[0]["reference_solution"], a[0]["answer"])
    with pytest.raises(ValueError, match="exceeds"):
        task.test_prompts(10**6)


def test_math_task_local():
    _need(default_data_dir() / "math500" / "test.jsonl")
    task = MathTask()
    rows = task.test_prompts(10, seed=0)
    assert all(task.is_correct(r["reference_solution"], r["answer"]) for r in rows)
    with pytest.raises(ValueError, match="train_path"):
        task.train_prompts(5)


def test_math_verify_is_installed_and_catches_what_the_fallback_misses():
    """Issue 12: math-verify is a core dependency; the fallback normaliser misses equivalent forms."""
    from grace.answers import math_is_correct

    for response, ref in [("\\boxed{2\\sqrt2}", "\\sqrt8"), ("\\boxed{(3,\\frac{\\pi}{2})}", "(3,\\pi/2)"),
                          ("\\boxed{\\{1,2\\}}", "\\{1,2\\}")]:
        assert math_is_correct(response, ref, use_math_verify=True), (response, ref)
    assert not math_is_correct("\\boxed{2\\sqrt2}", "\\sqrt8", use_math_verify=False)
    assert not math_is_correct("\\boxed{3}", "4")


# ---------------------------------------------------------------------------------------------
# the strong world's families: correct arithmetic, one learnability property changed each


@pytest.fixture(scope="module")
def two_step_problems():
    mini = {"name": "mini", "ops": "+-*/", "max_add": 12, "max_factor": 3, "max_value": 99}
    return generate_problems(200, seed=4, split="train", min_steps=2, max_steps=2, difficulty=mini)


@pytest.mark.parametrize("style", sorted(synthetic.FIT_STYLES))
def test_fit_styles_parse_to_the_answer_and_vary(style, two_step_problems):
    import random

    rng = random.Random(0)
    sols = [render_solution(p, style, rng) for p in two_step_problems]
    for p, sol in zip(two_step_problems, sols, strict=True):
        assert sol.endswith(f"\n#### {p.answer}") and gsm8k_is_correct(sol, p.answer), sol
    assert synthetic.FIT_STYLES[style].__doc__
    again = [render_solution(p, style, random.Random(1)) for p in two_step_problems]
    assert sum(a != b for a, b in zip(sols, again, strict=True)) > len(sols) // 4  # samples differ
    assert render_solution(two_step_problems[0], style) == render_solution(two_step_problems[0], style)


def _lines(sol: str) -> list[str]:
    """The solution's lines before ``#### N``, without the optional openers."""
    return [re.sub(r"^(So|Then|Now) ", "", line) for line in sol.split("\n")[:-1]]


def test_fit_styles_have_their_mechanism(two_step_problems):
    import random

    rng = random.Random(2)
    for p in two_step_problems:
        fused = _lines(render_solution(p, "fused", rng))
        assert len(fused) == 1  # one step for the whole computation, no intermediate result
        expr, value = fused[0].replace(" ", "").removesuffix(f"{p.item}.").split("=")
        assert safe_eval(expr) == int(value) == p.answer and expr.count("(") == 1
        prefix = _lines(render_solution(p, "prefix", rng))
        assert len(prefix) == 2
        for line, s in zip(prefix, p.steps, strict=True):
            m = re.fullmatch(r"(add|sub|mul|div)\((\d+), (\d+)\) = (\d+)", line)
            assert m and int(m.group(4)) == s.result and {int(m.group(2)), int(m.group(3))} == {s.a, s.b}
        first = _lines(render_solution(p, "resfirst", rng))
        for line, s in zip(first, p.steps, strict=True):
            lhs, rhs = line.split(" = ")
            assert int(lhs) == s.result == safe_eval(rhs)  # the result is written before its operation
    # distractors: sentences between the steps, about the problem's people, that leave the answer alone
    sols = [render_solution(p, "distract", rng) for p in two_step_problems]
    extra = [line for s in sols for line in _lines(s) if not re.fullmatch(r"[\d+\-*/]+=\d+", line)]
    assert 0.5 * len(sols) < len(extra) < 2 * len(sols)
    assert all(line.endswith(".") and any(c.isalpha() for c in line) for line in extra)
    assert sum(bool(re.search(r"\d", line)) for line in extra) > len(extra) // 2  # numbers that do not matter
    corpus_words = {w for t in pretraining_corpus(3000, seed=0) for w in re.findall(r"[A-Za-z]+", t)}
    assert {w for line in extra for w in re.findall(r"[A-Za-z]+", line)} <= corpus_words


def test_fit_styles_are_not_in_the_default_registry_and_pairs_work(two_step_problems):
    import random

    assert not set(synthetic.FIT_STYLES) & set(STYLES)  # the other worlds' tokenizers stay as they were
    assert set(synthetic.CHAIN_STYLES) == {"calc", "verbose", "terse", *synthetic.FIT_STYLES}
    rng = random.Random(3)
    for style in synthetic.FIT_STYLES:
        pairs = [synthetic.render_pair(p, style, rng, slip_prob=1.0) for p in two_step_problems[:60]]
        pairs = [q for q in pairs if q is not None]
        assert len(pairs) > 30, style
        strip = lambda t: "".join(c for c in t if not c.isdigit())  # noqa: E731
        assert all(g != b and strip(g) == strip(b) for g, b in pairs), style
    worked = synthetic.worked_solutions(40, 0, synthetic.get_difficulty("easy"), {"calc": 0.5, "prefix": 0.5},
                                        "Q: {prompt}\nA:", 2, 2)
    assert any("<<" in t for t in worked) and any(re.search(r"(add|sub|mul|div)\(", t) for t in worked)
