"""The paper-regime world (varied teachers, worked solutions in pre-training) and its GRACE-free checks.

Issue 11: a world is checked for the paper's regime before any score is read. These tests pin the
pieces that make the checks mean something: renderings that vary while keeping a family's surface
form, corrupted pairs that differ only in numbers, a corpus that is unchanged at zero dose, an
outside-span share that separates full-rank from rank-deficient features, and acceptance rules that
fail when a criterion fails.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from grace import answers, synthetic
from grace.world_checks import (
    ACCEPTANCE,
    REGIMES,
    acceptance,
    loss_separation,
    outside_span_share,
    sequence_losses,
)

MINI = {"name": "mini", "ops": "+-*/", "max_add": 12, "max_factor": 3, "max_value": 99}


@pytest.fixture(scope="module")
def problems():
    return synthetic.generate_problems(60, seed=3, difficulty=MINI, max_steps=2)


def test_varied_renderings_differ_but_keep_the_family_and_the_answer(problems):
    rng = random.Random(0)
    for style, marker in (("calc", "<<"), ("terse", None), ("verbose", "so we")):
        texts = [synthetic.render_solution(p, style, rng, varied=True) for p in problems for _ in range(4)]
        for p, t in zip([p for p in problems for _ in range(4)], texts, strict=True):
            assert t.endswith(f"#### {p.answer}") and answers.gsm8k_is_correct(t, p.answer)
            if marker == "<<":
                assert marker in t
            elif style == "terse":
                assert "<<" not in t and not any(c.isalpha() for c in t.replace("####", ""))
        distinct = np.mean([len(set(texts[4 * i:4 * i + 4])) for i in range(len(problems))])
        assert distinct > 1.5, (style, distinct)  # m samples of one prompt are not copies
    # the canonical renderer is unchanged: today's world stays byte-identical
    p = problems[0]
    assert synthetic.render_solution(p, "calc") == synthetic.style_calc(p)


def test_render_pair_differs_only_in_numbers(problems):
    rng = random.Random(1)
    pairs = [synthetic.render_pair(p, s, rng, slip_prob=1.0) for p in problems for s in ("calc", "terse", "verbose")]
    assert all(pair is not None for pair in pairs)
    for good, bad in pairs:
        assert good != bad
        strip = lambda t: "".join(c for c in t if not c.isdigit())  # noqa: E731
        assert strip(good) == strip(bad)
    with pytest.raises(ValueError, match="chain-of-thought style"):
        synthetic.render_pair(problems[0], "answer", rng)


def test_pretraining_corpus_dose():
    d = synthetic.get_difficulty(MINI)
    assert synthetic.pretraining_corpus(200, 5, d) == synthetic.pretraining_corpus(200, 5, d, worked_share=0.0)
    dosed = synthetic.pretraining_corpus(200, 5, d, worked_share=0.25, worked_mix={"calc": 0.5, "terse": 0.3, "verbose": 0.2})
    assert len(dosed) == 200
    worked = [t for t in dosed if "####" in t]
    assert len(worked) == 50 and all(t.startswith("Q: ") and "\nA:" in t for t in worked)
    assert not any("####" in t for t in synthetic.pretraining_corpus(200, 5, d))  # format shock: no solution at all
    assert any("<<" in t for t in worked) and any("so we" in t for t in worked)
    with pytest.raises(ValueError, match="worked_mix"):
        synthetic.pretraining_corpus(10, 0, d, worked_share=0.5)
    with pytest.raises(ValueError, match="worked-solution mix"):
        synthetic.pretraining_corpus(10, 0, d, worked_share=0.5, worked_mix={"answer": 1.0})


def test_outside_span_share_separates_full_rank_from_low_rank():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(40), 4)  # 40 prompts x 4 samples, 160 rows
    full = rng.normal(size=(160, 16))
    assert outside_span_share(full, ids, n_folds=8) < 1e-6
    # every fold's rows have a private direction: each prompt's samples share one of 40 directions,
    # so a held-out fold lies outside the span of the others (the format-shock near-duplicate case)
    basis = np.linalg.qr(rng.normal(size=(64, 64)))[0][:, :40]  # (64, 40)
    low = basis.T[ids] + 1e-9 * rng.normal(size=(160, 64))
    assert outside_span_share(low, ids, n_folds=8) > 0.9


def _checks(**over):
    configs = {f"t{i}@1": {"teacher": f"t{i}", "in_pool": True, "teacher_accuracy": 0.6, "loss_ratio": 0.3,
                           "outside_span_share": 0.01} for i in range(3)}
    base = {"configs": configs, "loss_separation": {"mean": 0.1, "ci_low": 0.05, "ci_high": 0.15},
            "student_avg_at_k_spread": 20.0}
    base.update(over)
    return base


def test_acceptance_rules_fail_where_a_criterion_fails():
    assert acceptance(_checks())["all_pass"]
    bad_loss = _checks()
    bad_loss["configs"]["t0@1"]["loss_ratio"] = 1.1  # format shock
    assert not acceptance(bad_loss)["loss_ratio"]["pass"]
    assert not acceptance(_checks(loss_separation={"mean": 0.0, "ci_low": -0.01, "ci_high": 0.02}))["all_pass"]
    weak = _checks()
    weak["configs"]["t1@1"]["teacher_accuracy"] = 0.2
    assert not acceptance(weak)["teacher_accuracy"]["pass"]
    dup = _checks()
    dup["configs"]["t2@1"]["outside_span_share"] = 0.5
    assert not acceptance(dup)["outside_span_share"]["pass"]
    assert not acceptance(_checks(student_avg_at_k_spread=9.0))["all_pass"]
    assert acceptance(_checks(student_avg_at_k_spread=12.0), min_spread_points=10)["all_pass"]
    out_of_pool = _checks()
    out_of_pool["configs"]["self@1"] = {"teacher": "self", "in_pool": False, "teacher_accuracy": 0.01,
                                        "loss_ratio": 2.0, "outside_span_share": 0.9}
    assert acceptance(out_of_pool)["all_pass"]  # the anecdote teachers are not judged
    assert ACCEPTANCE["max_loss_ratio"] == 0.5


def test_strong_teacher_rules_fail_where_a_criterion_fails():
    """The strong-teacher regime: accuracy in [0.85, 0.98] and |Spearman(accuracy, student)| <= 0.4."""
    from grace.config import WORLD_REGIMES

    assert set(REGIMES) == set(WORLD_REGIMES) and REGIMES["mixed-accuracy"] is ACCEPTANCE

    def strong(acc=0.9, rho=0.1, **over):
        c = _checks(teacher_vs_student_spearman=rho, **over)
        for v in c["configs"].values():
            v["teacher_accuracy"] = acc
        return c

    ok = acceptance(strong(), min_spread_points=10, regime="strong-teacher")
    assert ok["all_pass"] and ok["teacher_vs_student_spearman"]["pass"]
    assert "teacher_vs_student_spearman" not in acceptance(strong())  # not a rule of the default regime
    assert acceptance(_checks())["all_pass"] and not acceptance(_checks(), regime="strong-teacher")["all_pass"]
    for acc in (0.84, 0.99):  # too weak for a strong pool; too sure to be a sampled instruct model
        assert not acceptance(strong(acc=acc), 10, "strong-teacher")["teacher_accuracy"]["pass"], acc
    mixed = strong()
    mixed["configs"]["t0@1"]["teacher_accuracy"] = 0.7  # one weak teacher fails the whole pool
    assert not acceptance(mixed, 10, "strong-teacher")["teacher_accuracy"]["pass"]
    for rho in (0.5, -0.45, float("nan")):  # accuracy deciding the student (either way), or not measurable
        assert not acceptance(strong(rho=rho), 10, "strong-teacher")["teacher_vs_student_spearman"]["pass"], rho
    assert acceptance(strong(rho=-0.4), 10, "strong-teacher")["all_pass"]
    assert not acceptance(strong(student_avg_at_k_spread=14.0), 15, "strong-teacher")["all_pass"]
    bad_loss = strong()
    bad_loss["configs"]["t1@1"]["loss_ratio"] = 0.6
    assert not acceptance(bad_loss, 10, "strong-teacher")["loss_ratio"]["pass"]
    with pytest.raises(ValueError, match="strong-teacher"):
        acceptance(strong(), regime="strong")


def test_the_profile_chooses_the_rules():
    import copy

    from grace.study import load_profile, validate_profile

    for name in ("smoke", "quick", "full", "strong-quick"):  # the defaults run the strong-teacher world
        assert validate_profile(load_profile(name)).world_checks.regime == "strong-teacher", name
    for name in ("mixed-smoke", "mixed-quick", "mixed-full", "between-quick"):
        assert validate_profile(load_profile(name)).world_checks.regime == "mixed-accuracy", name
    p = copy.deepcopy(load_profile("mixed-quick"))
    p["world_checks"]["regime"] = "paper"
    with pytest.raises(ValueError, match=r"world_checks.regime='paper'.*strong-teacher"):
        validate_profile(p)


def test_sequence_losses_and_separation_on_a_trained_world(tmp_path):
    """A student trained on correct worked solutions finds corrupted ones less likely (CI above 0)."""
    import torch

    from grace import world as W
    from grace.distill import TrainConfig, train_causal_lm

    torch.manual_seed(0)
    d = synthetic.get_difficulty("easy")
    texts = synthetic.pretraining_corpus(1500, 0, d, worked_share=0.5, worked_mix={"calc": 1.0}, max_steps=2)
    probs = synthetic.generate_problems(40, seed=9, difficulty=d, max_steps=2)
    tok = W.build_tokenizer(texts + [synthetic.render_solution(p, "calc", random.Random(0), varied=True) for p in probs])
    model = W.make_model(W.ModelSize(hidden=48, layers=2, heads=2, intermediate=96), tok, seed=0)
    train_causal_lm(model, tok, W.pack_texts(tok, texts, 64),
                      TrainConfig(learning_rate=5e-3, max_steps=150, batch_size=32), tmp_path / "tr", progress=False)
    sums, lens = sequence_losses(model, tok, [{"prompt": p.question, "response": synthetic.style_calc(p)} for p in probs],
                                 "Q: {prompt}\nA:")
    assert sums.shape == lens.shape == (40,) and (lens > 3).all()
    assert (sums / lens).mean() < 0.5 * np.log(len(tok))  # it speaks the format
    sep = loss_separation(model, tok, probs, ["calc"], "Q: {prompt}\nA:", seed=0, n_boot=200)
    assert sep["n_pairs"] == 40 and sep["ci_low"] > 0, sep


def test_world_check_cli_and_regime_map(tmp_path):
    """``grace world-check`` rewrites the smoke study's checks; ``grace regime-map`` collects them."""
    out = tmp_path / "map"
    res = subprocess.run([sys.executable, "-m", "grace.cli", "regime-map", "--regime", "paper=smoke", "--regime",
                          "twin=smoke", "--seeds", "0", "--out", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    study = out / "paper" / "seed0"
    # the twin regime (same world) reuses the first one's trained world and trains nothing of its own ...
    assert "world/teacher-" in (study / "study.log").read_text()
    twin_log = (out / "twin" / "seed0" / "study.log").read_text()
    assert "world/teacher-calc-M: copied from" in twin_log and "student/" in twin_log
    assert not [line for line in twin_log.splitlines() if line.split("] ")[-1].startswith("world/") and "copied" not in line]
    # ... and gets the same numbers
    pd.testing.assert_frame_equal(pd.read_csv(study / "results.csv"), pd.read_csv(out / "twin" / "seed0" / "results.csv"))
    checks = json.loads((study / "analysis" / "world_checks.json").read_text())
    for key in ("log_vocab", "configs", "loss_separation", "student_avg_at_k_spread", "teacher_vs_student_spearman",
                "acceptance"):
        assert key in checks, key
    for v in checks["configs"].values():
        assert {"student_loss_per_token", "loss_ratio", "teacher_accuracy", "outside_span_share"} <= set(v)
        assert v["loss_ratio"] == pytest.approx(v["student_loss_per_token"] / checks["log_vocab"])
    table = pd.read_csv(out / "regime_map.csv")
    assert {"regime", "seed", "score", "rho_oriented", "ci_low", "ci_high"} <= set(table.columns)
    assert set(table["regime"]) == {"paper", "twin"} and {"grace", "g_var", "spectral_factor"} <= set(table["score"])
    assert table.loc[table["score"] == "spectral_factor", "label"].eq("GRACE / G-Var (whitening)").all()
    checks_csv = pd.read_csv(out / "regime_checks.csv")
    assert len(checks_csv) == 2 and checks_csv["smoothing_share_median"].between(0, 1).all()
    from grace.regimes import changed_worlds, load_provenance

    prov = load_provenance(out)  # when, at which commit, and from which worlds the map was computed
    assert prov["seeds"] == [0] and prov["regimes"] == {"paper": "smoke", "twin": "smoke"} and prov["wall_s"] > 0
    assert [(x["regime"], x["seed"], x["profile"]) for x in prov["studies"]] == [("paper", 0, "smoke"), ("twin", 0, "smoke")]
    assert changed_worlds(prov) == {"changed": [], "unknown": []}  # the bundled smoke profile is the one used
    res = subprocess.run([sys.executable, "-m", "grace.cli", "world-check", "--study", str(study), "--n-pairs", "20"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "paper regime:" in res.stdout and "loss_ratio" in res.stdout
    res = subprocess.run([sys.executable, "-m", "grace.cli", "regime-map", "--regime", "a=smoke", "--regime",
                          "a=quick", "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "given twice" in res.stderr


def test_regime_summary_and_words_follow_the_numbers():
    from grace.regimes import contrast, describe, summarize

    rows = [{"regime": r, "seed": s, "score": k, "label": k.upper(), "n": 10, "rho_oriented": v * sgn,
             "ci_low": v * sgn - 0.2, "ci_high": v * sgn + 0.2}
            for r, sgn in (("shock", -1), ("paper", 1)) for s in range(3) for k, v in (("grace", 0.5), ("g_var", 0.4))]
    rows += [{"regime": r, "seed": s, "score": "g_vendi", "label": "G", "n": 10, "rho_oriented": -0.6,
              "ci_low": -0.9, "ci_high": -0.3} for r in ("shock", "paper") for s in range(3)]
    summ = summarize(pd.DataFrame(rows))
    g = summ.set_index(["regime", "score"]).loc[("paper", "grace")]
    assert g["seeds"] == 3 and g["rho_mean"] == pytest.approx(0.5) and g["ci_above_0"] == 3
    text = contrast(summ)
    assert "In `shock`" in text and "GRACE ranks teachers the wrong way (-0.50)" in text
    assert "direction changes for G-Var, GRACE; it does not for G-Vendi" in text
    checks = pd.DataFrame([{"regime": "paper", "seed": 0, "all_pass": True, "loss_ratio_max": 0.2,
                            "outside_span_share_max": 0.05, "student_avg_at_k_spread": 16.0}])
    assert "pass in 1 of 1" in describe(summ, checks)


def test_the_map_says_which_of_graces_factors_carries_it():
    from grace.regimes import describe, summarize

    def rows(regime, grace, g_var, whitening):
        return [{"regime": regime, "seed": s, "score": k, "label": k, "n": 8, "rho_oriented": v, "ci_low": v - 0.3,
                 "ci_high": v + 0.3} for s in (0, 1) for k, v in (("grace", grace), ("g_var", g_var),
                                                                  ("spectral_factor", whitening))]
    summ = summarize(pd.DataFrame(rows("scale", 0.5, 0.6, -0.2) + rows("white", -0.4, 0.3, -0.7)
                                  + rows("both", 0.3, 0.2, 0.4)))
    checks = pd.DataFrame([{"regime": r, "seed": s, "all_pass": True, "loss_ratio_max": 0.2, "outside_span_share_max": 0,
                            "student_avg_at_k_spread": 12.0, "smoothing_share_median": share}
                           for r, share in (("scale", 0.1), ("white", 0.8), ("both", 0.5)) for s in (0, 1)])
    text = describe(summ, checks)
    scale, white, both = text.split("\n\n")
    assert "scale ranks teachers with mean ρ +0.60 and the whitening with -0.20: GRACE's sign is that of the " \
           "gradient scale (G-Var); the smoothing ν/d sets a median 10% of GRACE." in scale
    assert "GRACE's sign is that of the whitening (GRACE / G-Var); the smoothing ν/d sets a median 80%" in white
    assert "both factors share GRACE's sign" in both
    # a seed whose ρ is undefined is said so, and a rounded zero carries no sign
    t = pd.DataFrame(rows("scale", 0.5, 0.6, -0.2))
    t.loc[(t["seed"] == 1) & (t["score"] == "grace"), "rho_oriented"] = float("nan")
    t.loc[t["score"] == "g_var", "rho_oriented"] = -0.001
    text = describe(summarize(t), checks[checks["regime"] == "scale"])
    assert "grace: oriented ρ +0.50 on average (one seed, measured in 1 of 2;" in text
    assert "g_var: oriented ρ 0.00 on average (seeds 0.00 to 0.00;" in text and "nan" not in text


def test_claim_verdicts_count_each_regimes_seeds_by_chapter_6s_rules():
    from grace.regimes import claim_verdicts

    def study(regime, seed, grace, lo, gap, loss):
        return [{"regime": regime, "seed": seed, "score": "grace", "rho_oriented": grace, "ci_low": lo, "gap": gap},
                {"regime": regime, "seed": seed, "score": "student_loss", "rho_oriented": loss, "ci_low": -1,
                 "gap": 0.2}]
    rows = (study("strong", 0, 0.9, 0.8, 0.0, 0.3) + study("strong", 1, 0.5, 0.1, 0.02, 0.6)
            + study("shock", 0, -0.5, -0.8, 0.2, 0.1))
    checks = pd.DataFrame({"regime": ["strong", "strong", "shock"], "seed": [0, 1, 0], "all_pass": [True, False, True]})
    v = claim_verdicts(pd.DataFrame(rows), checks)
    claims = list(dict.fromkeys(v.index.get_level_values("claim")))
    assert v.index.get_level_values("regime").tolist() == ["strong", "shock"] * len(claims)  # the map's order
    high, loss, gap = (next(c for c in claims if c.startswith(p)) for p in
                       ("GRACE's oriented ρ with the students is high", "GRACE's ρ above the student's loss",
                        "GRACE's pick within 1 point of the best student (§1; partly within 3)"))
    cell = v["verdicts over the seeds"]
    assert cell[high, "strong"] == "reproduced 1/2, partly 1/2"  # CI low 0.8 >= 0.75; 0.5 >= half the bar
    assert cell[high, "shock"] == "not reproduced 1/1"
    assert cell[loss, "strong"] == "reproduced 1/2, not reproduced 1/2"  # 0.9 > 0.3, 0.5 < 0.6
    assert cell[gap, "strong"] == "reproduced 1/2, partly 1/2" and cell[gap, "shock"] == "not reproduced 1/1"
    acc = next(c for c in claims if "teacher's accuracy" in c)
    assert [cell[acc, "strong"], cell[acc, "shock"]] == ["not testable 2/2", "not testable 1/1"]
    assert set(v.loc[high, "checks passed"]) == {"1/2", "1/1"}
    assert v.loc[(high, "strong"), "checks passed"] == "1/2"
    # a stricter "partly" margin turns the 0.02 gap into "not reproduced"
    strict = claim_verdicts(pd.DataFrame(rows), checks, gap_partly=0.01)["verdicts over the seeds"]
    gap1 = next(c for c in strict.index.get_level_values("claim") if c.startswith("GRACE's pick"))
    assert strict[gap1, "strong"] == "reproduced 1/2, not reproduced 1/2"


def test_smoke_study_is_judged_by_the_strong_teacher_rules(tmp_path):
    """The strong world's pipeline end to end at toy size: its families train, its checks use its rules, and
    a checks-only run judges the world without computing any score (the full run's checks are the same)."""
    out = tmp_path / "strong"
    code = ("import sys; from grace.study import load_profile, run_study; "
            "r = run_study(load_profile('smoke'), sys.argv[1], progress=False, checks_only=True); "
            "print(sorted(r.columns))")
    res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "'grace'" not in res.stdout and "'student_avg_at_k'" in res.stdout  # no score was computed
    assert not (out / "results.csv").exists() and not (out / "complete.json").exists()
    first = (out / "analysis" / "world_checks.json").read_text()
    res = subprocess.run([sys.executable, "-m", "grace.cli", "study", "--profile", "smoke", "--out", str(out),
                          "--quiet"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "analysis" / "world_checks.json").read_text() == first  # text: NaN != NaN in a dict
    checks = json.loads(first)
    assert checks["regime"] == "strong-teacher" and checks["profile"] == "smoke"
    acc = checks["acceptance"]
    assert {"loss_ratio", "loss_separation", "teacher_accuracy", "teacher_vs_student_spearman",
            "student_avg_at_k_spread", "all_pass"} <= set(acc)
    assert acc["teacher_accuracy"]["rule"].endswith("[0.85, 0.98]")
    assert set(acc["teacher_accuracy"]["value"]) == {"calc-M", "fused-M", "prefix-M", "distract-M", "resfirst-M"}
    assert checks["n_main_pool"] == 5 and checks["loss_separation"]["n_pairs"] > 10



def test_a_stage_is_copied_from_a_donor_only_when_its_key_matches(tmp_path):
    """The stage cache takes a donor's stage only for the same key, and never its unfinished batches."""
    from grace.study import Log, cached

    log, calls = Log(tmp_path / "log"), []

    def make(tag):
        def fn():
            calls.append(tag)
            (tmp_path / tag).mkdir(exist_ok=True)
            return {"tag": tag}
        return fn

    donor = tmp_path / "a" / "world" / "teachers" / "t"
    cached(donor, {"steps": 10}, make("a"), "t", log)
    (donor / "_partial").mkdir()
    (donor / "weights").write_text("a's")
    here = tmp_path / "b" / "world" / "teachers" / "t"
    assert cached(here, {"steps": 20}, make("b"), "t", log, [donor])["tag"] == "b"  # another key: trained
    assert calls == ["a", "b"]
    there = tmp_path / "c" / "world" / "teachers" / "t"
    assert cached(there, {"steps": 10}, make("c"), "t", log, [tmp_path / "missing", donor])["tag"] == "a"
    assert calls == ["a", "b"] and (there / "weights").read_text() == "a's" and not (there / "_partial").exists()
    assert not there.with_name("t.copying").exists()
    assert cached(there, {"steps": 10}, make("c"), "t", log)["tag"] == "a"  # and it is this study's own now


def test_map_provenance_says_how_old_the_map_is_and_what_changed_since():
    from grace.regimes import changed_worlds, profile_digest, provenance_sentence
    from grace.study import load_profile

    smoke = load_profile("smoke")
    prov = {"created": "2026-12-05T10:00:00Z", "commit": "abc1234", "wall_s": 5040.0, "seeds": [0, 1],
            "studies": [{"regime": "r", "seed": 0, "profile": "smoke", "digest": profile_digest({**smoke, "seed": 0})},
                        {"regime": "r", "seed": 1, "profile": "smoke", "digest": profile_digest(smoke)},  # seed 0's
                        {"regime": "x", "seed": 0, "profile": "/elsewhere/mine.yaml", "digest": "0"}]}
    changed = changed_worlds(prov)
    assert changed == {"changed": ["r seed 1"], "unknown": ["x seed 0"]}
    text = provenance_sentence(prov, changed, head="def5678")
    assert text.startswith("This map was computed on 2026-12-05 at commit abc1234 from 3 studies in 1.4 h.")
    assert "r seed 1 have changed since" in text and "x seed 0 are not on this machine" in text
    assert text.endswith("The code has changed since (this build: def5678).")
    same = provenance_sentence({**prov, "studies": prov["studies"][:1]}, changed_worlds({"studies": prov["studies"][:1]}),
                               head="abc1234")
    assert "from 1 study in 1.4 h" in same and "Every world in it is built from the profile this build has." in same
    quick = provenance_sentence({**prov, "commit": "abc1234+", "wall_s": 44.0}, changed, head="abc1234+")
    assert "at commit abc1234 with uncommitted changes from 3 studies in 1 min." in quick
    assert "code has changed" not in same
    assert "no record of when it was computed" in provenance_sentence(None)
