#!/usr/bin/env python
"""Fail if the built book would fetch anything from the network, or shows a reader its plumbing.

    python book/check_html.py [_build/html]

Strict (exit 1, each offender listed): in every ``**/*.html`` the ``src``/``href``/``data``/
``srcset``/``poster`` of ``script``, ``link``, ``img``, ``source``, ``iframe``, ``video``,
``audio``, ``embed``, ``object`` and ``input``; ``url(...)`` / ``@import`` in ``<style>`` blocks and
``style=`` attributes; and ``url(...)`` / ``@import`` in every ``_static/**/*.css``. A reference is
external when it has an ``http(s)`` scheme or is protocol-relative (``//host/...``).

Reported but allowed: ``<a href>`` links to external pages (a reader may follow them; nothing is
fetched on load).

Also strict: the text a reader reads on a page — prose, captions, tables and cell outputs, everything in
the article except the code of an input cell — may not contain (see :data:`READER_TEXT`) a ``nan``
where a number should be, a Python repr (``Claim(``, ``PosixPath(``, ``<object at 0x…>``, ``np.float64(``),
a warning (``SomethingWarning`` or a ``warnings.warn`` location line), or an absolute path of the machine
that built the book (its home, its checkout, its interpreter; see :func:`machine_paths`).
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

RESOURCE_TAGS = {"script", "link", "img", "source", "iframe", "video", "audio", "embed", "object", "input", "track"}
RESOURCE_ATTRS = {"src", "href", "data", "srcset", "poster"}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+(?:url\()?\s*['"]([^'"]+)""", re.I)


def is_external(url: str) -> bool:
    u = url.strip().lower()
    return u.startswith(("http://", "https://", "//"))


def css_refs(text: str) -> list[str]:
    return [a or b for a, b in CSS_URL.findall(text)]


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.offenders: list[str] = []
        self.anchors: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href") and is_external(attrs["href"]):
            self.anchors.append(attrs["href"])
        if tag in RESOURCE_TAGS:
            for key in RESOURCE_ATTRS & attrs.keys():
                for url in (attrs[key] or "").split(","):
                    url = url.strip().split(" ")[0]
                    if url and is_external(url):
                        self.offenders.append(f"<{tag} {key}={url}>")
        for url in css_refs(attrs.get("style") or ""):
            if is_external(url):
                self.offenders.append(f"<{tag} style=url({url})>")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            for url in css_refs(data):
                if is_external(url):
                    self.offenders.append(f"<style> url({url})")


def scan(root: Path) -> tuple[list[str], Counter]:
    """Return (offender lines ``file: ref``, Counter of external anchor targets)."""
    offenders, anchors = [], Counter()
    for html in sorted(root.rglob("*.html")):
        s = _Scanner()
        s.feed(html.read_text(encoding="utf-8", errors="replace"))
        offenders += [f"{html.relative_to(root)}: {o}" for o in s.offenders]
        anchors.update(s.anchors)
    for css in sorted((root / "_static").rglob("*.css")):
        for url in css_refs(css.read_text(encoding="utf-8", errors="replace")):
            if is_external(url):
                offenders.append(f"{css.relative_to(root)}: url({url})")
    return offenders, anchors


# ----------------------------------------------------------------------------- reader-facing text

#: What a reader must never see, name -> pattern (matched against a page's visible text, code inputs excluded).
READER_TEXT = {
    "nan": re.compile(r"(?<![\w.-])(?:nan|NaN|NAN|-?inf)(?![\w(-])"),
    "Python repr": re.compile(r"\b(?:Claim|PosixPath|WindowsPath|PurePath|Path)\(|<[\w.]+ object at 0x|"
                              r"\bnp\.(?:float|int)\d*\(|<Figure size"),
    "warning": re.compile(r"\b[A-Z]\w*Warning\b|\.py:\d+: "),
}
#: Generic absolute paths of a build machine: a home or checkout under /home, /root, /work, /tmp, /Users.
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:home|root|work|tmp|Users|opt/conda|usr/local/lib)/[\w.+-]+")
SKIP_TAGS = {"script", "style", "head", "nav"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def machine_paths() -> list[str]:
    """Absolute paths of this machine a page must not print: the checkout, the home folder, the interpreter's prefix."""
    here = Path(__file__).resolve().parent.parent
    paths = {str(here), str(Path.home()), sys.prefix, sys.base_prefix, os.environ.get("VIRTUAL_ENV", "")}
    return sorted((p for p in paths if p and p != "/"), key=len, reverse=True)


class _TextScanner(HTMLParser):
    """The visible text of a page's article (``<main>``, or the whole body without it), code inputs excluded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, skipped)
        self.chunks: list[str] = []
        self.in_main = False
        self.main_depth = -1

    def _skipped(self) -> bool:
        return any(skip for _, skip in self.stack)

    def handle_starttag(self, tag, attrs):
        if tag in VOID_TAGS:
            return
        classes = (dict(attrs).get("class") or "").split()
        skip = tag in SKIP_TAGS or "cell_input" in classes or "bd-sidebar-primary" in classes \
            or "bd-sidebar-secondary" in classes or "headerlink" in classes
        if tag == "main" and not self.in_main:
            self.in_main, self.main_depth = True, len(self.stack)
        self.stack.append((tag, skip))

    def handle_endtag(self, tag):
        if tag in VOID_TAGS:
            return
        while self.stack:  # tolerate an unclosed child (<p> inside <li>, ...)
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        if not self._skipped() and data.strip():
            self.chunks.append(data)


def page_text(html: str) -> str:
    """The text a reader reads on a page (article prose, captions, tables, outputs; no code inputs)."""
    s = _TextScanner()
    s.feed(html)
    return " ".join(" ".join(s.chunks).split())


def reader_text_problems(text: str, paths: list[str] | None = None) -> list[str]:
    """Each ``kind: …context…`` in ``text`` a reader must not see (:data:`READER_TEXT`, machine paths)."""
    found = []
    for kind, pattern in READER_TEXT.items():
        for m in pattern.finditer(text):
            found.append(f"{kind}: …{text[max(0, m.start() - 60):m.end() + 40]}…")
    for path in machine_paths() if paths is None else paths:
        for m in re.finditer(re.escape(path), text):
            found.append(f"absolute path: …{text[max(0, m.start() - 40):m.end() + 40]}…")
    for m in MACHINE_PATH.finditer(text):
        found.append(f"absolute path: …{text[max(0, m.start() - 40):m.end() + 40]}…")
    return list(dict.fromkeys(found))


def scan_text(root: Path, paths: list[str] | None = None) -> list[str]:
    """Every reader-text problem of every page under ``root`` (``_static`` and search pages excluded)."""
    problems = []
    for html in sorted(root.rglob("*.html")):
        rel = html.relative_to(root)
        if rel.parts[0] in ("_static", "_sources") or rel.name in ("search.html", "genindex.html"):
            continue
        text = page_text(html.read_text(encoding="utf-8", errors="replace"))
        problems += [f"{rel}: {p}" for p in reader_text_problems(text, paths)]
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else Path(__file__).resolve().parent.parent / "_build" / "html")
    if not (root / "index.html").exists():
        print(f"check_html: {root}/index.html not found; build the book first (python book/build.py)", file=sys.stderr)
        return 2
    offenders, anchors = scan(root)
    n_html = len(list(root.rglob("*.html")))
    if anchors:
        print(f"check_html: {sum(anchors.values())} external <a href> link(s) (allowed, not fetched on load):")
        for url, k in anchors.most_common():
            print(f"  {k:3d}× {url}")
    if offenders:
        print(f"check_html: FAIL — {len(offenders)} external resource reference(s):", file=sys.stderr)
        for o in offenders:
            print(f"  {o}", file=sys.stderr)
    problems = scan_text(root)
    if problems:
        print(f"check_html: FAIL — {len(problems)} place(s) where a page shows a reader its plumbing "
              "(nan, a Python repr, a warning or a path of this machine):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
    if offenders or problems:
        return 1
    print(f"check_html: OK — {n_html} HTML files and their CSS reference no external resources, and no page shows "
          "nan, a Python repr, a warning or a path of this machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
