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
beside_profiles = []  # other profiles whose verdicts are listed beside (full: mixed-full, format-shock)
regime_map_dir = "artifacts/regime-map"  # chapter 6's regime map (§6.11), judged claim by claim in §9.3

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown, display

from grace import claims
from grace import formatting as F
from grace import regimes as RG
from grace.notebook import Chapter, profile_root, shorten

# the ledger lives next to the study, $GRACE_ARTIFACTS/<profile>/claims; this chapter only reads it
ch = Chapter("09_claims_ledger", profile, out_dir, study=False)
ledger = claims.load(ch.root)
ledger = ledger[ledger.profile.isin([ch.profile, ""])] if len(ledger) else ledger
ledger.to_csv(ch.out / "claims.csv", index=False)

# %%
counts = {v: int((ledger.verdict == v).sum()) for v in claims.VERDICTS}
n_claims = len(ledger)
ch.glue(n_claims=n_claims, n_testable=n_claims - counts["not testable"],
        n_chapters=int(ledger.chapter.nunique()) if n_claims else 0,
        **{f"n_{v.replace(' ', '_')}": k for v, k in counts.items()})
count_table = pd.DataFrame({"claims": counts}).rename_axis("verdict")
count_table.loc["total"] = n_claims
ch.glue(verdict_counts=count_table, finding_verdicts=F.findings_sentence(counts, n_claims))
count_table

# %% [markdown]
# ## 9.1 The ledger
#
# One row per claim, in the book's reading order: the claim, the verdict, the paper's number as printed,
# this build's number (`here`, with its confidence interval in brackets where the chapter computed one),
# then the chapter that recorded it (A and B are the appendices) and the rule that decided it. The rule
# says why a number is *not measured here*; `claims.csv` beside this page keeps every column unrounded,
# with each claim's id.

# %% tags=["hide-input"]
cols = ["claim", "verdict", "paper", "here", "chapter", "rule"]  # the id is in claims.csv
labels = claims.chapter_labels("_toc.yml")  # 06_scores_vs_students -> "6", 10_appendix_benchmarks -> "A"
order = {stem: i for i, stem in enumerate(labels)}  # the book's reading order
table = (ledger.assign(here=[F.rho_ci(*r, kind=".3g") for r in
                             ledger[["value", "ci_low", "ci_high"]].itertuples(index=False)],
                       chapter=ledger["chapter"].map(lambda c: labels.get(c, c)),
                       order=ledger["chapter"].map(lambda c: order.get(c, len(order))))
         .sort_values(["order", "id"], kind="stable")[cols] if n_claims else pd.DataFrame(columns=cols))
table["rule"] = table["rule"].astype(str).map(lambda r: shorten(r, max_rule_chars))
table = table.set_index("claim")
ch.glue(claims_table=table)
if not n_claims:
    display(Markdown(f"**The ledger for profile `{profile}` is empty.** No chapter has recorded a claim under "
                     f"`{ch.root / 'claims'}` yet; build the whole book so the other chapters record theirs."))
table

# %% [markdown]
# ## 9.2 Beside another regime
#
# The same claims judged on another world, when that profile's book has been built (its ledger
# lives under `$GRACE_ARTIFACTS/<profile>/claims/`). On `full` these are the `mixed-accuracy` regime
# (`mixed-full`), the book's previous default world, whose teachers differ in accuracy, and the
# `format-shock` regime, the world of its first edition, in which the student had never seen a worked
# solution (chapter 6, §6.11).

# %%
others = {}
for other in [b for b in beside_profiles if b != profile]:
    other_ledger = claims.load(profile_root(other))
    if len(other_ledger):
        others[other] = other_ledger
    else:
        print(f"no ledger for profile {other!r} under {profile_root(other) / 'claims'}: build its book first "
              f"(python book/build.py --profile {other})")
if not beside_profiles:
    print("no other profile listed (parameter beside_profiles)")

# %%
if others and n_claims:
    side = claims.beside(ledger, others)[["chapter", "id", "paper", "value", "verdict",
                                          *[c for o in others for c in (f"value ({o})", f"verdict ({o})")]]]
    display(side)
    for o in others:
        both = side[side[f"verdict ({o})"] != "–"]
        print(f"{o}: {len(both)} claims judged in both; verdict differs in "
              f"{int((both['verdict'] != both[f'verdict ({o})']).sum())}")

# %% [markdown]
# ## 9.3 Per regime: the claims the regime map measures
#
# Chapter 6's regime map (§6.11) runs the study in several kinds of world, each over several world seeds.
# The claims it measures in every study are judged there with chapter 6's rules, one study at a time. For
# each claim and regime the table counts the verdicts over that regime's seeds, and beside them how many
# of those worlds passed their acceptance checks: a verdict in a world outside the paper's regime
# describes that world and does not test the paper.

# %% tags=["hide-input"]
rmap = RG.load_regime_map(regime_map_dir)
if rmap is None:
    display(Markdown(f"*No regime map at `{regime_map_dir}` in this build; chapter 6, §6.11 gives the command "
                     "that builds it.*"))
else:
    display(F.table(RG.claim_verdicts(*rmap)))

# %% [markdown]
# ## 9.4 Summary
#
# The ledger holds {glue:text}`n_claims` claims from {glue:text}`n_chapters` chapters. Of these,
# {glue:text}`n_reproduced` are *reproduced*, {glue:text}`n_partly` *partly* reproduced,
# {glue:text}`n_not_reproduced` *not reproduced*, and {glue:text}`n_not_testable` could not be
# tested on this profile.

# %%
text = claims.ledger_summary(counts, n_claims, profile)
ch.md(summary_text=text)
ch.done({"profile": profile, "root": str(ch.root), "counts": counts, "n_claims": n_claims, "summary": text})
display(Markdown(text))
if n_claims:
    display(ledger.groupby(["chapter", "verdict"]).size().unstack(fill_value=0))


# %% [markdown]
# ## 9.5 Exercises
#
# Answers are checked with `grace.course.check(id, answer)`, which says right or wrong (and why) without showing the expected value. The coded ones run in seconds on a laptop CPU with the smoke world (`python book/build.py --profile smoke` builds it).

# %% [markdown]
# ::::{exercise} Count the reproduced claims
# :label: ch9-ex1
#
# Load this build's ledger (`grace.claims.load(root)`, where `root` is the folder above the study, e.g.
# `artifacts/smoke`), keep the rows of this profile, and count the claims whose verdict is `reproduced`.
# ::::
#
# ::::{solution-start} ch9-ex1
# :class: dropdown
# ::::
#
# The ledger is one JSON file per claim under `<root>/claims/`; the chapters write them as they run, and
# this chapter runs last. Filtering by profile keeps another profile's claims out of the count.

# %% tags=["solution"]
from grace import claims, course

mine = claims.load(ch.root)
mine = mine[mine["profile"].isin([ch.profile, ""])] if len(mine) else mine
n_reproduced = int((mine["verdict"] == "reproduced").sum()) if len(mine) else 0
assert course.check("ch9-ex1", n_reproduced, study_dir=ch.root / "study")

# %% [markdown]
# ::::{solution-end}
# ::::

# %% [markdown]
# ::::{exercise} What makes a verdict
# :label: ch9-ex2
#
# Pick one claim in the ledger marked *not testable* on this profile. What would have to change in the
# world or the profile for it to become testable, and why is its rule written before the number is seen?
# ::::
#
# ::::{solution} ch9-ex2
# :class: dropdown
#
# A claim is *not testable* when the build cannot measure it (too few configurations for a correlation,
# students that all tie, a quantity the miniature does not have). A larger profile (quick, full) or a world
# whose students differ makes it testable. The rule (threshold and direction) is fixed in the code before
# the study runs so the verdict cannot be tuned to the result: a pre-registered rule turns a number into a
# test.
# ::::
