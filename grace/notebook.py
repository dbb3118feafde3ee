"""Small helpers for the book's notebooks."""

from __future__ import annotations

from typing import Any

import numpy as np


def glue(name: str, value: Any, display: bool = False) -> None:
    """``myst_nb.glue`` with numpy scalars cast to Python numbers.

    A glued ``np.float64`` is stored as the text ``np.float64(...)``, which MyST cannot format
    (``{glue:text}`name:.2f``` then fails the ``-W`` build), so every glued number goes through here.
    """
    from myst_nb import glue as _glue

    if isinstance(value, np.generic):
        value = value.item()
    _glue(name, value, display=display)


#: One line per profile, shown at the top of the chapters that depend on the study's profile.
PROFILE_NOTES = {
    "smoke": "**Profile `smoke`:** tiny models trained for a few steps. The numbers on this page only "
             "exercise the code; they say nothing about the paper.",
    "quick": "**Profile `quick`:** a reduced miniature study; the numbers are indicative only.",
    "full": "**Profile `full`:** the full miniature study, the one whose numbers the book discusses.",
    "gpu": "**Profile `gpu`:** the paper's student and teachers on GSM8K.",
}


def profile_note(profile: str) -> str:
    """The Markdown note for ``profile`` (a generic one for a user's own profile)."""
    return PROFILE_NOTES.get(profile, f"**Profile `{profile}`.**")


class Checks(list):
    """A chapter's numeric checks, kept as ``{check, passed, detail}`` rows (a plain list for JSON/pandas).

    ``checks.check(name, ok, detail)`` records one; a failing check raises ``AssertionError`` so the
    chapter's papermill run fails and the book build never renders it.
    """

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.append({"check": name, "passed": bool(ok), "detail": detail})
        if not ok:
            raise AssertionError(f"check failed: {name}: {detail}")
