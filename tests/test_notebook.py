"""Tests for the chapters' plumbing (grace.notebook.Chapter and the formatting helpers) and for the
helpers the chapters' code moved into the package (analysis, claims, distill, jl, costs, benchmarks, plots)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # headless; the package never picks a backend

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from grace import claims  # noqa: E402
from grace import plots as P  # noqa: E402
from grace.io import read_json, write_json  # noqa: E402
from grace.notebook import Chapter, fmt, met, profile_key, profile_root, shorten, text_block  # noqa: E402


@pytest.fixture
def glued(monkeypatch):
    """Every ``myst_nb.glue`` call as ``{name: value}`` (no IPython kernel needed)."""
    import myst_nb

    seen: dict = {}

    def fake(name, value, display=True):
        assert name not in seen, f"glue key {name!r} glued twice (the -W build fails on duplicates)"
        seen[name] = value

    monkeypatch.setattr(myst_nb, "glue", fake)
    return seen


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("GRACE_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path / "artifacts"


# ------------------------------------------------------------------------------------------ the Chapter object: profiles, study, glue, claims, checks, figures
def test_profile_key_and_root(artifacts):
    assert profile_key("smoke") == "smoke"
    assert profile_key("/somewhere/my-study.yaml") == "my-study" and profile_key("x.yml") == "x"
    assert profile_root("quick") == artifacts / "quick"
    assert profile_root("/somewhere/my-study.yaml") == artifacts / "my-study"
    with pytest.raises(ValueError, match="bundled profile name .* or a path to a \\*.yaml"):
        profile_key("some/dir")


def _fake_study(root, world=True):
    study = root / "study"
    prof = {"name": "smoke", "template": "Q: {prompt}\nA:"}
    if world:
        prof["world"] = {"student": "S"}
        write_json(study / "world" / "bases" / "S" / "done.json", {"summary": {"params": 1234}})
    else:
        prof["models"] = {"student": "hub/student", "student_params": "1e9"}
    write_json(study / "profile.json", prof)
    return study


def test_chapter_runs_the_study_under_the_profile_key(artifacts, tmp_path, monkeypatch):
    calls = []

    def fake_ensure_study(profile, out=None, progress=False):
        calls.append((profile, out))
        return pd.DataFrame({"config": ["a@1"]}), _fake_study(out.parent)

    monkeypatch.setattr("grace.study.ensure_study", fake_ensure_study)
    mine = tmp_path / "mine.yaml"
    ch = Chapter("05_x", str(mine), tmp_path / "out" / "05")
    assert calls == [(str(mine), artifacts / "mine" / "study")]
    assert ch.profile == "mine" and ch.root == artifacts / "mine" and ch.out.is_dir()
    assert ch.miniature and ch.student_path == str(artifacts / "mine" / "study" / "world" / "bases" / "S")
    assert ch.student_params == 1234 and list(ch.results.config) == ["a@1"]


def test_chapter_hub_student(artifacts, tmp_path, monkeypatch):
    monkeypatch.setattr("grace.study.ensure_study",
                        lambda profile, out=None, progress=False: (pd.DataFrame(), _fake_study(out.parent, False)))
    ch = Chapter("05_x", "gpu", tmp_path / "out")
    assert not ch.miniature and ch.student_path == "hub/student" and ch.student_params == 1e9


def test_chapter_without_study(artifacts, tmp_path):
    ch = Chapter("04_x", "smoke", tmp_path / "out", study=False)
    assert ch.results is None and ch.root == artifacts / "smoke"
    with pytest.raises(ValueError, match=r"study=False\) has no study"):
        ch.miniature  # noqa: B018


def test_glue_md_and_paper_numbers(artifacts, tmp_path, glued):
    from IPython.display import Markdown

    ch = Chapter("05_x", "smoke", tmp_path / "out", study=False)
    ch.glue(a=np.float64(0.5), b=3, c="text")
    ch.md(d="**bold**")
    ch.glue_paper()
    ch.note()
    assert glued["a"] == 0.5 and type(glued["a"]) is float and glued["b"] == 3 and glued["c"] == "text"
    assert isinstance(glued["d"], Markdown) and glued["d"].data == "**bold**"
    assert glued["paper_fig2_grace_rho"] == claims.PAPER["fig2_grace_rho"]
    assert "Profile `smoke`" in glued["profile_note"].data


def test_claim_records_in_the_ledger(artifacts, tmp_path, glued):
    ch = Chapter("07_x", "smoke", tmp_path / "out", study=False)
    c = ch.claim(id="x1", claim="a claim", paper="0.5", value=0.7, verdict="partly", rule="r",
                 glue_as="verdict_x1")
    ch.claim(id="x2", claim="another", paper="1", value=math.nan, verdict="not testable", rule="r")
    saved = read_json(artifacts / "smoke" / "claims" / "x1.json")
    assert saved["chapter"] == "07_x" and saved["profile"] == "smoke" and saved["value"] == 0.7
    assert c.verdict == "partly" and glued["verdict_x1"].data == "**partly**" and "verdict_x2" not in glued
    assert list(ch.ledger(["id", "verdict"]).id) == ["x1", "x2"]
    assert list(claims.load(artifacts / "smoke").id) == ["x1", "x2"]
    with pytest.raises(ValueError, match="remove it, the chapter fills in chapter"):
        ch.claim(id="x3", claim="c", paper="p", value=1.0, chapter="other")
    with pytest.raises(ValueError, match="verdict='maybe'"):
        ch.claim(id="x4", claim="c", paper="p", value=1.0, verdict="maybe")


def test_check_and_done(artifacts, tmp_path, capsys):
    ch = Chapter("04_x", "smoke", tmp_path / "out", study=False)
    ch.check("fine", True, "ok")
    with pytest.raises(AssertionError, match="check failed: broken: 1 vs 2"):
        ch.check("broken", False, "1 vs 2")
    assert [c["passed"] for c in ch.checks] == [True, False]
    path = ch.done({"profile": "smoke", "checks": ch.checks})
    data = read_json(path)
    assert path == tmp_path / "out" / "results.json" and data["seconds"] >= 0 and len(data["checks"]) == 2
    assert "04_x done in" in capsys.readouterr().out
    assert ch.done({}, filename="costs.json").name == "costs.json"


def test_figure_and_show(artifacts, tmp_path, glued, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    ch = Chapter("05_x", "smoke", tmp_path / "out", study=False)
    fig = P.placeholder_figure("hello")
    assert ch.figure("fig_a", fig) == tmp_path / "out" / "fig_a.png" and (tmp_path / "out" / "fig_a.png").exists()
    assert glued["fig_a"].filename.endswith("fig_a.png")
    assert ch.show(fig, "inline.png").exists() and shown[0].filename.endswith("inline.png")


# ------------------------------------------------------------------------------------------ formatting
def test_formatting_helpers():
    assert fmt(0.12345) == "0.12" and fmt(float("nan")) == "NaN" and fmt(None, nan="nan") == "nan"
    assert fmt(np.float64(2.5), ".1f") == "2.5"
    assert met(True) == "met" and met(False) == "MISSED" and met(None) == "n/a" and met(float("nan")) == "n/a"
    assert shorten("abcdef", 4) == "abc…" and shorten("abc", 4) == "abc"
    with pytest.raises(ValueError, match="n must be at least 1"):
        shorten("abc", 0)
    assert text_block("a\nb", indent="  ") == "  a\n  b" and text_block("  ", indent="> ") == "> (blank)"
    assert max(len(x) for x in text_block("word " * 50, indent="").splitlines()) <= 100
