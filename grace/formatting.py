"""Reader-facing numbers: one place that decides how the book prints a value (every chapter, Figs., App.).

The paper compares scores by Spearman's ρ between a score and the student's avg@k, with scores where
*lower is better* (GRACE, G-Var, the student's loss) negated so that a positive ρ always means "ranks
teachers the right way" (paper §3, Figs. 1–4). A reader compares the book's numbers with those, so
every ρ the book shows beside a paper number is that *oriented* ρ, printed the same way in panel
titles, captions, prose and tables:

* :func:`number` rounds by *kind* (:data:`KINDS`: a correlation to 2 decimals, an accuracy to 3, a
  share as a percentage, ...);
* :func:`missing` is the text shown instead of ``nan``: ``not measured here (<why>)``;
* :func:`rho_ci` prints a correlation with its confidence interval, ``0.60 [0.21, 0.85]``;
* :func:`rho_title` is a figure panel's title, ``GRACE: oriented ρ = 0.60 (n = 24)``;
* :func:`table` rounds a DataFrame's columns by kind and writes ``—`` for a missing cell; a table
  with no measured value at all becomes a one-line note (:func:`table_or_note`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

#: Format spec per kind of number. ``rho``: Spearman ρ and other correlations; ``acc``: accuracies and
#: gaps in avg@k; ``share``: a fraction printed as a percentage; ``ratio``: a cost or size ratio;
#: ``seconds``: wall time; ``count``: an integer; ``value``: anything else (4 significant digits).
KINDS = {"rho": ".2f", "acc": ".3f", "share": ".0%", "ratio": ".2f", "seconds": ".1f", "count": ".0f",
         "p": ".3g", "value": ".4g"}
NOT_MEASURED = "not measured here"
#: What a table shows in a cell whose value was not measured (the note under the table says why).
EMPTY_CELL = "—"


def is_missing(x: Any) -> bool:
    """True for ``None`` and NaN (a number that was not measured); ±inf is a value (printed ``∞``)."""
    if x is None:
        return True
    if isinstance(x, str):
        return False
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def missing(why: str | None = None) -> str:
    """``not measured here (why)``: the text shown instead of a NaN (every chapter's prose and captions)."""
    return f"{NOT_MEASURED} ({why})" if why else NOT_MEASURED


def number(x: Any, kind: str = "value", why: str | None = None) -> str:
    """``x`` rounded for its kind (:data:`KINDS`), or :func:`missing` ``(why)`` when it was not measured.

    ``kind`` may also be a format spec (``".3f"``, ``"+.2f"``) for a number no kind describes.
    """
    spec = KINDS.get(kind, kind)
    try:
        format(1.0, spec)
    except ValueError:
        raise ValueError(f"number(..., kind={kind!r}): use one of {sorted(KINDS)} or a format spec like '.3f'") from None
    if is_missing(x):
        return missing(why)
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    text = format(x, spec)
    return text[1:] if text[:1] in "+-" and not any(ch in "123456789" for ch in text) else text  # "-0.00" -> "0.00"


def rho_ci(rho: Any, lo: Any = None, hi: Any = None, why: str | None = None, kind: str = "rho") -> str:
    """An oriented ρ with its CI: ``0.60 [0.21, 0.85]``; ``0.60`` when no CI was computed; :func:`missing`
    when ρ itself was not measured (paper Figs. 1–7: the book's captions)."""
    if is_missing(rho):
        return missing(why)
    text = number(rho, kind)
    if not is_missing(lo) and not is_missing(hi):
        text += f" [{number(lo, kind)}, {number(hi, kind)}]"
    return text


def rho_title(label: str, rho: Any, n: int | None = None, oriented: bool = True) -> str:
    """A figure panel's title: ``GRACE: oriented ρ = 0.60 (n = 24)``, the number the caption prints too.

    ``oriented=False`` is only for a plot that compares two quantities neither of which is a score
    (e.g. greedy accuracy against avg@k), where there is nothing to orient.
    """
    name = "oriented ρ" if oriented else "ρ"
    value = f"{name} = {number(rho, 'rho')}" if not is_missing(rho) else f"{name} not measured"
    return f"{label}: {value}" + (f" (n = {n})" if n is not None else "")


def column_kind(name: str) -> str:
    """The kind of a table column from its name (``rho_oriented`` → ``rho``, ``student avg@k`` → ``acc``)."""
    low = str(name).lower()
    if any(k in low for k in ("rho", "ρ", "spearman", "correlation")):
        return "rho"
    if any(k in low for k in ("avg@k", "avg_at_k", "accuracy", "greedy", "best_of_k", "best-of-k", "gap", "target")):
        return "acc"
    if low in ("n", "count", "rows", "steps", "seeds") or low.startswith(("n_", "n ")):
        return "count"
    if "p_value" in low or low == "p":
        return "p"
    if "second" in low or low.endswith("_s"):
        return "seconds"
    return "value"


def table(df, kinds: Mapping[str, str] | None = None):
    """``df`` with every numeric column rounded by its kind (:func:`column_kind`, or ``kinds[column]``) and
    missing cells written ``—`` (a copy; the index is kept). For the book's tables."""
    import pandas as pd

    out = df.copy()
    ci_kind = "rho" if any(column_kind(c) == "rho" for c in df.columns) else None  # a CI is rounded as its ρ
    for col in out.columns:
        s = out[col]
        if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):  # labels, mixed values
            out[col] = pd.Series([EMPTY_CELL if is_missing_cell(v) else
                                  number(v) if isinstance(v, float | np.floating) else v for v in s],
                                 index=out.index, dtype=object)
            continue
        is_ci = any(k in str(col).lower() for k in ("ci_low", "ci_high", "ci low", "ci high"))
        kind = (kinds or {}).get(col) or (ci_kind if is_ci and ci_kind else column_kind(col))
        if kind == "count" and not all(is_missing(v) or float(v).is_integer() for v in s):
            kind = "value"
        if kind == "value":
            kind = column_spec(s)
        out[col] = pd.Series([EMPTY_CELL if is_missing(v) else number(v, kind) for v in s], index=out.index,
                             dtype=object)
    return out


def column_spec(values) -> str:
    """One format for a whole column of ``value`` kind: 4 significant digits of its largest finite entry,
    so that every row shows the same decimals (``1.602`` and ``4.920``, ``3463`` and ``6291``)."""
    x = np.abs(np.asarray([v for v in values if not is_missing(v)], float))
    x = x[np.isfinite(x) & (x > 0)]
    if not len(x):
        return KINDS["value"]
    if np.all(x == np.round(x)) and x.max() < 1e7:
        return ".0f"
    decimals = int(np.clip(3 - np.floor(np.log10(x.max())), 0, 6))
    return f".{decimals}f"


def is_missing_cell(v: Any) -> bool:
    """A missing table cell: ``None``, a float NaN or pandas' NA (strings and other objects are kept)."""
    import pandas as pd

    return v is None or v is pd.NA or (isinstance(v, float | np.floating) and math.isnan(v))


def measured(df) -> bool:
    """True when ``df`` holds at least one measured (finite) number."""
    nums = df.select_dtypes(include="number")
    if nums.empty:
        return not df.empty
    return bool(np.isfinite(nums.to_numpy(float)).any())


def table_or_note(df, why: str, kinds: Mapping[str, str] | None = None):
    """:func:`table` of ``df``, or — when it holds no measured number — a Markdown note
    ``*Table not shown: not measured here (why).*`` for the cell to display instead."""
    from IPython.display import Markdown

    if measured(df):
        return table(df, kinds)
    return Markdown(f"*Table not shown: {missing(why)}.*")


def html_table(df, why: str | None = None, kinds: Mapping[str, str] | None = None) -> str:
    """``df`` as the book shows a table: :func:`table`'s rounding and ``—`` cells, wrapped in a scrolling
    ``div.grace-table`` (the book's CSS), with a note ``— not measured here (why)`` under it when a cell is
    missing, or only that note for a table of numbers none of which was measured (no number but counts,
    and at most one column of labels: a ledger of verdicts is shown whatever its numbers)."""
    import html

    numeric = df.select_dtypes(include="number")
    values = [c for c in numeric.columns if column_kind(c) != "count"] or list(numeric.columns)
    labels = len(df.columns) - len(numeric.columns)
    if len(df) and values and labels <= 1 and not np.isfinite(numeric[values].to_numpy(float)).any():
        return f'<p class="grace-table-note"><em>Table not shown: {html.escape(missing(why))}.</em></p>'
    shown = table(df, kinds)
    body = shown.to_html(border=0, escape=True)
    note = ""
    if any((shown[c] == EMPTY_CELL).any() for c in shown.columns):
        note = f'<p class="grace-table-note">{EMPTY_CELL} {html.escape(missing(why))}</p>'
    return f'<div class="grace-table">{body}</div>{note}'


def findings_sentence(counts: Mapping[str, int], n_claims: int) -> str:
    """The claims ledger's counts as one plain sentence for the landing page (chapter 9 glues it as
    ``finding_verdicts``); ``counts`` maps each verdict of ``grace.claims.VERDICTS`` to its count."""
    if not n_claims:
        return "No claim of the paper was checked in this build."
    order = ("reproduced", "partly", "not reproduced", "not testable")
    return (f"Of the {n_claims} claims of the paper that the chapters check, "
            + ", ".join(f"{counts.get(v, 0)} {'are ' if i == 0 else ''}{v}" for i, v in enumerate(order))
            + " on this build; chapter 9 lists each with the rule that decided it.")


def strong_finding(hyp=None, passed: bool | None = None, ci: tuple[Any, Any] | None = None,
                   indicative: bool = False, own: bool = False) -> str:
    """The landing page's sentence on the strong-teacher world (chapter 6, §6.12): GRACE's oriented ρ (with
    its 95 % CI when ``ci`` is given) and the pre-registered H1's and H2's verdicts (``hyp``:
    :func:`grace.analysis.hypothesis_test`'s table), or that it was not run in this build (``hyp`` None).
    ``indicative``: the study is not the pre-registered one (a reduced size, one world seed), so its verdict
    is an indication, not the test. ``own``: the study is this build's own, whose GRACE ρ the landing page has
    just given (``finding_grace``), so the sentence says what that result means instead of repeating it."""
    if hyp is None:
        return ("The world built for the paper's own regime (every teacher strong, the teachers differing in how "
                "well their solutions fit the student; chapter 6, §6.12) was not run in this build.")
    rows = hyp.set_index("hypothesis")
    h1 = rows.loc["H1"]
    world = "which passes its acceptance checks" if passed else "which fails at least one acceptance check"
    verdict = {"supported": "the pre-registered test that it ranks the teachers the right way passes",
               "not supported": "the pre-registered test that it ranks the teachers the right way fails",
               "not a test": "not a test of the paper's claim, since the world is not in its regime",
               }.get(h1["verdict"], "it could not be measured")
    if indicative and h1["verdict"] in ("supported", "not supported"):
        verdict = ({"supported": "in line with the paper's claim", "not supported": "short of the paper's claim"}
                   [h1["verdict"]] + " at reduced size and one world seed — an indication; the pre-registered "
                   "test is the full-size study")
    if own:
        if h1["verdict"] in ("supported", "not supported") and not indicative:
            verdict = "the pre-registered test, and it " + ("passes" if h1["verdict"] == "supported" else "fails")
        meaning = "could not be measured" if verdict.startswith("it could") else f"is {verdict}"
        return (f"This build's world is the one built for the paper's own regime (every teacher strong, the teachers "
                f"differing in fit; §6.12), and it {world.removeprefix('which ')}: GRACE's ρ above {meaning}."
                + _h2_clause(rows, indicative))
    rho = rho_ci(h1["grace_rho"], *ci) if ci is not None else number(h1["grace_rho"], "rho")
    return (f"In the world built for the paper's own regime (every teacher strong, the teachers differing in fit; "
            f"§6.12), {world}, GRACE's oriented ρ is {rho}: {verdict}." + _h2_clause(rows, indicative))


def _h2_clause(rows, indicative: bool) -> str:
    """" The second pre-registered test ... passes/fails: ..." for :func:`strong_finding`, from its
    hypothesis table indexed by ``hypothesis``, when both H2 rows have a verdict ("" otherwise)."""
    keys = ("H2 (student_loss)", "H2 (teacher_accuracy)")
    if not all(k in rows.index for k in keys):
        return ""
    verdicts = [rows.at[k, "verdict"] for k in keys]
    if any(v not in ("supported", "not supported") for v in verdicts):
        return ""
    passed = all(v == "supported" for v in verdicts)
    verb = ("would pass" if passed else "would fail") if indicative else ("passes" if passed else "fails")
    return (f" The second pre-registered test, that GRACE also beats the student's loss and the teacher's accuracy, "
            f"{verb}{' here' if indicative else ''}: their oriented ρ are {number(rows.at[keys[0], 'against'], 'rho')} "
            f"and {number(rows.at[keys[1], 'against'], 'rho')}.")


def findings(pool, spearman_df, grace_rho: tuple[float, float, float], paper_rho: float, profile: str) -> dict[str, str]:
    """The landing page's findings as plain sentences from chapter 6's numbers (paper §3, Figs. 1–2):
    ``finding_profile``, ``finding_students`` (the students' spread), ``finding_grace`` (GRACE's oriented ρ
    with its CI beside the paper's) and ``finding_best`` (the best-correlated score).

    ``pool``: the configurations, with ``teacher``, ``temperature``, ``student_avg_at_k``; ``spearman_df``:
    ``grace.analysis.spearman_table``'s; ``grace_rho``: (ρ, CI low, CI high), oriented.
    """
    y = pool["student_avg_at_k"].astype(float)
    n_t, n_temp = pool["teacher"].nunique(), pool["temperature"].nunique()
    students = (f"The {len(pool)} students distilled in this build ({n_t} teacher{'s' * (n_t != 1)} × "
                f"{n_temp} temperature{'s' * (n_temp != 1)}) reach {y.min():.1%} to {y.max():.1%} avg@k, "
                f"a spread of {100 * (y.max() - y.min()):.1f} points.")
    rho, lo, hi = grace_rho
    if is_missing(rho):
        why = "undefined: the students or the scores are constant, or too few"
        grace = f"GRACE's oriented Spearman ρ with the student's avg@k is {missing(why)}; the paper reports {paper_rho:.2f}."
    else:
        grace = (f"GRACE's oriented Spearman ρ with the student's avg@k is {rho_ci(rho, lo, hi)} against the "
                 f"paper's {paper_rho:.2f}; " + (
                     "this build agrees with the paper on the direction." if not is_missing(lo) and lo > 0 else
                     "here GRACE ranks teachers the wrong way." if not is_missing(hi) and hi < 0 else
                     "the interval includes zero, so this build cannot tell the direction."))
    d = spearman_df.dropna(subset=["rho_oriented"])
    best = (f"The score that tracks the student best here is {d.loc[d['rho_oriented'].idxmax(), 'label']} "
            f"(oriented ρ {number(d['rho_oriented'].max(), 'rho')})." if len(d)
            else "No score's correlation with the student could be measured in this build.")
    return {"finding_profile": profile, "finding_students": students, "finding_grace": grace, "finding_best": best}
