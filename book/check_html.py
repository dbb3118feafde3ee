#!/usr/bin/env python
"""Fail if the built book would fetch anything from the network.

    python book/check_html.py [_build/html]

Strict (exit 1, each offender listed): in every ``**/*.html`` the ``src``/``href``/``data``/
``srcset``/``poster`` of ``script``, ``link``, ``img``, ``source``, ``iframe``, ``video``,
``audio``, ``embed``, ``object`` and ``input``; ``url(...)`` / ``@import`` in ``<style>`` blocks and
``style=`` attributes; and ``url(...)`` / ``@import`` in every ``_static/**/*.css``. A reference is
external when it has an ``http(s)`` scheme or is protocol-relative (``//host/...``).

Reported but allowed: ``<a href>`` links to external pages (a reader may follow them; nothing is
fetched on load).
"""

from __future__ import annotations

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
        return 1
    print(f"check_html: OK — {n_html} HTML files and their CSS reference no external resources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
