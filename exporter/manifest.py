"""The ``atenspace.json`` manifest: building, writing and reading it. Fields: models/README.md."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from pathlib import Path

from . import MANIFEST_FORMAT, __version__
from .errors import ExportError

MANIFEST_FILE = "atenspace.json"
MODEL_FILE = "model.pt"
PAST_FILE = "model_with_past.pt"
PT2_FILE = "model.pt2"
PAST_PT2_FILE = "model_with_past.pt2"
REQUIRED = ("format", "name", "task", "architecture", "model_type", "source", "weights", "dtype", "quantization",
            "export_device", "file", "inputs", "outputs", "max_batch_size", "parameters", "file_bytes",
            "verification", "exporter")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def exporter_info() -> dict:
    import torch
    import transformers

    return {
        "version": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }


def build(*, name, task, architecture, model_type, source, weights, dtype, quantization, export_device,
          folder: Path, inputs, outputs, max_batch_size, parameters, sections: dict, verification,
          model_format: str = "torchscript", model_file: str = MODEL_FILE, pt2: dict | None = None) -> dict:
    """Assemble the manifest in documentation order; ``sections`` holds the task-specific parts."""
    file_name = model_file
    model_file = folder / model_file
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": name,
        "task": task,
        "architecture": architecture,
        "model_type": model_type,
        "source": source,
        "weights": weights,
        "dtype": dtype,
        "quantization": quantization,
        "export_device": export_device,
        "model_format": model_format,
        "file": file_name,
        "file_sha256": file_sha256(model_file),
        "inputs": inputs,
        "outputs": outputs,
        "max_batch_size": max_batch_size,
    }
    if "max_sequence_length" in sections:
        manifest["max_sequence_length"] = sections["max_sequence_length"]
    manifest["parameters"] = parameters
    manifest["file_bytes"] = model_file.stat().st_size
    if pt2 is not None:
        manifest["pt2"] = pt2
    for key in ("embedding", "generation", "tokenizer", "labels", "image"):
        if key in sections:
            manifest[key] = sections[key]
    manifest["verification"] = verification
    manifest["exporter"] = exporter_info()
    return manifest


_NUMBER_LIST = re.compile(r"\[\s*(-?[0-9][0-9.eE+-]*(?:,\s*-?[0-9][0-9.eE+-]*)*)\s*\]")


def dumps(manifest: dict) -> str:
    """Indented JSON with lists of numbers (shapes, means) kept on one line."""
    text = json.dumps(manifest, indent=2, ensure_ascii=False)
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def write(folder: Path, manifest: dict) -> None:
    text = dumps(manifest)
    (folder / MANIFEST_FILE).write_text(text, encoding="utf-8")


def read(folder: Path) -> dict:
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise ExportError(f"{folder} is not an exported model folder: no {MANIFEST_FILE}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ExportError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise ExportError(f"{path} is not a manifest object")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ExportError(f"{path}: unsupported manifest format {manifest.get('format')!r} (expected {MANIFEST_FORMAT})")
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise ExportError(f"{path} lacks field(s): {', '.join(missing)}")
    return manifest
