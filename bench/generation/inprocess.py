"""The in-process ceiling for batched decoding: the exported past key/values TorchScript
(model_with_past.pt, the same file the server runs), BATCH prompts prefilled together
(left-padded), then greedy decode steps over the whole batch, MAX_TOKENS tokens each.
Prints generated tokens per second (best of ROUNDS).

Usage: python3 bench/generation/inprocess.py MODEL_DIR PROMPTS_JSON [BATCH=16] [MAX_TOKENS=32] [ROUNDS=3] [THREADS]
"""
import json
import sys
import time

import torch
from tokenizers import Tokenizer

folder, prompts_path = sys.argv[1], sys.argv[2]
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 16
max_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 32
rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
if len(sys.argv) > 6:
    torch.set_num_threads(int(sys.argv[6]))
manifest = json.load(open(f"{folder}/atenspace.json"))
geometry = manifest["generation"]["past_key_values"]
module = torch.jit.load(f"{folder}/{geometry['file']}").eval()
tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
prompts = json.load(open(prompts_path))["prompts"][:batch]
encoded = [tokenizer.encode(p).ids for p in prompts]


def once() -> float:
    width = max(len(e) for e in encoded)
    ids = torch.zeros(batch, width, dtype=torch.long)
    mask = torch.zeros(batch, width, dtype=torch.long)
    for r, e in enumerate(encoded):
        ids[r, width - len(e):] = torch.tensor(e)
        mask[r, width - len(e):] = 1
    empty = [torch.zeros(batch, geometry["n_head"], 0, geometry["head_dim"]) for _ in range(2 * geometry["n_layer"])]
    start = time.perf_counter()
    with torch.inference_mode():
        out = module(ids, mask, *empty)
        logits, past = out[0], list(out[1:])
        token = logits[:, -1, :].argmax(-1, keepdim=True)
        for _ in range(max_tokens - 1):
            mask = torch.cat([mask, torch.ones(batch, 1, dtype=torch.long)], dim=1)
            out = module(token, mask, *past)
            logits, past = out[0], list(out[1:])
            token = logits[:, -1, :].argmax(-1, keepdim=True)
    return batch * max_tokens / (time.perf_counter() - start)


once()
best = max(once() for _ in range(rounds))
print(json.dumps({"model": manifest["name"], "batch": batch, "max_tokens": max_tokens, "tokens_per_s": round(best, 1)}))
