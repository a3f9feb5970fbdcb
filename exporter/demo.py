"""``python3 -m exporter demo``: the offline default model set.

Builds tiny random-init checkpoints of all four families under OUT/.demo-sources/ (kept, so that
``verify`` can re-check the exports later) and exports each through the same export() a Hub model
goes through. Idempotent: an existing, readable demo folder from the same exporter version whose
source is unchanged is skipped; --force re-exports.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import __version__, checkpoints
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


def run_demo(out: Path, force: bool = False) -> list[Path]:
    out = Path(out)
    sources_root = out / DEMO_SOURCES
    written = []
    for name, (task, build) in DEMO_MODELS.items():
        src = sources_root / name
        if force or not _source_ready(src):
            shutil.rmtree(src, ignore_errors=True)
            quiet()
            build(src)
        target = out / name
        if not force and _up_to_date(target, src):
            print(f"{name}: up to date in {target} (use --force to re-export)")
            written.append(target)
            continue
        start = time.perf_counter()
        export(ExportRequest(source=str(src), task=task, name=name, out=out, force=True))
        print(f"{name}: exported in {time.perf_counter() - start:.1f} s -> {target}")
        written.append(target)
    return written
