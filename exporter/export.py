"""The export pipeline (used by the CLI, the demo and the tests alike) and re-verification of a folder.

export(): resolve SOURCE -> check task and files -> load with transformers -> write tokenizer /
image-processor files -> convert precision -> trace -> save model.pt -> load it back and compare with
transformers eager at shapes other than the traced one -> (GPT-2) try the incremental-decoding module
-> manifest -> atomic rename of the temporary folder. With format "pt2", torch.export (dynamic batch
and sequence or image dimensions, bounds in the manifest) and AOTInductor replace trace and save:
model.pt2 (and model_with_past.pt2), verified the same way (exporter/aoti.py). Any failure removes the temporary folder, so
models/NAME is either the previous complete folder or a new complete one, never half-written.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import aoti
from . import manifest as mf
from . import sources
from . import trace as tr
from . import verify as vf
from .errors import ExportError
from .families import FAMILIES, Options, TextGeneration

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class ExportRequest:
    source: str
    task: str
    name: str
    out: Path = Path("models")
    dtype: str = "float32"
    quantize: str | None = None
    device: str = "cpu"
    max_length: int | None = None
    revision: str | None = None
    max_batch_size: int = 32
    pooling: str | None = None
    normalize: bool | None = None
    tolerance: float | None = None
    force: bool = False
    past: bool = True
    #: write OUT/NAME/<version>/ (a numbered version folder) instead of OUT/NAME/
    version: int | None = None
    format: str = "torchscript"
    #: pt2: Inductor's freezing (weights become constants of the compiled graph, folded where they can)
    pt2_freezing: bool = True


def quiet() -> None:
    """Silence tracer / transformers chatter; the exporter reports what matters itself."""
    warnings.filterwarnings("ignore")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except Exception:
        pass


def _check_request(req: ExportRequest) -> None:
    if not NAME_RE.match(req.name):
        raise ExportError(f"invalid --name {req.name!r}: use letters, digits, '.', '_' and '-' (not starting with '.')")
    if req.task not in FAMILIES:
        raise ExportError(f"unknown --task {req.task!r} (one of {', '.join(FAMILIES)})")
    if req.dtype not in tr.DTYPES:
        raise ExportError(f"unknown --dtype {req.dtype!r} (one of {', '.join(tr.DTYPES)})")
    if req.max_batch_size < 1:
        raise ExportError("--max-batch-size must be at least 1")
    if req.max_length is not None and req.max_length < 4:
        raise ExportError("--max-length must be at least 4")
    if req.tolerance is not None and not req.tolerance > 0:
        raise ExportError("--tolerance must be positive")
    if req.task != "embedding" and (req.pooling is not None or req.normalize is not None):
        raise ExportError("--pooling / --normalize only apply to --task embedding")
    if req.format not in aoti.FORMATS:
        raise ExportError(f"unknown --format {req.format!r} (one of {', '.join(aoti.FORMATS)})")
    if req.format == "pt2" and req.quantize is not None:
        raise ExportError("--format pt2 does not support --quantize int8 (dynamic quantization is a TorchScript "
                          "feature); export float32, float16 or bfloat16")


def export(req: ExportRequest, log: Callable[[str], None] = print) -> dict:
    """Export SOURCE into req.out/req.name; returns the manifest. Raises ExportError (nothing written)."""
    _check_request(req)
    out = Path(req.out)
    final = out / req.name if req.version is None else out / req.name / str(req.version)
    if final.exists() and not req.force:
        raise ExportError(f"{final} already exists; pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is not a folder")
    if req.version is not None and req.version < 1:
        raise ExportError("--version must be a positive integer")
    if req.version is not None and (out / req.name / "atenspace.json").exists():
        raise ExportError(f"{out / req.name} holds an unversioned export; move its files into {out / req.name / '1'} "
                          f"before adding version {req.version}")

    source = sources.resolve(req.source, req.revision)  # fast: config.json + file checks only
    options = Options(task=req.task, dtype=req.dtype, quantize=req.quantize, device=req.device,
                      max_length=req.max_length, max_batch_size=req.max_batch_size,
                      pooling=req.pooling, normalize=req.normalize)
    family = FAMILIES[req.task](source, options)
    family.check_config()
    family.check_files()
    if source.declared_weights not in (None, "pretrained", "random-init"):
        raise ExportError(f"{sources.SOURCE_INFO_FILE} declares unknown weights {source.declared_weights!r}")

    quiet()
    tr.check_precision(req.dtype, req.quantize, req.device)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        manifest = _export_into(tmp, req, source, family, log)
        _install(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _install(tmp: Path, final: Path) -> None:
    """Atomically move the finished folder into place (replacing a previous export)."""
    os.chmod(tmp, 0o755)  # mkdtemp creates 0700; the server may run as another user
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
        try:
            os.rename(tmp, final)
        except OSError:
            os.rename(old, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


def _export_into(tmp: Path, req: ExportRequest, source, family, log) -> dict:
    import torch

    precision = vf.precision_key(req.dtype, req.quantize)
    log(f"exporting {req.source} ({source.model_type}) as {req.task} -> {Path(req.out) / req.name}"
        + (f" version {req.version}" if req.version is not None else ""))
    weights_sha = source.weights_sha256()
    with torch.no_grad():
        model = family.load().to(req.device)  # float32 reference, transformers eager
        parameters = sum(p.numel() for p in model.parameters())
        sections = family.write_preprocessing(tmp)
        shutil.copyfile(source.model_dir / "config.json", tmp / "config.json")
        export_model = tr.convert(model, req.dtype, req.quantize)

        input_names = [i["name"] for i in family.input_specs()]
        output_names = [o["name"] for o in family.output_specs()]
        trace_inputs = tuple(t.to(req.device) for t in family.trace_inputs())
        verify_inputs = family.verify_inputs()
        input_specs = family.input_specs()
        pt2 = None

        def verified(loaded, what):
            checks = vf.compare(loaded, lambda x: family.reference(model, x), verify_inputs, input_names,
                                output_names, precision, req.tolerance, req.device, what=what)
            same = []
            if precision != "float32":
                same = vf.compare(loaded, lambda x: family.reference(export_model, x), verify_inputs, input_names,
                                  output_names, precision, req.tolerance, req.device,
                                  what=f"{what} (vs {precision} eager)")
            return checks, same

        if req.format == "pt2":
            model_file = mf.PT2_FILE
            input_specs = aoti.with_bounds(input_specs, aoti.main_bounds(family, input_specs, req.max_batch_size,
                                                                         [trace_inputs, *verify_inputs]))
            try:
                program = aoti.export_program(family.wrap(export_model), trace_inputs, input_specs)
                meta = aoti.metadata(input_specs, family.output_specs(), program)
                log(f"  torch.export done; compiling {model_file} with AOTInductor (freezing {req.pt2_freezing})")
                pt2 = aoti.compile_package(program, tmp / model_file, meta, freezing=req.pt2_freezing)
                loaded = aoti.load_package(tmp / model_file)
                pt2.update(aoti.package_facts(loaded))
                checks, same = verified(loaded, model_file)
            except ExportError as e:
                raise ExportError(f"{e}; no model folder was written") from None
            frozen = req.pt2_freezing
        else:
            model_file = mf.MODEL_FILE
            traced = tr.trace(family.wrap(export_model), trace_inputs)
            result = None
            errors = []
            for frozen, module in tr.candidates(traced):
                loaded = tr.save_and_load(module, tmp / mf.MODEL_FILE, req.device)
                try:
                    checks, same = verified(loaded, mf.MODEL_FILE)
                    result = (frozen, loaded, checks, same)
                    break
                except ExportError as e:
                    errors.append(str(e))
            if result is None:
                raise ExportError(errors[-1] + "; no model folder was written")
            frozen, loaded, checks, same = result

        timing_inputs = tuple(t.to(req.device) for t in verify_inputs[-1])
        eager_ms = vf.time_ms(lambda *x: family.reference(export_model, x), timing_inputs)
        ts_ms = vf.time_ms(loaded, timing_inputs)

        past_info = False
        if isinstance(family, TextGeneration):
            if req.past:
                past_info = _export_past(tmp, req, family, export_model, precision, log)
            sections["generation"]["past_key_values"] = past_info

    worst = vf.worst(checks)
    verification = {
        "max_abs_diff": worst.max_abs_diff,
        "tolerance": worst.tolerance,
        "max_ratio": round(vf.max_ratio(checks), 6),
        "tolerance_rule": _rule_text(precision, req.tolerance),
        "reference": "transformers eager, float32",
        "shapes": [vf.shape_of(input_names, v) for v in verify_inputs],
        "trace_shape": vf.shape_of(input_names, trace_inputs),
        "checks": [c.to_json() for c in checks],
        "eager_ms": eager_ms,
        ("pt2_ms" if pt2 else "torchscript_ms"): ts_ms,
        "timing_shape": vf.shape_of(input_names, timing_inputs),
        "frozen": frozen,
    }
    if same:
        verification["max_abs_diff_vs_same_precision_eager"] = vf.worst(same).max_abs_diff
    if getattr(family, "preprocessing_diff", None) is not None:
        verification["preprocessing_max_abs_diff"] = family.preprocessing_diff
    if family.text:
        verification["tokenizer"] = "tokenizer.json reproduces transformers' token ids"

    manifest = mf.build(
        name=req.name,
        task=req.task,
        architecture=type(model).__name__,
        model_type=source.model_type,
        source={
            "id": source.hub_id,
            "path": str(source.root),
            "revision": source.revision,
            "weights_sha256": weights_sha,
            "weights_files": list(source.weight_files),
        },
        weights=source.declared_weights or "pretrained",
        dtype=req.dtype,
        quantization="int8-dynamic" if req.quantize else None,
        export_device=req.device,
        folder=tmp,
        model_format=req.format,
        model_file=model_file,
        pt2=pt2,
        inputs=input_specs,
        outputs=family.output_specs(),
        max_batch_size=req.max_batch_size,
        parameters=parameters,
        sections=sections,
        verification=verification,
    )
    mf.write(tmp, manifest)
    _summary(manifest, same, log)
    return manifest


def _rule_text(precision: str, override: float | None) -> str:
    kind, value = vf.TOLERANCES[precision]
    value = value if override is None else override
    if kind == "absolute":
        return f"max_abs_diff <= {value:g}"
    return f"max_abs_diff <= {value:g} * max(1, max|float32 output|)"


def _export_past(tmp: Path, req: ExportRequest, family: TextGeneration, export_model, precision, log):
    """Trace + verify the incremental-decoding module; on any failure leave it out (returns False)."""
    import torch

    from .families import float_dtype

    (b, p, t), shapes = family.past_shapes()
    pt2 = req.format == "pt2"
    past_file = mf.PAST_PT2_FILE if pt2 else mf.PAST_FILE
    path = tmp / past_file
    try:
        dtype_name = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}[float_dtype(export_model)]
        inputs_spec, outputs_spec = family.past_specs(dtype_name)
        names_in = [i["name"] for i in inputs_spec]
        names_out = [o["name"] for o in outputs_spec]
        sets = [family.past_inputs(export_model, *shape, seed=20 + i) for i, shape in enumerate(shapes)]
        if pt2:
            # Example shapes with no coincidences between batch, past and new (export relates equal sizes).
            trace_inputs, _ = family.past_inputs(export_model, min(3, req.max_batch_size), min(7, family.max_sequence_length - 6),
                                                 min(5, family.max_sequence_length - 1), seed=3)
            inputs_spec = aoti.with_bounds(inputs_spec, aoti.past_bounds(family, inputs_spec, req.max_batch_size))
            program = aoti.export_program(family.wrap_with_past(export_model), tuple(x.to(req.device) for x in trace_inputs),
                                          inputs_spec, "incremental-decoding module", varargs_from=2)
            meta = aoti.metadata(inputs_spec, outputs_spec, program)
            log(f"  compiling {past_file} with AOTInductor")
            pt2_facts = aoti.compile_package(program, path, meta, "incremental-decoding module", freezing=req.pt2_freezing)
            candidates = [(req.pt2_freezing, None)]
        else:
            trace_inputs, _ = family.past_inputs(export_model, b, p, t, seed=3)
            traced = tr.trace(family.wrap_with_past(export_model), tuple(x.to(req.device) for x in trace_inputs),
                              "incremental-decoding module")
            candidates = tr.candidates(traced)
        error = None
        for frozen, module in candidates:
            loaded = aoti.load_package(path) if pt2 else tr.save_and_load(module, path, req.device)
            try:
                # 1. equal to transformers eager given the same past, at several past lengths
                checks = vf.compare(loaded, lambda x: family.reference_with_past(export_model, x), [s for s, _ in sets],
                                    names_in, names_out, precision, req.tolerance, req.device, what=past_file)
                # 2. the new tokens' logits equal a full recompute over past + new tokens
                full = [vf.max_abs_diff(*_past_vs_full(loaded, family, export_model, s, ids, req.device))
                        for s, ids in sets]
                ref_max = max(c.reference_max_abs for c in checks if c.output == "logits")
                limit = vf.bound(precision, ref_max, req.tolerance)
                if max(full) > limit:
                    raise ExportError(f"{past_file} logits differ from a full recompute by {max(full):.3g} (tolerance {limit:.3g})")
                break
            except ExportError as e:
                error = str(e)
        else:
            raise ExportError(error or "verification failed")
    except ExportError as e:
        path.unlink(missing_ok=True)
        log(f"  incremental decoding (past key/values) left out: {e}")
        return False
    worst = vf.worst(checks)
    return {
        "file": past_file,
        "file_bytes": path.stat().st_size,
        "file_sha256": mf.file_sha256(path),
        "n_layer": family.n_layer,
        "n_head": family.n_head,
        "head_dim": family.head_dim,
        "dtype": dtype_name,
        "inputs": inputs_spec,
        "outputs": outputs_spec,
        "frozen": frozen,
        **({"pt2": pt2_facts} if pt2 else {}),
        "verification": {
            "max_abs_diff": worst.max_abs_diff,
            "tolerance": worst.tolerance,
            "max_abs_diff_vs_full_recompute": max(full),
            "past_lengths": sorted({s[1] for s in shapes}),
            "shapes": [vf.shape_of(names_in[:3], s) for s, _ in sets],
        },
    }


def _past_vs_full(loaded, family, model, inputs, full_ids, device):
    """(incremental logits, full-recompute logits) at the last position (the incremental module
    returns only that one); rows are left-padded, so the last position is always a real token."""
    import torch

    inputs = tuple(x.to(device) for x in inputs)
    with torch.no_grad():
        incremental = loaded(*inputs)[0][:, -1]
        full = family.reference(model, (full_ids.to(device), inputs[1]))[0][:, -1]
    return incremental, full


def _summary(m: dict, same, log) -> None:
    v = m["verification"]
    mb = m["file_bytes"] / 1e6
    log(f"  {m['architecture']} ({m['model_type']}), {m['dtype']}"
        f"{', ' + m['quantization'] if m['quantization'] else ''}, {m['export_device']}, weights {m['weights']}")
    log(f"  parameters {m['parameters']:,}; {m['file']} {mb:.2f} MB{' (frozen)' if v['frozen'] else ''}")
    log(f"  verified at {len(v['shapes'])} untraced shapes vs transformers eager float32: max |diff| "
        f"{v['max_abs_diff']:.3g} (tolerance {v['tolerance']:.3g}; {v['tolerance_rule']})")
    if same:
        log(f"  accuracy change from {m['dtype'] if not m['quantization'] else m['quantization']}: "
            f"{v['max_abs_diff']:.3g} vs float32 eager; vs same-precision eager {v['max_abs_diff_vs_same_precision_eager']:.3g}")
    if "pt2_ms" in v:
        p = m["pt2"]
        log(f"  eager {v['eager_ms']:.2f} ms vs .pt2 {v['pt2_ms']:.2f} ms at {v['timing_shape']} "
            f"(AOTInductor, {p['device']}, freezing {p['freezing']}, compiled in {p['compile_seconds']} s)")
    else:
        log(f"  eager {v['eager_ms']:.2f} ms vs TorchScript {v['torchscript_ms']:.2f} ms at {v['timing_shape']}")
    gen = m.get("generation")
    if gen is not None:
        past = gen["past_key_values"]
        if past:
            pv = past["verification"]
            log(f"  incremental decoding: {past['file']} ({past['file_bytes'] / 1e6:.2f} MB), verified at past lengths "
                f"{pv['past_lengths']}: max |diff| {pv['max_abs_diff']:.3g}, vs full recompute {pv['max_abs_diff_vs_full_recompute']:.3g}")
        else:
            log("  incremental decoding: not exported (full recompute per token)")


# ------------------------------------------------------------------------------------------------
# verify
# ------------------------------------------------------------------------------------------------


def verify_folder(folder: Path, tolerance: float | None = None, log: Callable[[str], None] = print) -> dict:
    """Re-check an exported folder against its recorded source; raises ExportError on any mismatch."""
    folder = Path(folder)
    m = mf.read(folder)
    src_info = m["source"]
    path = src_info.get("path")
    if path and Path(path).is_dir():
        source = sources.resolve(path)
    elif src_info.get("id"):
        source = sources.resolve(src_info["id"], src_info.get("revision"))
    else:
        raise ExportError(f"the source folder recorded in {folder / mf.MANIFEST_FILE} no longer exists: {path}")
    if source.weights_sha256() != src_info.get("weights_sha256"):
        raise ExportError(f"the source weights in {source.model_dir} changed since the export (sha256 differs)")
    files = [(m["file"], m.get("file_sha256"))]
    past = (m.get("generation") or {}).get("past_key_values") or None
    if past:
        files.append((past["file"], past.get("file_sha256")))
    for name, digest in files:
        if not (folder / name).is_file():
            raise ExportError(f"{folder / name} is missing")
        if digest and mf.file_sha256(folder / name) != digest:
            raise ExportError(f"{folder / name} was modified after the export (sha256 differs from the manifest)")

    quiet()
    import torch

    device = m["export_device"] if m["export_device"] != "cuda" or torch.cuda.is_available() else "cpu"
    embedding = m.get("embedding") or {}
    options = Options(task=m["task"], dtype=m["dtype"], device=device,
                      quantize="int8" if m["quantization"] else None, max_length=m.get("max_sequence_length"),
                      max_batch_size=m["max_batch_size"], pooling=embedding.get("pooling"),
                      normalize=embedding.get("normalize"))
    family = FAMILIES[m["task"]](source, options)
    family.check_config()
    family.check_files()
    precision = vf.precision_key(m["dtype"], m["quantization"])
    with torch.no_grad():
        model = family.load().to(device)
        recorded = [{k: v for k, v in spec.items() if k not in ("min_shape", "max_shape")} for spec in m["inputs"]]
        if family.input_specs() != recorded or family.output_specs() != m["outputs"]:
            raise ExportError("the manifest's inputs/outputs do not match the source model")
        if family.text:
            family.check_tokenizer_json(folder / m["tokenizer"]["file"])
        else:
            family.check_image_spec(m["image"])
        pt2 = m.get("model_format") == "pt2"
        if pt2:
            loaded = aoti.load_package(folder / m["file"])
        else:
            try:
                loaded = torch.jit.load(str(folder / m["file"]), map_location=device).eval()
            except Exception as e:
                raise ExportError(f"cannot load {folder / m['file']} with torch.jit.load: {str(e).splitlines()[0]}") from None
        names_in = [i["name"] for i in m["inputs"]]
        names_out = [o["name"] for o in m["outputs"]]
        checks = vf.compare(loaded, lambda x: family.reference(model, x), family.verify_inputs(), names_in, names_out,
                            precision, tolerance, device)
        worst = vf.worst(checks)
        log(f"{folder}: {m['file']} matches transformers eager (max |diff| {worst.max_abs_diff:.3g}, "
            f"tolerance {worst.tolerance:.3g}) at {len(family.verify_inputs())} shapes")
        if past:
            export_model = tr.convert(model, m["dtype"], options.quantize)
            loaded_past = (aoti.load_package(folder / past["file"]) if pt2
                           else torch.jit.load(str(folder / past["file"]), map_location=device).eval())
            _, shapes = family.past_shapes()
            sets = [family.past_inputs(export_model, *s, seed=20 + i)[0] for i, s in enumerate(shapes)]
            pchecks = vf.compare(loaded_past, lambda x: family.reference_with_past(export_model, x), sets,
                                 [i["name"] for i in past["inputs"]], [o["name"] for o in past["outputs"]],
                                 precision, tolerance, device, what=past["file"])
            log(f"{folder}: {past['file']} matches transformers eager with past key/values "
                f"(max |diff| {vf.worst(pchecks).max_abs_diff:.3g})")
    return {"max_abs_diff": worst.max_abs_diff, "tolerance": worst.tolerance}
