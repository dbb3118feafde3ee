"""Small, dependable I/O helpers shared by every stage.

Every long stage writes through these: files appear atomically (write to a temporary file in the
same directory, fsync, rename), arrays are stored as ``.npz`` with a JSON sidecar (never pickle), and
cache keys are stable hashes of JSON-serialisable configs; so is every stage's seed (:func:`seed_for`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_jsonl(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> None:
    """Atomically write records, one JSON object per line."""
    lines = [json.dumps(dict(r), sort_keys=True, default=_json_default) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_jsonl_lines(path: str | os.PathLike) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for each non-blank line of a jsonl file, each line one JSON object.

    Raises ``ValueError`` naming the file and line for a malformed line, a line that is not an object
    (a scalar or a list), or a file that is one JSON array (write one object per line instead).
    """
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                if lineno == 1 and line.startswith("["):
                    raise ValueError(f"{path}:1: the file looks like one JSON array, not jsonl; write one JSON "
                                     "object per line (e.g. jq -c '.[]' file.json > file.jsonl)") from None
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg}); fix or remove that line") from None
            if not isinstance(obj, dict):
                kind = "an array" if isinstance(obj, list) else f"a JSON {type(obj).__name__}"
                raise ValueError(f"{path}:{lineno}: {line[:60]!r} is {kind}, not an object; every line of a "
                                 "jsonl file is one {...} record (one object per line)")
            out.append((lineno, obj))
    return out


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a jsonl file of objects; a bad line raises ``ValueError`` naming the file and line (:func:`read_jsonl_lines`)."""
    return [r for _, r in read_jsonl_lines(path)]


ARRAY_CHECK_KEY = "arrays_check"
"""The sidecar key :func:`save_arrays` writes: each array's shape and dtype, and a SHA-256 of them all."""


def arrays_check(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Shapes, dtypes and a SHA-256 over names, shapes, dtypes and bytes: what a sidecar says its npz holds."""
    h = hashlib.sha256()
    shapes = {}
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        shapes[k] = {"shape": list(a.shape), "dtype": str(a.dtype)}
        h.update(json.dumps([k, shapes[k]]).encode())
        h.update(a.tobytes())
    return {"arrays": shapes, "sha256": h.hexdigest()}


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Save arrays to ``path`` (``.npz``) and ``meta`` to ``path`` with suffix ``.json``.

    The npz is written first and the sidecar last, so a sidecar's presence means both are complete.
    The sidecar also records the arrays' shapes and a hash of them (:func:`arrays_check`), which
    :func:`load_arrays` verifies.
    """
    path = Path(path)
    import io as _io

    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    write_json(path.with_suffix(".json"), {**meta, ARRAY_CHECK_KEY: arrays_check(arrays)})


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of :func:`save_arrays` (``allow_pickle=False``: a pickled or damaged file is refused).

    Raises:
        ValueError: ``path`` is not a readable npz archive of plain arrays (truncated, corrupt, or
            holding pickled objects), or its sidecar's shapes and hash disagree with the arrays; the
            message names the file and says to recompute it.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a readable npz archive of plain arrays ({type(e).__name__}); it is "
                         "corrupt, truncated or not written by grace - delete it and recompute it "
                         "(grace features ... / grace study ...)") from None
    meta = read_json(path.with_suffix(".json")) if path.with_suffix(".json").exists() else {}
    check = meta.pop(ARRAY_CHECK_KEY, None)
    if check is not None and check != arrays_check(arrays):
        raise ValueError(f"{path}: its arrays disagree with the shapes and hash in {path.with_suffix('.json').name} "
                         "(one of the two was edited or replaced); delete both and recompute them")
    return arrays, meta


def has_array_check(path: str | os.PathLike) -> bool:
    """Whether the sidecar of ``path`` records its arrays' shapes and hash (written by :func:`save_arrays`)."""
    side = Path(path).with_suffix(".json")
    return side.exists() and ARRAY_CHECK_KEY in read_json(side)


def stable_hash(obj: Any, n: int = 12) -> str:
    """A short hex digest of a JSON-serialisable object, stable across runs and machines."""
    blob = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


def seed_for(*parts: Any) -> int:
    """A 31-bit seed derived from a stage's identity (independent of execution order; §3's seeded runs)."""
    return int(stable_hash(list(parts), n=8), 16) % (2**31 - 1)




class Journal:
    """Finished batches of a long loop, on disk as they finish, so a killed run resumes where it stopped.

    ``path`` is a jsonl file: a first line ``{"key": key}`` and then one ``{"batch": b, "value": v}``
    per finished batch, each flushed and fsynced when written. Opening a journal whose key differs
    (the inputs changed) starts it afresh; a torn last line (a kill mid-write) is dropped. With
    ``path=None`` it remembers nothing (the loop just runs). A loop seeds each batch from its index,
    never from the batches before, so a resumed run gives what an uninterrupted one would.
    """

    def __init__(self, path: str | os.PathLike | None, key: Any = None):
        self.path, self.key, self.done = (Path(path) if path is not None else None), stable_hash(key), {}
        if self.path is None:
            return
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        rows = []
        for line in lines:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line
        if rows and rows[0].get("key") == self.key:
            self.done = {int(r["batch"]): r["value"] for r in rows[1:]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, "".join(json.dumps(r, default=_json_default) + "\n"
                                             for r in [{"key": self.key}, *({"batch": b, "value": v}
                                                                            for b, v in self.done.items())]))

    def __contains__(self, batch: int) -> bool:
        return batch in self.done

    def __getitem__(self, batch: int) -> Any:
        return self.done[batch]

    def add(self, batch: int, value: Any) -> None:
        """Record batch ``batch`` as finished with ``value`` (JSON-serialisable)."""
        self.done[batch] = value
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"batch": batch, "value": value}, default=_json_default) + "\n")
                f.flush()
                os.fsync(f.fileno())
