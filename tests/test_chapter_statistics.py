"""Tests for the statistics, figures and recipe helpers behind chapters 5 and 6 (paper §3, App. C.2, D.1, D.5).

They live in grace.analysis (statistics, study readers), grace.plots (figures), grace.distill (the recipe)
and grace.claims (the paper's numbers)."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from grace import analysis as A
from grace import claims, distill
from grace import plots as P
from grace.io import write_json, write_jsonl

ORIENT = {"grace": -1, "grace_release": -1, "g_var": -1, "g_vendi": +1, "teacher_avg_at_k": +1}


def make_results(seed: int = 0) -> pd.DataFrame:
    """4 teachers (2 families, 2 sizes) + self, 3 temperatures; GRACE tracks the student exactly."""
    rng = np.random.default_rng(seed)
    teachers = [("qa-S", "qa", 1e6), ("qa-M", "qa", 4e6), ("pb-S", "pb", 1e6), ("pb-M", "pb", 4e6),
                ("student", "self", 4e6)]
    rows = []
    for i, (t, fam, size) in enumerate(teachers):
        for j, temp in enumerate((0.3, 0.6, 1.0)):
            y = 0.1 + 0.1 * i + 0.02 * j * (1 if i % 2 else -1) + 0.001 * rng.random()
            if t == "student":
                y = 0.01 + 0.001 * j
            rows.append(dict(config=f"{t}@{temp:g}", teacher=t, family=fam, size_params=size, size_label="S" if
                             size < 2e6 else "M", temperature=temp, is_self=t == "student",
                             student_avg_at_k=y, student_greedy=y + 0.05, student_best_of_k=min(1.0, 1.5 * y),
                             teacher_avg_at_k=0.5 - 0.1 * i if t != "student" else 0.0,
                             grace=-y, grace_release=-y + 0.01, g_var=float(rng.random()),
                             g_vendi=(10.0 if t == "student" else float(rng.random()))))
    return pd.DataFrame(rows)


@pytest.fixture
def results():
    return make_results()


def fake_study(tmp_path, acc: dict[str, list[int]], k: int = 4, filtered: tuple[str, ...] = ()):
    """A study dir with students/<config>/{done.json, per_prompt.jsonl} from per-prompt n_correct."""
    for name, ncs in acc.items():
        d = tmp_path / "students" / name
        write_jsonl(d / "per_prompt.jsonl", [
            {"prompt_id": f"p{i}", "n_correct": n, "k": k, "greedy_correct": n > k // 2} for i, n in enumerate(ncs)])
        summ = dict(avg_at_k=float(np.mean(ncs) / k), greedy=0.0, best_of_k=0.0, train_loss=1.5, steps=7,
                    n_examples=32)
        write_json(d / "done.json", {"key": "x", "summary": summ, "seconds": 1.25})
    for name in filtered:
        d = tmp_path / "students" / f"{name}+filtered"
        write_json(d / "done.json", {"key": "x", "summary": dict(avg_at_k=0.1, greedy=0.0, best_of_k=0.2,
                                                                  train_loss=0.9, steps=5)})
    return tmp_path


# ---------------------------------------------------------------------------------- chapter 5


def test_recipe_table_compares_profile_with_paper():
    tab = distill.recipe_table({"learning_rate": 3e-3, "epochs": 4, "batch_size": 64})
    assert tab.loc["learning_rate", "paper"] == 1e-5 and not tab.loc["learning_rate", "same"]
    assert tab.loc["epochs", "same"] and tab.loc["batch_size", "same"]
    assert tab.loc["scheduler", "profile"] == "cosine" and tab.loc["scheduler", "same"]  # TrainConfig default
    assert tab.loc["warmup_ratio", "profile"] == 0.05
    assert not distill.recipe_table({"learning_rate": 1e-5, "scheduler": "linear"}).loc["scheduler", "same"]
    with pytest.raises(ValueError, match="distill"):
        distill.recipe_table([1, 2])


@pytest.mark.parametrize("scheduler", ["cosine", "linear"])
def test_lr_schedule_matches_transformers(scheduler):
    import torch
    from transformers import get_scheduler

    steps, lr = 40, 3e-3
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sch = get_scheduler(scheduler, opt, num_warmup_steps=round(0.05 * steps), num_training_steps=steps)
    ref = []
    for _ in range(steps):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    np.testing.assert_allclose(distill.lr_schedule(lr, steps, 0.05, scheduler), ref, rtol=1e-9, atol=1e-15)


def test_lr_schedule_shape_and_errors():
    s = distill.lr_schedule(1e-5, 100)
    assert s[0] == 0 and s[5] == pytest.approx(1e-5) and s.max() == pytest.approx(1e-5) and s[-1] < 1e-7
    assert distill.lr_schedule(1.0, 10, 0.0, "constant").sum() == 10
    with pytest.raises(ValueError, match="scheduler"):
        distill.lr_schedule(1e-5, 10, scheduler="step")
    with pytest.raises(ValueError, match="steps"):
        distill.lr_schedule(1e-5, 0)


def test_student_runs_and_per_prompt_matrix(tmp_path):
    study = fake_study(tmp_path, {"a@1": [4, 0, 2, 2], "b@1": [1, 1, 1, 1]}, filtered=("a@1",))
    runs = A.student_runs(study)
    assert list(runs.config) == ["a@1", "a@1+filtered", "b@1"]
    assert list(runs.filtered) == [False, True, False] and runs.base_config.iloc[1] == "a@1"
    assert runs.steps.iloc[0] == 7 and runs.seconds.iloc[0] == 1.25 and math.isnan(runs.seconds.iloc[1])
    acc = A.per_prompt_matrix(study, ["a@1", "b@1"])
    assert acc.shape == (4, 2)
    np.testing.assert_allclose(acc.mean(), [0.5, 0.25])
    best = A.per_prompt_matrix(study, ["a@1", "b@1"], metric="best_of_k")
    np.testing.assert_allclose(best.mean(), [0.75, 1.0])
    greedy = A.per_prompt_matrix(study, ["a@1"], metric="greedy")
    np.testing.assert_allclose(greedy["a@1"].to_numpy(), [1, 0, 0, 0])
    with pytest.raises(ValueError, match="metric"):
        A.per_prompt_matrix(study, ["a@1"], metric="pass@k")
    with pytest.raises(ValueError, match="does not exist"):
        A.per_prompt_matrix(study, ["zzz"])
    with pytest.raises(ValueError, match="students"):
        A.student_runs(tmp_path / "nowhere")


def test_per_prompt_matrix_rejects_different_prompt_sets(tmp_path):
    study = fake_study(tmp_path, {"a@1": [1, 2], "b@1": [1, 2, 3]})
    with pytest.raises(ValueError, match="different test prompts"):
        A.per_prompt_matrix(study, ["a@1", "b@1"])


def test_metric_correlations(results):
    tab = A.metric_correlations(results)
    assert tab.loc["avg@k", "greedy"] == pytest.approx(1.0)  # greedy = avg + const
    assert tab.loc["avg@k", "best-of-k"] == pytest.approx(1.0)  # monotone transform
    const = results.assign(student_greedy=0.0)
    assert math.isnan(A.metric_correlations(const).loc["avg@k", "greedy"])


def test_strongest_teacher_excludes_self_and_takes_its_best_temperature(results):
    r = results.copy()
    r.loc[r.is_self, "teacher_avg_at_k"] = 0.99  # self would win if counted
    s = A.strongest_teacher(r)
    assert s["teacher"] == "qa-S"  # teacher_avg_at_k 0.5 is the highest non-self
    mine = r[r.teacher == "qa-S"]
    assert s["best_target"] == pytest.approx(mine.student_avg_at_k.max())
    assert s["mean_target"] == pytest.approx(mine.student_avg_at_k.mean())
    assert s["overall_best_target"] == pytest.approx(r.student_avg_at_k.max())
    assert A.strongest_teacher(r, exclude_self=False)["teacher"] == "student"


def test_filtering_table_absent_and_present(results):
    empty = A.filtering_table(results)
    assert empty.empty and "difference" in empty.columns
    r = results.assign(student_avg_at_k_filtered=np.where(results.temperature == 0.6, results.student_avg_at_k - 0.05,
                                                          np.nan))
    tab = A.filtering_table(r)
    assert len(tab) == 5 and np.allclose(tab.difference, 0.05)
    assert set(tab.temperature) == {0.6}


# ---------------------------------------------------------------------------------- uncertainty


def test_mean_ci():
    m, lo, hi = A.mean_ci([0.2, 0.4, 0.6, np.nan], n_boot=500)
    assert m == pytest.approx(0.4) and 0.2 <= lo <= m <= hi <= 0.6
    assert math.isnan(A.mean_ci([0.3])[1]) and A.mean_ci([0.3])[0] == 0.3
    assert all(math.isnan(v) for v in A.mean_ci([np.nan]))
    with pytest.raises(ValueError, match="ci"):
        A.mean_ci([1, 2], ci=1.5)


def test_prompt_bootstrap_gap_and_difference():
    # config a is right on every prompt b gets wrong; c is always worst
    acc = pd.DataFrame({"a": [1.0, 1.0, 0.5, 1.0], "b": [0.5, 0.5, 0.5, 0.0], "c": [0, 0, 0, 0.0]})
    gap, lo, hi = A.prompt_bootstrap(acc, A.gap_stat([(["a", "b", "c"], "b")]), n_boot=300)
    assert gap == pytest.approx(0.875 - 0.375)
    assert lo <= gap <= hi and lo >= 0
    zero = A.prompt_bootstrap(acc, A.gap_stat([(["a", "b", "c"], "a")]), n_boot=300)
    assert zero == (0.0, 0.0, 0.0)  # a is best on every resample (it dominates prompt-wise)
    # mean over two groups
    two = A.gap_stat([(["a", "b"], "b"), (["b", "c"], "c")])(acc.mean())
    assert two == pytest.approx(((0.875 - 0.375) + (0.375 - 0.0)) / 2)
    d, dlo, dhi = A.prompt_bootstrap(acc, A.difference_stat("b", "c"), n_boot=300)
    assert d == pytest.approx(0.375) and dlo > 0
    assert math.isnan(A.prompt_bootstrap(acc, A.difference_stat("a", "b"), n_boot=0)[1])
    with pytest.raises(ValueError, match="not in its group"):
        A.gap_stat([(["a", "b"], "c")])


def test_paired_rho_difference(results):
    same = A.paired_rho_difference(results, "grace", "grace", orientation=ORIENT, n_boot=200)
    assert same == (0.0, 0.0, 0.0)
    r = results.assign(g_var=results.student_avg_at_k)  # lower-is-better score perfectly reversed
    diff, lo, hi = A.paired_rho_difference(r, "grace", "g_var", orientation=ORIENT, n_boot=200)
    assert diff == pytest.approx(2.0) and lo == pytest.approx(2.0)
    with pytest.raises(ValueError, match="unknown score"):
        A.paired_rho_difference(results, "grace", "nope", orientation=ORIENT)


def test_verdict_at_most():
    assert claims.verdict_at_most(0.005, 0.009, 0.01)[0] == "reproduced"
    assert claims.verdict_at_most(0.005, 0.03, 0.01)[0] == "partly"
    assert claims.verdict_at_most(0.05, 0.09, 0.01)[0] == "not reproduced"
    assert claims.verdict_at_most(0.015, math.nan, 0.01, partly=0.02)[0] == "partly"
    assert claims.verdict_at_most(math.nan, math.nan, 0.01)[0] == "not testable"
    assert "CI high ≤ 0.01" in claims.verdict_at_most(0.0, 0.0, 0.01)[1]


# ---------------------------------------------------------------------------------- chapter 6


def test_nearest_temperature_and_curve_teachers(results):
    assert A.nearest_temperature(results) == 0.6
    assert A.nearest_temperature(results, 0.45) == 0.3  # tie goes to the lower
    assert A.curve_teachers(results) == ["pb-S", "pb-M"]  # same family, two sizes, by size
    one_size = results.assign(size_params=1e6)
    assert A.curve_teachers(one_size) == ["pb-M", "pb-S"]  # fallback: most temperatures, by name


def test_temperature_summary_matches_table(results):
    tt = A.temperature_table(results, ["grace", "g_var"], orientation=ORIENT)
    s = A.temperature_summary(tt, n_boot=200).set_index("score")
    assert s.loc["grace", "n_teachers"] == 5
    assert s.loc["grace", "mean_rho"] == pytest.approx(1.0)  # grace = -target within every teacher
    assert s.loc["grace", "exact_temperature"] == 1.0 and s.loc["grace", "mean_gap"] == pytest.approx(0)
    assert s.index[0] == "grace"
    with pytest.raises(ValueError, match="temperature_table"):
        A.temperature_summary(tt.drop(columns="gap"))


def test_size_budget_table_with_ci(results):
    tab = A.size_budget_table(results, [5e5, 1e6, 4e6], ["g_vendi", "grace"], n_boot=100)
    assert list(tab.score[:2]) == ["g_vendi", "grace"]  # caller's order kept
    small = tab[tab.budget == 5e5]
    assert small.rho_oriented.isna().all() and (small.n == 0).all()
    within = tab[(tab.budget == 1e6) & (tab.score == "grace")].iloc[0]
    assert within.n == 6 and within.rho_oriented == pytest.approx(1.0) and within.group == "≤1M"
    assert within.ci_low <= within.rho_oriented <= within.ci_high
    assert "ci_low" not in A.size_budget_table(results, [1e6], ["grace"]).columns  # no CI unless asked


def test_only_score_above():
    sp = pd.DataFrame({"score": ["grace", "grace_release", "g_var", "g_vendi"],
                       "rho_oriented": [0.9, 0.95, 0.5, np.nan]})
    out = A.only_score_above(sp, "grace", 0.8)
    assert out["holds"] and out["is_top"] and out["above"] == []  # the variant does not count
    sp.loc[2, "rho_oriented"] = 0.85
    out = A.only_score_above(sp, "grace", 0.8)
    assert not out["holds"] and out["above"] == ["g_var"] and out["is_top"]
    sp.loc[0, "rho_oriented"] = np.nan
    assert A.only_score_above(sp, "grace", 0.8)["holds"] is None


def test_robustness_summary(results):
    rob = A.robustness_subsets(results, ["grace", "g_var"], n_subsets=30, orientation=ORIENT)
    s = A.robustness_summary(rob)
    assert list(s.score) == ["grace", "g_var"]
    assert s.iloc[0]["median"] == pytest.approx(1.0) and s.iloc[0].frac_positive == 1.0
    assert s.iloc[0].q_low <= s.iloc[0]["median"] <= s.iloc[0].q_high


def test_self_distillation(results):
    g = A.self_distillation(results, "g_vendi", orientation=ORIENT)
    assert g["score_top"] and g["score_rank"] == 1 and g["target_bottom_half"]
    assert g["config"] == "student@0.3"  # the three self configs tie on G-Vendi: first name wins
    assert g["target_rank"] == g["n_configs"] == 15  # and its student is the worst of all
    gr = A.self_distillation(results, "grace", orientation=ORIENT)
    assert not gr["score_top"]
    assert A.self_distillation(results[~results.is_self], "g_vendi", orientation=ORIENT) is None


# ---------------------------------------------------------------------------------- figures


def test_figures_build(results):
    assert len(P.plot_metric_scatter(results, k=3).axes) == 2
    fig = P.plot_teacher_vs_student(results)
    assert isinstance(fig, Figure) and "ρ = " in fig.axes[0].get_title()
    panels = P.plot_score_panels(results, ["grace", "g_vendi"])
    assert len(panels.axes) == 2 and panels.axes[0].get_legend() is None
    r = results.assign(student_avg_at_k_filtered=results.student_avg_at_k - 0.01)
    assert isinstance(P.plot_filtering(A.filtering_table(r)), Figure)
    ph = P.placeholder_figure("too few temperatures")
    assert ph.axes[0].texts[0].get_text() == "too few temperatures"
    with pytest.raises(ValueError, match="no filtering ablation"):
        P.plot_filtering(A.filtering_table(results))
