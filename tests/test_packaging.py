"""environment.yml (conda) and pyproject.toml (pip) list the same packages at the same versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name
EXTRAS = ("dev", "book", "methods")  # the extras environment.yml mirrors (vllm is GPU-only; real: `make real`, pip)


def _split(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(s) for s in project["dependencies"])
    for extra in EXTRAS:
        wanted.update(_split(s) for s in project["optional-dependencies"][extra])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"], "solvable from conda-forge alone"
    have = {}
    for dep in env["dependencies"]:
        specs = dep["pip"] if isinstance(dep, dict) else [dep]
        for s in specs:
            if s.startswith("-e") or s in ("pip",) or s.startswith("python="):
                continue
            name, ver = _split(s)
            have[CONDA_NAMES.get(name, name)] = ver
    assert have == wanted
