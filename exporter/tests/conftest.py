"""Shared fixtures: tiny local checkpoints of every family (built once per session) and their exports
through the real CLI (``python -m exporter export ...`` in a subprocess, from the repository root),
exactly as a Hub model folder would be exported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # the oracle computations are tiny; avoid fighting the export subprocesses

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Small, but not the demo's sizes: the exporter must not depend on particular dimensions.
BERT = dict(hidden=32, layers=2, heads=2, max_positions=64)
BERT_ST = dict(pooling="cls", normalize=True)  # non-defaults, so the test proves modules.json was read
BERT_ST_MAX_SEQ = 48
GPT2 = dict(hidden=32, layers=3, heads=2, positions=80)
VIT = dict(image_size=24, patch=6, hidden=32, layers=2, heads=2, labels=["apple", "banana", "cherry"])
YOLOS = dict(image_size=(48, 80), patch=16, hidden=32, layers=2, heads=2, detection_tokens=7,
             labels=["person", "bicycle", "car", "dog"])


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess, elapsed: float):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed

    def __repr__(self):
        return f"<rc={self.returncode} {self.elapsed:.1f}s\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}>"


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("exporter")


class Cli:
    """Runs ``python -m exporter ARGS`` from the repository root, with an empty Hugging Face cache."""

    def __init__(self, hf_home: Path):
        self.hf_home = hf_home

    def start(self, *args, env: dict | None = None):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        full_env.update({"HF_HOME": str(self.hf_home), "HF_HUB_DISABLE_TELEMETRY": "1"})
        full_env.setdefault("OMP_NUM_THREADS", "1")  # several exports run at once on few cores
        full_env.update(env or {})
        proc = subprocess.Popen([sys.executable, "-m", "exporter", *map(str, args)], cwd=REPO, env=full_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return proc, time.monotonic()

    @staticmethod
    def wait(handle, timeout: float = 300) -> CliResult:
        proc, start = handle
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        return CliResult(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr),
                         time.monotonic() - start)

    def __call__(self, *args, env: dict | None = None, timeout: float = 300) -> CliResult:
        return self.wait(self.start(*args, env=env), timeout)


@pytest.fixture(scope="session")
def cli(work) -> Cli:
    hf_home = work / "hf-home"
    hf_home.mkdir(exist_ok=True)
    return Cli(hf_home)


@pytest.fixture(scope="session")
def checkpoints(work) -> dict[str, Path]:
    from exporter import checkpoints as ck

    root = work / "checkpoints"
    st_dir = ck.build_bert(root / "bert-st", **BERT, sentence_transformers=True, **BERT_ST, seed=1)
    cfg = st_dir / "sentence_bert_config.json"
    cfg.write_text(json.dumps({"max_seq_length": BERT_ST_MAX_SEQ, "do_lower_case": False}))
    return {
        "bert": st_dir,
        "gpt2": ck.build_gpt2(root / "gpt2", **GPT2, seed=2),
        "vit": ck.build_vit(root / "vit", **VIT, seed=3),
        "yolos": ck.build_yolos(root / "yolos", **YOLOS, seed=4),
    }


TASKS = {"bert": "embedding", "gpt2": "text-generation", "vit": "image-classification", "yolos": "object-detection"}


@pytest.fixture(scope="session")
def models_dir(work) -> Path:
    path = work / "models"
    path.mkdir(exist_ok=True)
    return path


#: extra exports (name -> (family, extra CLI args)) run together with the float32 ones
PRECISION_EXPORTS = {
    "q-bert": ("bert", ["--quantize", "int8"]),
    "bf16-gpt2": ("gpt2", ["--dtype", "bfloat16"]),
}
#: A Hub id served from the local Hugging Face cache (no network needed), exported like any Hub model.
HUB_ID = "acme-test/tiny-vit"
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _seed_hub_cache(hf_home: Path, repo_id: str, commit: str, files: list[Path]) -> None:
    """Lay files out as huggingface_hub's cache does after a download of repo_id at commit."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for f in files:
        shutil.copy(f, snapshot / f.name)


@pytest.fixture(scope="session")
def exported(cli, checkpoints, models_dir) -> dict[str, tuple[Path, CliResult]]:
    """float32 exports of all four families, the int8 / bfloat16 ones and a cached Hub id, through the CLI.
    The subprocesses run concurrently (each spends most of its time importing torch)."""
    vit = checkpoints["vit"]
    _seed_hub_cache(cli.hf_home, HUB_ID, HUB_COMMIT,
                    [vit / "config.json", vit / "model.safetensors", vit / "preprocessor_config.json"])
    jobs = {f"t-{family}": (checkpoints[family], TASKS[family], []) for family in TASKS}
    for name, (family, extra) in PRECISION_EXPORTS.items():
        jobs[name] = (checkpoints[family], TASKS[family], extra)
    jobs["hub-vit"] = (HUB_ID, "image-classification", [])
    handles = {
        name: cli.start("export", source, "--task", task, "--name", name, "--out", models_dir,
                        "--max-batch-size", "8", *extra)
        for name, (source, task, extra) in jobs.items()
    }
    return {name: (models_dir / name, cli.wait(h)) for name, h in handles.items()}


def load_manifest(folder: Path) -> dict:
    return json.loads((folder / "atenspace.json").read_text())


def no_leftovers(out: Path) -> list[str]:
    """Temporary / backup folders the exporter may have left in OUT (must be none)."""
    if not out.exists():
        return []
    return [p.name for p in out.iterdir() if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name)]


def token_ids(batch, seq, vocab, seed, pad_rows=(), pad=0, side="right", pad_id=0):
    """Random token ids (from 5 up) and their attention mask; `pad_rows` padded by `pad` on `side`."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    for r in pad_rows:
        sl = slice(seq - pad, seq) if side == "right" else slice(0, pad)
        ids[r, sl] = pad_id
        mask[r, sl] = 0
    return ids, mask
