"""``python -m exporter verify``: passes on a good folder, fails on a tampered one."""

from __future__ import annotations

import hashlib
import json
import shutil

import torch


def _copy(folder, dest):
    shutil.copytree(folder, dest)
    return dest


def _retrace_vit(checkpoint, folder, perturb: float):
    """Replace model.pt by an honest TorchScript trace of the ViT (optionally with one bias shifted)
    and update the manifest's file hash, so that only the numbers can tell the difference."""
    from transformers import ViTForImageClassification

    model = ViTForImageClassification.from_pretrained(str(checkpoint)).eval()
    with torch.no_grad():
        model.classifier.bias[0] += perturb

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return self.m(pixel_values=pixel_values).logits

    manifest = json.loads((folder / "atenspace.json").read_text())
    size = manifest["inputs"][0]["shape"][2]
    with torch.no_grad():
        traced = torch.jit.trace(Logits(model).eval(), (torch.randn(2, 3, size, size),), strict=False)
    torch.jit.save(traced, str(folder / "model.pt"))
    manifest["file_sha256"] = hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    (folder / "atenspace.json").write_text(json.dumps(manifest))


def test_verify_passes_on_exported_folders(cli, exported):
    folders = []
    for key, (folder, first) in exported.items():
        assert first.returncode == 0, first
        folders.append(folder)
    res = cli("verify", *folders)
    assert res.returncode == 0, res
    for folder in folders:
        assert f"verify OK: {folder}" in res.stdout
    assert "model_with_past.pt matches" in res.stdout


def test_verify_detects_tampering(cli, exported, checkpoints, work):
    modified = _copy(exported["t-gpt2"][0], work / "tampered-bytes")
    with open(modified / "model_with_past.pt", "ab") as f:
        f.write(b"\0")
    honest = _copy(exported["t-vit"][0], work / "retraced-honest")
    _retrace_vit(checkpoints["vit"], honest, perturb=0.0)  # control: an equivalent re-trace still verifies
    tampered = _copy(exported["t-vit"][0], work / "retraced-tampered")
    _retrace_vit(checkpoints["vit"], tampered, perturb=0.01)

    res = cli("verify", honest, modified, tampered)
    assert res.returncode != 0, res
    assert "Traceback" not in res.stderr, res
    assert f"verify OK: {honest}" in res.stdout
    assert f"verify OK: {modified}" not in res.stdout and f"verify OK: {tampered}" not in res.stdout
    errors = dict(line.split(": ", 2)[1:] for line in res.stderr.splitlines() if line.startswith("error: "))
    assert "modified" in errors[str(modified)]
    assert "does not reproduce transformers" in errors[str(tampered)]
