"""``python3 -m exporter demo``: the default model set, one model per task.

``--weights random`` (the default) builds tiny random-init checkpoints of all four families under
OUT/.demo-sources/ (kept, so that ``verify`` can re-check the exports later), fully offline.
``--weights pretrained`` exports real checkpoints from the Hugging Face Hub (demo_choice.PRETRAINED)
under the same names. ``--weights auto`` (what setup runs) lets demo_choice decide: DEMO_MODELS,
HF_HUB_OFFLINE and whether the Hub answers; a pretrained model that cannot be exported then falls
back to its random-init stand-in. Everything goes through the same export() any model goes through.
Idempotent: an existing, readable demo folder from the same exporter version whose source is
unchanged (the same random checkpoint, or the same Hub id) is skipped; --force re-exports.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import __version__, checkpoints
from .demo_choice import PRETRAINED, choose
from . import manifest as mf
from .errors import ExportError
from .export import ExportRequest, export, quiet
from .sources import SOURCE_INFO_FILE, find_weight_files, weights_sha256

DEMO_SOURCES = ".demo-sources"

#: name -> (task, builder)
DEMO_MODELS = {
    "demo-embedder": ("embedding", lambda d: checkpoints.build_bert(d, hidden=96, layers=2, heads=4,
                                                                     pooling="mean", normalize=True)),
    "demo-gpt2": ("text-generation", lambda d: checkpoints.build_gpt2(d, hidden=64, layers=2, heads=4, positions=256)),
    "demo-vit": ("image-classification", lambda d: checkpoints.build_vit(d, image_size=32, patch=8, hidden=64)),
    "demo-yolos": ("object-detection", lambda d: checkpoints.build_yolos(d, image_size=(64, 96), patch=16, hidden=64)),
}


def _source_ready(folder: Path) -> bool:
    try:
        return (folder / "config.json").is_file() and (folder / SOURCE_INFO_FILE).is_file() and bool(find_weight_files(folder))
    except ExportError:
        return False


def _up_to_date(model_dir: Path, source_dir: Path) -> bool:
    try:
        m = mf.read(model_dir)
        return ((model_dir / m["file"]).is_file() and m["exporter"]["version"] == __version__
                and m["source"]["weights_sha256"] == weights_sha256(source_dir, find_weight_files(source_dir)))
    except (ExportError, KeyError, OSError):
        return False


def _pretrained_up_to_date(model_dir: Path, hub_id: str) -> bool:
    try:
        m = mf.read(model_dir)
        return ((model_dir / m["file"]).is_file() and m["exporter"]["version"] == __version__
                and m["weights"] == "pretrained" and m["source"]["id"] == hub_id)
    except (ExportError, KeyError, OSError):
        return False


def _export_pretrained(out: Path, name: str, task: str, force: bool) -> Path:
    hub_id = PRETRAINED[name][0]
    target = out / name
    if not force and _pretrained_up_to_date(target, hub_id):
        print(f"{name}: {hub_id} up to date in {target} (use --force to re-export)")
        return target
    start = time.perf_counter()
    m = export(ExportRequest(source=hub_id, task=task, name=name, out=out, force=True))
    print(f"{name}: {hub_id}@{m['source']['revision']} exported in {time.perf_counter() - start:.1f} s -> {target}")
    return target


def _export_random(out: Path, name: str, task: str, build, force: bool) -> Path:
    src = out / DEMO_SOURCES / name
    if force or not _source_ready(src):
        shutil.rmtree(src, ignore_errors=True)
        quiet()
        build(src)
    target = out / name
    if not force and _up_to_date(target, src):
        print(f"{name}: up to date in {target} (use --force to re-export)")
        return target
    start = time.perf_counter()
    export(ExportRequest(source=str(src), task=task, name=name, out=out, force=True))
    print(f"{name}: exported in {time.perf_counter() - start:.1f} s -> {target}")
    return target


def run_demo(out: Path, force: bool = False, weights: str = "random") -> list[Path]:
    """Export the demo set; WEIGHTS is random, pretrained, none or auto (demo_choice.choose decides)."""
    out = Path(out)
    fallback = weights == "auto"
    if fallback:
        choice = choose()
        print(choice)
        weights = choice.kind
    if weights == "none":
        return []
    written = []
    for name, (task, build) in DEMO_MODELS.items():
        if weights == "pretrained":
            try:
                written.append(_export_pretrained(out, name, task, force))
                continue
            except ExportError as e:
                if not fallback:
                    raise
                print(f"{name}: {PRETRAINED[name][0]} could not be exported ({e}); exporting the random-init one")
        written.append(_export_random(out, name, task, build, force))
    return written
