"""grace.method_runs: the pieces chapters 11 and 12 build their tables from (no training here)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from grace import method_runs as MR


def test_grid_cells_collapse_alpha_zero_to_one_sft_cell():
    assert MR.grid_cells([1.0, 2.0], [0.0, 0.5]) == [(None, 0.0), (1.0, 0.5), (2.0, 0.5)]
    assert MR.grid_cells([2.0], [1.0]) == [(2.0, 1.0)]


def test_rationale_records():
    assert MR.cot_body("3+4=7\n7*2=14\n#### 14") == "3+4=7\n7*2=14"
    prompts = [{"prompt_id": "a", "prompt": "Tom has 3", "answer": "14"}, {"prompt_id": "b", "prompt": "x", "answer": "2"}]
    recs = MR.dual_records(prompts, {"a": "3 4"})
    assert recs[0] == {"prompt_id": "a", "prompt": "Tom has 3", "label": "#### 14", "rationale": "3 4"}
    assert recs[1]["rationale"] == "" and MR.dual_records(prompts, None)[0]["rationale"] == ""
    gens = [{"prompt_id": "a", "sample": 1, "response": "late"}, {"prompt_id": "a", "sample": 0, "response": "first"}]
    assert MR.first_samples(gens)["a"]["response"] == "first"
    sub = MR.subsample([{"i": i} for i in range(10)], 4, seed=0)
    assert len(sub) == 4 and sub == sorted(sub, key=lambda r: r["i"]) and sub == MR.subsample(
        [{"i": i} for i in range(10)], 4, seed=0)


def test_seed_ci_is_a_t_interval():
    m, lo, hi = MR.seed_ci([0.1, 0.3])
    assert m == pytest.approx(0.2) and hi - m == pytest.approx(12.706 * 0.1414214 / math.sqrt(2), rel=1e-3)
    assert math.isnan(MR.seed_ci([0.5])[1])


def test_rank_agreement_and_grace_rho():
    a = pd.Series([0.1, 0.2, 0.3, 0.4], index=list("wxyz"))
    assert MR.rank_agreement(a, a)["rho"] == pytest.approx(1.0) and MR.rank_agreement(a, a)["same_best"]
    flip = MR.rank_agreement(a, -a)
    assert flip["rho"] == pytest.approx(-1.0) and flip["best_b"] == "w" and not flip["same_best"]
    results = pd.DataFrame({"config": list("wxyz"), "grace": [4.0, 3.0, 2.0, 1.0],
                            "student_avg_at_k": [0.1, 0.2, 0.3, 0.4]})
    rho, lo, hi = MR.grace_rho(results, pd.Series([0.1, 0.2, 0.3, 0.4], index=list("wxyz")), n_boot=50, seed=0)
    from grace.scores import SCORE_ORIENTATION

    assert rho == pytest.approx(-SCORE_ORIENTATION["grace"])  # lower GRACE is better: oriented ρ = 1
    assert all(np.isnan(MR.grace_rho(results, pd.Series([0.1, 0.2], index=list("wx")), 10, 0)))


def test_better_verdict_reads_the_ci_then_the_mean_and_states_its_whole_rule():
    assert MR.better_verdict(0.02, 0.01, "x − y")[0] == "reproduced"
    assert MR.better_verdict(0.02, -0.01, "x − y")[0] == "partly"
    assert MR.better_verdict(-0.02, -0.05, "x − y")[0] == "not reproduced"
    assert MR.better_verdict(math.nan, math.nan, "x − y")[0] == "not testable"
    rule = MR.better_verdict(0.02, 0.01, "x − y")[1]
    assert rule == "reproduced if the CI of x − y is above 0; partly if the mean is above 0"
