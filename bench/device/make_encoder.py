"""A BERT-shaped encoder built with torch alone (no transformers needed on the GPU machine):
token + position embeddings, N post-norm Transformer layers, masked mean pooling. Scripted,
with a manifest, in float32 and float16 variants.

Usage: python3 bench/device/make_encoder.py OUT_DIR [LAYERS=12] [HIDDEN=768] [HEADS=12]
"""
import json
import os
import sys

import torch
from torch import Tensor, nn


class Encoder(nn.Module):
    def __init__(self, vocab: int, hidden: int, layers: int, heads: int, positions: int = 512) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, hidden)
        self.positions = nn.Embedding(positions, hidden)
        layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout=0.0, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.norm(self.tokens(input_ids) + self.positions(positions))
        x = self.encoder(x, src_key_padding_mask=attention_mask == 0)
        mask = attention_mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return pooled.float()


def write(folder: str, module: torch.jit.ScriptModule, dtype: str, hidden: int) -> None:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.pt")
    module.save(path)
    manifest = {
        "format": 1, "name": os.path.basename(folder), "task": "embedding", "architecture": "TorchEncoder",
        "model_type": "bench", "weights": "random-init", "dtype": dtype, "quantization": None,
        "export_device": "cpu", "file": "model.pt",
        "inputs": [{"name": "input_ids", "dtype": "int64", "shape": [-1, -1]},
                   {"name": "attention_mask", "dtype": "int64", "shape": [-1, -1]}],
        "outputs": [{"name": "embedding", "dtype": "float32", "shape": [-1, hidden]}],
        "max_batch_size": 64, "max_sequence_length": 512, "parameters": 0,
        "file_bytes": os.path.getsize(path), "verification": {}, "exporter": {"version": "bench"},
    }
    with open(os.path.join(folder, "atenspace.json"), "w") as f:
        json.dump(manifest, f)


def main() -> None:
    out = sys.argv[1]
    layers, hidden, heads = (int(a) for a in (sys.argv[2:5] + ["12", "768", "12"][len(sys.argv[2:5]):]))
    torch.manual_seed(0)
    model = Encoder(30522, hidden, layers, heads).eval()
    with torch.no_grad():
        write(os.path.join(out, "encoder-fp32"), torch.jit.script(model), "float32", hidden)
        write(os.path.join(out, "encoder-fp16"), torch.jit.script(model.half()), "float16", hidden)


if __name__ == "__main__":
    main()
