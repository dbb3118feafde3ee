"""Features stay within their memory budget whatever the batch size (issue 12, item 3).

Each measurement runs in its own process and reads its peak resident set; the budget is
``4·D·4`` bytes beyond the loaded model (four fp32 gradients), with a 64 MiB floor.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, resource, sys
import torch
from grace import world as W
from grace.features import compute_features, default_memory_budget
from grace.projectors import make_projector
torch.manual_seed(0)
tok = W.build_tokenizer(["Q: how many apples does Tom have now ? A: 5+3=8 #### 8"] * 4)
model = W.make_model(W.ModelSize(hidden=320, layers=6, heads=8, intermediate=864), tok, seed=0)
D = sum(p.numel() for p in model.parameters())
recs = [{"prompt_id": i, "prompt": "how many apples does Tom have now ?", "response": "5+3=8 #### 8"} for i in range(8)]
proj = make_projector("rademacher", D, 64, 0)
if sys.argv[1] == "features":
    torch.zeros(1)
    f = compute_features(model, tok, recs, proj, batch_size=16, progress=False, template="Q: {prompt}\nA:")
    meta = {k: f.meta[k] for k in ("method", "block_rows")}
else:
    meta = {}
print(json.dumps({"D": D, "budget": default_memory_budget(D), "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, **meta}))
"""


def _run(mode: str) -> dict:
    res = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=600,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_features_peak_memory_stays_within_four_gradients():
    base, feats = _run("base"), _run("features")
    assert feats["D"] > 5_000_000  # 4·D·4 is above the 64 MiB floor here
    assert feats["method"] == "loop" and feats["block_rows"] < 16  # vmap would take ~4.4·16·D·4 bytes
    beyond = feats["maxrss"] - base["maxrss"]
    assert beyond <= feats["budget"], f"{beyond / 2**20:.0f} MiB beyond the model > budget {feats['budget'] / 2**20:.0f} MiB"
