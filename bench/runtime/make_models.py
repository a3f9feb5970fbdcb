"""Models for the runtime benchmark: a MiniLM-size BERT (6 layers, hidden 384) traced from a
randomly initialised transformers BertModel, and a tiny module for per-call overhead.

Usage: python3 bench/runtime/make_models.py OUT_DIR
"""
import os
import sys

import torch
from torch import Tensor
from transformers import BertConfig, BertModel


class Wrapper(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state


class Tiny(torch.nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x + 1


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                        intermediate_size=1536, max_position_embeddings=512)
    model = BertModel(config).eval()
    ids = torch.randint(1000, 30000, (2, 32))
    mask = torch.ones(2, 32, dtype=torch.int64)
    with torch.no_grad():
        traced = torch.jit.trace(Wrapper(model).eval(), (ids, mask), strict=False)
    traced.save(os.path.join(out, "minilm.pt"))
    torch.jit.script(Tiny()).save(os.path.join(out, "tiny.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
