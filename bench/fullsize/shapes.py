"""The shapes of the full-size table and their inputs, shared by the in-process and the served measurements."""

from __future__ import annotations

import json
from pathlib import Path

SEQ = 128
DECODE_TOKENS = 32

#: model folder -> [(label, batch, image (h, w) or None)]
SHAPES = {
    "bert-base": [("seq 128, batch 1", 1, None), ("seq 128, batch 8", 8, None)],
    "gpt2": [("prefill 128", 1, None), ("decode 1 token (past 128)", 1, None)],
    "vit-base": [("224x224", 1, (224, 224))],
    "yolos-tiny-512": [("512x512", 1, (512, 512))],
    "yolos-tiny": [("800x1333 (default)", 1, (800, 1333))],
}

WORDS = ("the quick brown fox jumps over the lazy dog a journey of a thousand miles begins with a single step "
         "machine learning models turn numbers into predictions and servers turn predictions into answers").split()


def manifest(folder: Path) -> dict:
    return json.loads((Path(folder) / "atenspace.json").read_text())


def text_of_tokens(folder: Path, n: int, special: bool) -> str:
    """A text that the model's own tokenizer.json turns into exactly N tokens (special tokens included if SPECIAL)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    words: list[str] = []
    i = 0
    while True:
        candidate = " ".join(words + [WORDS[i % len(WORDS)]])
        count = len(tok.encode(candidate, add_special_tokens=special).ids)
        if count > n:
            break
        words.append(WORDS[i % len(WORDS)])
        i += 1
        if count == n:
            return candidate
    # the next word overshoots: fill with single-token words
    text = " ".join(words)
    while len(tok.encode(text, add_special_tokens=special).ids) < n:
        text += " a"
    if len(tok.encode(text, add_special_tokens=special).ids) != n:
        raise RuntimeError(f"could not make a text of exactly {n} tokens for {folder}")
    return text


def token_inputs(folder: Path, batch: int, seq: int):
    """input_ids / attention_mask / token_type_ids for the model's inputs, in the manifest's order (torch)."""
    import torch

    m = manifest(folder)
    vocab = int(m.get("generation", {}).get("vocab_size") or 30522)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, min(vocab, 30000), (batch, seq), generator=g)
    values = {"input_ids": ids, "attention_mask": torch.ones(batch, seq, dtype=torch.long),
              "token_type_ids": torch.zeros(batch, seq, dtype=torch.long)}
    return [values[i["name"]] for i in m["inputs"]]


def image(h: int, w: int, seed: int = 0):
    """A float32 [1, 3, h, w] tensor, roughly what an image processor produces."""
    import torch

    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def jpeg_bytes(h: int, w: int) -> bytes:
    """A real JPEG (a smooth gradient with noise) of h x w pixels for the task routes."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) % 256)], axis=-1)
    rgb = np.clip(rgb + rng.integers(-20, 20, rgb.shape), 0, 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()
