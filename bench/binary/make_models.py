"""Models for the binary tensor benchmark (bench/binary/run.sh):

OUT/tiny-bert/   a 3-layer BERT (hidden 128) built here and exported through the exporter, as a
                 Hub checkpoint would be: the issue's "raw /infer on a 3-layer BERT, one 8-token row".
OUT/echo/        a scripted `x + 1` on float32 [-1, -1]: a 16 MiB input comes back as 16 MiB, so the
                 round trip measures the protocol, not the model.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import torch


class Echo(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def make_echo(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    torch.jit.script(Echo()).save(os.path.join(folder, "model.pt"))
    manifest = {
        "format": 1, "name": "echo", "task": "embedding", "architecture": "Scripted", "model_type": "bench",
        "source": {"id": None, "path": None, "revision": None, "weights_sha256": ""},
        "weights": "random-init", "dtype": "float32", "quantization": None, "export_device": "cpu",
        "file": "model.pt", "parameters": 0, "max_batch_size": 1 << 24,
        "inputs": [{"name": "x", "dtype": "float32", "shape": [-1, -1]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, -1]}],
        "file_bytes": os.path.getsize(os.path.join(folder, "model.pt")), "verification": {},
        "exporter": {"version": "bench"},
    }
    with open(os.path.join(folder, "atenspace.json"), "w") as f:
        json.dump(manifest, f, indent=2)


def make_tiny_bert(out: str) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as ckpt:
        BertModel(BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=3, num_attention_heads=4,
                             intermediate_size=256, max_position_embeddings=128)).save_pretrained(ckpt)
        vocab = os.path.join(ckpt, "vocab.txt")
        with open(vocab, "w") as f:
            f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(995)]) + "\n")
        BertTokenizerFast(vocab_file=vocab).save_pretrained(ckpt)
        subprocess.run([sys.executable, "-m", "exporter", "export", ckpt, "--task", "embedding", "--name", "tiny-bert",
                        "--out", out, "--force"], check=True)


if __name__ == "__main__":
    out = sys.argv[1]
    make_echo(os.path.join(out, "echo"))
    make_tiny_bert(out)
