"""End-to-end tests of the study runner on the smoke profile (paper §3 pipeline in miniature).

One module-scoped smoke study is shared; a second fresh run checks same-seed determinism and a
``kill -9`` mid-study followed by a rerun checks resumption. Together < 4 min on 2 cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from grace.study import load_profile, run_study

TABLE_COLUMNS = ["config", "teacher", "family", "temperature", "student_avg_at_k", "student_greedy",
                 "student_best_of_k", "teacher_accuracy", "teacher_avg_at_k", "grace", "g_vendi", "g_var"]


def _grace_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "grace.cli", *args]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    t0 = time.time()
    res = subprocess.run(_grace_cmd("study", "--profile", "smoke", "--out", str(out), "--quiet"),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    return out, time.time() - t0


def test_smoke_study_writes_results(smoke_run):
    out, seconds = smoke_run
    results = pd.read_csv(out / "results.csv")
    profile = load_profile("smoke")
    n_cfg = len(profile["world"]["teachers"]) * len(profile["temperatures"])
    assert len(results) == n_cfg
    for col in TABLE_COLUMNS:
        assert col in results.columns, col
    assert results["student_avg_at_k"].between(0, 1).all()
    assert results["grace"].notna().all() and (results["grace"] > 0).all()
    assert results["is_self"].sum() == len(profile["temperatures"])
    for name in ("spearman_student_avg_at_k.csv", "gaps.csv", "size_budgets.csv", "families.csv",
                 "temperatures.csv", "robustness.csv"):
        assert (out / "analysis" / name).exists(), name
    assert seconds < 180, f"smoke study took {seconds:.0f}s (budget 180s)"


def test_rerun_skips_finished_work(smoke_run):
    out, _ = smoke_run
    before = (out / "results.csv").read_bytes()
    t0 = time.time()
    res = subprocess.run(_grace_cmd("study", "--profile", "smoke", "--out", str(out), "--quiet"),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    assert (out / "results.csv").read_bytes() == before
    assert "student/" not in res.stderr  # no stage re-ran
    assert time.time() - t0 < 60


def test_same_seed_fresh_run_identical_and_kill9_resume(smoke_run, tmp_path):
    out, _ = smoke_run
    reference = (out / "results.csv").read_bytes()
    run = tmp_path / "killed"
    proc = subprocess.Popen(_grace_cmd("study", "--profile", "smoke", "--out", str(run), "--quiet"),
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    # kill -9 as soon as the first per-configuration stage has finished
    for line in proc.stderr:
        if "generate/" in line:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "results.csv").exists()
    res = subprocess.run(_grace_cmd("study", "--profile", "smoke", "--out", str(run), "--quiet"),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    assert "world/tokenizer" not in res.stderr  # finished stages were reused
    assert (run / "results.csv").read_bytes() == reference


@pytest.mark.parametrize("args, message", [
    (["--profile", "nope"], "unknown profile"),
])
def test_cli_errors(tmp_path, args, message):
    res = subprocess.run(_grace_cmd("study", *args, "--out", str(tmp_path / "x")), capture_output=True, text=True)
    assert res.returncode == 2
    assert message in res.stderr


def test_profile_validation(tmp_path):
    import yaml

    p = load_profile("smoke")
    p["temperatures"] = [0.0, 1.0]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(p))
    with pytest.raises(ValueError, match="temperature"):
        load_profile(path)
    p = load_profile("smoke")
    p["evaluation"]["k"] = 0
    path.write_text(yaml.safe_dump(p))
    with pytest.raises(ValueError, match="k=0"):
        load_profile(path)
    with pytest.raises(FileNotFoundError):
        load_profile(tmp_path / "missing.yaml")


def test_all_bundled_profiles_validate():
    for name in ("smoke", "quick", "full", "gpu"):
        assert load_profile(name)["name"] == name


def test_run_study_rejects_missing_model(tmp_path):
    p = load_profile("gpu")
    p["models"]["student"] = str(tmp_path / "no-such-model")
    p["task"] = {"kind": "synthetic"}
    p["device"] = "cpu"
    with pytest.raises((FileNotFoundError, OSError, ValueError)):
        run_study(p, tmp_path / "out", progress=False)


def test_kill_marker_semantics(tmp_path):
    """A stage directory without done.json is redone; with a matching key it is skipped."""
    from grace.study import Log, cached

    log = Log(tmp_path)
    calls = []

    def fn():
        calls.append(1)
        (tmp_path / "s" / "x.txt").write_text("x")
        return {"v": 1}

    assert cached(tmp_path / "s", {"a": 1}, fn, "s", log)["v"] == 1
    assert cached(tmp_path / "s", {"a": 1}, fn, "s", log)["v"] == 1
    assert len(calls) == 1
    cached(tmp_path / "s", {"a": 2}, fn, "s", log)  # config changed -> rerun
    assert len(calls) == 2
    (tmp_path / "s" / "done.json").unlink()  # interrupted -> rerun
    cached(tmp_path / "s", {"a": 2}, fn, "s", log)
    assert len(calls) == 3

