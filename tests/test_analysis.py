"""Tests for grace.analysis: correlations, gaps, budgets, temperatures, robustness (§3, App. C.2, D)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from grace import analysis as A

# Explicit orientation so these tests do not depend on grace.scores.
ORIENT = {"grace": -1, "g_vendi": +1, "g_var": -1, "badge": +1, "teacher_accuracy": +1}
SCORES = list(ORIENT)

TEACHERS = [  # name, family, size
    ("llama-1b", "llama", 1e9), ("llama-8b", "llama", 8e9),
    ("qwen-1.5b", "qwen", 1.5e9), ("qwen-7b", "qwen", 7e9),
    ("gemma-2b", "gemma", 2e9), ("gemma-27b", "gemma", 27e9),
]
TEMPS = [0.4, 0.6, 0.8, 1.0]


def make_table(seed: int = 0) -> pd.DataFrame:
    """6 teachers × 4 temperatures; the target is a noisy decreasing function of ``grace``."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, fam, size in TEACHERS:
        for t in TEMPS:
            rows.append(dict(config=f"{name}@{t}", teacher=name, family=fam, size_params=int(size),
                             size_label=f"{size / 1e9:g}B", temperature=t, is_self=False,
                             grace=rng.normal()))
    df = pd.DataFrame(rows)
    df["student_avg_at_k"] = 1 / (1 + np.exp(df["grace"])) + 0.05 * rng.normal(size=len(df))
    df["student_greedy"] = df["student_avg_at_k"] + 0.1 * rng.normal(size=len(df))
    df["g_vendi"] = -df["student_avg_at_k"] + 0.02 * rng.normal(size=len(df))  # anti-correlated
    df["g_var"] = np.exp(-3 * df["student_avg_at_k"])  # perfectly monotone, lower is better
    df["badge"] = 1.0  # constant
    df["teacher_accuracy"] = rng.uniform(size=len(df))
    return df


@pytest.fixture
def table():
    return make_table()


# ---------------------------------------------------------------- spearman_table (§3.1)


def test_rho_matches_scipy_and_orientation(table):
    out = A.spearman_table(table, scores=SCORES, orientation=ORIENT, n_boot=50).set_index("score")
    for s in ["grace", "g_vendi", "teacher_accuracy"]:
        ref = stats.spearmanr(table[s], table["student_avg_at_k"])
        assert out.loc[s, "rho"] == pytest.approx(ref.statistic)
        assert out.loc[s, "p_value"] == pytest.approx(ref.pvalue)
        assert out.loc[s, "rho_oriented"] == pytest.approx(ORIENT[s] * ref.statistic)
        assert out.loc[s, "n"] == len(table)
    assert out.loc["grace", "rho"] < -0.5 < 0.5 < out.loc["grace", "rho_oriented"]
    assert out.loc["g_vendi", "rho_oriented"] < -0.5  # wrong way round


def test_orientation_flip_flips_sign_only(table):
    a = A.spearman_table(table, scores=["grace"], orientation=ORIENT, n_boot=200).iloc[0]
    b = A.spearman_table(table, scores=["grace"], orientation={"grace": +1}, n_boot=200).iloc[0]
    assert a["rho"] == b["rho"]
    assert a["rho_oriented"] == pytest.approx(-b["rho_oriented"])
    assert a["ci_low"] == pytest.approx(-b["ci_high"]) and a["ci_high"] == pytest.approx(-b["ci_low"])


def test_sorted_desc_and_constant_column_is_nan_last(table):
    out = A.spearman_table(table, scores=SCORES, orientation=ORIENT, n_boot=50)
    assert out["score"].iloc[0] == "g_var" and out["rho_oriented"].iloc[0] == pytest.approx(1.0)
    vals = out["rho_oriented"].dropna().to_numpy()
    assert np.all(np.diff(vals) <= 0)
    last = out.iloc[-1]
    assert last["score"] == "badge"
    assert np.isnan(last["rho"]) and np.isnan(last["ci_low"]) and np.isnan(last["ci_high"])


def test_nan_rows_dropped_per_score(table):
    t = table.copy()
    t.loc[:4, "grace"] = np.nan
    out = A.spearman_table(t, scores=["grace", "g_vendi"], orientation=ORIENT, n_boot=0)
    out = out.set_index("score")
    assert out.loc["grace", "n"] == len(t) - 5 and out.loc["g_vendi", "n"] == len(t)
    ref = stats.spearmanr(t["grace"].iloc[5:], t["student_avg_at_k"].iloc[5:]).statistic
    assert out.loc["grace", "rho"] == pytest.approx(ref)
    assert np.isnan(out.loc["grace", "ci_low"])  # n_boot=0 disables the CI


def test_bootstrap_ci_contains_estimate_and_is_deterministic(table):
    kw = dict(scores=["grace", "g_vendi", "teacher_accuracy"], orientation=ORIENT, n_boot=300)
    a = A.spearman_table(table, seed=1, **kw)
    b = A.spearman_table(table, seed=1, **kw)
    c = A.spearman_table(table, seed=2, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"], c["ci_low"])
    assert np.all(a["ci_low"] <= a["rho_oriented"]) and np.all(a["rho_oriented"] <= a["ci_high"])
    assert np.all(a["ci_high"] - a["ci_low"] > 0)
    wide = A.spearman_table(table, seed=1, ci=0.99, **kw)
    assert np.all(wide["ci_high"] - wide["ci_low"] >= a["ci_high"] - a["ci_low"] - 1e-12)


def test_rowwise_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(20, 9)).astype(float)  # many ties
    y = rng.normal(size=(20, 9))
    got = A.rowwise_spearman(x, y)
    for i in range(20):
        if np.ptp(x[i]) == 0:
            assert np.isnan(got[i])
        else:
            assert got[i] == pytest.approx(stats.spearmanr(x[i], y[i]).statistic)


def test_default_scores_use_orientation_keys_present(table):
    out = A.spearman_table(table, orientation={**ORIENT, "not_a_column": 1}, n_boot=0)
    assert set(out["score"]) == set(SCORES)


# ---------------------------------------------------------------- selection gaps (App. C.2)


def test_monotone_score_has_zero_gap(table):
    assert A.selection_gap(table, "g_var", orientation=ORIENT) == 0.0
    assert A.selection_gap(table, "g_vendi", orientation=ORIENT) > 0.0


def test_hand_made_gap_and_ties():
    df = pd.DataFrame(dict(
        config=["d", "c", "b", "a"], family=["x", "x", "y", "y"],
        student_avg_at_k=[0.50, 0.30, 0.40, 0.20],
        grace=[0.20, 0.10, 0.30, 0.10],  # lower is better: "c" and "a" tie at 0.10
    ))
    # the tie between c and a goes to "a" (first by config name) -> gap 0.5 - 0.2
    assert A.selection_gap(df, "grace", orientation=-1) == pytest.approx(0.30)
    assert A.selection_gap(df, "grace", orientation={"grace": +1}) == pytest.approx(0.10)  # picks b
    assert A.selection_gap(df, "grace", orientation=-1, group={"family": "x"}) == pytest.approx(0.20)
    mask = (df["family"] == "y").to_numpy()
    assert A.selection_gap(df, "grace", orientation=-1, group=mask) == pytest.approx(0.20)
    g = A.selection_gaps(df, ["grace"], group_col="family", orientation=ORIENT).set_index("group")
    assert g.loc["x", "picked_config"] == "c" and g.loc["x", "best_config"] == "d"
    assert g.loc["y", "picked_config"] == "a" and g.loc["y", "gap"] == pytest.approx(0.20)


def test_selection_gaps_agree_with_selection_gap(table):
    g = A.selection_gaps(table, SCORES, group_col="family", orientation=ORIENT)
    assert len(g) == 3 * len(SCORES)
    for _, r in g.iterrows():
        ref = A.selection_gap(table, r["score"], orientation=ORIENT, group={"family": r["group"]})
        assert r["gap"] == pytest.approx(ref)
        assert r["gap"] >= 0


# ---------------------------------------------------------------- §3.2 tables


def test_size_budget_filtering(table):
    out = A.size_budget_table(table, [10e9, 3e9], ["grace", "g_var"], orientation=ORIENT)
    assert list(out["group"].unique()) == ["≤3B", "≤10B"]
    assert set(out[out["group"] == "≤3B"]["n"]) == {12}  # 1, 1.5, 2 B teachers × 4 temperatures
    assert set(out[out["group"] == "≤10B"]["n"]) == {20}
    sub = table[table["size_params"] <= 3e9]
    r = out[(out["group"] == "≤3B") & (out["score"] == "grace")].iloc[0]
    assert r["rho_oriented"] == pytest.approx(-stats.spearmanr(sub["grace"], sub["student_avg_at_k"]).statistic)
    assert r["gap"] == pytest.approx(A.selection_gap(sub, "grace", orientation=ORIENT))
    assert (out[out["score"] == "g_var"]["gap"] == 0).all()
    assert table.set_index("config").loc[r["picked_config"], "size_params"] <= 3e9


def test_family_gap_table_mean(table):
    out = A.family_gap_table(table, ["grace", "g_vendi"], orientation=ORIENT)
    assert len(out) == 3 * 2 + 2
    for s in ["grace", "g_vendi"]:
        fam = out[(out["score"] == s) & (out["group"] != "mean")]
        mean = out[(out["score"] == s) & (out["group"] == "mean")].iloc[0]
        assert mean["gap"] == pytest.approx(fam["gap"].mean()) and mean["n"] == 3


def test_temperature_table_hand_made():
    df = pd.DataFrame(dict(
        teacher=["A"] * 4 + ["B"] * 4,
        temperature=[1.0, 0.4, 0.8, 0.6] * 2,  # deliberately unsorted
        student_avg_at_k=[0.2, 0.1, 0.5, 0.3, 0.4, 0.4, 0.1, 0.2],
        grace=[0.1, 0.5, 0.3, 0.4, 0.9, 0.1, 0.3, 0.2],
    ))
    out = A.temperature_table(df, ["grace"], orientation=ORIENT).set_index("teacher")
    a, b = out.loc["A"], out.loc["B"]
    assert a["best_temperature"] == 0.8 and a["predicted_temperature"] == 1.0
    assert a["gap"] == pytest.approx(0.3) and a["temperature_error"] == pytest.approx(0.2)
    ref = stats.spearmanr(df["grace"][:4], df["student_avg_at_k"][:4]).statistic
    assert a["rho"] == pytest.approx(ref) and a["rho_oriented"] == pytest.approx(-ref)
    # B: targets tie at 1.0 and 0.4 -> lowest temperature wins; grace best (0.1) at 0.4
    assert b["best_temperature"] == 0.4 and b["predicted_temperature"] == 0.4 and b["gap"] == 0


def test_temperature_table_shape(table):
    out = A.temperature_table(table, ["grace", "g_var"], orientation=ORIENT)
    assert len(out) == 6 * 2 and set(out["n"]) == {4}
    assert np.allclose(out[out["score"] == "g_var"]["rho_oriented"], 1.0)


# ---------------------------------------------------------------- App. D.5 robustness


@pytest.mark.parametrize("by", ["config", "teacher"])
def test_robustness_subsets(table, by):
    out = A.robustness_subsets(table, SCORES, n_subsets=20, by=by, seed=0, orientation=ORIENT)
    assert len(out) == 20 * len(SCORES)
    assert list(out.columns[:2]) == ["subset", "score"]
    vals = out["rho_oriented"].dropna()
    assert ((vals >= -1) & (vals <= 1)).all()
    assert out[out["score"] == "badge"]["rho_oriented"].isna().all()
    assert np.allclose(out[out["score"] == "g_var"]["rho_oriented"], 1.0)
    expected_n = round(0.6 * 24) if by == "config" else round(0.6 * 6) * 4
    assert set(out["n"]) == {expected_n}
    again = A.robustness_subsets(table, SCORES, n_subsets=20, by=by, seed=0, orientation=ORIENT)
    pd.testing.assert_frame_equal(out, again)
    other = A.robustness_subsets(table, SCORES, n_subsets=20, by=by, seed=1, orientation=ORIENT)
    assert not out["rho_oriented"].equals(other["rho_oriented"])


# ---------------------------------------------------------------- App. D.4 fit


def test_fit_inverse_log_recovers_parameters():
    T = np.arange(5, 400, 7)
    a, b, r2 = A.fit_inverse_log(T, 3.0 / np.log(T) + 0.5)
    assert (a, b, r2) == pytest.approx((3.0, 0.5, 1.0))
    a2, b2, _ = A.fit_inverse_log(T, 2.0 / np.log(T) ** 2 - 0.1, power=2)
    assert (a2, b2) == pytest.approx((2.0, -0.1))
    with pytest.raises(ValueError, match="> 1"):
        A.fit_inverse_log([1, 5, 9], [1.0, 2.0, 3.0])


def test_format_params():
    assert [A.format_params(x) for x in (3e9, 1.5e9, 2.5e6, 800, float("inf"))] == [
        "3B", "1.5B", "2.5M", "800", "all"]


# ---------------------------------------------------------------- errors


def test_errors(table):
    with pytest.raises(ValueError, match=r"'student_best_of_k'.*available.*student_avg_at_k"):
        A.spearman_table(table, target="student_best_of_k", orientation=ORIENT)
    with pytest.raises(ValueError, match="2 rows"):
        A.spearman_table(table.iloc[:2], orientation=ORIENT)
    with pytest.raises(ValueError, match="unknown score 'nope'"):
        A.spearman_table(table, scores=["nope"], orientation=ORIENT)
    with pytest.raises(ValueError, match="'g_vendi' is not a column"):
        A.selection_gap(table.drop(columns="g_vendi"), "g_vendi", orientation=ORIENT)
    with pytest.raises(ValueError, match="must be \\+1 or -1"):
        A.spearman_table(table, scores=["grace"], orientation={"grace": 0}, n_boot=0)
    with pytest.raises(ValueError, match="ci="):
        A.spearman_table(table, orientation=ORIENT, ci=95)
    with pytest.raises(ValueError, match="by="):
        A.robustness_subsets(table, orientation=ORIENT, by="family")
    with pytest.raises(ValueError, match="at least 3"):
        A.robustness_subsets(table.iloc[:4], orientation=ORIENT, frac=0.5)
    with pytest.raises(ValueError, match="group_col 'colour'"):
        A.selection_gaps(table, ["grace"], group_col="colour", orientation=ORIENT)
    with pytest.raises(ValueError, match="size_params"):
        A.size_budget_table(table.drop(columns="size_params"), [3e9], ["grace"], orientation=ORIENT)


def test_default_orientation_from_grace_scores(table):
    from grace import scores as scores_mod

    out = A.spearman_table(table, n_boot=0).set_index("score")
    for s in out.index:
        assert s in scores_mod.SCORE_ORIENTATION
    assert out.loc["grace", "rho_oriented"] > 0.5 and "teacher_accuracy" in out.index


def test_main_pool_drops_anecdote_teachers():
    from grace.analysis import main_pool

    df = pd.DataFrame({"config": ["a", "b", "self", "ans"], "is_self": [False, False, True, False],
                       "in_pool": [True, True, False, False]})
    assert list(main_pool(df)["config"]) == ["a", "b"]
    assert list(main_pool(df.drop(columns="in_pool"))["config"]) == ["a", "b", "ans"]  # older tables


def test_claims_beside_matches_by_id():
    from grace import claims

    mine = pd.DataFrame({"id": ["x", "y"], "verdict": ["reproduced", "partly"], "value": [1.0, 2.0]})
    other = pd.DataFrame({"id": ["y", "z"], "verdict": ["not reproduced", "reproduced"], "value": [-2.0, 3.0]})
    side = claims.beside(mine, {"format-shock": other})
    assert list(side["verdict (format-shock)"]) == ["–", "not reproduced"]
    assert side["value (format-shock)"].iloc[1] == -2.0 and np.isnan(side["value (format-shock)"].iloc[0])


def test_hypothesis_test_reads_the_preregistered_rules():
    import pandas as pd

    from grace.analysis import hypothesis_test

    pool = pd.DataFrame({"score": ["grace", "student_loss", "teacher_accuracy"],
                         "rho_oriented": [0.5, 0.6, 0.1], "ci_low": [0.1, 0.2, -0.4]})
    t = hypothesis_test(pool, all_pass=True).set_index("hypothesis")
    assert t.verdict.tolist() == ["supported", "not supported", "supported"]
    assert t.at["H1", "against"] == 0.1 and t.at["H2 (student_loss)", "against"] == 0.6
    pool.loc[0, "ci_low"] = -0.05  # positive point estimate, CI reaching below 0: H1 fails
    assert hypothesis_test(pool, all_pass=True).verdict[0] == "not supported"
    assert set(hypothesis_test(pool, all_pass=False).verdict) == {"not a test"}  # a world that failed a check
    assert hypothesis_test(pool.iloc[1:], all_pass=True).verdict.tolist() == ["not measured"] * 3


def _strong_results():
    import pandas as pd

    rows = [("calc-M", 0.5, 0.24, 0.98, 300.0, True), ("prefix-M", 0.5, 0.15, 0.97, 200.0, True),
            ("resfirst-M", 0.5, 0.07, 0.96, 900.0, True), ("student", 0.5, 0.05, 0.05, 50.0, False)]
    return pd.DataFrame(rows, columns=["teacher", "temperature", "student_avg_at_k", "teacher_accuracy", "grace",
                                       "in_pool"]).assign(student_loss=[0.5, 0.9, 1.4, 0.4],
                                                          config=["calc-M@0.5", "prefix-M@0.5", "resfirst-M@0.5",
                                                                  "student@0.5"])


def test_strong_study_paragraph_gives_the_pool_gaps_the_anecdotes_and_whether_it_is_the_test():
    import pandas as pd

    from grace.analysis import PRE_REGISTERED_PROFILE, hypothesis_test
    from grace.regimes import describe_strong_study

    res = _strong_results()
    pool = pd.DataFrame({"score": ["grace", "student_loss", "teacher_accuracy"], "rho_oriented": [0.5, 1.0, 1.0],
                         "ci_low": [0.1, 0.2, 0.3], "ci_high": [0.9, 1.0, 1.0]})
    hyp = hypothesis_test(pool, all_pass=True)
    checks = {"acceptance": {"all_pass": True}, "profile": "strong-quick"}
    text = describe_strong_study(hyp, checks, pool, res)
    # GRACE (lower is better) picks prefix-M (0.15) against the best calc-M (0.24): 9.0 points
    assert "GRACE picks prefix-M@0.5 (9.0 points below the best)" in text
    assert "the student's loss picks calc-M@0.5 (0.0 points" in text
    # the self-distillation teacher has the lowest GRACE of all: said, with its accuracy
    assert "GRACE ranks student@0.5 (5% correct" in text
    assert "an indication only" in text and PRE_REGISTERED_PROFILE in text
    full = describe_strong_study(hyp, {**checks, "profile": PRE_REGISTERED_PROFILE}, pool, res)
    assert "Pre-registered verdicts" in full and "an indication only" not in full
    res.loc[3, "grace"] = 5000.0  # the anecdote now ranks last: no warning
    assert "ranks no anecdote teacher" in describe_strong_study(hyp, checks, pool, res)


def test_seeds_sentence_reads_grace_and_the_loss_across_a_regimes_seeds():
    import pandas as pd

    from grace.regimes import seeds_sentence, summarize

    rows = [("strong", s, k, k, 8, r, lo, 1.0, 0.0) for s, k, r, lo in
            [(0, "grace", 0.76, 0.09), (1, "grace", 0.21, -0.7), (2, "grace", 0.33, -0.8),
             (0, "student_loss", 0.38, -0.7), (1, "student_loss", 0.88, 0.2), (2, "student_loss", 0.74, 0.1)]]
    table = pd.DataFrame(rows, columns=["regime", "seed", "score", "label", "n", "rho_oriented", "ci_low", "ci_high",
                                        "gap"])
    checks = pd.DataFrame({"regime": ["strong"] * 3, "seed": [0, 1, 2], "all_pass": [True, False, False]})
    text = seeds_sentence(summarize(table), checks, "strong")
    assert "Over 3 world seeds of the strong regime" in text and "1 of which passes" in text and "CI above 0 in 1" in text
    assert "from 0.21 to 0.76" in text and "mean 0.43" in text and "from 0.38 to 0.88" in text
    assert seeds_sentence(summarize(table), checks, "other") == ""
    one = seeds_sentence(summarize(table[table["seed"] == 0]), checks[checks["seed"] == 0], "strong", "this world")
    assert one == ("In the regime map (§6.11), one world seed of this world, which passes its checks, gives GRACE an "
                   "oriented ρ of 0.76 (CI above 0) and the student's loss 0.38.")


def test_own_regime_is_the_map_regime_that_redraws_this_builds_world():
    import pandas as pd

    from grace.regimes import own_regime

    checks = pd.DataFrame({"regime": ["a", "a", "b", "b", "c"], "seed": [0, 1, 0, 1, 0],
                           "profile": ["x", "x", "quick", "quick", "full"]})
    assert own_regime(checks, "quick") == ("b", "this build's world (the b regime)")
    assert own_regime(checks, "full") == ("strong-teacher", "the strong-teacher regime")  # one study: no seeds
    assert own_regime(checks, "smoke", default="a") == ("a", "the a regime")
