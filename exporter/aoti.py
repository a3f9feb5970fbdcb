"""The .pt2 format: torch.export with dynamic dimensions, compiled ahead of time by AOTInductor.

export_program() runs torch.export.export with every ``-1`` dimension of the manifest's input specs
dynamic (``Dim.DYNAMIC`` under ``backed_size_oblivious``, so sizes 0 and 1 are not specialised away:
an empty past key/values cache and a batch of one run the same code); compile_package() compiles the
program with torch._inductor.aoti_compile_and_package into one .pt2 file that LibTorch loads with
torch::inductor::AOTIModelPackageLoader (no compiler needed at load time: the package holds the
compiled .so). The package's metadata carries the input names, dtypes and shape bounds and the output
structure, so the native loader can check shapes before the forward and map positional tensors in
and out. Bounds are ours, not torch.export's: AOTInductor does not check them at run time (a longer
sequence than the position embeddings silently reads past them), so the server and the addon do.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from .errors import ExportError

#: metadata keys written into the package (values must be strings)
META_INPUTS = "atenspace.inputs"
META_OUTPUTS = "atenspace.outputs"
META_RETURNS = "atenspace.returns"  # "tensor" (one tensor) or "tuple"

FORMATS = ("torchscript", "pt2")

#: Weights as one blob file in the package, loaded once into memory, rather than constants inside
#: the compiled .so: the .so's copy stays mapped and dirty after the runtime copies it out, so a
#: loaded MiniLM-size model held twice its weights (86 vs 43 MiB; 45 MiB this way; bench/RESULTS.md).
WEIGHTS_CONFIG = {"aot_inductor.package_constants_in_so": False,
                  "aot_inductor.package_constants_on_disk_format": "binary_blob"}

_OP_PATTERNS = (
    re.compile(r"OpOverload\(op='([\w.]+)', overload='(\w+)'\)"),
    re.compile(r"CustomOpDef\(([\w:.]+)\)"),
    re.compile(r"target: ([\w.:]+)"),
    re.compile(r"\b((?:aten|prims|quantized|torchvision|_quantized)(?:::|\.)\w+(?:\.\w+)?)"),
    re.compile(r"\b([a-z_][\w]*::[a-z_][\w]*)"),
)


def failing_op(error: BaseException) -> str | None:
    """The operator an export or lowering error names, if any (searched through chained causes)."""
    seen = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e)
        for pattern in _OP_PATTERNS:
            m = pattern.search(text)
            if m:
                return ".".join(g for g in m.groups() if g) if pattern.groups > 1 else m.group(1)
        e = e.__cause__ or e.__context__
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _failure(stage: str, what: str, error: BaseException) -> ExportError:
    op = failing_op(error)
    where = f" at operator {op}" if op else ""
    return ExportError(f"{stage} failed for the {what}{where}: {_first_line(error)}")


def with_bounds(specs: list[dict], bounds: list[list[tuple[int, int]]]) -> list[dict]:
    """Input specs with min_shape / max_shape (fixed dimensions have min = max = the size)."""
    out = []
    for spec, dims in zip(specs, bounds):
        if len(dims) != len(spec["shape"]):
            raise AssertionError(f"bounds of {spec['name']} have rank {len(dims)}, the spec {len(spec['shape'])}")
        out.append({**spec, "min_shape": [lo for lo, _ in dims], "max_shape": [hi for _, hi in dims]})
    return out


def _dynamic_shapes(specs: list[dict], varargs_from: int | None):
    import torch

    dyn = torch.export.Dim.DYNAMIC
    per_input = [{d: dyn for d, size in enumerate(s["shape"]) if size == -1} or None for s in specs]
    if varargs_from is None:
        return tuple(per_input)
    return (*per_input[:varargs_from], tuple(per_input[varargs_from:]))


def export_program(module, example_inputs: tuple, specs: list[dict], what: str = "model", varargs_from: int | None = None):
    """torch.export.export with every -1 dimension of `specs` dynamic. Raises ExportError naming the operator."""
    import torch
    import torch.fx.experimental._config as fx_config

    shapes = _dynamic_shapes(specs, varargs_from)
    try:
        with torch.no_grad(), fx_config.patch(backed_size_oblivious=True):
            return torch.export.export(module, tuple(example_inputs), dynamic_shapes=shapes, strict=False)
    except Exception as e:
        raise _failure("torch.export", what, e) from None


def input_symbols(program) -> list[list[str | None]]:
    """Per user input, the symbol of each dimension in the exported program (None when static or an
    expression). Dimensions sharing a symbol must be equal at run time: the compiled code assumes it."""
    import torch

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    out = []
    for name in program.graph_signature.user_inputs:
        val = placeholders[name].meta.get("val")
        dims = []
        for size in getattr(val, "shape", ()):
            expr = size.node.expr if isinstance(size, torch.SymInt) else None
            dims.append(str(expr) if expr is not None and expr.is_Symbol else None)
        out.append(dims)
    return out


def metadata(inputs: list[dict], outputs: list[dict], program) -> dict[str, str]:
    """What the native loader reads from the package: input specs with bounds and shared dimensions,
    output names, structure."""
    returns = "tensor" if program.call_spec.out_spec.is_leaf() else "tuple"
    keep = ("name", "dtype", "shape", "min_shape", "max_shape")
    symbols = input_symbols(program)
    if len(symbols) != len(inputs):
        raise ExportError(f"the exported program takes {len(symbols)} inputs, the manifest declares {len(inputs)}")
    return {
        META_INPUTS: json.dumps([{**{k: s[k] for k in keep if k in s}, "symbols": dims} for s, dims in zip(inputs, symbols)]),
        META_OUTPUTS: json.dumps([{k: s[k] for k in ("name", "dtype", "shape")} for s in outputs]),
        META_RETURNS: returns,
    }


def compile_threads() -> int:
    """OpenMP threads the compiled CPU kernels are specialised for (Inductor's cpp.threads, else torch's)."""
    from torch._inductor.utils import parallel_num_threads

    return int(parallel_num_threads())


def compile_package(program, path: Path, meta: dict[str, str], what: str = "model", freezing: bool = True) -> dict:
    """AOTInductor-compile `program` into the .pt2 file at `path`; returns facts for the manifest."""
    import torch
    import torch._inductor

    configs = {"aot_inductor.metadata": dict(meta), "freezing": bool(freezing), "max_autotune": False, **WEIGHTS_CONFIG}
    start = time.perf_counter()
    try:
        with torch.no_grad():
            torch._inductor.aoti_compile_and_package(program, package_path=str(path), inductor_configs=configs)
    except Exception as e:
        Path(path).unlink(missing_ok=True)
        raise _failure("AOTInductor compilation", what, e) from None
    return {"freezing": bool(freezing), "threads": compile_threads(), "weights": "binary_blob",
            "compile_seconds": round(time.perf_counter() - start, 1)}


class LoadedPackage:
    """A loaded .pt2 called like a module: positional tensors in, one tensor or a tuple out."""

    def __init__(self, runner, returns: str):
        self.runner = runner
        self.returns = returns

    def __call__(self, *inputs):
        out = self.runner(*inputs)
        if self.returns == "tensor" and isinstance(out, (list, tuple)):
            return out[0]
        return tuple(out) if isinstance(out, list) else out

    def metadata(self) -> dict[str, str]:
        return dict(self.runner.get_metadata())


def load_package(path: Path, what: str = "model") -> LoadedPackage:
    """Load a .pt2 the way the server will (the package says its device)."""
    import torch._inductor

    try:
        runner = torch._inductor.aoti_load_package(str(path))
    except Exception as e:
        raise ExportError(f"cannot load {path} with torch._inductor.aoti_load_package: {_first_line(e)}") from None
    meta = runner.get_metadata()
    return LoadedPackage(runner, meta.get(META_RETURNS, "tuple"))


def package_facts(loaded: LoadedPackage) -> dict:
    """The platform the package was compiled for, from AOTInductor's own metadata."""
    meta = loaded.metadata()
    return {"device": meta.get("AOTI_DEVICE_KEY", "cpu"), "cpu_isa": meta.get("AOTI_CPU_ISA") or None,
            "platform": meta.get("AOTI_PLATFORM"), "machine": meta.get("AOTI_MACHINE")}


# --------------------------------------------------------------------------------------------
# bounds of each family's dynamic dimensions
# --------------------------------------------------------------------------------------------


def main_bounds(family, specs: list[dict], max_batch_size: int, example_sets: list[tuple]) -> list[list[tuple[int, int]]]:
    """(min, max) per dimension of each input of the main module.

    Batch: 1..max_batch_size. Token inputs: 1..max_sequence_length. Images with a dynamic size
    (YOLOS): one patch up to the longest edge the image processor produces (rounded up to its
    multiple_of), and at least the sizes the export is verified at.
    """
    bounds = []
    for index, spec in enumerate(specs):
        dims = []
        for d, size in enumerate(spec["shape"]):
            if size != -1:
                dims.append((size, size))
            elif d == 0:
                dims.append((1, max_batch_size))
            elif family.text:
                dims.append((1, int(family.max_sequence_length)))
            else:
                image = family.image
                edge = max(int(image.get("longest_edge") or 0), family.model_h, family.model_w)
                multiple = int(image.get("multiple_of") or 1)
                edge = -(-edge // multiple) * multiple
                seen = max(int(s[index].shape[d]) for s in example_sets)
                dims.append((int(family.patch), max(edge, seen)))
        bounds.append(dims)
    return bounds


def past_bounds(family, specs: list[dict], max_batch_size: int) -> list[list[tuple[int, int]]]:
    """The incremental-decoding module: new tokens 1..L, the mask (past + new) 1..L, past 0..L-1."""
    limit = int(family.max_sequence_length)
    bounds = []
    for spec in specs:
        if spec["name"] in ("input_ids", "attention_mask"):
            bounds.append([(1, max_batch_size), (1, limit)])
        else:  # past_key_i / past_value_i: [batch, heads, past, head_dim]
            bounds.append([(1, max_batch_size), (spec["shape"][1], spec["shape"][1]), (0, limit - 1),
                           (spec["shape"][3], spec["shape"][3])])
    return bounds
