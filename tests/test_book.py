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
    """Names assigned in the jupytext cell tagged ``parameters`` (the chapter's defaults)."""
    return set(build.parameters_cell(src))


def code_cells(src: Path) -> list[str]:
    """The sources of a chapter's code cells, as jupytext reads them."""
    import jupytext

    return [c.source for c in jupytext.read(src).cells if c.cell_type == "code"]


def cell_lines(source: str) -> int:
    """A code cell's length as a reader scrolls it: every line, blank ones included."""
    return len(source.splitlines())


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
def test_params_file_overrides_only_parameters_cell_keys(src):
    """One params file per chapter: profile -> the keys that differ from the parameters cell's defaults."""
    defaults = build.parameters_cell(src)
    assert set(build.INJECTED) <= set(defaults), f"{src.name}: the parameters cell must define {build.INJECTED}"
    table = build.params_table(src.stem)
    assert set(build.PROFILES) <= set(table), f"{build.params_path(src.stem).name}: needs an entry for {build.PROFILES}"
    assert set(table) <= set(build.bundled_profiles()), f"{sorted(table)}: only bundled profile names"
    for profile, overrides in table.items():
        assert set(overrides) <= set(defaults) - set(build.INJECTED), (profile, sorted(overrides))
        same = {k for k, v in overrides.items() if v == defaults[k] and type(v) is type(defaults[k])}
        assert not same, f"{src.stem}.yaml {profile}: {sorted(same)} repeat the defaults; remove them"
        assert build.load_params(src.stem, profile, src) == overrides


def test_one_params_file_per_chapter():
    names = sorted(p.name for p in build.PARAMS.glob("*.yaml"))
    assert names == sorted(f"{p.stem}.yaml" for p in NOTEBOOKS), "notebooks/params/ holds <chapter>.yaml only"


def test_no_def_in_notebooks():
    """Helpers live in the package (grace.notebook, grace.analysis, ...), where tests reach them."""
    found = []
    for src in NOTEBOOKS:
        for source in code_cells(src):
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    found.append(f"{src.name}: {node.name} (line {node.lineno} of its cell)")
    assert not found, "move these into the grace package: " + "; ".join(found)


def test_code_cells_are_short():
    """A reader scrolls through code, not plumbing: the median code cell over the book is at most 10 lines."""
    import statistics

    lengths = {f"{src.stem}[{i}]": cell_lines(c) for src in NOTEBOOKS for i, c in enumerate(code_cells(src))}
    median = statistics.median(lengths.values())
    longest = sorted(lengths, key=lengths.get, reverse=True)[:5]
    assert median <= 10, f"median code cell {median} lines > 10; longest: {[(k, lengths[k]) for k in longest]}"


def test_one_alias_per_module():
    """``A`` is grace.analysis and ``AB`` grace.ablations in every chapter (never the other way round)."""
    aliases: dict[str, set[str]] = {}
    for src in NOTEBOOKS:
        for source in code_cells(src):
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ImportFrom) and node.module == "grace":
                    for a in node.names:
                        aliases.setdefault(a.asname or a.name, set()).add(a.name)
    clashes = {k: v for k, v in aliases.items() if len(v) > 1}
    assert not clashes, f"one alias, one module: {clashes}"
    assert aliases.get("A", {"analysis"}) == {"analysis"} and aliases.get("AB", {"ablations"}) == {"ablations"}


def test_parameters_cell_parser_rejects_a_missing_cell(tmp_path):
    src = tmp_path / "99_x.py"
    src.write_text("# %%\nx = 1\n")
    with pytest.raises(SystemExit, match="exactly one cell tagged 'parameters'"):
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
    (params / "99_fails.yaml").write_text("smoke: {k: 2}\n")
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
    assert build.load_params("06_scores_vs_students", "format-shock") == build.load_params("06_scores_vs_students", "full")
    with pytest.raises(SystemExit, match="not a bundled profile; choose one of .*'smoke'.* or give the path"):
        build.params_profile("no-such-profile")


def test_profile_file_path(tmp_path):
    """--profile PATH.yaml: the study runs on that file, outputs under artifacts/<stem>, and its chapter
    parameters are those of its book_params (default: the notebooks' defaults)."""
    mine = tmp_path / "my-study.yaml"
    mine.write_text((build.PROFILE_DIR / "smoke.yaml").read_text())
    assert build.profile_key(str(mine)) == "my-study"
    assert build.profile_source(str(mine)) == str(mine.resolve())
    assert build.params_profile(str(mine)) is None
    assert build.load_params("05_distillation", str(mine)) == {}
    mine.write_text("book_params: quick\n" + mine.read_text())
    assert build.load_params("08_paper_vs_release", str(mine)) == build.load_params("08_paper_vs_release", "quick")
    assert build.profile_key("smoke") == "smoke" and build.profile_source("smoke") == "smoke"
    with pytest.raises(SystemExit, match="no such profile file"):
        build.profile_file(str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("book_params: nope\n")
    with pytest.raises(SystemExit, match="book_params 'nope' is not a bundled profile"):
        build.params_profile(str(tmp_path / "bad.yaml"))


def test_load_params_names_bad_entries(tmp_path, monkeypatch):
    params = tmp_path / "params"
    params.mkdir()
    src = tmp_path / "99_x.py"
    src.write_text('# %% tags=["parameters"]\nout_dir = "x"\nprofile = "smoke"\nk = 1\n')
    monkeypatch.setattr(build, "PARAMS", params)
    monkeypatch.setattr(build, "REPO", tmp_path)
    with pytest.raises(SystemExit, match="99_x.yaml is missing"):
        build.load_params("99_x", "smoke", src)
    (params / "99_x.yaml").write_text("quick: {k: 2}\n")
    with pytest.raises(SystemExit, match="no entry for profile 'smoke'; add `smoke: {}`"):
        build.load_params("99_x", "smoke", src)
    (params / "99_x.yaml").write_text("smoke: {j: 2}\n")
    with pytest.raises(SystemExit, match=r"sets \['j'\] for 'smoke'.*use some of \['k'\]"):
        build.load_params("99_x", "smoke", src)
    (params / "99_x.yaml").write_text("smoke: {out_dir: y}\n")
    with pytest.raises(SystemExit, match="build.py injects"):
        build.load_params("99_x", "smoke", src)
    (params / "99_x.yaml").write_text("smoke: 3\n")
    with pytest.raises(SystemExit, match="each profile must map to a mapping"):
        build.load_params("99_x", "smoke", src)


# ------------------------------------------------------------------------------------------ what a reader sees


BAD_PAGE = """<html><head><title>x</title><script>var nan = 1; // code is not prose</script></head><body>
<nav class="bd-sidebar-primary"><p>NaN in a sidebar is not checked</p></nav>
<main><article class="bd-article">
<p>GRACE's oriented ρ is nan [nan, nan] (paper 0.86).</p>
<div class="cell docutils container"><div class="cell_input docutils container"><pre>x = np.nan  # code</pre></div>
<div class="cell_output docutils container"><div class="output text_plain highlight-myst-ansi"><pre>Claim(id='x', value=nan)</pre></div>
<div class="output stderr"><pre>{venv}/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found</pre></div>
<div class="output text_plain"><pre>PosixPath('artifacts/smoke/results.json')</pre></div></div></div>
<figure><figcaption><p>Mean for GRACE NaN; see {home}/notes.txt</p></figcaption></figure>
<table><tr><td>-inf</td><td>&lt;grace.claims.Claim object at 0x7f00&gt;</td></tr></table>
</article></main></body></html>"""

GOOD_PAGE = """<html><body><main><article class="bd-article">
<p>GRACE's oriented ρ is <em>not measured here</em> (only 2 temperatures); the nanoGPT baseline is finance-free.</p>
<div class="cell_input"><pre>rho = np.nan; print(PosixPath('x'))  # code may say anything</pre></div>
<p>Study log: artifacts/smoke/study/study.log; bound ∞; NaN-free; Warnings: none.</p>
</article></main></body></html>"""


def test_check_html_flags_plumbing_in_reader_text(tmp_path):
    """The reader-text check can fail: a crafted page with every kind of plumbing is caught, code is not."""
    paths = ["/home/builder", "/opt/venvs/grace"]
    (tmp_path / "_static").mkdir()
    (tmp_path / "index.html").write_text(GOOD_PAGE)
    assert check_html.scan_text(tmp_path, paths) == []
    (tmp_path / "bad.html").write_text(BAD_PAGE.format(venv=paths[1], home=paths[0]))
    problems = check_html.scan_text(tmp_path, paths)
    kinds = {p.split(": ")[1] for p in problems}
    assert kinds == {"nan", "Python repr", "warning", "absolute path"}, problems
    text = " ".join(problems)
    for shown in ("ρ is nan", "Claim(id=", "TqdmWarning", "PosixPath(", "Mean for GRACE NaN", "object at 0x",
                  "-inf", "/home/builder/notes.txt", "/opt/venvs/grace/lib"):
        assert shown in text, (shown, problems)
    assert "np.nan" not in text and "sidebar" not in text and "var nan" not in text
    assert check_html.main([str(tmp_path)]) == 1


def test_check_html_knows_this_machine():
    paths = check_html.machine_paths()
    assert str(REPO) in paths and sys.prefix in paths
    assert check_html.reader_text_problems(f"saved to {REPO}/artifacts/x.json") != []
    assert check_html.reader_text_problems("saved to artifacts/x.json") == []


def _nb_with_glue(markdown: str, glued: dict):
    import nbformat

    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("ch.glue(...)")
    code.outputs = [nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": repr(v)},
                                           metadata={"scrapbook": {"name": k, "mime_prefix": "application/papermill.record/"}})
                    for k, v in glued.items()]
    nb.cells = [code, nbformat.v4.new_markdown_cell(markdown)]
    return nb


def test_paste_missing_says_why_instead_of_nan():
    nan = float("nan")
    nb = _nb_with_glue(
        "Mean for GRACE {glue:text}`m:.2f` [{glue:text}`lo:.2f`, {glue:text}`hi:.2f`] (paper {glue:text}`p:.2f`), "
        "G-Var {glue:text}`g:.2f` (95% CI {glue:text}`glo:.2f` to {glue:text}`ghi:.2f`); n = {glue:text}`n`.",
        {"m": nan, "m__missing": "only 2 temperatures", "lo": nan, "lo__missing": "only 2 temperatures",
         "hi": nan, "hi__missing": "only 2 temperatures", "p": 0.75, "g": nan, "g__missing": "only 2 temperatures",
         "glo": nan, "glo__missing": "only 2 temperatures", "ghi": nan, "ghi__missing": "only 2 temperatures", "n": 4})
    assert build.paste_missing(nb) == 2  # m and g; the CIs "[lo, hi]" and "(95% CI glo to ghi)" are dropped
    assert nb.cells[1].source == (
        "Mean for GRACE *not measured here* (only 2 temperatures) (paper {glue:text}`p:.2f`), "
        "G-Var *not measured here*; n = {glue:text}`n`.")
    nb = _nb_with_glue("from {glue:text}`a:.2f` to {glue:text}`b:.2f` over runs",
                       {"a": nan, "a__missing": "no runs", "b": nan, "b__missing": "no runs"})
    assert build.paste_missing(nb) == 1 and nb.cells[1].source == "from *not measured here* (no runs) over runs"


def test_parameters_note_shows_the_values_used():
    defaults = {"profile": "smoke", "out_dir": "artifacts/smoke/notebooks/06_x", "n_boot": 1000, "seed": 0}
    injected = {"profile": "quick", "out_dir": "artifacts/quick/notebooks/06_x"}
    note = build.parameters_note("quick", {"n_boot": 200}, defaults, injected)
    assert note.startswith("**This page was built with profile `quick`**, its outputs under "
                           "`artifacts/quick/notebooks/06_x`. The parameters profile `quick` changes")
    assert "| `n_boot` | `200` | `1000` |" in note and "smoke" not in note  # no default path nor profile in a row
    assert "The others keep their defaults: `seed = 0`." in note
    same = build.parameters_note("smoke", {}, defaults, {k: defaults[k] for k in ("profile", "out_dir")})
    assert same.startswith("**This page was built with profile `smoke`**, its outputs under "
                           "`artifacts/smoke/notebooks/06_x`. Every other parameter has its default: "
                           "`n_boot = 1000`, `seed = 0`.")
    mine = REPO / "grace" / "profiles" / "smoke.yaml"  # a profile *file* is shown repo-relative, never absolute
    assert build.display_value("profile", str(mine)) == repr("grace/profiles/smoke.yaml")


def test_real_student_comes_before_the_appendices():
    entries = build.toc_entries()
    assert entries.index("book/_executed/12_real_student") < entries.index("book/_executed/10_appendix_benchmarks")
    assert "Chapter 10" in (REPO / "book" / "intro.md").read_text()


def test_build_reads_the_reason_the_chapters_glue():
    from grace import notebook

    assert build.MISSING_SUFFIX == notebook.MISSING_SUFFIX


def test_ledger_labels_chapters_as_the_book_numbers_them(tmp_path):
    from grace import claims

    labels = claims.chapter_labels(REPO / "_toc.yml")
    assert labels["01_overview"] == "1" and labels["06_scores_vs_students"] == "6"
    assert labels["12_real_student"] == "10"  # the real student comes before the appendices
    assert labels["10_appendix_benchmarks"] == "A" and labels["11_appendix_scaling"] == "B"
    toc = tmp_path / "_toc.yml"
    toc.write_text("parts:\n  - caption: Chapters\n    chapters:\n      - file: a/x\n  - caption: More\n"
                   "    chapters:\n      - file: a/y\n  - caption: Appendices\n    chapters:\n      - file: a/z\n")
    assert claims.chapter_labels(toc) == {"x": "1", "y": "2", "z": "A"}  # numbering runs on across parts
