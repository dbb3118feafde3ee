#!/usr/bin/env bash
# Screenshot pages of the built book with headless Chromium (no network), into artifacts/screenshots/.
#
#   book/screenshot.sh                                  # the intro and the derivation chapter
#   book/screenshot.sh book/_executed/04_derivation.html
#
# Pages are paths under _build/html. Each page is captured once in a tall window and cut into
# 1280x2000 tiles <name>_01.png, <name>_02.png, ... (blank tiles dropped; needs Pillow, which the
# venv has via matplotlib). Needs `chromium` (apt-get install -y chromium) and a built book
# (python book/build.py). Env: SCREENSHOT_DIR, SCREENSHOT_WIDTH (1280), SCREENSHOT_TILE (2000),
# SCREENSHOT_MAX_HEIGHT (30000).
set -euo pipefail
cd "$(dirname "$0")/.."
HTML_DIR="$PWD/_build/html"
OUT_DIR="${SCREENSHOT_DIR:-$PWD/artifacts/screenshots}"
WIDTH="${SCREENSHOT_WIDTH:-1280}"
TILE="${SCREENSHOT_TILE:-2000}"
MAX_HEIGHT="${SCREENSHOT_MAX_HEIGHT:-30000}"
PY="$PWD/.venv/bin/python"; [ -x "$PY" ] || PY=python3
[ -f "$HTML_DIR/index.html" ] || { echo "error: $HTML_DIR/index.html not found; run python book/build.py first" >&2; exit 2; }
CHROME="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$CHROME" ]; then
  echo "chromium not found; installing it with apt-get" >&2
  apt-get install -y -qq chromium >/dev/null
  CHROME="$(command -v chromium)"
fi
[ "$#" -gt 0 ] || set -- book/intro.html book/_executed/04_derivation.html
mkdir -p "$OUT_DIR"
for page in "$@"; do
  [ -f "$HTML_DIR/$page" ] || { echo "error: $HTML_DIR/$page not found" >&2; exit 2; }
  name="$(basename "$page" .html)"
  profile_dir="$(mktemp -d)"
  full="$profile_dir/full.png"
  # --virtual-time-budget lets MathJax typeset before the capture
  "$CHROME" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-quic \
    --user-data-dir="$profile_dir" --hide-scrollbars --virtual-time-budget=10000 \
    --window-size="$WIDTH,$MAX_HEIGHT" --screenshot="$full" "file://$HTML_DIR/$page" >/dev/null 2>&1
  rm -f "$OUT_DIR/${name}"_[0-9][0-9].png
  "$PY" - "$full" "$OUT_DIR/$name" "$TILE" <<'PYEOF'
import sys
import numpy as np
from PIL import Image

src, stem, tile = sys.argv[1], sys.argv[2], int(sys.argv[3])
im = Image.open(src).convert("RGB")
w, h = im.size
main = np.asarray(im.convert("L"))[:, int(0.2 * w) : int(0.78 * w)]  # the article column
ink = np.where((main < 200).sum(1) > 2)[0]
if len(ink):
    gaps = np.where(np.diff(ink) > 1500)[0]  # the page footer sits at the window bottom after a blank gap
    end = min(h, int(ink[gaps[0]] if len(gaps) else ink[-1]) + 60)
else:
    end = tile
k = 0
for top in range(0, end, tile):
    part = im.crop((0, top, w, min(top + tile, end)))
    k += 1
    part.save(f"{stem}_{k:02d}.png")
    print(f"{stem}_{k:02d}.png")
PYEOF
  rm -rf "$profile_dir"
done
