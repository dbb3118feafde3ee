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
from typing import Any

from grace.io import read_json, write_json

VERDICTS = ("reproduced", "partly", "not reproduced", "not testable")

# ----------------------------------------------------------------------------------------------
# the paper's printed numbers, so notebooks never type them

#: Numbers printed in the paper, keyed by figure/section (Llama-1B student on GSM8K unless noted).
PAPER: dict[str, float] = {
    "fig1_student_loss_rho": 0.44,  # §3.1: base student's loss on teacher generations
    "fig1_teacher_rho": 0.11,  # §3.1: the teacher's own avg@16
    "fig2_grace_rho": 0.86,  # Fig 2
    "fig2_g_var_rho": 0.55,  # Fig 2
    "fig2_g_vendi_rho": 0.44,  # Fig 2
    "fig4_threshold": 0.80,  # Fig 4: "the only score achieving more than 80%"
    "fig5_temperature": 0.6,  # Fig 5: the fixed-temperature case study
    "fig5_grace_rho": 0.92,  # Fig 5
    "fig6_best_temperature_small": 0.4,  # Fig 6: Qwen-2.5-1.5B-Instruct, best temperature ...
    "fig6_predicted_temperature_small": 0.5,  # ... and GRACE's prediction
    "fig6_best_temperature_large": 0.8,  # Fig 6: Qwen-2.5-3B-Instruct
    "fig6_predicted_temperature_large": 0.9,
    "fig7_temperature_rho": 0.75,  # Fig 7 left: GRACE, mean over teachers
    "fig7_g_var_temperature_rho": 0.53,  # §3.2
    "fig7_g_vendi_temperature_rho": 0.59,  # §3.2
    "fig7_size_rho": 0.75,  # Fig 7 right: "75% and above" under every size budget
    "fig11_grace_greedy_rho": 0.70,  # Fig 11
    "fig12_grace_best_of_k_rho": 0.64,  # Fig 12
    "fig13_family_gap": 0.01,  # Fig 13: mean gap over families, GRACE
    "fig13_other_family_gap": 0.03,  # Fig 13: "other metrics ... at least 3%"
    "fig14_size_gap": 0.01,  # Fig 14 / §3.2: GRACE gap under every size budget
    "gap_to_best": 0.01,  # §1: GRACE-selected student within 1% of the best
    "improvement_over_strongest": 0.06,  # abstract: >= 6% over the best-performing teacher
    "strongest_teacher_gap": 0.065,  # §3.1: Llama-70B's student 46% vs best 52.5%
    "self_g_vendi": 5.93,  # §2.1: G-Vendi of the student as its own teacher
    "self_student_avg_at_k": 0.04,  # §2.1: that student's accuracy
    "fig23_n_subsets": 100,  # App. D.5
    "fig23_subset_frac": 0.6,  # App. D.5
}

# A gap claim ("within 1 point of the best student", §1) is *partly* reproduced up to this gap: the margin
# by which the paper's Fig 13 says the other metrics trail.
GAP_PARTLY = PAPER["fig13_other_family_gap"]


#: The distillation recipe of paper §3 ("Settings") and App. D.1 (no filtering by default).
PAPER_RECIPE: dict[str, Any] = {
    "learning_rate": 1e-5,
    "epochs": 4,
    "scheduler": "cosine",
    "warmup_ratio": 0.05,
    "weight_decay": 0.0,
    "batch_size": 64,
    "filter_correct": False,
}


#: GSM8K's training split (Cobbe et al., 2021): the N of the paper's distillation set.
GSM8K_TRAIN = 7473


#: Responses per prompt in the paper's distillation set (§3: M = 16).
PAPER_M = 16



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


def verdict_inverse_log(exponent: float, ci_high: float, rule: str, testable: bool = True) -> tuple[str, str]:
    """Verdict for App. D.4's "the gradient norm falls roughly as 1/log T" (Fig. 21; chapters 3 and 12):
    reproduced if the bootstrap CI of the exponent b of ‖g‖ ∝ (log T)^b is below 0 and −2 ≤ b ≤ −0.5,
    partly if the CI is below 0 only; not testable without a finite CI or when ``testable`` is False."""
    if not testable or not math.isfinite(ci_high):
        return verdict_bool(None, rule=rule)
    decreasing = ci_high < 0
    return verdict_bool(bool(decreasing and -2.0 <= exponent <= -0.5), partly=bool(decreasing), rule=rule)


def verdict_trend(trend: dict, param: str, spec: str = ".2f") -> tuple[str, str]:
    """Verdict for "the correlation improves as ``param`` grows" (App. D.3, Fig. 19; chapter 7) from
    ``grace.ablations.trend``: reproduced if ρ rises from the smallest to the largest value with a rank
    correlation ≥ 0.8, partly if it only rises overall; value = ρ(largest) − ρ(smallest)."""
    delta, sp = trend["delta"], trend["spearman"]
    shown = ("undefined" if sp is None or (isinstance(sp, float) and math.isnan(sp))
             else format(sp, spec))
    rule = (f"reproduced if the mean ρ rises from the smallest to the largest {param} and its rank "
            f"correlation with {param} is ≥ 0.8 (here {shown}); partly if it only rises "
            f"overall; value = ρ(largest {param}) − ρ(smallest {param})")
    holds = None if not math.isfinite(delta) else bool(delta > 0 and sp >= 0.8)
    return verdict_bool(holds, partly=bool(math.isfinite(delta) and delta > 0), rule=rule)


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


def chapter_labels(toc: str | os.PathLike) -> dict[str, str]:
    """Each page's file stem (``06_scores_vs_students``) -> the label the rendered book gives it, from the book's
    ``_toc.yml``: its place in a part of chapters (``"6"``) or of appendices (``"A"``). The ledger (chapter 9) shows
    these, in the book's reading order, instead of file names."""
    import yaml

    labels: dict[str, str] = {}
    n_chapter = 0
    for part in yaml.safe_load(Path(toc).read_text()).get("parts", []):
        appendix = str(part.get("caption", "")).lower().startswith("append")
        for i, entry in enumerate(part.get("chapters", [])):
            if not appendix:
                n_chapter += 1
            labels[Path(entry["file"]).name] = chr(ord("A") + i) if appendix else str(n_chapter)
    return labels


def beside(ledger, others: dict):
    """``ledger`` with one ``verdict (<name>)`` and ``value (<name>)`` column per other ledger, matched by claim id.

    Chapter 9 uses it to list the ``format-shock`` regime's verdicts beside the paper regime's. ``others`` maps a name to a ledger DataFrame (:func:`load`); a claim the other ledger
    lacks gets ``–``/NaN.
    """
    out = ledger.copy()
    for name, other in others.items():
        o = other.drop_duplicates("id").set_index("id") if len(other) else None
        out[f"verdict ({name})"] = out["id"].map(o["verdict"]).fillna("–") if o is not None else "–"
        out[f"value ({name})"] = out["id"].map(o["value"]) if o is not None else float("nan")
    return out


def ledger_summary(counts: dict[str, int], n_claims: int, profile: str) -> str:
    """The closing paragraph of the claims ledger (chapter 9): how many claims were tested and
    reproduced, and how to read verdicts on a miniature world. ``counts`` maps each verdict to its count."""
    if not n_claims:
        return ("Nothing to summarise yet: no claims were recorded for this profile. The smoke profile in "
                "particular exists to check that the book builds; its students are nearly constant.")
    n_testable = n_claims - counts["not testable"]
    parts = []
    if n_testable:
        share = counts["reproduced"] / n_testable
        parts.append(f"Of the {n_testable} claims that could be tested, {counts['reproduced']} "
                     f"({share:.0%}) were reproduced outright and {counts['partly']} partly; "
                     f"{counts['not reproduced']} were not.")
    else:
        parts.append("None of the recorded claims could be tested on this profile.")
    if counts["not testable"]:
        parts.append(f"{counts['not testable']} claims need data this profile does not have (see the rule column).")
    if profile == "smoke":
        parts.append("This is the **smoke** profile: its numbers are meaningless by design, and so are these "
                     "verdicts; read the quick or full build.")
    else:
        parts.append("These verdicts describe a miniature world (synthetic arithmetic, small Llama-style models, "
                     "few teachers): a claim reproduced here shows that the paper's mechanism works at this "
                     "scale, and one not reproduced shows it is not automatic — neither settles the paper's "
                     "GSM8K/MATH numbers.")
    return " ".join(parts)
