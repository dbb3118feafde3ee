"""Inputs checked at the door, once, in one vocabulary: what a user hands ``grace`` before any work starts.

Every check here raises a ``ValueError`` whose message names the bad value, where it came from
(``file:line``, a command-line flag or a profile key path) and the fix, in the form
``<where>: <value> <what is wrong>; <fix>``; the CLI prints it as one ``grace <cmd>: error: ...`` line.
The classes of input, each with its table-driven test in ``tests/test_inputs.py``:

* records (paper §2.1's ``{prompt_id, prompt, response[, correct]}``): :func:`check_records`, and
  their token lengths against the model's context with an explicit truncation policy: :func:`fit_context`;
* numbers on the command line: :func:`cli_int`, :func:`cli_float` (argparse types);
* output paths: :func:`output_dir`, :func:`output_file` (writable, checked before the work);
* names that become path components (teachers, regimes): :func:`safe_name`;
* devices: :func:`check_device`; models on disk or on the Hub: :func:`model_source`, :func:`loading`;
* YAML files (profiles): :func:`yaml_mapping` (syntax errors as ``file:line``, a mapping or nothing).

The profile's own schema and ranges live in :mod:`grace.config`, which uses these helpers; this
module imports nothing from ``grace`` at module level, so every other module may use it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REQUIRED_FIELDS = ("prompt_id", "prompt", "response")
"""The fields every record needs (paper §2.1: a prompt, a teacher response and which prompt it answers)."""
DEVICE_TYPES = ("cpu", "cuda", "mps")
"""Device types a model can be put on (``cuda:1`` names a GPU)."""
WEIGHT_GLOBS = ("*.safetensors", "*.safetensors.index.json")
"""What a model directory needs for ``from_pretrained(use_safetensors=True)``."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")
"""Any one of these makes a model directory's tokenizer loadable."""


def problem(where: str, value: Any, what: str, fix: str) -> ValueError:
    """The one error form: ``<where>: <value!r> <what>; <fix>``."""
    return ValueError(f"{where}: {value!r} {what}; {fix}")


# ---------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------
def check_records(records: Sequence[Any], source: str = "examples", lines: Sequence[int] | None = None) -> None:
    """Refuse records that §2.1's features cannot use as meant, naming ``source:line`` (in memory: ``example i``).

    Each record is a mapping with ``prompt_id`` (a str or an int), ``prompt`` and a non-empty
    ``response`` (str), and ``correct`` (a JSON boolean) on all records or none; one ``prompt_id``
    has one prompt (two prompts under one id would be merged into one prompt's folds, eq. 4).
    """
    if len(records) == 0:
        raise ValueError(f"{source} is empty: no records; give one {{prompt_id, prompt, response}} object per line")
    prompts: dict[tuple[str, Any], tuple[str, str]] = {}
    has_correct = isinstance(records[0], Mapping) and "correct" in records[0]
    for i, r in enumerate(records):
        where = f"{source}:{lines[i]}" if lines is not None else f"example {i}"
        _check_record(r, where)
        pid = r["prompt_id"]
        tag = (type(pid).__name__ if not isinstance(pid, np.integer) else "int", pid)
        first = prompts.setdefault(tag, (r["prompt"], where))
        if first[0] != r["prompt"]:
            raise problem(where, pid, f"is the prompt_id of two different prompts (also at {first[1]})",
                          "give every distinct prompt its own prompt_id")
        if has_correct != ("correct" in r):
            raise ValueError(f"{where}: 'correct' is given on some records and not others; "
                             "give it on every record or on none")


def _check_record(r: Any, where: str) -> None:
    if not isinstance(r, Mapping):
        raise problem(where, r, f"is a {type(r).__name__}, not a record",
                      f"each record is an object with {list(REQUIRED_FIELDS)}")
    missing = [k for k in REQUIRED_FIELDS if k not in r]
    if missing:
        raise ValueError(f"{where} is missing {', '.join(map(repr, missing))}; every record needs {list(REQUIRED_FIELDS)}")
    pid = r["prompt_id"]
    if isinstance(pid, bool | np.bool_) or not isinstance(pid, str | int | np.integer):
        raise problem(where, pid, f"is not a valid prompt_id (a {type(pid).__name__})", "use a string or an integer")
    for k in ("prompt", "response"):
        if not isinstance(r[k], str):
            raise problem(where, r[k], f"is not a valid {k} (a {type(r[k]).__name__})", f"make {k} a string")
    if not r["response"].strip():
        raise ValueError(f"{where}: empty response for prompt_id={pid!r}; drop the record or regenerate it")
    if "correct" in r and not isinstance(r["correct"], bool | np.bool_):
        raise problem(where, r["correct"], "is not a valid 'correct' (it must be a JSON boolean)",
                      "write true or false (a string such as \"no\" would read as true)")


def fit_context(tokenizer, records: Sequence[Mapping[str, Any]], template: str, context: int | None,
                max_length: int | None, source: str = "records", flag: str = "--max-length") -> int:
    """The token limit the features run under (paper §2.1 encodes prompt + response with :func:`encode_example`).

    Without ``max_length`` a record longer than the model's ``context`` is refused, naming it, and
    the fix is ``flag``; with it, records are cut to ``max_length`` tokens on the right (the response is
    shortened; the limit is recorded in the features' sidecar as ``max_length``), which must fit the
    context and leave every record a response token. Returns the number of records that are cut.
    """
    from grace.encoding import IGNORE_INDEX, encode_example

    if max_length is not None and context is not None and max_length > context:
        raise problem(flag, max_length, f"exceeds the model's context of {context} positions",
                      f"pass {flag} {context} or less")
    limit = max_length if max_length is not None else context
    if limit is None:
        return 0
    n_cut = 0
    for i, r in enumerate(records):
        ids, labels = encode_example(tokenizer, r["prompt"], r["response"], template)
        n_prompt = sum(t == IGNORE_INDEX for t in labels)
        where = f"{source}: record {i} (prompt_id={r['prompt_id']!r})"
        if len(ids) <= limit:
            continue
        if max_length is None:
            raise ValueError(f"{where} is {len(ids)} tokens, longer than the model's context of {context}; pass "
                             f"{flag} L (L <= {context}) to cut long responses on the right, or drop the record")
        if n_prompt >= max_length:
            raise ValueError(f"{where}: its prompt alone is {n_prompt} tokens, so {flag} {max_length} leaves no "
                             f"response token; raise {flag} or drop the record")
        n_cut += 1
    return n_cut


# ---------------------------------------------------------------------------------------------------
# Numbers, names, paths, devices
# ---------------------------------------------------------------------------------------------------
def cli_int(lo: int = 1):
    """An argparse ``type``: an integer ``>= lo`` (a count where 0 or less makes no sense)."""

    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not an integer; pass a whole number >= {lo}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{v} must be >= {lo}; pass a whole number >= {lo}")
        return v

    parse.__name__ = f"int>={lo}"
    return parse


def cli_float(gt: float = 0.0):
    """An argparse ``type``: a finite number ``> gt``."""

    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not a number; pass a number > {gt:g}") from None
        if not np.isfinite(v) or v <= gt:
            raise argparse.ArgumentTypeError(f"{v:g} must be > {gt:g}; pass a finite number > {gt:g}")
        return v

    parse.__name__ = f"float>{gt:g}"
    return parse


def safe_name(name: Any, where: str) -> str:
    """``name`` if it is one safe path component (it names a directory under ``--out``), else an error."""
    if not isinstance(name, str) or not name.strip():
        raise problem(where, name, "is not a usable name (it becomes a directory name)", "give a non-empty name")
    if any(sep in name for sep in ("/", "\\", os.sep, "\0")) or name in (".", "..") or name != name.strip():
        raise problem(where, name, "is not a safe name: it would write outside its directory",
                      "use letters, digits, '-', '_', '.' or '@' (no path separators, not '.' or '..')")
    return name


def _probe(directory: Path, where: str, value: Any) -> None:
    """Create ``directory`` and a file in it, or raise naming ``where``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise problem(where, str(value), f"cannot be written ({e.strerror or e})",
                      "choose a directory you can write to") from None


def output_dir(path: str | os.PathLike, where: str = "--out") -> Path:
    """A writable directory at ``path`` (created now, before any work), not an existing file."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise problem(where, str(path), "is an existing file, not a directory", "pass a directory path")
    _probe(p, where, path)
    return p


def output_file(path: str | os.PathLike, where: str = "--out") -> Path:
    """A file path whose directory is writable (checked now, before any work), not an existing directory."""
    p = Path(path)
    if p.is_dir():
        raise problem(where, str(path), "is an existing directory, not a file", "pass a file path")
    _probe(p.parent if str(p.parent) else Path("."), where, path)
    return p


def check_device(device: Any, where: str, available: bool = True) -> str:
    """``device`` if torch knows it (``cpu``, ``cuda``, ``cuda:1``, ``mps``) and, with ``available``, can use it."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise problem(where, device, "is not a device", f"use one of {list(DEVICE_TYPES)} (e.g. cuda:0)")
    if available and dev.type == "cuda" and not (torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()):
        raise problem(where, device, f"is not available here ({torch.cuda.device_count()} CUDA devices visible)",
                      "use cpu, or run where that GPU is visible")
    if available and dev.type == "mps" and not torch.backends.mps.is_available():
        raise problem(where, device, "is not available here", "use cpu")
    return str(device)


# ---------------------------------------------------------------------------------------------------
# Models and YAML files
# ---------------------------------------------------------------------------------------------------
def model_source(spec: str | os.PathLike, where: str) -> None:
    """Refuse a local model directory that lacks its config, safetensors weights or tokenizer files.

    A path that does not exist and is no Hub id (``org/name``) nor a :mod:`grace.sources` name is
    refused too. A Hub id cannot be checked without a network; :func:`loading` names its failure.
    """
    from grace.sources import SOURCES

    p, s = Path(spec).expanduser(), str(spec)
    if not p.exists() and s not in SOURCES and (s.startswith((".", "/", "~")) or s.count("/") != 1):
        raise problem(where, s, "is not a model directory, and not a Hub id of the form org/name",
                      f"pass an existing directory, a Hub id, or one of {sorted(SOURCES)}")
    if p.is_file():
        raise problem(where, s, "is a file, not a model directory", "pass the directory that holds config.json")
    if not p.is_dir():
        if s not in SOURCES and not _hub_cached(s) and not _hub_reachable():
            raise problem(where, s, "is a Hub id that is not in the local Hugging Face cache, and the Hub cannot "
                          "be reached from here (offline mode or no network)",
                          "download it once where there is a network (it is then cached), or pass a local "
                          "model directory")
        return
    if not (p / "config.json").exists():
        raise problem(where, str(spec), "is a directory without config.json, not a model",
                      "pass the directory a model was saved to (save_pretrained) or a Hub id")
    if not any(any(p.glob(g)) for g in WEIGHT_GLOBS):
        extra = " (it has pytorch_model.bin: convert it to safetensors)" if any(p.glob("*.bin")) else ""
        raise problem(where, str(spec), f"has no *.safetensors weights{extra}",
                      "save the model there with save_pretrained(safe_serialization=True)")
    if not any((p / f).exists() for f in TOKENIZER_FILES):
        raise problem(where, str(spec), f"has no tokenizer files (one of {list(TOKENIZER_FILES)})",
                      "save the tokenizer there too (tokenizer.save_pretrained)")


def _hub_cached(repo_id: str) -> bool:
    """Whether the Hub model ``repo_id`` has a config in the local cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an id huggingface_hub refuses: from_pretrained names the problem
        return True


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hub's host answers a TCP connection within ``timeout_s`` (and offline mode is off):
    a quick probe, so that a missing network is one line instead of a minute of retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


@contextmanager
def loading(spec: str | os.PathLike, where: str) -> Iterator[None]:
    """Turn a failed ``from_pretrained`` of ``spec`` (no network for a Hub id, a wrong id) into one clear error."""
    try:
        yield
    except OSError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise problem(where, str(spec), f"could not be loaded ({first[:200]})",
                      "pass a local model directory, or check the Hub id and the network (a Hub id needs "
                      "one the first time; then it is cached)") from None


def yaml_mapping(path: str | os.PathLike, what: str = "profile") -> dict[str, Any]:
    """The YAML mapping in ``path``; a syntax error is ``path:line:col``, and a list, scalar or empty file an error."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise ValueError(f"{at}: YAML syntax error ({getattr(e, 'problem', None) or e}); fix the {what} file "
                         "there (indentation, a missing ':' or an unclosed quote)") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ValueError(f"{path}: the {what} file is {kind}, not a mapping of keys; copy one from "
                         "grace/profiles/ (e.g. quick.yaml) and edit it")
    return data


__all__ = ["DEVICE_TYPES", "REQUIRED_FIELDS", "TOKENIZER_FILES", "WEIGHT_GLOBS", "check_device", "check_records",
           "cli_float", "cli_int", "fit_context", "loading", "model_source", "output_dir", "output_file",
           "problem", "safe_name", "yaml_mapping"]
