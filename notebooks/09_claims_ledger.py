# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 9. The claims ledger
#
# Every chapter that checks a claim of the paper records it (`grace.claims.record`) with the
# paper's number, the miniature's number (and its confidence interval where one exists), a verdict
# and the explicit rule that produced the verdict. This chapter collects them into one table. It
# shows every claim recorded so far for this profile — on a fresh build, the claims of the chapters
# that executed before it; run on its own, whatever exists (possibly nothing). Nothing here is
# typed by hand: the table and the counts are read from the ledger files under
# `$GRACE_ARTIFACTS/<profile>/claims/`.
#
# Verdicts are one of *reproduced*, *partly*, *not reproduced* and *not testable* (the profile
# lacks the data, e.g. no filtered students, or the number is undefined, e.g. a constant student).
# A verdict is only as good as its rule; the rule column says exactly what was compared.

# %% tags=["parameters"]
profile = "smoke"
out_dir = "artifacts/smoke/notebooks/09_claims_ledger"
max_rule_chars = 160  # rules longer than this are shortened in the displayed table (not in the CSV)
beside_profiles = []  # other profiles whose verdicts are listed beside (full: the format-shock regime)

# %%
import os
import time
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from grace import claims
from grace.io import write_json
from grace.study import load_profile

t_start = time.time()
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
# the ledger lives next to the study: $GRACE_ARTIFACTS/<profile>/claims (the study's parent directory);
# this chapter only reads it, so it does not run the study
root = Path(os.environ.get("GRACE_ARTIFACTS", "artifacts")) / load_profile(profile)["name"]
ledger = claims.load(root)
ledger = ledger[ledger.profile.isin([profile, ""])] if len(ledger) else ledger
ledger.to_csv(out / "claims.csv", index=False)

counts = {v: int((ledger.verdict == v).sum()) for v in claims.VERDICTS}
n_claims = len(ledger)
n_testable = n_claims - counts["not testable"]
glue("n_claims", n_claims, display=False)
glue("n_testable", n_testable, display=False)
for v, k in counts.items():
    glue(f"n_{v.replace(' ', '_')}", k, display=False)
glue("n_chapters", int(ledger.chapter.nunique()) if n_claims else 0, display=False)
count_table = pd.DataFrame({"claims": counts}).rename_axis("verdict")
count_table.loc["total"] = n_claims
glue("verdict_counts", count_table, display=False)
count_table

# %% [markdown]
# ## 9.1 The ledger
#
# One row per claim, sorted by chapter. `paper` is the number as printed in the paper; `value` is
# the miniature's number, with `ci_low`–`ci_high` where the chapter computed a confidence interval.

# %%
def shorten(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


cols = ["chapter", "id", "claim", "paper", "value", "ci_low", "ci_high", "verdict", "rule"]
table = ledger[cols].copy() if n_claims else pd.DataFrame(columns=cols)
table["rule"] = table["rule"].astype(str).map(lambda r: shorten(r, max_rule_chars))
table = table.round({"value": 3, "ci_low": 3, "ci_high": 3})
glue("claims_table", table, display=False)
if not n_claims:
    display(Markdown(f"**The ledger for profile `{profile}` is empty.** No chapter has recorded a claim under "
                     f"`{root / 'claims'}` yet; build the whole book so the other chapters record theirs."))
with pd.option_context("display.max_colwidth", max_rule_chars):
    display(table.style.hide(axis="index").format(precision=3, na_rep="–") if n_claims else table)

# %% [markdown]
# ## 9.2 Beside another regime
#
# The same claims judged on another world, when that profile's book has been built (its ledger
# lives under `$GRACE_ARTIFACTS/<profile>/claims/`). On `full` this is the `format-shock` regime, the
# world of this book's first edition, in which the student had never seen a worked solution
# (chapter 6, §6.11).

# %%
others = {}
for other in [b for b in beside_profiles if b != profile]:
    other_root = Path(os.environ.get("GRACE_ARTIFACTS", "artifacts")) / load_profile(other)["name"]
    other_ledger = claims.load(other_root)
    if len(other_ledger):
        others[other] = other_ledger
    else:
        print(f"no ledger for profile {other!r} under {other_root / 'claims'}: build its book first "
              f"(python book/build.py --profile {other})")
if others and n_claims:
    side = claims.beside(ledger, others)[["chapter", "id", "paper", "value", "verdict",
                                          *[c for o in others for c in (f"value ({o})", f"verdict ({o})")]]]
    display(side.round(3).style.hide(axis="index").format(precision=3, na_rep="–"))
    for o in others:
        both = side[side[f"verdict ({o})"] != "–"]
        print(f"{o}: {len(both)} claims judged in both; verdict differs in {int((both['verdict'] != both[f'verdict ({o})']).sum())}")
elif not beside_profiles:
    print("no other profile listed (parameter beside_profiles)")

# %% [markdown]
# ## 9.3 Summary
#
# The ledger holds {glue:text}`n_claims` claims from {glue:text}`n_chapters` chapters. Of these,
# {glue:text}`n_reproduced` are *reproduced*, {glue:text}`n_partly` *partly* reproduced,
# {glue:text}`n_not_reproduced` *not reproduced*, and {glue:text}`n_not_testable` could not be
# tested on this profile.

# %%
def summary_text() -> str:
    if not n_claims:
        return ("Nothing to summarise yet: no claims were recorded for this profile. The smoke profile in "
                "particular exists to check that the book builds; its students are nearly constant.")
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


text = summary_text()
glue("summary_text", Markdown(text), display=False)
write_json(out / "results.json", {"profile": profile, "root": str(root), "counts": counts, "n_claims": n_claims,
                                  "summary": text, "seconds": time.time() - t_start})
display(Markdown(text))
if n_claims:
    display(ledger.groupby(["chapter", "verdict"]).size().unstack(fill_value=0))
