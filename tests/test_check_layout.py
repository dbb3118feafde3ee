"""book/check_layout.py: a table wider than the article must scroll inside it (headless Chromium, 1280 px)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
from check_layout import chromium, page_problems  # noqa: E402

pytestmark = pytest.mark.skipif(chromium() is None, reason="needs chromium (apt-get install chromium)")

PAGE = ("<html><head><style>body{margin:0} article{width:800px}</style></head>"
        "<body><main><article>%s</article></main></body></html>")
WIDE = "<table><tr>" + "".join(f"<th>column {i} of a wide table</th>" for i in range(30)) + "</tr></table>"


@pytest.mark.parametrize(("body", "problems"), [
    (WIDE, 2),  # cut off: past the article's edge and a page wider than the window
    (f"<div style='overflow-x:auto'>{WIDE}</div>", 0),  # the book's rule: wide tables scroll
    ("<table><tr><td>a</td><td>b</td></tr></table>", 0),
])
def test_wide_tables_must_scroll(tmp_path, body, problems):
    page = tmp_path / "p.html"
    page.write_text(PAGE % body)
    found = page_problems(page)
    assert len(found) == problems, found
    assert not any(p.name.startswith(".layout-") for p in tmp_path.iterdir())  # the probe copy is removed
    if problems:
        assert "past the article's edge at 800 px" in found[0]
