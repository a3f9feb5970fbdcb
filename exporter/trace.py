"""Precision conversion, tracing, freezing and saving of TorchScript modules."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

from .errors import ExportError

DTYPES = ("float32", "float16", "bfloat16")
QUANTIZATIONS = ("int8",)


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def check_precision(dtype: str, quantize: str | None, device: str) -> None:
    """Reject combinations that cannot work, before any heavy work."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ExportError("--device cuda: no CUDA device is available to this torch build (torch.cuda.is_available() is False)")
    if quantize is not None:
        if quantize not in QUANTIZATIONS:
            raise ExportError(f"--quantize {quantize} is not supported (int8)")
        if dtype != "float32":
            raise ExportError("--quantize int8 quantizes a float32 model; do not combine it with --dtype")
        if device != "cpu":
            raise ExportError("--quantize int8 is dynamic quantization for the CPU; use --device cpu")
        if not hasattr(getattr(torch, "ao", None), "quantization") or not hasattr(torch.ao.quantization, "quantize_dynamic"):
            raise ExportError(f"--quantize int8 needs torch.ao.quantization.quantize_dynamic, missing in torch {torch.__version__}")


def convert(model, dtype: str, quantize: str | None):
    """A converted copy of the float32 model (the original stays the float32 reference)."""
    import torch

    if dtype == "float32" and quantize is None:
        return model
    converted = copy.deepcopy(model)
    if quantize == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notice
            converted = torch.ao.quantization.quantize_dynamic(converted, {torch.nn.Linear}, dtype=torch.qint8)
    else:
        converted = converted.to(torch_dtype(dtype))
    return converted.eval()


def trace(module, example_inputs: tuple, what: str = "model"):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python branches; verification is the real check
        try:
            with torch.no_grad():
                return torch.jit.trace(module, example_inputs, strict=False, check_trace=False)
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"torch.jit.trace failed for the {what}: {msg}") from None


def candidates(traced):
    """(frozen, module) pairs to try, best first: torch.jit.freeze inlines weights and folds constants."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield True, torch.jit.freeze(traced.eval())
    except Exception:
        pass
    yield False, traced


def save_and_load(module, path: Path, device: str):
    """Save the TorchScript module, then load it back from disk (what the server will run)."""
    import torch

    torch.jit.save(module, str(path))
    return torch.jit.load(str(path), map_location=device).eval()
