"""Failures: a clear message on stderr, a non-zero exit, no traceback and no model folder left behind."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from conftest import no_leftovers


def _assert_clean_failure(res, out, name, *needles):
    assert res.returncode != 0, res
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res
    err = res.stderr.lower()
    assert err.startswith("error: "), res
    for needle in needles:
        assert needle.lower() in err, res
    assert not (out / name).exists()
    assert no_leftovers(out) == []


@pytest.fixture(scope="session")
def broken(work, checkpoints):
    """Variants of the good checkpoints with one thing wrong or missing, plus foreign architectures."""
    import torch
    from transformers import OPTConfig, OPTForCausalLM, T5Config, T5Model

    root = work / "broken"
    root.mkdir(exist_ok=True)
    no_weights = root / "no-weights"
    shutil.copytree(checkpoints["bert"], no_weights)
    (no_weights / "model.safetensors").unlink()
    no_tokenizer = root / "no-tokenizer"
    shutil.copytree(checkpoints["gpt2"], no_tokenizer)
    for f in no_tokenizer.glob("tokenizer*"):
        f.unlink()
    no_processor = root / "no-processor"
    shutil.copytree(checkpoints["yolos"], no_processor)
    (no_processor / "preprocessor_config.json").unlink()

    torch.manual_seed(0)
    opt = root / "opt"
    OPTForCausalLM(OPTConfig(vocab_size=400, hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2,
                             word_embed_proj_dim=16, max_position_embeddings=64)).save_pretrained(str(opt))
    for f in checkpoints["gpt2"].glob("tokenizer*"):
        shutil.copy(f, opt)
    t5 = root / "t5"
    T5Model(T5Config(vocab_size=400, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)).save_pretrained(str(t5))
    for f in checkpoints["bert"].glob("tokenizer*"):
        shutil.copy(f, t5)
    return {"no-weights": no_weights, "no-tokenizer": no_tokenizer, "no-processor": no_processor, "opt": opt, "t5": t5}


@pytest.mark.parametrize(
    "case, task, needles",
    [
        ("opt", "text-generation", ["unsupported architecture", "OPTForCausalLM", "GPT2LMHeadModel"]),
        ("t5", "embedding", ["unsupported architecture", "T5Model", "encoder"]),
        ("no-weights", "embedding", ["no model weights", "model.safetensors"]),
        ("no-tokenizer", "text-generation", ["no tokenizer files", "tokenizer.json"]),
        ("no-processor", "object-detection", ["preprocessor_config.json"]),
    ],
)
def test_bad_checkpoints_fail_cleanly(cli, broken, work, case, task, needles):
    out = work / "error-models"
    res = cli("export", broken[case], "--task", task, "--name", f"e-{case}", "--out", out)
    _assert_clean_failure(res, out, f"e-{case}", *needles)


@pytest.mark.parametrize(
    "family, task, needles",
    [
        ("bert", "object-detection", ["wrong task", "yolos", "'bert'", "--task embedding"]),
        ("gpt2", "embedding", ["wrong task", "'gpt2'", "--task text-generation"]),
        ("vit", "object-detection", ["wrong task", "--task image-classification"]),
        ("yolos", "text-generation", ["wrong task", "--task object-detection"]),
    ],
)
def test_wrong_task_fails_cleanly(cli, checkpoints, work, family, task, needles):
    out = work / "error-models"
    res = cli("export", checkpoints[family], "--task", task, "--name", f"w-{family}", "--out", out)
    _assert_clean_failure(res, out, f"w-{family}", *needles)
    assert res.elapsed < 10  # detected from config.json, before transformers is even imported


@pytest.mark.parametrize("offline_env", [{}, {"HF_HUB_OFFLINE": "1"}])
def test_unreachable_hub_id_fails_fast(cli, work, offline_env):
    out = work / "error-models"
    res = cli("export", "atenspace-test/no-such-model", "--task", "embedding", "--name", "hub", "--out", out,
              env=offline_env, timeout=120)
    _assert_clean_failure(res, out, "hub", "atenspace-test/no-such-model", "local folder")
    assert res.elapsed < 20, res


def test_missing_local_folder(cli, work):
    out = work / "error-models"
    res = cli("export", "./no/such/folder", "--task", "embedding", "--name", "missing", "--out", out)
    _assert_clean_failure(res, out, "missing", "does not exist")


def test_existing_folder_is_not_replaced_without_force(cli, checkpoints, exported, models_dir):
    folder, first = exported["t-vit"]
    assert first.returncode == 0, first
    digest = hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    res = cli("export", checkpoints["vit"], "--task", "image-classification", "--name", folder.name, "--out", models_dir)
    assert res.returncode != 0 and "--force" in res.stderr and "Traceback" not in res.stderr
    assert hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest() == digest


def test_verification_failure_writes_nothing_and_keeps_previous_export(monkeypatch, checkpoints, exported, models_dir):
    """If TorchScript does not reproduce transformers, no folder is written (and --force keeps the old one)."""
    from exporter import verify
    from exporter.errors import ExportError
    from exporter.export import ExportRequest, export

    real = verify.max_abs_diff
    monkeypatch.setattr(verify, "max_abs_diff", lambda a, b: real(a, b) + 0.5)  # as if tracing went wrong
    with pytest.raises(ExportError, match="does not reproduce transformers"):
        export(ExportRequest(source=str(checkpoints["vit"]), task="image-classification", name="never",
                             out=models_dir), log=lambda s: None)
    assert not (models_dir / "never").exists()

    folder, first = exported["t-vit"]
    before = (folder / "atenspace.json").read_text()
    with pytest.raises(ExportError):
        export(ExportRequest(source=str(checkpoints["vit"]), task="image-classification", name=folder.name,
                             out=models_dir, force=True), log=lambda s: None)
    assert (folder / "atenspace.json").read_text() == before
    assert no_leftovers(models_dir) == []
