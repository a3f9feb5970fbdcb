"""Numerical verification of a TorchScript module against transformers' eager output.

Tolerances (documented in models/README.md):

* float32: max |TorchScript - eager| <= 1e-4, absolute.
* float16 / bfloat16 / int8-dynamic: the exported module is compared with the *float32* eager model
  and must satisfy max |diff| <= rel * max(1, max |float32 output|), rel = 1e-2 / 5e-2 / 2e-1.
  It is also compared with the eager model converted the same way (same bound), which isolates
  tracing errors from precision loss.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

from .errors import ExportError

#: precision -> (kind, value); "relative" bounds scale with max(1, max |float32 reference|)
TOLERANCES = {
    "float32": ("absolute", 1e-4),
    "float16": ("relative", 1e-2),
    "bfloat16": ("relative", 5e-2),
    "int8-dynamic": ("relative", 2e-1),
}


def precision_key(dtype: str, quantization: str | None) -> str:
    return "int8-dynamic" if quantization else dtype


def bound(key: str, reference_max_abs: float, override: float | None = None) -> float:
    kind, value = TOLERANCES[key]
    value = value if override is None else override
    return value if kind == "absolute" else value * max(1.0, reference_max_abs)


@dataclass
class Check:
    shape: dict  # input name -> shape
    output: str
    max_abs_diff: float
    tolerance: float
    reference_max_abs: float

    @property
    def ratio(self) -> float:
        return self.max_abs_diff / self.tolerance if self.tolerance > 0 else (0.0 if self.max_abs_diff == 0 else float("inf"))

    def to_json(self) -> dict:
        return {k: (round(v, 9) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def as_tuple(value) -> tuple:
    import torch

    if isinstance(value, torch.Tensor):
        return (value,)
    return tuple(value)


def max_abs_diff(a, b) -> float:
    """Max |a - b| in float32 on the CPU; NaN in the same places counts as equal."""
    import torch

    a = a.detach().float().cpu()
    b = b.detach().float().cpu()
    both_nan = torch.isnan(a) & torch.isnan(b)
    diff = (a - b).abs().masked_fill(both_nan, 0.0)
    if diff.numel() == 0:
        return 0.0
    if torch.isnan(diff).any():
        return float("inf")
    return float(diff.max())


def shape_of(input_names: list[str], inputs: tuple) -> dict:
    return {n: list(t.shape) for n, t in zip(input_names, inputs)}


def compare(module, reference_fn, inputs_list, input_names, output_names, key, override=None,
            device="cpu", what="model.pt", select=None) -> list[Check]:
    """Run module and reference on every input set; raise ExportError on any shape problem or mismatch.

    reference_fn(inputs) -> tuple of tensors (transformers eager). select(inputs, output_index) may return
    a boolean mask of positions to compare (default: all).
    """
    import torch

    checks: list[Check] = []
    for inputs in inputs_list:
        inputs = tuple(t.to(device) for t in inputs)
        shape = shape_of(input_names, inputs)
        with torch.no_grad():
            expected = as_tuple(reference_fn(inputs))
            try:
                got = as_tuple(module(*inputs))
            except Exception as e:
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ExportError(
                    f"{what} fails at input shapes {shape} (traced at other shapes): tracing specialised a shape "
                    f"that this model computes in Python; {msg}"
                ) from None
        if len(got) != len(expected):
            raise ExportError(f"{what} returns {len(got)} outputs, transformers returns {len(expected)}")
        for i, (name, g, e) in enumerate(zip(output_names, got, expected)):
            if tuple(g.shape) != tuple(e.shape):
                raise ExportError(
                    f"{what} output {name!r} has shape {list(g.shape)} at input shapes {shape}, transformers gives "
                    f"{list(e.shape)}: tracing specialised a shape"
                )
            if select is not None:
                keep = select(inputs, i)
                if keep is not None:
                    g, e = g[keep], e[keep]
            ref_max = float(e.detach().float().abs().max()) if e.numel() else 0.0
            checks.append(Check(shape, name, max_abs_diff(g, e), bound(key, ref_max, override), ref_max))
    for c in checks:
        if not c.ratio <= 1.0:
            raise ExportError(
                f"{what} does not reproduce transformers: output {c.output!r} differs by {c.max_abs_diff:.3g} "
                f"(tolerance {c.tolerance:.3g}, {key}) at input shapes {c.shape}"
            )
    return checks


def worst(checks: list[Check]) -> Check:
    """The check with the largest difference (ties: the tighter tolerance)."""
    return max(checks, key=lambda c: (c.max_abs_diff, -c.tolerance))


def max_ratio(checks: list[Check]) -> float:
    """Largest max_abs_diff / tolerance over all checks (<= 1 means verified)."""
    return max(c.ratio for c in checks)


def time_ms(fn, inputs: tuple, runs: int = 5) -> float:
    """Median wall time of fn(*inputs) in milliseconds, after one warm-up call."""
    import torch

    with torch.no_grad():
        fn(*inputs)
        times = []
        for _ in range(runs):
            if inputs and inputs[0].is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn(*inputs)
            if inputs and inputs[0].is_cuda:
                torch.cuda.synchronize()
            times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)
