"""The package's shape (issue 10): no module reaches into another's private names."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("grace", "notebooks", "benchmarks", "book")


def private_uses(path: Path) -> list[str]:
    """``from grace.x import _y`` and ``alias._y`` where ``alias`` is a grace module or name (dunders allowed)."""
    tree = ast.parse(path.read_text())
    aliases, bad = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "grace":
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno} from {node.module} import {a.name}")
                aliases.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            aliases.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] == "grace")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in aliases):
            bad.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value.id}.{node.attr}")
    return bad


def test_no_module_uses_another_modules_private_names():
    bad = [b for root in ROOTS for p in sorted((REPO / root).rglob("*.py")) for b in private_uses(p)]
    assert bad == [], "private names used across modules:\n" + "\n".join(bad)


def test_the_check_can_fail(tmp_path, monkeypatch):
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    f = tmp_path / "m.py"
    f.write_text("from grace import analysis as A\nfrom grace.scores import _check_H\nA._pair(1)\n")
    assert len(private_uses(f)) == 2


@pytest.mark.parametrize("gone", ["grace/figures.py"])
def test_retired_modules_stay_gone(gone):
    assert not (REPO / gone).exists()


def test_readme_module_table_lists_every_module():
    table = (REPO / "README.md").read_text()
    modules = sorted(p.name for p in (REPO / "grace").glob("*.py") if p.name != "__init__.py")
    missing = [m for m in modules if f"`grace/{m}`" not in table]
    assert missing == [], f"README's module table lacks {missing}"
    listed = {m.split("/")[1].rstrip("`") for m in __import__("re").findall(r"`grace/[a-z_]+\.py`", table)}
    assert listed <= set(modules), f"README lists modules that do not exist: {sorted(listed - set(modules))}"
