#!/usr/bin/env python
"""Seconds each coded exercise's solution took in the last build, from papermill's per-cell timings.

    python book/exercise_times.py              # a Markdown table from book/_executed/*.ipynb
    python book/exercise_times.py --json       # the same as JSON (exercise id -> seconds)
    python book/exercise_times.py --cold       # also run every solution in a fresh Python process (smoke world)

A solution cell is a code cell tagged ``solution`` (see the chapters' exercise sections); its exercise is
the id in its ``course.check("chN-exM", ...)``. The numbers are what the build measured on this machine,
with the chapter's kernel already warm (imports of the chapter done); a student's first run of a cell also
pays for its imports, which ``--cold`` measures: each solution cell runs alone in a new interpreter, after
only ``ch = Chapter(<chapter>, "smoke", <temporary folder>)`` (the chapter's study, reused from its cache).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

EXECUTED = Path(__file__).resolve().parent / "_executed"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CHECK = re.compile(r'course\.check\("(ch\d+-ex\d+)"')


def solution_seconds(executed: Path = EXECUTED) -> dict[str, float]:
    """Exercise id -> seconds its solution cell ran (papermill's ``duration``), over every executed chapter."""
    import nbformat

    out = {}
    for path in sorted(executed.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or "solution" not in cell.metadata.get("tags", []):
                continue
            m = CHECK.search(cell.source)
            duration = cell.metadata.get("papermill", {}).get("duration")
            if m and duration is not None:
                out[m.group(1)] = float(duration)
    return out


def solution_sources(notebooks: Path = NOTEBOOKS) -> dict[str, tuple[str, str, bool]]:
    """Exercise id -> (chapter, solution cell source, whether the chapter opens its study), from the chapters."""
    import jupytext

    out = {}
    for path in sorted(notebooks.glob("[0-9]*.py")):
        text = path.read_text()
        has_study = f'Chapter("{path.stem}", profile, out_dir)' in text
        for cell in jupytext.read(path).cells:
            m = CHECK.search(cell.source) if "solution" in cell.metadata.get("tags", []) else None
            if m:
                out[m.group(1)] = (path.stem, cell.source, has_study)
    return out


def cold_seconds(profile: str = "smoke") -> dict[str, float]:
    """Exercise id -> wall seconds of its solution cell run alone in a new interpreter (imports included)."""
    import os
    import subprocess
    import tempfile
    import time

    out = {}
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    for ex, (chapter, source, has_study) in solution_sources().items():
        with tempfile.TemporaryDirectory() as tmp:
            pre = (f"from grace.notebook import Chapter\n"
                   f"ch = Chapter({chapter!r}, {profile!r}, {tmp!r}, study={has_study})\n")
            script = Path(tmp) / "solution.py"
            script.write_text(source)
            code = pre + f"exec(compile(open({str(script)!r}).read(), 'solution', 'exec'))\n"
            t0 = time.time()
            proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  cwd=Path(__file__).resolve().parent.parent)
            if proc.returncode != 0:
                raise SystemExit(f"{ex}: the solution failed in a fresh interpreter:\n{proc.stderr[-2000:]}")
            out[ex] = time.time() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    ap.add_argument("--cold", action="store_true", help="also time each solution alone in a new interpreter")
    args = ap.parse_args(argv)
    secs = solution_seconds()
    cold = cold_seconds() if args.cold else {}
    if not secs:
        print(f"no executed solution cells under {EXECUTED}; run `python book/build.py --profile smoke` first",
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"in_build": secs, "cold": cold}, indent=1))
        return 0
    print("| exercise | in the build (s) |" + (" fresh interpreter (s) |" if cold else "") + "\n|---|---|" + ("---|" if cold else ""))
    for k, v in secs.items():
        print(f"| {k} | {v:.2f} |" + (f" {cold.get(k, float('nan')):.1f} |" if cold else ""))
    print(f"| total | {sum(secs.values()):.1f} |" + (f" {sum(cold.values()):.1f} |" if cold else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
