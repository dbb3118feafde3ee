"""Bad practitioner inputs get a clear error naming the value and the fix (issue 12, item 6)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np


def _grace(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grace.cli", *args], capture_output=True, text=True, timeout=120)


def test_corrupt_or_pickled_features_file_is_refused_by_name(tmp_path):
    d = tmp_path / "feats"
    d.mkdir()
    (d / "features.npz").write_bytes(b"not an archive")
    (d / "features.json").write_text("{}")
    res = _grace("score", str(d))
    assert res.returncode == 2
    assert "features.npz is not a readable npz archive" in res.stderr and "recompute" in res.stderr
    assert "allow_pickle" not in res.stderr
    np.savez(d / "features.npz", H=np.array([{"x": 1}], dtype=object))  # pickled objects: never loaded
    res = _grace("score", str(d))
    assert res.returncode == 2 and "not a readable npz archive" in res.stderr


def test_repeated_teacher_name_is_an_error(tmp_path):
    res = _grace("rank", "--student", str(tmp_path), "--teacher", "a=x.jsonl", "--teacher", "a=y.jsonl")
    assert res.returncode == 2
    assert "--teacher 'a' is given twice" in res.stderr
