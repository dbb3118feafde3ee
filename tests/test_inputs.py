"""Every bad input a user can give gets one ``grace <cmd>: error:`` line naming the value, where it came
from and the fix, and nothing is computed or written first (grace.validate, grace.config, grace.io).

One table per class of input: a new bad input of a class is one more row, and the check that catches
it is the class's, not the row's.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _grace(*args: str, cwd: Path | None = None, env: dict | None = None, fresh: bool = False):
    """``grace *args`` in this process (fast; an uncaught exception fails the test), or a fresh one (``env``, ``fresh``)."""
    if env or fresh:
        env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        return subprocess.run([sys.executable, "-m", "grace.cli", *args], capture_output=True, text=True,
                              timeout=300, cwd=cwd, env=env)
    import contextlib
    import io

    from grace.cli import main

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        os.chdir(cwd or here)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(list(args))
            except SystemExit as e:  # argparse
                rc = e.code
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def test_a_refused_command_is_one_line_in_a_fresh_process_too(tmp_path):
    """The in-process runs above and below see what a shell sees: one line, status 2, no traceback."""
    gen = tmp_path / "gen.jsonl"
    gen.write_text(json.dumps({**GOOD[0], "prompt_id": [1, 2]}))
    res = _grace("features", "--model", "m", "--generations", str(gen), "--out", str(tmp_path / "f"), fresh=True)
    assert "is not a valid prompt_id" in _one_error_line(res, "features")


def _one_error_line(res: subprocess.CompletedProcess, cmd: str) -> str:
    """The single stderr line of a refused command (no traceback), checked to have the common form."""
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"grace {cmd}: error: "), res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    return lines[0]


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


GOOD = [{"prompt_id": i, "prompt": f"what is {i}+1?", "response": f"{i + 1}", "correct": True} for i in range(4)]


# ---------------------------------------------------------------------------------------------------
# Records: types, one prompt per prompt_id, boolean correct, the file's shape
# ---------------------------------------------------------------------------------------------------
RECORDS = [  # (file text, what the error must say)
    (json.dumps({**GOOD[0], "prompt_id": [1, 2]}), r"gen.jsonl:1: \[1, 2\] is not a valid prompt_id \(a list\)"),
    (json.dumps({**GOOD[0], "prompt_id": 1.5}), r"gen.jsonl:1: 1.5 is not a valid prompt_id"),
    (json.dumps({**GOOD[0], "prompt_id": True}), r"gen.jsonl:1: True is not a valid prompt_id"),
    ("5", r"gen.jsonl:1: '5' is a JSON int, not an object"),
    ('"text"', r"gen.jsonl:1: .* is a JSON str, not an object"),
    (json.dumps(GOOD), r"gen.jsonl:1: .* is an array, not an object"),
    (json.dumps(GOOD, indent=2), r"gen.jsonl:1: the file looks like one JSON array, not jsonl.*one JSON object per line"),
    ("\n".join(json.dumps({**GOOD[0], "prompt": p}) for p in "abcd"),
     r"gen.jsonl:2: 0 is the prompt_id of two different prompts \(also at .*gen.jsonl:1\); give every distinct"),
    ("\n".join(json.dumps({**g, "correct": "no"}) for g in GOOD), r"gen.jsonl:1: 'no' is not a valid 'correct'.*true or false"),
    ("\n".join(json.dumps({**g, "correct": 1}) for g in GOOD), r"gen.jsonl:1: 1 is not a valid 'correct'"),
    (json.dumps(GOOD[0]) + "\n" + json.dumps({k: v for k, v in GOOD[1].items() if k != "correct"}),
     r"gen.jsonl:2: 'correct' is given on some records and not others"),
    (json.dumps({**GOOD[0], "response": "  "}), r"gen.jsonl:1: empty response for prompt_id=0"),
    (json.dumps({"prompt_id": 0, "prompt": "x"}), r"gen.jsonl:1 is missing 'response'"),
    (json.dumps({**GOOD[0], "prompt": 7}), r"gen.jsonl:1: 7 is not a valid prompt \(a int\); make prompt a string"),
    (json.dumps(GOOD[0]) + "\n\n{oops", r"gen.jsonl:3: not valid JSON"),
    ("", r"gen.jsonl is empty: no records"),
]


@pytest.mark.parametrize(("text", "message"), RECORDS)
def test_bad_records_are_refused_by_file_and_line(tmp_path, text, message):
    from grace.rank import load_generations

    path = tmp_path / "gen.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_generations(path)


def test_a_bad_record_on_the_command_line_is_one_line_and_nothing_is_computed(tmp_path):
    gen = tmp_path / "gen.jsonl"
    gen.write_text("\n".join(json.dumps({**g, "correct": "no"}) for g in GOOD))
    line = _one_error_line(_grace("features", "--model", str(tmp_path / "no-model"), "--generations", str(gen),
                                  "--out", str(tmp_path / "f")), "features")
    assert "'no' is not a valid 'correct'" in line
    assert not (tmp_path / "f" / "features.npz").exists()


def test_records_given_in_memory_get_the_same_checks():
    """compute_features' own check (grace.features) uses the same vocabulary as the files' check."""
    from grace.validate import check_records

    for bad, message in (({**GOOD[0], "correct": "no"}, "JSON boolean"), ({**GOOD[0], "prompt_id": [1]}, "prompt_id")):
        with pytest.raises(ValueError, match=message):
            check_records([GOOD[1], bad])
    check_records([{**g, "correct": np.bool_(True)} for g in GOOD])  # numpy booleans are booleans


def test_prompt_files_for_generate_are_checked_too(tmp_path):
    from grace.rank import load_prompts

    p = _write_jsonl(tmp_path / "p.jsonl", [{"prompt_id": 1, "prompt": "a"}, {"prompt_id": 1, "prompt": "b"}])
    with pytest.raises(ValueError, match=r"p.jsonl:2: 1 repeats the prompt_id of line 1"):
        load_prompts(str(p))
    p = _write_jsonl(tmp_path / "q.jsonl", [{"prompt_id": {"a": 1}, "prompt": "a"}])
    with pytest.raises(ValueError, match=r"q.jsonl:1: .* is not a valid prompt_id"):
        load_prompts(str(p))


# ---------------------------------------------------------------------------------------------------
# Lengths against the model's context: refuse, or truncate on request and record it
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random Llama with a 32-position context, saved like a user's model directory."""
    from grace import world

    out = tmp_path_factory.mktemp("model")
    texts = [f"what is {i}+1? {i + 1} and some more words here" for i in range(20)]
    tok = world.build_tokenizer(texts)
    model = world.make_model(world.ModelSize(hidden=16, layers=1, heads=2, intermediate=32, max_positions=32), tok, 0)
    world.save_model(model, tok, out)
    return out


LONG = {"prompt_id": 9, "prompt": "what is 9+1?", "response": " ".join(["words"] * 60), "correct": False}
LENGTHS = [  # (extra CLI args, what the error must say; None: accepted)
    ([], r"prompt_id=9\) is \d+ tokens, longer than the model's context of 32; pass --max-length L \(L <= 32\)"),
    (["--max-length", "64"], r"--max-length: 64 exceeds the model's context of 32 positions; pass --max-length 32"),
    (["--max-length", "3"], r"its prompt alone is \d+ tokens, so --max-length 3 leaves no response token"),
    (["--max-length", "0"], r"argument --max-length: 0 must be >= 1"),
    (["--max-length", "24"], None),
]


@pytest.mark.parametrize(("extra", "message"), LENGTHS)
def test_records_longer_than_the_context_are_refused_or_cut_as_asked(tmp_path, tiny_model, extra, message):
    gen = _write_jsonl(tmp_path / "gen.jsonl", [*GOOD, LONG])
    res = _grace("features", "--model", str(tiny_model), "--generations", str(gen), "--out", str(tmp_path / "f"),
                 "--d", "8", *extra)
    if message is None:
        assert res.returncode == 0, res.stderr[-2000:]
        assert "1 of 5 records are longer than --max-length 24 tokens and are cut" in res.stderr
        side = json.loads((tmp_path / "f" / "features.json").read_text())
        assert side["max_length"] == 24
        return
    import re

    assert re.search(message, _one_error_line(res, "features")), res.stderr
    assert not (tmp_path / "f" / "features.npz").exists()


# ---------------------------------------------------------------------------------------------------
# Numbers on the command line
# ---------------------------------------------------------------------------------------------------
NUMBERS = [  # (argv, the flag named)
    (["features", "--model", "m", "--generations", "g", "--out", "o", "--n", "0"], "--n: 0 must be >= 1"),
    (["features", "--model", "m", "--generations", "g", "--out", "o", "--m", "-1"], "--m: -1 must be >= 1"),
    (["features", "--model", "m", "--generations", "g", "--out", "o", "--d", "0"], "--d: 0 must be >= 1"),
    (["features", "--model", "m", "--generations", "g", "--out", "o", "--batch-size", "0"], "--batch-size: 0"),
    (["features", "--model", "m", "--generations", "g", "--out", "o", "--memory-budget-mb", "0"], "must be > 0"),
    (["features", "--model", "m", "--generations", "g", "--out", "o", "--seed", "-3"], "--seed: -3 must be >= 0"),
    (["features", "--model", "m", "--generations", "g", "--out", "o", "--n", "two"], "'two' is not an integer"),
    (["generate", "--model", "m", "--prompts", "p", "--out", "o", "--n-prompts", "-1"], "--n-prompts: -1 must be >= 1"),
    (["generate", "--model", "m", "--prompts", "p", "--out", "o", "--n-prompts", "0"], "--n-prompts: 0 must be >= 1"),
    (["generate", "--model", "m", "--prompts", "p", "--out", "o", "--n-samples", "0"], "--n-samples: 0"),
    (["generate", "--model", "m", "--prompts", "p", "--out", "o", "--temperature", "0"], "--temperature: 0 must be > 0"),
    (["generate", "--model", "m", "--prompts", "p", "--out", "o", "--max-new-tokens", "0"], "--max-new-tokens: 0"),
    (["score", "d", "--n-folds", "1"], "--n-folds: 1 must be >= 2"),
    (["score", "d", "--nu", "-1"], "--nu: -1 must be > 0"),
    (["rank", "--student", "s", "--teacher", "a=x", "--m", "0"], "--m: 0 must be >= 1"),
    (["world-check", "--study", "s", "--n-pairs", "0"], "--n-pairs: 0 must be >= 1"),
    (["regime-map", "--regime", "a=quick", "--seeds", "-1"], "--seeds: -1 must be >= 0"),
]


@pytest.mark.parametrize(("argv", "message"), NUMBERS)
def test_counts_that_make_no_sense_are_refused(argv, message, tmp_path):
    line = _one_error_line(_grace(*argv, cwd=tmp_path), argv[0])
    assert f"argument {message}" in line or message in line, line
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_api_subset_refuses_counts_below_one():
    from grace.rank import subset

    for n, m in ((0, None), (None, -1)):
        with pytest.raises(ValueError, match="is not a count >= 1"):
            subset(GOOD, n, m, seed=0)


# ---------------------------------------------------------------------------------------------------
# Profiles: a mapping, YAML syntax, ranges by key path, teachers, devices, threads
# ---------------------------------------------------------------------------------------------------
def _quick():
    from grace.study import load_profile

    return copy.deepcopy(load_profile("quick"))


def _mutated(fn):
    p = _quick()
    fn(p)
    return yaml.safe_dump(p)


PROFILES = [  # (YAML text or a mutation of the quick profile, what the error must say)
    ("- a\n- b\n", r"bad.yaml: the profile file is a list, not a mapping"),
    ("", r"bad.yaml: the profile file is empty, not a mapping"),
    ("just words\n", r"bad.yaml: the profile file is a str, not a mapping"),
    ("name: x\nseed: [1\n", r"bad.yaml:3:1: YAML syntax error"),
    ("name: x\n  seed: 1\n", r"bad.yaml:2:\d+: YAML syntax error"),
    (lambda p: p["distill"].update(learning_rate=-1e-3), r"distill.learning_rate=-0.001 is out of range.*> 0"),
    (lambda p: p["world"].update(teacher_lr=-1e-3), r"world.teacher_lr=-0.001 is out of range"),
    (lambda p: p["world"]["teachers"][1].update(learning_rate=0.0), r"world.teachers\[1\].learning_rate=0.0 is out"),
    (lambda p: p["world"]["pretrain"].update(learning_rate=-1.0), r"world.pretrain.learning_rate=-1.0"),
    (lambda p: p.update(threads=-2), r"profile key threads=-2 is out of range; it must be a number >= 1"),
    (lambda p: p.update(device="tpu"), r"profile key device: 'tpu' is not a device; use one of \['cpu', 'cuda'"),
    (lambda p: p["features"].update(n=0), r"features.n=0 is out of range"),
    (lambda p: p["scores"].update(nu=0), r"scores.nu=0 is out of range"),
    (lambda p: p["analysis"].update(subset_frac=1.5), r"analysis.subset_frac=1.5 is out of range.*\(0, 1\]"),
    (lambda p: p.update(temperatures=[0.5, -1.0]), r"temperatures\[1\]=-1.0 is out of range"),
    (lambda p: p["world"].update(teachers=[]), r"world.teachers is empty; list at least one teacher"),
    (lambda p: p["world"]["teachers"].append(dict(p["world"]["teachers"][0])),
     r"world.teachers\[\d+\].name='[^']+' repeats world.teachers\[0\]"),
    (lambda p: p["world"]["teachers"][0].update(name="../x"), r"world.teachers\[0\].name: '../x' is not a safe name"),
    (lambda p: p["world"]["teachers"][0].update(name=""), r"world.teachers\[0\].name: '' is not a usable name"),
    (lambda p: [t.update(pool="anecdote") for t in p["world"]["teachers"]], r"no teacher is in the main pool"),
]


@pytest.mark.parametrize(("profile", "message"), PROFILES)
def test_bad_profiles_are_refused_with_file_and_key_path(tmp_path, profile, message):
    from grace.study import load_profile

    path = tmp_path / "bad.yaml"
    path.write_text(profile if isinstance(profile, str) else _mutated(profile))
    with pytest.raises(ValueError, match=message):
        load_profile(path)


def test_a_bad_profile_stops_grace_study_before_the_first_stage(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(_mutated(lambda p: p["distill"].update(learning_rate=-1e-3)))
    line = _one_error_line(_grace("study", "--profile", str(path), "--out", str(tmp_path / "s")), "study")
    assert "bad.yaml: profile key distill.learning_rate=-0.001 is out of range" in line
    assert not (tmp_path / "s").exists()
    path.write_text("a: [\n")
    assert "bad.yaml:2:1: YAML syntax error" in _one_error_line(_grace("study", "--profile", str(path)), "study")


def test_every_numeric_profile_field_has_a_range():
    """A new int/float field in grace.config gets a range in RANGES (or the next bad value of it is silent)."""
    import dataclasses
    import typing

    from grace import config as C

    def numeric_path(where: str, f) -> str | None:
        """The RANGES pattern of field ``f`` if it holds numbers (``[]`` for a list, ``.*`` for a mapping's values)."""
        tp, suffix = f.type, ""
        for a in typing.get_args(tp) or ():
            if typing.get_origin(a) in (list, dict):
                tp = a
        if typing.get_origin(tp) in (list, dict):
            tp, suffix = typing.get_args(tp)[-1] if typing.get_args(tp) else None, \
                ("[]" if typing.get_origin(tp) is list else ".*")
        args = typing.get_args(tp) or (tp,)
        if any(a in (int, float) for a in args) and str not in args:
            return f"{where}.{f.name}".lstrip(".") + suffix
        return None

    paths = {"": C.Profile, "task": C.TaskSection, "world": C.WorldSection, "world.sizes.*": C.SizeSection,
             "world.pretrain": C.PretrainSection, "world.teachers[]": C.WorldTeacherSection,
             **{k: v for k, v in C.SECTIONS.items() if k not in ("world", "models")}}
    fields = [p for where, cls in paths.items() for f in dataclasses.fields(cls) if (p := numeric_path(where, f))]
    assert "generation.N" in fields and "temperatures[]" in fields and "world.pretrain.steps.*" in fields
    assert [p for p in fields if p not in C.RANGES] == []


# ---------------------------------------------------------------------------------------------------
# Output paths: writable, not an existing file, checked before any work
# ---------------------------------------------------------------------------------------------------
def _outputs(tmp: Path) -> list:
    gen = _write_jsonl(tmp / "gen.jsonl", GOOD)
    (tmp / "a-file").write_text("x")
    (tmp / "a-dir").mkdir()
    return [  # (argv, the message)
        (["features", "--model", "m", "--generations", str(gen), "--out", str(tmp / "a-file")],
         "--out: '%s' is an existing file, not a directory; pass a directory path" % (tmp / "a-file")),
        (["features", "--model", "m", "--generations", str(gen), "--out", str(tmp / "a-file" / "sub")],
         "cannot be written"),
        (["rank", "--student", "m", "--teacher", f"a={gen}", "--out", str(tmp / "a-file")], "is an existing file"),
        (["demo", "--out", str(tmp / "a-file")], "is an existing file"),
        (["generate", "--model", "m", "--prompts", str(gen), "--out", str(tmp / "a-dir")],
         "is an existing directory, not a file"),
        (["generate", "--model", "m", "--prompts", str(gen), "--out", str(tmp / "a-file" / "x.jsonl")],
         "cannot be written"),
        (["score", str(tmp / "a-dir"), "--csv", str(tmp / "a-dir")], "--csv: '%s' is an existing directory" % (tmp / "a-dir")),
    ]


@pytest.mark.parametrize("case", range(7))
def test_output_paths_are_checked_before_any_work(tmp_path, case):
    argv, message = _outputs(tmp_path)[case]
    line = _one_error_line(_grace(*argv), argv[0])
    assert message in line, line
    assert (tmp_path / "a-file").read_text() == "x"


# ---------------------------------------------------------------------------------------------------
# Names that become path components
# ---------------------------------------------------------------------------------------------------
NAMES = [  # (argv, the message)
    (["rank", "--student", "s", "--teacher", "../escaped=gen.jsonl"], "'../escaped' is not a safe name"),
    (["rank", "--student", "s", "--teacher", "=gen.jsonl"], "'' is not a usable name"),
    (["rank", "--student", "s", "--teacher", "a/b=gen.jsonl"], "'a/b' is not a safe name"),
    (["rank", "--student", "s", "--teacher", "..=gen.jsonl"], "'..' is not a safe name"),
    (["rank", "--student", "s", "--teacher", "a="], "the value after '=' is empty"),
    (["rank", "--student", "s", "--teacher", "a=x", "--teacher", "a=y"], "--teacher 'a' is given twice"),
    (["regime-map", "--regime", "../up=quick"], "'../up' is not a safe name"),
    (["regime-map", "--regime", "a=quick", "--extra", "/abs=x"], "'/abs' is not a safe name"),
]


@pytest.mark.parametrize(("argv", "message"), NAMES)
def test_names_must_be_safe_path_components(tmp_path, argv, message):
    line = _one_error_line(_grace(*argv, "--out", str(tmp_path / "out")), argv[0])
    assert message in line, line
    assert list(tmp_path.iterdir()) == []  # nothing written or created, inside --out or outside it


def test_rank_teachers_api_refuses_unsafe_names(tmp_path):
    from grace.rank import rank_teachers

    with pytest.raises(ValueError, match="not a safe name"):
        rank_teachers("m", {"../x": "gen.jsonl"}, tmp_path)


# ---------------------------------------------------------------------------------------------------
# Models and devices: one line, no traceback
# ---------------------------------------------------------------------------------------------------
def _model_dirs(tmp: Path, tiny_model: Path) -> dict[str, Path]:
    import shutil

    no_weights, no_tok, not_model = tmp / "no-weights", tmp / "no-tok", tmp / "not-model"
    for d in (no_weights, no_tok):
        shutil.copytree(tiny_model, d)
    for f in no_weights.glob("*.safetensors"):
        f.unlink()
    for f in no_tok.glob("tokenizer*"):
        f.unlink()
    not_model.mkdir()
    return {"no-weights": no_weights, "no-tok": no_tok, "not-model": not_model}


MODELS = [  # (which --model, extra env, the message)
    ("no-weights", {}, "has no *.safetensors weights; save the model there"),
    ("no-tok", {}, "has no tokenizer files"),
    ("not-model", {}, "is a directory without config.json, not a model"),
    ("missing-dir/", {}, "is not a model directory, and not a Hub id of the form org/name"),
    ("no-such-org/no-such-model", {"HF_HUB_OFFLINE": "1"}, "is a Hub id that is not in the local Hugging Face cache"),
]


@pytest.mark.parametrize(("which", "env", "message"), MODELS)
def test_models_that_cannot_load_are_one_clear_line(tmp_path, tiny_model, which, env, message):
    dirs = _model_dirs(tmp_path, tiny_model)
    gen = _write_jsonl(tmp_path / "gen.jsonl", GOOD)
    model = str(dirs.get(which, tmp_path / which if which.endswith("/") else which))
    line = _one_error_line(_grace("features", "--model", model, "--generations", str(gen), "--out",
                                  str(tmp_path / "f"), env=env), "features")
    assert message in line, line
    assert "sentencepiece" not in line


@pytest.mark.parametrize(("device", "message"), [("tpu", "'tpu' is not a device"), ("cuda:7", "'cuda:7' is not available here"),
                                                 ("", "'' is not a device")])
def test_unknown_or_absent_devices_are_refused(tmp_path, device, message):
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("eight GPUs are visible")
    line = _one_error_line(_grace("features", "--model", "m", "--generations", "g", "--out", str(tmp_path / "f"),
                                  "--device", device), "features")
    assert f"--device: {message}" in line


# ---------------------------------------------------------------------------------------------------
# Saved features: self-consistent or refused; score keys rows by path and refuses mixed shapes
# ---------------------------------------------------------------------------------------------------
def _save_features(d: Path, n: int = 6, m: int = 2, dim: int = 4, seed: int = 0, kind: str = "rademacher") -> Path:
    from grace.features import Features

    rng = np.random.default_rng(seed)
    N = n * m
    f = Features(H=rng.normal(size=(N, dim)).astype(np.float32), prompt_ids=np.repeat(np.arange(n), m),
                 prompt_keys=list(range(n)), lengths=rng.integers(2, 9, N), loss=rng.random(N).astype(np.float32),
                 mean_prob=rng.random(N).astype(np.float32), grad_norm=rng.random(N).astype(np.float32),
                 meta={"n_examples": N, "projector": {"kind": kind, "dim_out": dim}})
    d.mkdir(parents=True)
    f.save(d / "features.npz")
    return d


def _edit_sidecar(d: Path, **changes) -> None:
    side = d / "features.json"
    meta = json.loads(side.read_text())
    for k, v in changes.items():
        if v is None:
            meta.pop(k)
        else:
            meta[k] = v
    side.write_text(json.dumps(meta))


def _swap_arrays(d: Path) -> None:
    with np.load(d / "features.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["H"] = arrays["H"] * 2
    np.savez(d / "features.npz", **arrays)


SAVED = [  # (tampering, the message)
    (lambda d: _edit_sidecar(d, n_examples=99), "the sidecar disagrees with the arrays (n_examples=99 but H has 12 rows)"),
    (lambda d: _edit_sidecar(d, projector={"kind": "rademacher", "dim_out": 8}), "projector.dim_out=8 but H has 4"),
    (lambda d: _edit_sidecar(d, prompt_keys=[0, 1]), "prompt_ids point past the 2 prompt_keys"),
    (_swap_arrays, "its arrays disagree with the shapes and hash in features.json"),
    (lambda d: _edit_sidecar(d, arrays_check=None), "records no hash of the arrays"),
    (lambda d: (d / "features.json").unlink(), "features.json is missing"),
]


@pytest.mark.parametrize(("tamper", "message"), SAVED)
def test_features_that_disagree_with_their_sidecar_are_refused_by_name(tmp_path, tamper, message):
    d = _save_features(tmp_path / "t")
    assert _grace("score", str(d), "--n-folds", "2").returncode == 0
    tamper(d)
    line = _one_error_line(_grace("score", str(d), "--n-folds", "2"), "score")
    assert str(d / "features.npz") in line and message in line, line


MIXED = [  # (second features' shape, the message)
    (dict(dim=8), "d=4"), (dict(n=8), "n=8"), (dict(m=3), "m=3"), (dict(kind="sparse_jl"), "sparse_jl"),
]


@pytest.mark.parametrize(("shape", "message"), MIXED)
def test_score_refuses_features_of_different_shapes_unless_asked(tmp_path, shape, message):
    a, b = _save_features(tmp_path / "a"), _save_features(tmp_path / "b", seed=1, **shape)
    line = _one_error_line(_grace("score", str(a), str(b), "--n-folds", "2"), "score")
    assert "cannot be ranked together" in line and message in line and "--allow-mixed" in line, line
    res = _grace("score", str(a), str(b), "--n-folds", "2", "--allow-mixed")
    assert res.returncode == 0, res.stderr[-2000:]


def test_score_keys_rows_by_path_not_base_name(tmp_path):
    a, b = _save_features(tmp_path / "x" / "feats"), _save_features(tmp_path / "y" / "feats", seed=1)
    from grace.rank import score_dirs

    table = score_dirs([a, b], n_folds=2)
    assert sorted(table.index) == sorted([str(a), str(b)])
    line = _one_error_line(_grace("score", str(a), str(a), "--n-folds", "2"), "score")
    assert "given twice" in line


def test_corrupt_or_pickled_features_file_is_refused_by_name(tmp_path):
    d = tmp_path / "feats"
    d.mkdir()
    (d / "features.npz").write_bytes(b"not an archive")
    (d / "features.json").write_text("{}")
    res = _grace("score", str(d))
    assert res.returncode == 2
    assert "features.npz is not a readable npz archive" in res.stderr and "recompute" in res.stderr
    assert "allow_pickle" not in res.stderr
    np.savez(d / "features.npz", H=np.array([{"x": 1}], dtype=object))  # pickled objects: never loaded
    res = _grace("score", str(d))
    assert res.returncode == 2 and "not a readable npz archive" in res.stderr


@pytest.mark.parametrize("value", ["x", "0", "-2", "1.5"])
def test_bad_grace_threads_is_refused_before_anything_is_written(tmp_path, value):
    line = _one_error_line(_grace("study", "--profile", "smoke", "--out", str(tmp_path / "s"),
                                  env={"GRACE_THREADS": value}), "study")
    assert f"GRACE_THREADS='{value}' is not a whole number >= 1" in line
    assert not (tmp_path / "s").exists()



def test_generate_refuses_a_prompt_longer_than_the_context(tmp_path, tiny_model):
    prompts = _write_jsonl(tmp_path / "p.jsonl", [{"prompt_id": 0, "prompt": "1 + 1 ="},
                                                  {"prompt_id": 7, "prompt": " ".join(["one plus"] * 40)}])
    line = _one_error_line(_grace("generate", "--model", str(tiny_model), "--prompts", str(prompts), "--out",
                                  str(tmp_path / "o.jsonl"), "--max-new-tokens", "8"), "generate")
    assert "prompt_id=7 is at least" in line and "exceeds the model's context of 32 positions" in line
    assert not (tmp_path / "o.jsonl").exists()
