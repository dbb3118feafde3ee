"""Tests for grace.formatting: the one layer that decides how the book prints a number."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from grace import formatting as F


def test_number_rounds_by_kind_and_never_prints_nan():
    assert F.number(-0.395139, "rho") == "-0.40"
    assert F.number(0.123456, "acc") == "0.123"
    assert F.number(0.5, "share") == "50%"
    assert F.number(np.float64(12.345), "seconds") == "12.3"
    assert F.number(3.0, "count") == "3"
    assert F.number(0.5, "+.2f") == "+0.50"
    assert F.number(math.inf) == "∞" and F.number(-math.inf) == "−∞"
    assert F.number(math.nan, "rho", why="only 2 temperatures") == "not measured here (only 2 temperatures)"
    assert F.number(None) == "not measured here"
    with pytest.raises(ValueError, match="kind='bogus'"):
        F.number(1.0, "bogus")


def test_rho_ci_and_title():
    assert F.rho_ci(0.6, 0.21, 0.85) == "0.60 [0.21, 0.85]"
    assert F.rho_ci(0.6, math.nan, math.nan) == "0.60"
    assert F.rho_ci(math.nan, 0.1, 0.2, why="constant students") == "not measured here (constant students)"
    assert F.rho_title("GRACE", -0.6, 24) == "GRACE: oriented ρ = -0.60 (n = 24)"
    assert F.rho_title("GRACE", math.nan) == "GRACE: oriented ρ not measured"
    assert F.rho_title("greedy vs avg@k", 0.5, oriented=False) == "greedy vs avg@k: ρ = 0.50"


def test_table_rounds_columns_by_kind_and_blanks_missing_cells():
    df = pd.DataFrame({"label": ["GRACE", None], "n": [4, 4], "rho_oriented": [-0.395139, np.nan],
                       "student avg@k": [0.12345, 0.5], "bound": [np.inf, 1.0]})
    out = F.table(df)
    assert list(out["rho_oriented"]) == ["-0.40", "—"] and list(out["student avg@k"]) == ["0.123", "0.500"]
    assert list(out["n"]) == ["4", "4"] and list(out["label"]) == ["GRACE", "—"] and out.loc[0, "bound"] == "∞"
    ci = F.table(pd.DataFrame({"rho": [0.61234], "ci_low": [0.2345]}))  # a CI is rounded as its ρ ...
    other = F.table(pd.DataFrame({"exponent": [0.72219], "exponent_ci_low": [-0.68123]}))  # ... or as its value
    assert ci.loc[0, "ci_low"] == "0.23" and list(other.loc[0]) == ["0.7222", "-0.6812"]
    col = F.table(pd.DataFrame({"loss": [1.6021, 4.92], "grace": [3463.2, 6291.0], "mixed": ["human", 0.148291]}))
    assert list(col["loss"]) == ["1.602", "4.920"] and list(col["grace"]) == ["3463", "6291"]
    assert list(col["mixed"]) == ["human", "0.1483"]
    html = F.html_table(df, why="too few points")
    assert "grace-table" in html and "-0.395139" not in html and "NaN" not in html
    assert "— not measured here (too few points)" in html


def test_a_table_with_no_measured_number_becomes_a_note():
    df = pd.DataFrame({"label": ["GRACE", "G-Var"], "n": [4, 4], "rho": [np.nan, np.nan]})
    assert F.html_table(df, why="constant students") == (
        '<p class="grace-table-note"><em>Table not shown: not measured here (constant students).</em></p>')
    ledger = df.assign(verdict=["not testable"] * 2, rule=["r", "r"])  # verdicts are worth showing
    assert "<table" in F.html_table(ledger)


def test_findings_sentences():
    pool = pd.DataFrame({"teacher": ["a", "a", "b", "b"], "temperature": [0.5, 1.0, 0.5, 1.0],
                         "student_avg_at_k": [0.1, 0.2, 0.3, 0.275]})
    sp = pd.DataFrame({"label": ["GRACE", "G-Var"], "rho_oriented": [0.8, np.nan]})
    f = F.findings(pool, sp, (0.8, 0.4, 0.95), 0.86, "quick")
    assert f["finding_students"].startswith("The 4 students") and "a spread of 20.0 points" in f["finding_students"]
    assert "(2 teachers × 2 temperatures)" in f["finding_students"]
    one = F.findings(pool[pool["temperature"] == 1.0], sp, (0.8, 0.4, 0.95), 0.86, "smoke")["finding_students"]
    assert "(2 teachers × 1 temperature)" in one
    assert "0.80 [0.40, 0.95] against the paper's 0.86" in f["finding_grace"] and "agrees" in f["finding_grace"]
    assert f["finding_best"] == "The score that tracks the student best here is GRACE (oriented ρ 0.80)."
    g = F.findings(pool, sp.assign(rho_oriented=np.nan), (math.nan,) * 3, 0.86, "smoke")
    assert "not measured here" in g["finding_grace"] and "nan" not in " ".join(g.values())
    assert F.findings_sentence({"reproduced": 2, "partly": 1}, 5).startswith("Of the 5 claims")


def test_strong_finding_says_what_was_run_and_decided():
    import pandas as pd

    from grace.formatting import strong_finding

    assert "was not run in this build" in strong_finding(None)
    hyp = pd.DataFrame({"hypothesis": ["H1"], "grace_rho": [0.612], "verdict": ["supported"]})
    text = strong_finding(hyp, True)
    assert "passes its acceptance checks" in text and "0.61" in text and "right way passes" in text
    hyp.loc[0, "verdict"] = "not a test"
    assert "fails at least one" in strong_finding(hyp, False) and "not a test" in strong_finding(hyp, False)
    hyp.loc[0, "verdict"] = "not supported"
    assert "right way fails" in strong_finding(hyp, True) and "second" not in strong_finding(hyp, True)
    h2 = pd.DataFrame({"hypothesis": ["H1", "H2 (student_loss)", "H2 (teacher_accuracy)"], "grace_rho": [0.56] * 3,
                       "against": [0.0, 0.70, -0.02], "verdict": ["supported", "not supported", "supported"]})
    text = strong_finding(h2, True)
    assert "right way passes" in text and "the teacher's accuracy, fails: their oriented ρ are 0.70 and -0.02" in text
    assert "accuracy, would fail here:" in strong_finding(h2, True, indicative=True)
    h2["verdict"] = "supported"
    assert "accuracy, passes:" in strong_finding(h2, True)
    assert "accuracy, would pass here:" in strong_finding(h2, True, indicative=True)


def test_strong_finding_of_a_reduced_study_is_an_indication_with_its_ci():
    import pandas as pd

    from grace.formatting import strong_finding

    hyp = pd.DataFrame({"hypothesis": ["H1"], "grace_rho": [0.762], "verdict": ["supported"]})
    text = strong_finding(hyp, True, ci=(0.089, 1.0), indicative=True)
    assert "0.76 [0.09, 1.00]" in text and "an indication" in text and "right way passes" not in text
    hyp.loc[0, "verdict"] = "not supported"
    assert "short of the paper's claim" in strong_finding(hyp, True, indicative=True)


def test_strong_finding_of_the_builds_own_study_does_not_repeat_its_rho():
    import pandas as pd

    from grace.formatting import strong_finding

    hyp = pd.DataFrame({"hypothesis": ["H1"], "grace_rho": [0.833], "verdict": ["supported"]})
    text = strong_finding(hyp, True, ci=(0.316, 1.0), indicative=True, own=True)
    assert text.startswith("This build's world is the one built for the paper's own regime")
    assert "0.83" not in text and "and it passes its acceptance checks: GRACE's ρ above is in line" in text
    assert "GRACE's ρ above is the pre-registered test, and it fails." in strong_finding(
        hyp.assign(verdict="not supported"), True, own=True)
    assert "it fails at least one acceptance check: GRACE's ρ above is not a test" in strong_finding(
        hyp.assign(verdict="not a test"), False, own=True)
