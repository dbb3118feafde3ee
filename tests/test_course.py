"""The book's exercises (grace.course and the chapters' exercise/solution blocks).

Every exercise has one solution; every coded solution asserts a registered check (the smoke build executes
those cells, so a check that fails stops CI); a right answer is told right and a wrong one wrong, with the
known mistake named when it matches one.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grace import course

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((REPO / "notebooks").glob("[0-9]*.py"))
EXERCISE = re.compile(r"^# ::::\{exercise\}.*\n# :label: (?P<id>ch\d+-ex\d+)$", re.M)
SOLUTION = re.compile(r"^# ::::\{solution(?:-start)?\} (?P<id>ch\d+-ex\d+)$", re.M)
CHECKED = re.compile(r'assert course\.check\("(?P<id>ch\d+-ex\d+)"')


def _cells(path: Path) -> list[tuple[str, str]]:
    """(header, body) of every jupytext percent cell."""
    parts = re.split(r"^(# %%.*)$", path.read_text(), flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def _exercises() -> dict[str, list[str]]:
    return {p.stem: EXERCISE.findall(p.read_text()) for p in CHAPTERS}


def test_every_chapter_has_two_to_four_exercises_and_25_in_all():
    found = _exercises()
    counts = {k: len(v) for k, v in found.items()}
    assert all(2 <= n <= 4 for n in counts.values()), counts
    assert sum(counts.values()) >= 25
    ids = [i for v in found.values() for i in v]
    assert len(ids) == len(set(ids)), "exercise labels must be unique across the book"
    for stem, labels in found.items():  # ch<k> matches the chapter file's number
        assert all(i.startswith(f"ch{int(stem[:2])}-") for i in labels), (stem, labels)


def test_every_exercise_has_exactly_one_solution_after_it():
    for path in CHAPTERS:
        text = path.read_text()
        exercises, solutions = EXERCISE.findall(text), SOLUTION.findall(text)
        assert sorted(exercises) == sorted(solutions), path.name
        assert len(set(solutions)) == len(solutions), path.name
        for i in exercises:
            assert text.index(f":label: {i}") < text.index(f"}} {i}\n"), f"{i}: its solution comes before it"
        assert text.count("::::{solution-start}") == text.count("::::{solution-end}"), path.name


def test_coded_solutions_assert_a_registered_check_of_their_own_exercise():
    checked = []
    for path in CHAPTERS:
        for header, body in _cells(path):
            if 'tags=["solution"]' not in header:
                continue
            ids = CHECKED.findall(body)
            assert len(ids) == 1, f"{path.name}: a solution cell asserts exactly one check, got {ids}"
            assert ids[0] in course.EXERCISES, f"{ids[0]} has no entry in grace.course.EXERCISES"
            assert ids[0] in EXERCISE.findall(path.read_text()), f"{ids[0]} checked in {path.name}, defined elsewhere"
            checked += ids
    assert sorted(checked) == sorted(course.EXERCISES), "every registered check has exactly one solution cell"


def test_solution_cells_are_gated_inside_their_solution():
    for path in CHAPTERS:
        cells = _cells(path)
        for k, (header, body) in enumerate(cells):
            if 'tags=["solution"]' in header:
                (i,) = CHECKED.findall(body)
                assert f"::::{{solution-start}} {i}" in cells[k - 1][1], f"{i}: the cell before must open the solution"
                assert "::::{solution-end}" in cells[k + 1][1], f"{i}: the cell after must close the solution"


CLOSED_FORM = [i for i, ex in course.EXERCISES.items() if not ex.reads_study]


@pytest.mark.parametrize("exercise_id", CLOSED_FORM)
def test_closed_form_right_and_wrong(exercise_id, capsys):
    ex = course.EXERCISES[exercise_id]
    value = ex.expected(course.Context())
    right = course.check(exercise_id, value)
    assert right and right.ok and "right" in capsys.readouterr().out
    wrong = course.check(exercise_id, 1.7 * value + 0.3)
    assert not wrong and "not right" in wrong.message and exercise_id in wrong.message


def test_a_known_mistake_is_named():
    v = course.check("ch3-ex2", 8)
    assert not v and "log|y|" in v.message
    v = course.check("ch4-ex4", 16)
    assert not v and "entropy" in v.message
    v = course.check("ch5-ex1", 5 / 12)
    assert not v and "avg@k" in v.message


def test_wrong_number_says_direction_not_value():
    ex = course.EXERCISES["ch4-ex4"]
    value = ex.expected(course.Context())
    big, small, neg = course.check("ch4-ex4", 3.5), course.check("ch4-ex4", 1.0), course.check("ch4-ex4", -2.0)
    assert "too large" in big.message and "too small" in small.message and "sign" in neg.message
    for v in (big, small, neg):
        assert f"{value:.3f}" not in v.message and f"{value:.6g}" not in v.message


def test_tolerance_is_relative():
    value = course.EXERCISES["ch4-ex1"].expected(course.Context())
    assert course.check("ch4-ex1", value * (1 + 5e-4))
    assert not course.check("ch4-ex1", value * (1 + 5e-3))


def test_unknown_exercise_and_non_number_are_refused():
    with pytest.raises(ValueError, match="unknown exercise 'ch99-ex1'"):
        course.check("ch99-ex1", 1.0)
    with pytest.raises(ValueError, match="must be a number"):
        course.check("ch4-ex4", "log 16")


def test_verdict_shows_a_sentence_not_a_repr():
    v = course.check("ch4-ex4", float(np.log(16)))
    assert repr(v) == str(v) == v.message and not repr(v).startswith("Verdict(")
    assert v._repr_markdown_().startswith("**right**")


def _fake_study(tmp_path: Path) -> Path:
    """A study folder with only results.csv: four main-pool configurations and the student."""
    study = tmp_path / "toy" / "study"
    study.mkdir(parents=True)
    pd.DataFrame({
        "config": ["a@0.5", "a@1", "b@0.5", "b@1", "student@1"],
        "temperature": [0.5, 1.0, 0.5, 1.0, 1.0],
        "in_pool": [True, True, True, True, False],
        "is_self": [False, False, False, False, True],
        "grace": [3.0, 1.0, 4.0, 2.0, 0.5],
        "g_var": [3.0, 2.0, 4.0, 1.0, 9.0],
        "grace_release": [2.0, 1.0, 4.0, 3.0, 0.1],
        "teacher_accuracy": [0.9, 0.5, 0.7, 0.6, 0.2],
        "student_avg_at_k": [0.20, 0.40, 0.10, 0.30, 0.9],
    }).to_csv(study / "results.csv", index=False)
    return study


def test_study_exercises_on_a_toy_results_table(tmp_path):
    study = _fake_study(tmp_path)
    assert course.check("ch1-ex1", "a@1", study_dir=study)  # lowest GRACE in the pool (the student is out)
    wrong = course.check("ch1-ex1", "b@0.5", study_dir=study)
    assert not wrong and "largest" in wrong.message
    assert not course.check("ch1-ex1", "student@1", study_dir=study)
    assert course.check("ch1-ex2", 0.8, study_dir=study)  # ranks 3,1,4,2 vs 3,2,4,1
    assert course.check("ch2-ex1", 0.5, study_dir=study)  # mean accuracy 0.8 at 0.5, 0.55 at 1
    assert not course.check("ch2-ex1", 1.0, study_dir=study)
    assert course.check("ch5-ex2", 20.0, study_dir=study)  # best 0.40, most accurate a@0.5 has 0.20
    assert course.check("ch6-ex2", 0.0, study_dir=study)  # GRACE picks a@1, the best student
    assert not course.check("ch6-ex2", 10.0, study_dir=study)
    assert course.check("ch8-ex1", 0.8, study_dir=study)  # ranks 3,1,4,2 vs 2,1,4,3


def test_a_missing_study_names_the_fix(tmp_path):
    with pytest.raises(ValueError, match="book/build.py --profile smoke"):
        course.check("ch1-ex1", "a@1", study_dir=tmp_path / "nowhere")


def test_register_refuses_duplicates_and_bad_kinds():
    ex = course.EXERCISES["ch4-ex4"]
    with pytest.raises(ValueError, match="registered twice"):
        course.register(ex)
    with pytest.raises(ValueError, match="kind"):
        course.register(course.Exercise("ch99-ex9", "?", lambda c: 1, kind="vector"))


def test_student_edition_config_drops_solutions_and_sources():
    import sys

    sys.path.insert(0, str(REPO / "book"))
    try:
        import build
        import yaml

        cfg = yaml.safe_load(build.student_config().read_text())
    finally:
        sys.path.remove(str(REPO / "book"))
    assert Path(cfg["sphinx"]["local_extensions"]["student_edition"]) == REPO / "book"
    assert cfg["sphinx"]["config"]["html_copy_source"] is False  # the .ipynb sources hold the solutions
    assert "student edition" in cfg["title"]


def test_student_edition_removes_every_solution_node():
    import sys
    import types

    from docutils import nodes
    from docutils.utils import new_document
    from sphinx_exercise.nodes import exercise_node, solution_node

    sys.path.insert(0, str(REPO / "book"))
    try:
        import student_edition
    finally:
        sys.path.remove(str(REPO / "book"))
    doc = new_document("chapter")
    ex, sol = exercise_node(), solution_node(label="ch1-ex1-solution")
    sol += nodes.literal_block(text="assert course.check('ch1-ex1', pick)")
    section = nodes.section()
    section += [ex, sol, nodes.paragraph(text="after")]
    doc += section
    app = types.SimpleNamespace(env=types.SimpleNamespace(sphinx_exercise_registry={"ch1-ex1-solution": {}}))
    student_edition.drop_solutions(app, doc)
    assert not list(doc.findall(solution_node)) and list(doc.findall(exercise_node))
    assert "course.check" not in doc.astext() and "after" in doc.astext()
    assert app.env.sphinx_exercise_registry == {}


def test_exercise_times_finds_every_coded_solution():
    import sys

    sys.path.insert(0, str(REPO / "book"))
    try:
        import exercise_times
    finally:
        sys.path.remove(str(REPO / "book"))
    assert set(exercise_times.solution_sources()) == set(course.EXERCISES)


def test_the_teaching_page_lists_every_exercise_once():
    page = (REPO / "book" / "teaching.md").read_text()
    listed = re.findall(r"\{ref\}`(ch\d+-ex\d+) <\1>`", page)
    every = [i for v in _exercises().values() for i in v]
    assert sorted(listed) == sorted(every)
