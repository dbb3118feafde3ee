"""Tests for the chapters' plumbing (grace.notebook.Chapter and the formatting helpers) and for the
helpers the chapters' code moved into the package (analysis, claims, distill, jl, costs, benchmarks, plots)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # headless; the package never picks a backend

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from grace import ablations as AB  # noqa: E402
from grace import analysis as A  # noqa: E402
from grace import benchmarks as BM  # noqa: E402
from grace import claims, distill, jl, notebook, rank, theory  # noqa: E402
from grace import costs as C  # noqa: E402
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
    assert ch.claim(id="x1", claim="a claim", paper="0.5", value=0.7, verdict="partly", rule="r",
                    glue_as="verdict_x1", ci_low=0.5, ci_high=0.9) is None  # a cell ending here shows no repr
    c = ch.claims[-1]
    ch.claim(id="x2", claim="another", paper="1", value=math.nan, verdict="not testable", rule="r")
    saved = read_json(artifacts / "smoke" / "claims" / "x1.json")
    assert saved["chapter"] == "07_x" and saved["profile"] == "smoke" and saved["value"] == 0.7
    assert c.verdict == "partly" and glued["verdict_x1"].data == "**partly**" and "verdict_x2" not in glued
    assert glued["verdict_x1_line"].data == "**Paper:** a claim (0.5). **This build:** 0.70 [0.50, 0.90] — **partly**."
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
    assert ch.done({"profile": "smoke", "checks": ch.checks}) is None  # no PosixPath(...) under the cell
    path = ch.results_path
    data = read_json(path)
    assert path == tmp_path / "out" / "results.json" and data["seconds"] >= 0 and len(data["checks"]) == 2
    assert "04_x done in" in capsys.readouterr().out
    ch.done({}, filename="costs.json")
    assert ch.results_path.name == "costs.json"


def test_figure_and_show(artifacts, tmp_path, glued, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    ch = Chapter("05_x", "smoke", tmp_path / "out", study=False)
    fig = P.placeholder_figure("hello")
    assert ch.figure("fig_a", fig) is None and (tmp_path / "out" / "fig_a.png").exists()
    assert glued["fig_a"].filename.endswith("fig_a.png")
    assert ch.show(fig, "inline.png") is None and (tmp_path / "out" / "inline.png").exists()
    assert shown[0].filename.endswith("inline.png") and "inline.png" not in glued
    ch.show(fig, "map.png", glue_as="finding_map")  # shown here and glued for the landing page
    assert shown[1].filename.endswith("map.png") and glued["finding_map"].filename == shown[1].filename


def test_html_glue_for_a_cross_document_paste(artifacts, tmp_path, glued):
    from IPython.display import HTML

    ch = Chapter("05_x", "smoke", tmp_path / "out", study=False)
    ch.html(finding_map="<p>no map</p>")
    assert isinstance(glued["finding_map"], HTML) and glued["finding_map"].data == "<p>no map</p>"


def test_glue_of_a_missing_number_says_why(artifacts, tmp_path, glued):
    """A NaN glued for the prose comes with its reason, which book/build.py prints instead of `nan`."""
    ch = Chapter("06_x", "smoke", tmp_path / "out", study=False)
    ch.glue(a=1.0, b=math.nan, c=None)
    ch.glue(d=np.float64("nan"), why="only 2 temperatures")
    assert glued["b__missing"] == ch.WHY and glued["c__missing"] == ch.WHY
    assert glued["d__missing"] == "only 2 temperatures" and "a__missing" not in glued


def test_quiet_progress_import_leaves_other_warnings_alone():
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        notebook.quiet_progress_import()
        warnings.warn("still shown", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["still shown"]


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


# ------------------------------------------------------------------------------------------ chapters 1-4: study readers, App. D.4 and JL helpers, the definitions restated
def _study_files(tmp_path):
    study = tmp_path / "study"
    for t, fam in (("calc-S", "calc"), ("terse-S", "terse")):
        write_json(study / "cards" / t / "done.json", {"summary": {
            "family": fam, "size_label": "S", "size_params": 1.1e5, "steps": 10, "avg_at_k": 0.5, "greedy": 0.4}})
    from grace.io import write_jsonl

    gens = {"calc-S@1": [{"prompt_id": "p1", "response": "a #### 3"}, {"prompt_id": "p1", "response": " "},
                         {"prompt_id": "p2", "response": "b"}],
            "terse-S@1": [{"prompt_id": "p1", "response": "c"}, {"prompt_id": "p2", "response": "d"}]}
    for c, recs in gens.items():
        write_jsonl(study / "generations" / c / "generations.jsonl", recs)
    results = pd.DataFrame({"config": list(gens), "teacher": ["calc-S", "terse-S"], "temperature": [1.0, 1.0],
                            "empty_responses": [1, 0], "family": ["calc", "terse"], "style": ["calc", "terse"],
                            "size_label": ["S", "S"], "size_params": [1.1e5, 1.1e5], "teacher_steps": [10, 10],
                            "teacher_accuracy": [0.5, 0.25]})
    return study, results


def test_cards_pool_and_generation_tables(tmp_path):
    study, results = _study_files(tmp_path)
    cards = A.teacher_cards(study, ["terse-S", "calc-S", "missing"])
    assert list(cards.index) == ["terse-S", "calc-S"] and cards.loc["calc-S", "own avg@k"] == 0.5
    pool = A.generation_pool(results, study)
    assert list(pool.columns[5:7]) == ["own avg@k", "own greedy"]
    gens = A.load_generations(study, results.config)
    blank = A.blank_table(gens, results)
    assert list(blank["blank (files)"]) == [1, 0] and blank["share"].iloc[0] == pytest.approx(1 / 3)
    with pytest.raises(AssertionError, match="disagree with results.csv"):
        A.blank_table(gens, results.assign(empty_responses=[0, 0]))

    def tokenizer(text, add_special_tokens=False):
        return {"input_ids": text.split()}

    lens = A.length_table(gens, results, tokenizer, max_new_tokens=2, max_records=2, seed=0)
    assert list(lens.config) == list(gens) and lens.loc[1, "mean length"] == 1.0
    with pytest.raises(ValueError, match="no cards"):
        A.teacher_cards(tmp_path / "empty", [])


def test_rank_candidates(tmp_path):
    study, results = _study_files(tmp_path)
    files = rank.rank_candidates(study, results.config, ["calc-S", "terse-S"], 1.0, m=1, n=2, out=tmp_path / "out")
    from grace.io import read_jsonl

    assert [r["response"] for r in read_jsonl(files["calc-S"])] == ["a #### 3", "b"]  # the blank one dropped
    with pytest.raises(ValueError, match="only 0 prompts have 2 non-blank responses"):
        rank.rank_candidates(study, results.config, ["calc-S", "terse-S"], 1.0, m=2, n=1, out=tmp_path / "out")
    with pytest.raises(ValueError, match=r"teachers \['nope'\] at T=1 are not configurations"):
        rank.rank_candidates(study, results.config, ["nope"], 1.0, m=1, n=1, out=tmp_path / "out")


def test_verdict_inverse_log():
    assert claims.verdict_inverse_log(-1.0, -0.2, "r")[0] == "reproduced"
    assert claims.verdict_inverse_log(-3.0, -0.2, "r")[0] == "partly"
    assert claims.verdict_inverse_log(-1.0, 0.2, "r")[0] == "not reproduced"
    assert claims.verdict_inverse_log(-1.0, math.nan, "r") == ("not testable", "r")
    assert claims.verdict_inverse_log(-1.0, -0.2, "r", testable=False)[0] == "not testable"


def test_pairwise_cosines_and_error_slopes():
    import torch

    G = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    np.testing.assert_allclose(jl.pairwise_cosines(G), [0.0, 1 / math.sqrt(2), 1 / math.sqrt(2)])
    idx = pd.MultiIndex.from_product([["rademacher", "sparse_jl"], [16, 64]], names=["kind", "d"])
    agg = pd.DataFrame({"rms_inner": [0.4, 0.2, 0.8, 0.4]}, index=idx)
    slopes = jl.error_slopes(agg)
    assert slopes == pytest.approx({"rademacher": -0.5, "sparse_jl": -0.5})


def test_inline_restatements_match_the_package():
    from grace import scores, theory

    H, pid = theory.synthetic_gradients(24, 3, 8, anisotropy=1.0, seed=0)
    folds = scores.prompt_folds(pid, 4, 0)
    eq4 = scores.grace(H, pid, nu=1e-3, folds=folds, center="fold")
    eq5 = scores.grace(H, pid, nu=1e-3, folds=folds, center="global")
    assert A.rel_diff(theory.grace_inline(H, folds, 1e-3, "fold"), eq4) < 1e-8
    assert A.rel_diff(theory.grace_inline(H, folds, 1e-3, "global"), eq5) < 1e-8
    between = theory.between_fold_term(H, folds, 1e-3)
    assert between >= 0 and A.rel_diff(eq5, eq4 + between) < 1e-8
    assert A.rel_diff(1.0, 0.0) > 1e200 and A.rel_diff(2.0, 2.0) == 0
    with pytest.raises(ValueError, match="center='both'"):
        theory.grace_inline(H, folds, 1e-3, "both")
    t = theory.synthetic_teacher_table(3, 12, 2, 6, 3, 1e-3, seed=0)
    assert len(t) == 3 and {"eq. 4", "released code", "G-Vendi"} <= set(t.columns)


def test_lemma_grid_checks_pass_on_a_valid_row_and_fail_on_a_broken_one():
    row = dict(preconditioner="grace", n=6, sigma_rel=1.0, cmi=0.5, cmi_stderr=0.01, jensen=2.0,
               jensen_from_expansion=2.0, log_n=math.log(6), three_term=3.0, gaussian_bound=0.9)
    ok = theory.lemma_grid_checks(pd.DataFrame([row]))
    assert len(ok) == 5 and all(h for _, h, _ in ok) and "n=6" in ok[0][0]
    bad = theory.lemma_grid_checks(pd.DataFrame([{**row, "cmi": 5.0}]))
    assert not bad[0][1] and not bad[1][1]


def test_chapter_figures_build():
    ranked = pd.DataFrame({"GRACE (grace rank)": [1.0, 2.0], "student avg@k": [0.3, 0.2]}, index=["a", "b"])
    acc = pd.DataFrame({"a": [0.5, 0.4], "b": [0.6, 0.3]}, index=[0.3, 1.0])
    lens = pd.DataFrame({"teacher": ["a", "a"], "temperature": [0.3, 1.0], "mean length": [5, 7],
                         "has final answer": [1.0, 0.5]})
    figs = [P.plot_rank_vs_student(ranked, 1.0), P.plot_teacher_accuracy(acc, ["a", "b"]),
            P.plot_length_vs_temperature(lens, ["a"]),
            P.plot_grad_norm_fits(np.arange(3, 40), 1 / np.log(np.arange(3, 40)))]
    assert all(isinstance(f, Figure) for f in figs)


# ------------------------------------------------------------------------------------------ chapters 5-8: the recipe, verdict rules, ablations, the release
def test_expected_steps_and_lr_budget():
    d = {"epochs": 2, "batch_size": 8, "learning_rate": 5e-3}
    assert distill.expected_steps(d, 17) == 6 and distill.expected_steps({**d, "epochs": 0.1}, 1) == 1
    with pytest.raises(ValueError, match="n_examples=0"):
        distill.expected_steps(d, 0)
    t = distill.lr_budget_table(d, 100, "smoke")
    assert list(t["optimizer steps"]) == [4 * math.ceil(claims.GSM8K_TRAIN * claims.PAPER_M / 64), 100, 100]
    budget = t.iloc[:, 2]
    assert budget.iloc[2] / budget.iloc[1] == pytest.approx(5e-3 / 1e-5)
    assert t.index[2] == "miniature (smoke profile)"


def test_verdict_trend():
    v, rule = claims.verdict_trend({"delta": 0.2, "spearman": 0.9}, "d")
    assert v == "reproduced" and "(here 0.90)" in rule and "ρ(largest d)" in rule
    assert claims.verdict_trend({"delta": 0.2, "spearman": 0.5}, "n")[0] == "partly"
    assert claims.verdict_trend({"delta": -0.1, "spearman": -1.0}, "n")[0] == "not reproduced"
    v, rule = claims.verdict_trend({"delta": math.nan, "spearman": math.nan}, "n")
    assert v == "not testable" and "(here undefined)" in rule


def test_rho_of_spread_configs_and_ablation_view():
    tab = pd.DataFrame({"rho_oriented": [0.5]}, index=["grace"])
    assert A.rho_of(tab, "grace") == 0.5 and math.isnan(A.rho_of(tab, "g_var"))
    y = pd.Series({"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.3})
    assert A.spread_configs(y, list(y.index), 2) == ["a", "b"] and A.spread_configs(y, ["d", "a"], 0) == ["a", "d"]
    t = pd.DataFrame({"d": [4], "rho_oriented": [0.12345], "rho_sd": [0.1], "rho_min": [0.0], "rho_max": [0.2],
                      "rho_canonical": [0.1], "n_configs": [3]})
    assert list(AB.ablation_view(t, "d").columns) == ["d", *AB.ABLATION_VIEW] and AB.ablation_view(t, "d").iloc[0, 1] == 0.123


def test_ablation_figures_build():
    abl = pd.DataFrame({"d": [4, 8, 16], "n": [4, 8, 16], "m": [1, 2, 3], "n_folds": [2, 4, 6], "nu": [1e-3, 1e-2, 1e-1],
                        "rho_oriented": [0.1, 0.2, 0.3], "rho_sd": [0.05, 0.05, np.nan]})
    figs = [P.plot_fig19(abl, abl), P.plot_ablation_m(abl), P.plot_fig20(abl, 6), P.plot_ablation_nu(abl)]
    assert all(isinstance(f, Figure) for f in figs)


# ------------------------------------------------------------------------------------------ chapters 9-12: the ledger, Appendix A's benchmarks and Appendix B's estimates
def test_ledger_summary():
    zero = {v: 0 for v in claims.VERDICTS}
    assert claims.ledger_summary(zero, 0, "quick").startswith("Nothing to summarise yet")
    counts = {**zero, "reproduced": 2, "partly": 1, "not testable": 1}
    text = claims.ledger_summary(counts, 4, "smoke")
    assert "Of the 3 claims that could be tested, 2 (67%)" in text and "**smoke**" in text
    assert "miniature world" in claims.ledger_summary(counts, 4, "full")
    assert "None of the recorded claims" in claims.ledger_summary({**zero, "not testable": 2}, 2, "full")


def test_estimate_table():
    g = C.per_sample_gradient(C.LLAMA_3_2_1B, C.Workload(), C.Hardware())
    t = notebook.estimate_table("per_sample_gradient", g, {"flops": "FLOP", "seconds": "s"})
    assert list(t.quantity) == ["flops", "seconds"] and set(t.label) == {"estimate"}
    assert t.value[0] == f"{g['flops']:.4g}" and t.formula[0] == C.FORMULAS["per_sample_gradient"]["flops"]
    with pytest.raises(ValueError, match="not a grace.costs function"):
        notebook.estimate_table("nope", g, {})


def test_load_or_run_reads_files_and_checks_the_study(tmp_path):
    bench, out = tmp_path / "bench", tmp_path / "out"
    write_json(bench / "scores.json", {"x": 1})
    data, prov = BM.load_or_run("scores", [], bench, out, "smoke", run_missing=False)
    assert data == {"x": 1} and prov["source"] == "bench_dir"
    write_json(out / "fidelity.json", {"study": {"profile": "quick"}})
    data, prov = BM.load_or_run("fidelity", [], bench, out, "smoke", run_missing=False)
    assert data is None and prov["source"] == "missing"  # computed on another study: not usable
    data, prov = BM.load_or_run("fidelity", [], bench, out, "quick", run_missing=False)
    assert prov["source"] == "earlier run"
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        BM.load_or_run("nope", [], bench, out, "smoke")


def test_score_targets_and_real_values():
    sc = {"targets": {"wall": {"grace_speedup_ge_4": {"value": 5.0, "target": 4.0},
                               "all_one_s": {"value": 0.5, "target": 0.3}}}}
    assert list(BM.score_targets(sc).met) == ["met", "MISSED"]
    real = {"results": {"floor": {"n": 2, "ms_per_example": 100.0, "D": 2**20, "beyond_model_mb": 1.0},
                        "dense": {"n": 2, "ms_per_example": 2000.0, "D": 2**20, "beyond_model_mb": 100.0}},
            "floor_ms": 100.0, "dense_floor": {"mac_s": 1.0, "signs_s": 0.5}}
    V = BM.real_values(real, None)
    assert V["real_dense_ratio"] == 20.0 and V["real_bound_mb"] == 16.0 and V["real_dense_s"] == 2.0
    assert list(BM.real_table(real)["within 4·D·4"]) == [True, False] and BM.real_values(None, None) == {}
    real["results"]["dense"].update(ratio_to_floor=12.5, setup_ms=3.0)  # bench_real.py's own same-example ratio
    assert BM.real_values(real, None)["real_dense_ratio"] == 12.5
    assert list(BM.real_table(real)["ratio to floor"]) == [1.0, 12.5]
    assert BM.real_table(real)["one-time setup (ms)"].tolist()[1] == 3
    real["results"]["floor"]["ms_per_example"] = 120.0  # the first floor run; its row shows the mean of both
    assert BM.real_table(real)["ms per example"].tolist() == [100, 2000]


def test_gpu_and_lora_values():
    gpu = {"device": "X", "D": 10, "floor_ms": 10.0, "factored_ms": 9.0, "bitwise": {"a": True, "b": False},
           "per_example": {"p": {"ratio": 3.0}, "q": {"ratio": 0.9}},
           "dense": {"dense_fused_ms": 60.0, "dense_fused_loop_ms": 100.0, "dense_torch_ms": 400.0,
                     "precisions": {"tf32x3": {"ms_per_example": 40.0}}}}
    V = BM.gpu_values(gpu)
    assert V["gpu_factored_ratio"] == 0.9 and V["gpu_bitwise"] == "no" and V["gpu_novel_ratio"] == 0.9
    t = BM.gpu_table(gpu)
    assert t["ratio to floor"].tolist() == [1.0, 0.9, 6.0, 10.0, 40.0, 4.0]
    assert "0.90×" in BM.gpu_summary(gpu) and "Not measured" in BM.gpu_summary(None) and BM.gpu_values(None) == {}
    fid = {"n_configs": 6, "spearman_grace_b_vs_lora": 0.8,
           "lora": {"spec": {"rank": 8}, "D_lora": 100, "ms_per_example": 2.0, "stacked_pass_ms_per_example": 3.0},
           "per_score": {"grace": {"lora_vs_avg_at_k": 0.5, "b_vs_avg_at_k": 0.4}}}
    real = {"sets": {"a": {}, "b": {}}, "spearman_grace_full_vs_lora": 1.0, "lora": {"rank": 8}, "D_lora": 5,
            "ms_per_example": {"lora": 3.0, "full_factored": 2.0}}
    V = BM.lora_values(real, fid)
    assert (V["lora_rho"], V["lora_rho_y"], V["real_lora_ratio"], V["real_lora_sets"]) == (0.8, 0.5, 1.5, 2)
    assert BM.lora_values(None, {"n_configs": 1}) == {}  # a fidelity run without --lora
    assert "1.50×" in BM.real_lora_summary(real) and "make real" in BM.real_lora_summary(None)
    pool = {"fidelity": fid, "study": {"profile": "strong-full", "params": 1000}}
    text = BM.pool_lora_summary(pool)
    assert "6 configurations of the `strong-full` study" in text and "Spearman 0.800" in text
    assert "+0.50 against the full gradient's +0.40" in text and "$D=$ 100 of 1,000" in text
    assert "not measured" in BM.pool_lora_summary(None)
    assert "not measured" in BM.pool_lora_summary({"fidelity": {"n_configs": 1}, "study": {}})  # run without --lora


def test_study_cost_figure_builds():
    cost = {s: {"gpu_h": 1.0} for s in ("generate_full", "distill", "evaluate", "features_dense", "select_by_grace")}
    assert isinstance(P.plot_study_cost(cost, 120), Figure)
