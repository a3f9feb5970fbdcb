"""A model repository for the serving benchmark, with hand-written atenspace.json manifests.

Usage: python3 bench/serving/make_models.py OUT_DIR

OUT_DIR/minilm/  a MiniLM-size BERT (hidden 384, 6 layers, 12 heads, intermediate 1536, vocab
                 30522, random init) traced with a mean-pooling head: input_ids, attention_mask
                 int64 [B, S] -> embedding float32 [B, 384]. Pooling (mask-weighted mean of
                 last_hidden_state) runs inside the traced graph, so a response is 384 floats per
                 row and JSON encoding does not dominate the measurement.
OUT_DIR/tiny/    a scripted `x + 1` on float32 [B, 4]: the per-request cost of the service itself.
"""
import json
import os
import sys

import torch
from torch import Tensor
from transformers import BertConfig, BertModel


class MeanPooled(torch.nn.Module):
    """Keyword call into transformers, then the mask-weighted mean over the sequence."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


class Tiny(torch.nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x + 1


def write_manifest(folder: str, name: str, architecture: str, inputs, outputs, parameters: int, **extra) -> None:
    """The fields the server checks (src/models/manifest.ts), as the exporter would write them."""
    manifest = {
        "format": 1, "name": name, "task": "embedding", "architecture": architecture, "model_type": "bench",
        "source": {"id": None, "path": None, "revision": None, "weights_sha256": ""},
        "weights": "random-init", "dtype": "float32", "quantization": None, "export_device": "cpu",
        "file": "model.pt", "inputs": inputs, "outputs": outputs, "parameters": parameters,
        "file_bytes": os.path.getsize(os.path.join(folder, "model.pt")), "verification": {},
        "exporter": {"version": "bench"}, **extra,
    }
    with open(os.path.join(folder, "atenspace.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def make_minilm(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                        intermediate_size=1536, max_position_embeddings=512)
    model = BertModel(config).eval()
    ids = torch.randint(1000, 30000, (2, 32))
    mask = torch.ones(2, 32, dtype=torch.int64)
    with torch.no_grad():
        traced = torch.jit.trace(MeanPooled(model).eval(), example_kwarg_inputs={"input_ids": ids, "attention_mask": mask},
                                 strict=False)
    traced.save(os.path.join(folder, "model.pt"))
    token = {"dtype": "int64", "shape": [-1, -1]}
    write_manifest(folder, "minilm", "BertModel+MeanPooling",
                   [{"name": "input_ids", **token}, {"name": "attention_mask", **token}],
                   [{"name": "embedding", "dtype": "float32", "shape": [-1, 384]}],
                   sum(p.numel() for p in model.parameters()), max_batch_size=32, max_sequence_length=512)


def make_tiny(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    torch.jit.script(Tiny()).save(os.path.join(folder, "model.pt"))
    write_manifest(folder, "tiny", "Scripted", [{"name": "x", "dtype": "float32", "shape": [-1, 4]}],
                   [{"name": "y", "dtype": "float32", "shape": [-1, 4]}], 0, max_batch_size=32)


if __name__ == "__main__":
    out = sys.argv[1]
    make_minilm(os.path.join(out, "minilm"))
    make_tiny(os.path.join(out, "tiny"))
