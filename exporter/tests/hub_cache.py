"""Lay a local checkpoint out in a Hugging Face cache exactly as huggingface_hub writes it after a download.

    HF_HUB_CACHE/models--ORG--NAME/
        blobs/<hash>                        the file's bytes; <hash> is the ETag the Hub sends: the sha256 of an
                                            LFS file (weights), the git blob sha1 of any other file
        refs/<revision>                     the commit hash a branch or tag pointed to (no newline)
        snapshots/<commit>/<path>           relative symlink to ../../blobs/<hash> (one more ../ per subfolder)
        trees/<commit>.json                 the commit's file listing (huggingface_hub >= 1.x)

Test helper only: the tests check the layout with huggingface_hub's own scan_cache_dir / hf_hub_download.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

#: Stored through git LFS on the Hub (the .gitattributes of a new Hub repository covers these).
LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".pt", ".h5", ".onnx")
#: Local bookkeeping that a Hub repository does not hold.
NOT_ON_HUB = ("atenspace-source.json",)


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def repo_folder(cache: Path, repo_id: str) -> Path:
    return Path(cache) / ("models--" + repo_id.replace("/", "--"))


def add_revision(cache: Path, repo_id: str, folder: Path, commit: str, refs: tuple[str, ...] = ("main",),
                 tree_listing: bool = True) -> Path:
    """Add FOLDER's files as commit COMMIT of REPO_ID, pointed to by REFS; returns the snapshot folder."""
    repo = repo_folder(cache, repo_id)
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    listing = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in NOT_ON_HUB:
            continue
        data = path.read_bytes()
        lfs = rel.endswith(LFS_SUFFIXES)
        if lfs:
            etag = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{etag}\nsize {len(data)}\n".encode()
            listing[rel] = {"size": len(data), "blob_id": git_blob_sha1(pointer), "lfs_sha256": etag,
                            "lfs_size": len(data)}
        else:
            etag = git_blob_sha1(data)
            listing[rel] = {"size": len(data), "blob_id": etag}
        blob = repo / "blobs" / etag
        if not blob.exists():
            blob.write_bytes(data)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    if tree_listing:
        (repo / "trees").mkdir(exist_ok=True)
        (repo / "trees" / f"{commit}.json").write_text(json.dumps({"format_version": 1, "files": listing}, indent=2))
    return snapshot


def commit_hash(label: str) -> str:
    """A 40-hex commit hash, stable per label."""
    return hashlib.sha1(label.encode()).hexdigest()
