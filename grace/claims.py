"""The claims ledger: every paper claim the book checks, with the miniature's number and a verdict.

Notebooks *record* claims as they compute them (never typed by hand); chapter 9 loads them all into
one table. A verdict is computed from the measured value and its CI by an explicit rule stated with
the claim, so a reader can audit why it says "reproduced", "partly" or "not".
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from grace.io import read_json, write_json

VERDICTS = ("reproduced", "partly", "not reproduced", "not testable")


@dataclass
class Claim:
    """One checked claim.

    Attributes:
        id: short stable key, e.g. ``"fig2_grace_spearman"``.
        claim: the paper's statement in a sentence.
        paper: the paper's number as printed (e.g. ``"0.86"``).
        value: the miniature's number (NaN if not measurable).
        ci_low, ci_high: its confidence interval (NaN if none).
        verdict: one of :data:`VERDICTS`, from :func:`verdict_at_least` or a stated rule.
        rule: the rule that produced the verdict, in words.
        chapter: the notebook that recorded it.
        profile: the study profile the value comes from.
    """

    id: str
    claim: str
    paper: str
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    verdict: str = "not testable"
    rule: str = ""
    chapter: str = ""
    profile: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict={self.verdict!r}: use one of {VERDICTS}")


def verdict_at_least(value: float, ci_low: float, threshold: float, partly: float | None = None) -> tuple[str, str]:
    """Verdict for "the score reaches ``threshold``": reproduced if the CI's lower end does, partly if
    the point estimate reaches ``partly`` (default: half the threshold), else not reproduced."""
    partly = threshold / 2 if partly is None else partly
    rule = f"reproduced if CI low ≥ {threshold:g}; partly if value ≥ {partly:g}"
    if value is None or math.isnan(value):
        return "not testable", rule
    if not math.isnan(ci_low) and ci_low >= threshold:
        return "reproduced", rule
    if value >= partly:
        return "partly", rule
    return "not reproduced", rule


def verdict_at_most(value: float, ci_high: float, threshold: float, partly: float | None = None) -> tuple[str, str]:
    """Mirror of :func:`verdict_at_least` for "the quantity stays below ``threshold``" (gaps, weak
    correlations; App. C.2): reproduced if the CI's upper end is at most ``threshold``, partly if the
    point estimate is at most ``partly`` (default: twice the threshold)."""
    partly = 2 * threshold if partly is None else partly
    rule = f"reproduced if CI high ≤ {threshold:g}; partly if value ≤ {partly:g}"
    if value is None or math.isnan(value):
        return "not testable", rule
    if not math.isnan(ci_high) and ci_high <= threshold:
        return "reproduced", rule
    if value <= partly:
        return "partly", rule
    return "not reproduced", rule


def verdict_bool(holds: bool | None, partly: bool = False, rule: str = "") -> tuple[str, str]:
    """Verdict for a yes/no claim (``partly`` when it holds only in some cases)."""
    if holds is None:
        return "not testable", rule
    return ("reproduced" if holds else ("partly" if partly else "not reproduced")), rule


def claims_dir(root: str | os.PathLike) -> Path:
    return Path(root) / "claims"


def record(root: str | os.PathLike, claim: Claim) -> Path:
    """Write ``claim`` to ``root/claims/<id>.json`` (overwriting an older record of the same id)."""
    path = claims_dir(root) / f"{claim.id}.json"
    write_json(path, asdict(claim))
    return path


def load(root: str | os.PathLike):
    """All recorded claims under ``root`` as a DataFrame sorted by chapter then id."""
    import pandas as pd

    rows = [read_json(p) for p in sorted(claims_dir(root).glob("*.json"))]
    cols = list(Claim.__dataclass_fields__)
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(rows)[cols].sort_values(["chapter", "id"]).reset_index(drop=True)


def beside(ledger, others: dict):
    """``ledger`` with one ``verdict (<name>)`` and ``value (<name>)`` column per other ledger, matched by claim id.

    Chapter 9 uses it to list the ``format-shock`` regime's verdicts beside the paper regime's
    (issue 11). ``others`` maps a name to a ledger DataFrame (:func:`load`); a claim the other ledger
    lacks gets ``–``/NaN.
    """
    out = ledger.copy()
    for name, other in others.items():
        o = other.drop_duplicates("id").set_index("id") if len(other) else None
        out[f"verdict ({name})"] = out["id"].map(o["verdict"]).fillna("–") if o is not None else "–"
        out[f"value ({name})"] = out["id"].map(o["value"]) if o is not None else float("nan")
    return out
