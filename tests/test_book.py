"""Tests for the Jupyter Book infrastructure: toc, notebook sources, parameter files, offline HTML."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "book" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


build = _load("build")
check_html = _load("check_html")
NOTEBOOKS = build.discover_notebooks()


def parameters_cell_variables(src: Path) -> set[str]:
    """Names assigned in the jupytext cell tagged ``parameters`` (raises if there is none)."""
    import jupytext

    nb = jupytext.read(src)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{src.name}: expected exactly one cell tagged 'parameters', found {len(cells)}"
    names = set()
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, (ast.Assign, ast.AnnAssign)), f"{src.name}: parameters cell may only assign"
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_config_is_offline_and_does_not_execute():
    cfg = yaml.safe_load((REPO / "_config.yml").read_text())
    assert cfg["title"] == "grace-book"
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert cfg["only_build_toc_files"] is True
    lb = cfg["launch_buttons"]
    assert not lb["binderhub_url"] and not lb["jupyterhub_url"] and not lb["colab_url"] and lb["thebe"] is False
    html = cfg["html"]
    assert not any(html[k] for k in ("use_repository_button", "use_issues_button", "use_edit_page_button"))
    assert not html["analytics"]["google_analytics_id"]
    sphinx = cfg["sphinx"]["config"]
    assert not sphinx["mathjax_path"].startswith(("http", "//"))
    assert sphinx["nb_ipywidgets_js"] == {}


def test_toc_lists_existing_sources_and_every_chapter():
    entries = build.toc_entries()
    assert entries[0] == "book/intro"
    missing = [e for e in entries if not build.source_of(e).exists()]
    assert not missing, f"_toc.yml lists files without a source: {missing}"
    listed = {build.source_of(e) for e in entries}
    unlisted = [p.relative_to(REPO) for p in NOTEBOOKS + build.prose_pages() if p not in listed]
    assert not unlisted, f"not in _toc.yml: {unlisted}; run `python book/build.py --write-toc`"
    assert len(entries) == len(set(entries))


def test_toc_is_what_build_generates():
    assert (REPO / "_toc.yml").read_text() == build.toc_text(), "run `python book/build.py --write-toc`"


def test_source_of_maps_executed_copies_to_notebooks():
    assert build.source_of("book/_executed/04_derivation") == REPO / "notebooks" / "04_derivation.py"
    assert build.source_of("book/intro") == REPO / "book" / "intro.md"


@pytest.mark.parametrize("src", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_parameters_match_every_profile(src):
    variables = parameters_cell_variables(src)
    assert set(build.INJECTED) <= variables, f"{src.name}: the parameters cell must define {build.INJECTED}"
    for profile in build.PROFILES:
        path = build.params_path(src.stem, profile)
        assert path.exists(), f"missing {path.relative_to(REPO)}"
        keys = set(yaml.safe_load(path.read_text()) or {})
        assert keys == variables - set(build.INJECTED), (
            f"{path.name}: keys {sorted(keys)} != parameters-cell variables minus {build.INJECTED} "
            f"{sorted(variables - set(build.INJECTED))}"
        )


def test_parameters_cell_parser_rejects_a_missing_cell(tmp_path):
    src = tmp_path / "99_x.py"
    src.write_text("# %%\nx = 1\n")
    with pytest.raises(AssertionError, match="exactly one cell tagged 'parameters'"):
        parameters_cell_variables(src)


def test_check_html_flags_external_resources_but_not_anchors(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "index.html").write_text(
        '<html><head><script src="_static/a.js"></script><link rel="stylesheet" href="_static/b.css">'
        "</head><body><a href='https://example.org/paper'>paper</a><img src=\"x.png\"></body></html>"
    )
    (tmp_path / "_static" / "b.css").write_text("body { background: url('img/x.png'); }")
    offenders, anchors = check_html.scan(tmp_path)
    assert offenders == [] and anchors["https://example.org/paper"] == 1
    assert check_html.main([str(tmp_path)]) == 0

    (tmp_path / "page.html").write_text(
        '<script src="https://cdn.example.com/x.js"></script><img srcset="a.png 1x, //cdn.example.com/b.png 2x">'
        "<div style=\"background:url(http://example.com/i.png)\"></div><style>@import 'https://fonts.example/f.css';</style>"
    )
    (tmp_path / "_static" / "c.css").write_text("@font-face { src: url(https://fonts.example/f.woff2); }")
    offenders, _ = check_html.scan(tmp_path)
    assert len(offenders) == 5, offenders
    assert check_html.main([str(tmp_path)]) == 1


@pytest.mark.slow
def test_full_smoke_build(tmp_path):
    """Execute every chapter (smoke), render with -W, and check the HTML is offline."""
    proc = subprocess.run([sys.executable, str(REPO / "book" / "build.py"), "--profile", "smoke"],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = REPO / "_build" / "html"
    assert (html / "index.html").exists()
    for src in NOTEBOOKS:
        page = html / "book" / "_executed" / f"{src.stem}.html"
        assert page.exists(), page
        text = page.read_text()
        assert "mathjax/tex-chtml-full.js" in text or "$" not in src.read_text()
    assert check_html.main([str(html)]) == 0


def test_failed_notebook_stops_the_pipeline_and_is_not_kept(tmp_path, monkeypatch, capsys):
    """A chapter that raises: exit 1 naming it, no executed copy left to render, partial output kept."""
    nb_dir, params = tmp_path / "notebooks", tmp_path / "notebooks" / "params"
    params.mkdir(parents=True)
    src = nb_dir / "99_fails.py"
    src.write_text(
        '# %% tags=["parameters"]\nout_dir = "x"\nprofile = "smoke"\nk = 1\n\n'
        '# %%\nraise AssertionError(f"check failed: k={k}")\n'
    )
    (params / "99_fails.smoke.yaml").write_text("k: 2\n")
    monkeypatch.setattr(build, "REPO", tmp_path)
    monkeypatch.setattr(build, "PARAMS", params)
    monkeypatch.setattr(build, "EXECUTED", tmp_path / "book" / "_executed")
    (tmp_path / "book" / "_executed").mkdir(parents=True)
    stale = tmp_path / "book" / "_executed" / "99_fails.ipynb"
    stale.write_text("{}")  # an earlier successful run must not survive a failure
    with pytest.raises(SystemExit) as exc:
        build.execute(src, "smoke", build.kernel_env())
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "FAILED: notebook 99_fails" in err and "check failed: k=2" in err
    assert not stale.exists()
    assert (tmp_path / "artifacts" / "smoke" / "failed" / "99_fails.ipynb").exists()


def test_regime_profiles_reuse_chapter_parameters():
    """format-shock profiles are one YAML each: the build reads the full/quick chapter parameters."""
    assert build.params_profile("format-shock") == "full"
    assert build.params_profile("format-shock-quick") == "quick"
    assert build.params_profile("quick") == "quick"
    assert build.params_path("06_scores_vs_students", "format-shock") == build.params_path("06_scores_vs_students", "full")
    with pytest.raises(SystemExit, match="not a bundled profile"):
        build.params_profile("no-such-profile")
