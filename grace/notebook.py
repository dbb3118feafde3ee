"""The book's chapter plumbing, in one place.

Every chapter (``notebooks/*.py``) opens with ``ch = Chapter(name, profile, out_dir)`` and then uses
that one object for what every chapter repeats: the shared study (``ensure_study`` + its
``profile.json``), the output folder, gluing numbers into the prose (``ch.glue``/``ch.md``), saving
and gluing figures (``ch.figure``/``ch.show``), recording paper claims in the ledger (``ch.claim``,
chapter 9), numeric checks that stop the build (``ch.check``) and the closing ``results.json``
(``ch.done``). The small formatting helpers the chapters' prose needs (``fmt``, ``met``,
``shorten``, ``text_block``) live here too.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import numpy as np


def glue(name: str, value: Any, display: bool = False, why: str | None = None) -> None:
    """``myst_nb.glue`` with numpy scalars cast to Python numbers (every chapter's ``{glue:}`` roles).

    A glued ``np.float64`` is stored as the text ``np.float64(...)``, which MyST cannot format
    (``{glue:text}`name:.2f``` then fails the ``-W`` build), so every glued number goes through here.
    A number that was not measured (NaN, None) is glued as it is, plus ``<name>__missing``: why (``why``,
    or :data:`Chapter.WHY`); ``book/build.py`` then prints ``not measured here (why)`` where the prose
    pastes it (:func:`grace.formatting.missing`), so a reader never meets a ``nan``.
    """
    from myst_nb import glue as _glue

    from grace.formatting import is_missing

    if isinstance(value, np.generic):
        value = value.item()
    _glue(name, value, display=display)
    if is_missing(value) and not isinstance(value, str) and not hasattr(value, "_repr_mimebundle_"):
        _glue(f"{name}{MISSING_SUFFIX}", why or Chapter.WHY, display=False)


#: One line per profile, shown at the top of the chapters that depend on the study's profile.
PROFILE_NOTES = {
    "smoke": "**Profile `smoke`:** tiny models trained for a few steps. The numbers on this page only "
             "exercise the code; they say nothing about the paper.",
    "quick": "**Profile `quick`:** the strong-teacher world at reduced size (one world seed, S-sized teachers); "
             "the numbers are indications, not the test.",
    "full": "**Profile `full`:** the strong-teacher world at full size, the study the book's pre-registered test of "
            "the paper's claim runs on.",
    "gpu": "**Profile `gpu`:** the paper's student and teachers on GSM8K.",
}


def profile_note(profile: str) -> str:
    """The Markdown note at the top of chapters 1–3 for ``profile`` (generic for a user's own profile)."""
    return PROFILE_NOTES.get(profile, f"**Profile `{profile}`.**")


def profile_key(profile: str | os.PathLike) -> str:
    """The name a chapter files its outputs under (paper-independent; ``book/build.py``'s ``artifacts/<key>``).

    A bundled profile (``smoke``) is its own key; a user's profile file ``path/to/mine.yaml`` is
    ``mine``, its file stem.
    """
    text = str(profile)
    if text.endswith((".yaml", ".yml")):
        return Path(text).stem
    if not text or os.sep in text or "/" in text:
        raise ValueError(f"profile={text!r}: give a bundled profile name (e.g. 'smoke') or a path to a *.yaml file")
    return text


def profile_root(profile: str | os.PathLike) -> Path:
    """``$GRACE_ARTIFACTS/<profile key>``: the study's parent folder and the claims ledger's root (chapter 9)."""
    return Path(os.environ.get("GRACE_ARTIFACTS", "artifacts")) / profile_key(profile)


class Checks(list):
    """A chapter's numeric checks, kept as ``{check, passed, detail}`` rows (a plain list for JSON/pandas).

    ``checks.check(name, ok, detail)`` records one; a failing check raises ``AssertionError`` so the
    chapter's papermill run fails and the book build never renders it (chapters 4–6).
    """

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.append({"check": name, "passed": bool(ok), "detail": detail})
        if not ok:
            raise AssertionError(f"check failed: {name}: {detail}")


class Chapter:
    """One executed chapter of the book: its study, its output folder, its glue, claims and checks.

    ``Chapter("05_distillation", profile, out_dir)`` runs (or reuses) the profile's study, reads its
    ``profile.json``, creates ``out_dir`` and starts the chapter's clock. ``study=False`` skips the
    study for the chapters that do not read it (4, 9, 11, 12). Attributes: ``results`` (the study's
    ``results.csv``), ``study_dir``, ``prof`` (the study's profile), ``out``, ``root`` (the claims
    ledger's root), ``checks``, ``claims`` (recorded by this chapter, in order).
    """

    #: Why a number the chapter could not measure is missing, unless a ``ch.glue(..., why=...)`` says better.
    WHY = "undefined on this profile's data: a correlation over constant values or too few points"

    def __init__(self, name: str, profile: str | os.PathLike, out_dir: str | os.PathLike, study: bool = True):
        self.t_start = time.time()
        self.name = name
        self.source = str(profile)  # what grace.study.load_profile reads: a bundled name or a *.yaml path
        self.profile = profile_key(profile)
        self.root = profile_root(profile)
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.checks = Checks()
        self.claims: list = []
        self.results = self.study_dir = self.prof = None
        self.results_path: Path | None = None
        quiet_progress_import()
        show_tables_for_readers(self.WHY)
        if study:
            self._open_study()

    def _open_study(self) -> None:
        """Run (or reuse) the study with what it prints going to a file instead of the page, and glue
        ``study_log``: a download link for the chapter's prose. The study logs every stage to
        ``study_dir/study.log``; when it ran here, everything it printed (log lines and any warning) is kept
        in ``out/study_output.txt`` and that is the file linked."""
        from grace.io import read_json
        from grace.study import ensure_study

        with self.off_page("study_output.txt") as printed:  # the study writes every line to study.log too
            self.results, self.study_dir = ensure_study(self.source, out=self.root / "study")
        self.prof = read_json(self.study_dir / "profile.json")
        ran = "ran in this chapter" if printed.path.exists() else "was reused from its cache"
        path = printed.path if printed.path.exists() else self.study_dir / "study.log"
        link = f"{{download}}`its log <{_source_path(path)}>`" if path.exists() else "no log"
        self.md(study_log=f"The study {ran} ({link}).")

    @contextlib.contextmanager
    def off_page(self, filename: str):
        """Run a long stage with what it prints to stderr (log lines, warnings) kept off the page: it goes to
        ``out/filename`` instead, written only when something was printed. Yields an object whose ``path``
        names that file, so a chapter can link it."""
        buf = io.StringIO()
        sink = types.SimpleNamespace(path=self.out / filename)
        if sink.path.exists():
            sink.path.unlink()  # a stale file from an earlier run would claim the stage ran here
        with contextlib.redirect_stderr(buf):
            yield sink
        if buf.getvalue().strip():
            sink.path.write_text(buf.getvalue(), encoding="utf-8")

    @property
    def miniature(self) -> bool:
        """True for a miniature-world study (its profile has a ``world``), False for the Hub-model ``gpu`` ones."""
        if self.prof is None:
            raise ValueError(f"{self.name}: Chapter(..., study=False) has no study; open it with study=True")
        return "world" in self.prof

    @property
    def student_path(self) -> str:
        """The study's student (paper §3): the miniature base model's folder, or the Hub id of a ``gpu`` profile."""
        if self.miniature:
            return str(self.study_dir / "world" / "bases" / self.prof["world"]["student"])
        return self.prof["models"]["student"]

    @property
    def student_params(self) -> float:
        """The student's parameter count: the miniature base's ``done.json``, or ``models.student_params``."""
        if self.miniature:
            from grace.io import read_json

            done = self.study_dir / "world" / "bases" / self.prof["world"]["student"] / "done.json"
            return read_json(done)["summary"]["params"]
        return float(self.prof["models"].get("student_params", 0))

    @property
    def seconds(self) -> float:
        """Seconds since the chapter started."""
        return time.time() - self.t_start

    # ----------------------------------------------------------------------------- glue
    def glue(self, why: str | None = None, **values: Any) -> None:
        """Glue every ``name=value`` for the prose's ``{glue:text}`` roles (numpy scalars as Python numbers).

        A number that was not measured (NaN, None) is printed ``not measured here (why)`` in the book
        (:func:`glue`), ``why`` defaulting to :attr:`WHY`.
        """
        for name, value in values.items():
            glue(name, value, display=False, why=why or self.WHY)

    def md(self, **texts: str) -> None:
        """Glue every ``name=text`` as Markdown, for the prose's ``{glue:md}`` roles."""
        from IPython.display import Markdown

        for name, text in texts.items():
            glue(name, Markdown(text), display=False)

    def html(self, **texts: str) -> None:
        """Glue every ``name=html`` as HTML, for a ``{glue}`` directive that pastes it into another page (a
        cross-document paste takes images and HTML, not Markdown)."""
        from IPython.display import HTML

        for name, text in texts.items():
            glue(name, HTML(text), display=False)

    def glue_paper(self) -> None:
        """Glue every number the paper prints (``grace.claims.PAPER``) as ``paper_<key>`` (chapters 5–6)."""
        from grace.claims import PAPER

        self.glue(**{f"paper_{key}": value for key, value in PAPER.items()})

    def note(self) -> None:
        """Glue ``profile_note`` (:func:`profile_note`), shown at the top of chapters 1–3."""
        self.md(profile_note=profile_note(self.profile))

    # ----------------------------------------------------------------------------- figures
    def figure(self, name: str, fig) -> None:
        """Save ``fig`` as ``out/<name>.png`` and glue the PNG as ``name`` for a ``{glue:figure}`` below
        (returns nothing, so a cell ending here shows no path)."""
        from IPython.display import Image

        from grace.plots import save_figure

        path = self.out / f"{name}.png"
        save_figure(fig, path)
        glue(name, Image(filename=str(path)), display=False)

    def show(self, fig, filename: str, glue_as: str | None = None) -> None:
        """Save ``fig`` as ``out/<filename>`` and show that PNG where the cell is (the saved file is what the
        reader sees, as for :meth:`figure`; returns nothing, so no path is shown after it).

        ``glue_as`` also glues the same PNG under that name, for a page that shows it elsewhere (the landing
        page pastes chapter 6's regime map with ``{glue} name`` and ``:doc:``)."""
        import matplotlib.pyplot as plt
        from IPython.display import Image, display

        from grace.plots import save_figure

        path = self.out / filename
        save_figure(fig, path)
        display(Image(filename=str(path)))
        if glue_as:
            glue(glue_as, Image(filename=str(path)), display=False)
        plt.close(fig)  # a pyplot figure would be shown a second time at the end of the cell

    # ----------------------------------------------------------------------------- claims and checks
    def claim(self, *, glue_as: str | None = None, kind: str = "rho", **fields: Any) -> None:
        """Record one paper claim in the ledger (``grace.claims``, chapter 9) for this chapter and profile.

        ``fields`` are :class:`grace.claims.Claim`'s (``id``, ``claim``, ``paper``, ``value``, ``verdict``,
        ``rule``, optionally ``ci_low``/``ci_high``). ``glue_as`` also glues the verdict, in bold, under
        that name, and ``<glue_as>_line``: ``**Paper:** … **This build:** value [CI] — **verdict**`` with the value
        rounded as ``kind`` (:data:`grace.formatting.KINDS`), the line a section opens with so that its
        verdict sits next to its claim.
        """
        from grace import claims
        from grace import formatting as F

        for key in ("chapter", "profile"):
            if key in fields:
                raise ValueError(f"Chapter.claim(..., {key}=...): remove it, the chapter fills in {key}")
        c = claims.Claim(chapter=self.name, profile=self.profile, **fields)
        claims.record(self.root, c)
        self.claims.append(c)
        if glue_as:
            here = F.rho_ci(c.value, c.ci_low, c.ci_high, why=self.WHY, kind=kind)
            self.md(**{glue_as: f"**{c.verdict}**",
                       f"{glue_as}_line": f"**Paper:** {c.claim} ({c.paper}). **This build:** {here} — **{c.verdict}**."})
        # returns nothing: a cell ending in ch.claim(...) shows no Claim(...) repr (ch.claims[-1] is the claim)

    def ledger(self, columns: list[str]):
        """This chapter's recorded claims as a DataFrame with ``columns`` (the summary table)."""
        import pandas as pd

        return pd.DataFrame([c.__dict__ for c in self.claims], columns=list(claims_fields()))[columns]

    def check(self, name: str, ok: bool, detail: str) -> None:
        """Record a numeric check; a failing one raises, so the chapter is never rendered (:class:`Checks`)."""
        self.checks.check(name, ok, detail)

    # ----------------------------------------------------------------------------- closing
    def done(self, payload: dict, filename: str = "results.json") -> None:
        """Write ``payload`` plus the chapter's ``seconds`` to ``out/<filename>`` (kept as ``results_path``) and
        say so; returns nothing, so the cell shows the sentence and no path object."""
        from grace.io import write_json

        path = self.out / filename
        write_json(path, {**payload, "seconds": self.seconds})
        self.results_path = path
        print(f"{self.name} done in {self.seconds:.1f} s; results in {path}")


# --------------------------------------------------------------------------------- quiet cells

#: ``ch.glue(x=nan)`` also glues ``x`` + this suffix: why ``x`` is missing (``book/build.py`` reads it).
MISSING_SUFFIX = "__missing"


def claims_fields() -> tuple[str, ...]:
    """The fields of a ledger row (:class:`grace.claims.Claim`), so an empty ledger still has its columns."""
    import dataclasses

    from grace.claims import Claim

    return tuple(f.name for f in dataclasses.fields(Claim))


def _source_path(path: Path) -> str:
    """``path`` as the book's sources name it: from the repository root, with a leading ``/`` (Sphinx's
    ``{download}`` role reads that as relative to the book's source folder, the repo root)."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except ValueError:
            return str(p)
    return "/" + p.as_posix()


def quiet_progress_import() -> None:
    """Import ``tqdm.auto`` with its one ``TqdmWarning`` ("IProgress not found", raised where a kernel has no
    ipywidgets) ignored, in a ``catch_warnings`` block: the warning carries the absolute path of the
    reader's virtualenv, and the chapters never draw a progress bar (``progress=False``). Later imports reuse
    the module and warn no more; no other warning is filtered."""
    import warnings

    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
        import tqdm.auto  # noqa: F401


def show_tables_for_readers(why: str) -> None:
    """In a running notebook, show every DataFrame through :func:`grace.formatting.html_table` (numbers rounded
    by kind, ``—`` for a missing value with a note saying why). The chapter's own IPython display setting, as
    the inline figure backend is; outside IPython (scripts, tests) it does nothing."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the book extras
        return
    shell = get_ipython()
    if shell is None:
        return
    import functools

    import pandas as pd

    from grace.formatting import html_table

    html = shell.display_formatter.formatters["text/html"]
    html.for_type(pd.DataFrame, functools.partial(html_table, why=why))
    html.for_type(pd.Series, lambda s: html_table(s.to_frame(s.name if s.name is not None else "value"), why=why))


# --------------------------------------------------------------------------------- formatting


def fmt(x: float | None, spec: str = ".2f", nan: str = "NaN") -> str:
    """``format(x, spec)``, or ``nan`` for None/NaN (numbers quoted in claim rules, chapters 7 and 10)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return nan
    return format(x, spec)


def met(ok: bool | float | None) -> str:
    """A computed target check as text: ``met``, ``MISSED`` or ``n/a`` (Appendix A's target tables)."""
    if ok is None or (isinstance(ok, float) and np.isnan(ok)):
        return "n/a"
    return "met" if ok else "MISSED"


def shorten(text: str, n: int) -> str:
    """``text`` cut to ``n`` characters with an ellipsis (the rule column of chapter 9's ledger)."""
    if n < 1:
        raise ValueError(f"shorten(..., n={n}): n must be at least 1")
    return text if len(text) <= n else text[: n - 1] + "…"


def text_block(text: str, indent: str = "    ", width: int = 100) -> str:
    """A generated response as an indented block, newlines kept and long lines wrapped (chapter 2's examples)."""
    lines = [textwrap.fill(line, width, subsequent_indent="  ") or "" for line in text.split("\n")]
    return textwrap.indent("\n".join(lines), indent) if text.strip() else indent + "(blank)"



def estimate_table(fn: str, values: dict, units: dict):
    """Rows ``(quantity, formula, value, unit, label)`` of ``grace.costs.<fn>``'s result, the formula from
    ``grace.costs.FORMULAS``; every row is labelled an estimate (Appendix B's tables)."""
    import pandas as pd

    from grace.costs import FORMULAS

    if fn not in FORMULAS:
        raise ValueError(f"estimate_table({fn!r}, ...): not a grace.costs function with formulas; use one of "
                         f"{sorted(FORMULAS)}")
    return pd.DataFrame([{"quantity": k, "formula": FORMULAS[fn][k], "value": f"{values[k]:.4g}", "unit": u,
                          "label": "estimate"} for k, u in units.items()])
