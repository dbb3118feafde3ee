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
