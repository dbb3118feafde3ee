"""Check the built book's layout at a reader's width: nothing is cut off on the right.

For every page, headless Chromium lays it out at ``--width`` px (1280 by default) and a script run in the
page reports

* each table wider than the article that is not inside a horizontally scrolling container (its right
  columns would be cut off or push the page sideways), and
* a page wider than the window (a horizontal scroll bar on the whole page).

The page is copied next to itself with the script appended (so its styles and scripts load as they
do for a reader), dumped with ``--dump-dom``, and the copy removed. Needs ``chromium``; without it the
check says so and passes (exit 0) unless ``--require`` is given.

    python book/check_layout.py _build/html            # every page
    python book/check_layout.py _build/html --page intro.html --width 1280
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
<script>
window.addEventListener("load", () => {
  const art = document.querySelector("article.bd-article") || document.querySelector("article") ||
              document.querySelector("main") || document.body;
  const edge = art.getBoundingClientRect().right;
  const bad = [];
  document.querySelectorAll("table").forEach((t, i) => {
    const r = t.getBoundingClientRect();
    if (r.width === 0 || r.right <= edge + 1) return;
    let el = t.parentElement, scrolls = false;
    while (el && el !== document.body) {
      const s = getComputedStyle(el);
      if ((s.overflowX === "auto" || s.overflowX === "scroll") && el.getBoundingClientRect().right <= edge + 1) {
        scrolls = true; break;
      }
      el = el.parentElement;
    }
    if (!scrolls) {
      const head = (t.querySelector("th") || t).textContent.trim().slice(0, 40);
      bad.push(`table ${i} ("${head}") is ${Math.round(r.width)} px wide and ends at ${Math.round(r.right)} px, past the article's edge at ${Math.round(edge)} px, outside any scrolling container`);
    }
  });
  const page = document.documentElement.scrollWidth;
  if (page > window.innerWidth + 1) bad.push(`the page is ${page} px wide in a ${window.innerWidth} px window`);
  document.body.setAttribute("data-layout-problems", JSON.stringify(bad));
});
</script>
"""
ATTR = re.compile(r'data-layout-problems="([^"]*)"')
REDIRECT = re.compile(r'http-equiv="refresh"', re.IGNORECASE)  # a page that only forwards the reader


def chromium() -> str | None:
    """The Chromium binary on PATH, if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def page_problems(page: Path, width: int = 1280, binary: str | None = None, timeout_s: int = 60) -> list[str]:
    """Layout problems of one HTML page at ``width`` px (see the module docstring)."""
    binary = binary or chromium()
    if binary is None:
        raise FileNotFoundError("chromium not found (apt-get install chromium)")
    html = page.read_text(encoding="utf-8")
    probe = html.replace("</body>", PROBE + "</body>") if "</body>" in html else html + PROBE
    with tempfile.NamedTemporaryFile("w", suffix=".html", dir=page.parent, prefix=".layout-", delete=False,
                                     encoding="utf-8") as f:
        f.write(probe)
    tmp = Path(f.name)
    try:
        with tempfile.TemporaryDirectory() as profile:
            out = subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                  f"--user-data-dir={profile}", f"--window-size={width},1000",
                                  "--virtual-time-budget=10000", "--dump-dom", tmp.as_uri()],
                                 capture_output=True, text=True, timeout=timeout_s)
    finally:
        tmp.unlink(missing_ok=True)
    m = ATTR.search(out.stdout)
    if m is None:
        return [f"the layout probe did not run (chromium exit {out.returncode}: {out.stderr.strip()[-200:]})"]
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">").replace("&#39;", "'"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path, help="the built book (_build/html)")
    ap.add_argument("--page", action="append", default=None, help="pages under html (default: every page)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--require", action="store_true", help="fail when chromium is not installed")
    args = ap.parse_args(argv)
    binary = chromium()
    if binary is None:
        print("check_layout: chromium not found; layout not checked" + (" (required)" if args.require else ""))
        return 1 if args.require else 0
    pages = ([args.html / p for p in args.page] if args.page else
             sorted(p for p in args.html.rglob("*.html") if not p.name.startswith((".", "genindex", "search"))
                    and not REDIRECT.search(p.read_text(encoding="utf-8", errors="replace")[:2000])))
    bad = 0
    for page in pages:
        for problem in page_problems(page, args.width, binary):
            print(f"{page.relative_to(args.html)}: {problem}")
            bad += 1
    print(f"check_layout: {len(pages)} pages at {args.width} px, {bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
