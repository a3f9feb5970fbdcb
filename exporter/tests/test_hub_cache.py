"""A Hub id exported from a Hugging Face cache laid out as huggingface_hub writes it (blobs, relative snapshot
symlinks, refs, the commit's tree listing), with HF_HUB_OFFLINE=1 and HF_HUB_CACHE: the export goes through
huggingface_hub's snapshot_download exactly as an online run does, revisions included, with no network.

The layout itself is checked against huggingface_hub (scan_cache_dir, hf_hub_download with local_files_only);
the exported TorchScript is compared with transformers' model loaded from the original local folder."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from conftest import load_manifest, no_leftovers
from hub_cache import add_revision, commit_hash, repo_folder

REPO_ID = "acme-test/tiny-embedder"
MAIN = commit_hash("main")
V1 = commit_hash("v1")
#: Offline, and an endpoint nothing listens on: any attempt at the network would fail the export.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
F32 = 1e-4
BERT = dict(hidden=32, layers=2, heads=2, max_positions=64, pooling="mean", normalize=True)


@pytest.fixture(scope="module")
def hub(work):
    """Two tiny sentence-transformers BERTs (different weights) as commits of one repository (main and v1),
    and broken repositories for the error cases."""
    from exporter import checkpoints as ck

    root = work / "hub-cache-sources"
    main = ck.build_bert(root / "main", **BERT, seed=21)
    v1 = ck.build_bert(root / "v1", **BERT, seed=22)
    cache = work / "hub-cache"
    add_revision(cache, REPO_ID, main, MAIN, refs=("main",))
    add_revision(cache, REPO_ID, v1, V1, refs=("v1",))

    # the commit's tree listing names tokenizer.json, the snapshot lacks it (an interrupted download)
    snap = add_revision(cache, "acme-test/partial", main, commit_hash("partial"))
    (snap / "tokenizer.json").unlink()
    # the snapshot's weights link points to a blob that was deleted (a cache cleaned by hand), in a cache without
    # the tree listing (as huggingface_hub < 1.x wrote it), so that the exporter itself has to notice
    snap = add_revision(cache, "acme-test/dangling", main, commit_hash("dangling"), tree_listing=False)
    (snap / "model.safetensors").resolve().unlink()
    # as older huggingface_hub versions wrote it (no tree listing), and without the weights
    snap = add_revision(cache, "acme-test/no-weights", main, commit_hash("no-weights"), tree_listing=False)
    (snap / "model.safetensors").unlink()
    return {"cache": cache, "main": main, "v1": v1}


def _env(hub) -> dict:
    return {**OFFLINE, "HF_HUB_CACHE": str(hub["cache"])}


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_is_what_huggingface_hub_reads(hub):
    """The oracle for the layout: huggingface_hub's own cache scanner and offline download."""
    from huggingface_hub import hf_hub_download, scan_cache_dir

    info = scan_cache_dir(hub["cache"])
    repo = next(r for r in info.repos if r.repo_id == REPO_ID)
    assert {rev.commit_hash: set(rev.refs) for rev in repo.revisions} == {MAIN: {"main"}, V1: {"v1"}}
    main_files = {f.file_name for rev in repo.revisions if rev.commit_hash == MAIN for f in rev.files}
    assert {"config.json", "model.safetensors", "tokenizer.json", "modules.json"} <= main_files
    assert "atenspace-source.json" not in main_files  # not a file a Hub repository holds
    # the weights blob is named by its sha256 (an LFS file), config.json by its git blob sha1
    blobs = {p.name for p in (repo_folder(hub["cache"], REPO_ID) / "blobs").iterdir()}
    assert _sha256(hub["main"] / "model.safetensors") in blobs
    config = (hub["main"] / "config.json").read_bytes()
    assert hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest() in blobs
    for revision, folder in (("main", hub["main"]), ("v1", hub["v1"]), (V1, hub["v1"])):
        path = hf_hub_download(REPO_ID, "1_Pooling/config.json", revision=revision, cache_dir=hub["cache"],
                               local_files_only=True)
        assert f"/snapshots/{MAIN if folder is hub['main'] else V1}/" in path
        weights = hf_hub_download(REPO_ID, "model.safetensors", revision=revision, cache_dir=hub["cache"],
                                  local_files_only=True)
        assert _sha256(folder / "model.safetensors") == hashlib.sha256(open(weights, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def exports(cli, hub, work):
    """The same Hub id exported at main (no --revision), at the branch v1 and at v1's commit, concurrently."""
    out = work / "hub-cache-models"
    jobs = {"at-main": [], "at-v1": ["--revision", "v1"], "at-commit": ["--revision", V1]}
    handles = {name: cli.start("export", REPO_ID, "--task", "embedding", "--name", name, "--out", out,
                               "--max-batch-size", "4", *extra, env=_env(hub))
               for name, extra in jobs.items()}
    return out, {name: cli.wait(h) for name, h in handles.items()}


@pytest.mark.parametrize("name, commit, source", [("at-main", MAIN, "main"), ("at-v1", V1, "v1"),
                                                  ("at-commit", V1, "v1")])
def test_export_records_hub_id_and_resolved_commit(exports, hub, name, commit, source):
    out, results = exports
    res = results[name]
    assert res.returncode == 0, res
    m = load_manifest(out / name)
    snapshot = repo_folder(hub["cache"], REPO_ID) / "snapshots" / commit
    assert m["source"]["id"] == REPO_ID and m["source"]["revision"] == commit
    assert m["source"]["path"] == str(snapshot)
    assert m["source"]["weights_sha256"] == _sha256(hub[source] / "model.safetensors")
    assert m["weights"] == "pretrained"
    # read from the snapshot's sentence-transformers files (modules.json -> 1_Pooling, Normalize)
    assert m["embedding"] == {"pooling": "mean", "normalize": True, "dimension": BERT["hidden"]}
    assert no_leftovers(out) == []


def test_exported_module_computes_the_revision_it_names(exports, hub):
    """Independent of the exporter's own verification: model.pt vs transformers loaded from the local folders."""
    from transformers import BertModel

    out, _ = exports
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(5, 100, (2, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    types = torch.zeros_like(ids)
    with torch.no_grad():
        expected = {k: BertModel.from_pretrained(str(hub[k])).eval()(input_ids=ids, attention_mask=mask,
                                                                      token_type_ids=types).last_hidden_state
                    for k in ("main", "v1")}
        assert (expected["main"] - expected["v1"]).abs().max().item() > 0.1  # the two revisions do differ
        for name, source in (("at-main", "main"), ("at-v1", "v1"), ("at-commit", "v1")):
            got = torch.jit.load(str(out / name / "model.pt")).eval()(ids, mask, types)
            assert (got - expected[source]).abs().max().item() <= F32, name


def test_verify_re_resolves_the_recorded_revision_offline(cli, exports, hub):
    out, _ = exports
    res = cli("verify", out / "at-main", out / "at-v1", env=_env(hub))
    assert res.returncode == 0, res
    assert res.stdout.count("verify OK") == 2


def _assert_error(res, out, name, *needles):
    assert res.returncode == 1, res
    assert "Traceback" not in res.stderr, res
    assert res.stderr.startswith("error: "), res
    for needle in needles:
        assert needle.lower() in res.stderr.lower(), res
    assert not (out / name).exists()
    assert res.elapsed < 30, res  # no network retries


def test_unknown_revision_is_a_clear_error(cli, hub, work):
    out = work / "hub-cache-errors"
    res = cli("export", REPO_ID, "--task", "embedding", "--name", "x", "--out", out, "--revision", "v9",
              env=_env(hub))
    _assert_error(res, out, "x", REPO_ID, "'v9'", "not in the local Hugging Face cache", "HF_HUB_OFFLINE")


def test_file_missing_from_snapshot_is_a_clear_error(cli, hub, work):
    from huggingface_hub import __version__ as hub_version

    try:
        from huggingface_hub.errors import IncompleteSnapshotError  # noqa: F401
    except ImportError:
        pytest.skip(f"huggingface_hub {hub_version} keeps no tree listing, so it cannot tell a snapshot is partial")
    out = work / "hub-cache-errors"
    res = cli("export", "acme-test/partial", "--task", "embedding", "--name", "x", "--out", out, env=_env(hub))
    _assert_error(res, out, "x", "acme-test/partial", "only in part", "tokenizer.json")


def test_blob_missing_behind_snapshot_link_is_a_clear_error(cli, hub, work):
    out = work / "hub-cache-errors"
    res = cli("export", "acme-test/dangling", "--task", "embedding", "--name", "x", "--out", out, env=_env(hub))
    _assert_error(res, out, "x", "acme-test/dangling", "blob is missing", "model.safetensors")


def test_snapshot_without_weights_names_the_cache(cli, hub, work):
    out = work / "hub-cache-errors"
    res = cli("export", "acme-test/no-weights", "--task", "embedding", "--name", "x", "--out", out, env=_env(hub))
    _assert_error(res, out, "x", "no model weights", "Hugging Face cache snapshot of 'acme-test/no-weights'",
                  commit_hash("no-weights"))
