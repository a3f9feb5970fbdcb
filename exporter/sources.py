"""Resolve SOURCE (a Hub id or a local ``save_pretrained`` folder) to a local folder and describe it.

Everything here is light: no torch / transformers import, so that a bad source, a missing file or a
wrong task is reported in well under a second. A Hub id goes through huggingface_hub's snapshot_download:
online it resolves the revision and fills the cache; with HF_HUB_OFFLINE, or when a short reachability
probe fails (so that an offline machine does not retry for minutes), the same call reads the cache only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from .errors import ExportError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_FILE_SETS = (
    ("tokenizer.json",),
    ("vocab.txt",),  # WordPiece (BERT family)
    ("vocab.json", "merges.txt"),  # byte-level BPE (GPT-2, RoBERTa)
    ("tokenizer.model",),  # SentencePiece
    ("spiece.model",),
    ("sentencepiece.bpe.model",),
)
PREPROCESSOR_FILE = "preprocessor_config.json"
#: A source folder may declare how its weights were produced (written by exporter.checkpoints).
SOURCE_INFO_FILE = "atenspace-source.json"

#: Files fetched from the Hub (weights are narrowed to one format below).
HUB_PATTERNS = [
    "*.json",
    "*.txt",
    "*.model",
    "*.safetensors",
    "pytorch_model*.bin",
    "1_Pooling/*",
    "*/config.json",
]

HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")
PROBE_TIMEOUT_S = 4.0


@dataclass
class SentenceTransformersInfo:
    """What a sentence-transformers folder (modules.json) says about pooling."""

    pooling: str | None  # "mean" | "cls" | None (no Pooling module)
    pooling_raw: str | None  # the mode as written, for error messages
    normalize: bool
    max_seq_length: int | None
    transformer_path: str  # relative folder of the Transformer module ("" = root)


@dataclass
class Source:
    hub_id: str | None
    root: Path  # folder given by the user or the Hub snapshot (absolute)
    model_dir: Path  # folder holding config.json + weights (root, or a sentence-transformers subfolder)
    revision: str | None
    config: dict
    weight_files: list[str] = field(default_factory=list)  # relative to model_dir, sorted
    sentence_transformers: SentenceTransformersInfo | None = None
    declared_weights: str | None = None  # from atenspace-source.json, e.g. "random-init"

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or []
        return str(archs[0]) if archs else ""

    def has_tokenizer(self) -> bool:
        return any(all((self.model_dir / f).is_file() for f in fs) for fs in TOKENIZER_FILE_SETS)

    def has_preprocessor(self) -> bool:
        return (self.model_dir / PREPROCESSOR_FILE).is_file()

    def weights_sha256(self) -> str:
        return weights_sha256(self.model_dir, self.weight_files)


def weights_sha256(model_dir: Path, weight_files: list[str]) -> str:
    """sha256 over the bytes of the weight files, concatenated in sorted file-name order."""
    h = hashlib.sha256()
    for name in sorted(weight_files):
        with open(model_dir / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _read_json(path: Path, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ExportError(f"{what} {path} is not valid JSON: {e}") from None
    except OSError as e:
        raise ExportError(f"cannot read {what} {path}: {e.strerror}") from None
    if not isinstance(data, dict) and not isinstance(data, list):
        raise ExportError(f"{what} {path} has an unexpected layout")
    return data


def find_weight_files(model_dir: Path) -> list[str]:
    """Weight files of a save_pretrained folder; safetensors preferred over pickled .bin."""
    for index_name in WEIGHT_INDEXES:
        index = model_dir / index_name
        if index.is_file():
            data = _read_json(index, "weights index")
            shards = sorted(set((data.get("weight_map") or {}).values()))
            if not shards:
                raise ExportError(f"weights index {index} lists no shard files")
            missing = [s for s in shards if not (model_dir / s).is_file()]
            if missing:
                raise ExportError(
                    f"weights index {index} refers to missing shard(s): {', '.join(missing)}"
                )
            return shards
    for name in WEIGHT_FILES:
        if (model_dir / name).is_file():
            return [name]
    raise ExportError(
        f"no model weights in {model_dir}: expected model.safetensors, pytorch_model.bin or a sharded "
        "*.index.json (save the model with model.save_pretrained(folder))"
    )


def read_sentence_transformers(root: Path) -> SentenceTransformersInfo | None:
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return None
    modules = _read_json(modules_file, "sentence-transformers modules file")
    if not isinstance(modules, list):
        raise ExportError(f"{modules_file} should be a list of modules")
    transformer_path = ""
    pooling = pooling_raw = None
    normalize = False
    for module in sorted(modules, key=lambda m: m.get("idx", 0)):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        path = str(module.get("path", ""))
        if kind == "Transformer":
            transformer_path = path
        elif kind == "Pooling":
            cfg = _read_json(root / path / "config.json", "sentence-transformers pooling config")
            pooling_raw, pooling = _pooling_mode(cfg)
        elif kind == "Normalize":
            normalize = True
        else:
            raise ExportError(
                f"sentence-transformers module {kind!r} ({modules_file}) is not supported: the server only "
                "applies pooling and normalization on top of the encoder output"
            )
    max_seq_length = None
    st_cfg = root / transformer_path / "sentence_bert_config.json"
    if not st_cfg.is_file():
        st_cfg = root / "sentence_bert_config.json"
    if st_cfg.is_file():
        value = _read_json(st_cfg, "sentence-transformers config").get("max_seq_length")
        max_seq_length = int(value) if value else None
    return SentenceTransformersInfo(pooling, pooling_raw, normalize, max_seq_length, transformer_path)


def _pooling_mode(cfg: dict) -> tuple[str, str | None]:
    if isinstance(cfg.get("pooling_mode"), str):  # newer sentence-transformers layout
        raw = cfg["pooling_mode"]
    else:
        modes = [k[len("pooling_mode_"):] for k, v in cfg.items() if k.startswith("pooling_mode_") and v is True]
        raw = "+".join(modes) if modes else "none"
    known = {"mean": "mean", "mean_tokens": "mean", "cls": "cls", "cls_token": "cls"}
    return raw, known.get(raw)


def _local_source(root: Path, hub_id: str | None, revision: str | None) -> Source:
    root = root.resolve()
    st = read_sentence_transformers(root)
    model_dir = (root / st.transformer_path).resolve() if st else root
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise ExportError(f"no config.json in {model_dir}: SOURCE must be a folder written by save_pretrained")
    config = _read_json(config_file, "model config")
    if not config.get("model_type"):
        raise ExportError(f"{config_file} has no model_type; is this a transformers config.json?")
    weights = find_weight_files(model_dir)
    declared = None
    info_file = root / SOURCE_INFO_FILE
    if info_file.is_file():
        declared = _read_json(info_file, "source info").get("weights")
    return Source(
        hub_id=hub_id,
        root=root,
        model_dir=model_dir,
        revision=revision,
        config=config,
        weight_files=weights,
        sentence_transformers=st,
        declared_weights=declared,
    )


def looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source


def resolve(source: str, revision: str | None = None) -> Source:
    """Turn SOURCE into a local folder (downloading a Hub id when possible) and read its config."""
    path = Path(source).expanduser()
    if path.is_dir():
        if revision:
            raise ExportError(f"--revision only applies to a Hub id; {source} is a local folder")
        return _local_source(path, None, None)
    if path.exists():
        raise ExportError(f"SOURCE {source} is a file; pass the folder that contains config.json")
    if looks_like_path(source) or not HUB_ID_RE.match(source):
        raise ExportError(f"local folder {source} does not exist (and it is not a valid Hugging Face Hub id)")
    root, resolved_revision = _hub_snapshot(source, revision)
    try:
        return _local_source(root, source, resolved_revision)
    except ExportError as e:  # e.g. a snapshot that lacks its weights: say where it came from
        raise ExportError(f"{e} (the Hugging Face cache snapshot of {source!r} at commit {resolved_revision}; "
                          "download it again with network or delete the snapshot)") from None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _probe(endpoint: str) -> str | None:
    """None if a TCP connection to the Hub endpoint opens quickly, else the reason it did not."""
    url = urlparse(endpoint)
    host = url.hostname or endpoint
    port = url.port or (443 if url.scheme != "http" else 80)
    result: list[str | None] = ["timed out"]

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
                result[0] = None
        except OSError as e:
            result[0] = e.strerror or str(e) or type(e).__name__

    thread = threading.Thread(target=attempt, daemon=True)  # getaddrinfo itself can hang without DNS
    thread.start()
    thread.join(PROBE_TIMEOUT_S + 0.5)
    return result[0]


def _hub_snapshot(repo_id: str, revision: str | None) -> tuple[Path, str | None]:
    """The snapshot folder of repo_id at revision, through huggingface_hub's snapshot_download: online it
    resolves the revision on the Hub and downloads what the cache lacks; with HF_HUB_OFFLINE (or when
    the Hub cannot be reached) the very same call runs with local_files_only=True and reads the cache
    (refs/<revision> -> snapshots/<commit>/ -> ../../blobs/<hash>), so an offline export of a cached
    model takes exactly the path an online one does."""
    # Short HTTP timeouts; huggingface_hub reads these when it is first imported.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import huggingface_hub as hub
        from huggingface_hub import constants as hub_constants
        from huggingface_hub.utils import LocalEntryNotFoundError
    except ImportError:
        raise ExportError(
            f"{repo_id!r} is not a local folder and huggingface_hub is not installed; pass a local folder"
        ) from None

    advice = (
        f"no local folder {repo_id!r} exists either. To export it, pass a local folder instead: on a machine with network run "
        f"`hf download {repo_id} --local-dir DIR` (or model.save_pretrained(DIR) and "
        "tokenizer.save_pretrained(DIR)), copy DIR here and use it as SOURCE"
    )
    at = f" at revision {revision!r}" if revision else ""
    cache = hub_constants.HF_HUB_CACHE
    unreachable = None
    if not _hub_offline():
        endpoint = hub_constants.ENDPOINT
        reason = _probe(endpoint)  # no network: use the cache now rather than after minutes of retries
        if reason is not None:
            unreachable = f"cannot reach the Hugging Face Hub ({endpoint}: {reason})"
    local_only = _hub_offline() or unreachable is not None
    patterns = list(HUB_PATTERNS)
    if not local_only:
        try:  # one weights format: safetensors when the repository has it
            if any(f.endswith(".safetensors") for f in hub.list_repo_files(repo_id, revision=revision)):
                patterns.remove("pytorch_model*.bin")
        except Exception:  # noqa: BLE001 - snapshot_download below reports the real problem (or finds the cache)
            pass
    try:  # huggingface_hub >= 1.x keeps each commit's file list and says when a cached snapshot lacks files
        from huggingface_hub.errors import IncompleteSnapshotError as incomplete
    except ImportError:
        incomplete = None
    try:
        path = Path(hub.snapshot_download(repo_id, revision=revision, allow_patterns=patterns,
                                          local_files_only=local_only))
    except LocalEntryNotFoundError as e:
        if incomplete is not None and isinstance(e, incomplete):  # the cached tree listing names a missing file
            raise ExportError(f"the Hugging Face cache ({cache}) holds {repo_id!r}{at} only in part: "
                              f"{_first_line(e)}") from None
        if unreachable:
            raise ExportError(f"{unreachable} to download {repo_id!r}{at}, and it is not in the local Hugging Face "
                              f"cache ({cache}); {advice}") from None
        if _hub_offline():
            raise ExportError(f"{repo_id!r}{at} is not in the local Hugging Face cache ({cache}) and HF_HUB_OFFLINE "
                              f"is set; {advice}") from None
        raise ExportError(f"could not download {repo_id!r}{at} from the Hub: {_first_line(e)}; {advice}") from None
    except Exception as e:  # RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError, HTTP errors
        raise ExportError(f"could not download {repo_id!r}{at} from the Hub: {_first_line(e)}; {advice}") from None
    if unreachable:
        print(f"note: {unreachable}; using the cached snapshot {path}", file=sys.stderr)
    _check_snapshot_links(path, repo_id, at)
    return path, _snapshot_revision(path, revision)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _check_snapshot_links(snapshot: Path, repo_id: str, at: str) -> None:
    """A snapshot file is a symlink to ../../blobs/<hash>; one whose blob is gone cannot be read."""
    dangling = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_symlink() and not p.exists())
    if dangling:
        raise ExportError(f"the Hugging Face cache snapshot {snapshot} of {repo_id!r}{at} has file(s) whose blob is "
                          f"missing: {', '.join(dangling)}; download it again with network (or delete the snapshot)")


def _snapshot_revision(path: Path, requested: str | None) -> str | None:
    # Cache layout: .../snapshots/<commit sha>/
    name = path.name
    if path.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", name):
        return name
    return requested
