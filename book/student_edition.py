"""Sphinx extension for the student edition: every exercise's solution is left out of the pages.

Loaded only by the student build (``python book/build.py --student`` adds it to a copy of ``_config.yml``).
sphinx-exercise's own ``hide_solutions`` drops a ``solution`` block but not a *gated* one
(``solution-start`` … ``solution-end`` around code cells): its ``solution-end`` is left behind and the
HTML writer fails on it. Here the gated blocks are first merged into ordinary solution nodes by
sphinx-exercise's transforms, as in the full edition, and then every solution node — with the code cells
inside it — is removed from the document before its labels are registered.
"""

from __future__ import annotations


def drop_solutions(app, doctree) -> None:
    """Remove every solution node (gated ones included) from ``doctree`` and from sphinx-exercise's registry."""
    from sphinx_exercise.nodes import solution_node

    registry = getattr(app.env, "sphinx_exercise_registry", {})
    for node in list(doctree.findall(solution_node)):
        registry.pop(node.get("label"), None)
        node.parent.remove(node)


def setup(app):
    app.setup_extension("sphinx_exercise")
    app.connect("doctree-read", drop_solutions, priority=400)  # before sphinx-exercise's (500) reads the labels
    return {"parallel_read_safe": True, "parallel_write_safe": True}
