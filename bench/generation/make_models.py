"""GPT-2-shaped models for the generation benchmark, random init, exported by our exporter (with
past key/values), plus mixed-length prompts.

Usage: python3 bench/generation/make_models.py WORK_DIR
WORK/models/gpt2-6x384   6 layers, hidden 384, 6 heads, context 1024, vocab 50257
WORK/models/gpt2-small   12 layers, hidden 768, 12 heads, context 1024, vocab 50257 (GPT-2 small's shape)
WORK/sources/<name>      the transformers checkpoints (for the FastAPI + generate() peer)
WORK/prompts.json        64 prompts of 8 to 64 tokens

The tokenizer is a small byte-level BPE padded with added tokens to GPT-2's 50257 ids, so the
embedding and LM-head matrices have GPT-2's size (random weights pick any id; each decodes to text).
"""
import json
import os
import random
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, REPO)

VOCAB = 50257
SHAPES = {"gpt2-6x384": (6, 384, 6), "gpt2-small": (12, 768, 12)}


def main(work: str) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from exporter import checkpoints

    tokenizer = checkpoints.bytelevel_bpe_tokenizer(vocab_size=400, model_max_length=1024)
    tokenizer.add_tokens([f"<w{i}>" for i in range(VOCAB - len(tokenizer))])
    assert len(tokenizer) == VOCAB, len(tokenizer)
    for name, (layers, hidden, heads) in SHAPES.items():
        source = os.path.join(work, "sources", name)
        if os.path.exists(os.path.join(work, "models", name, "atenspace.json")):
            continue
        os.makedirs(source, exist_ok=True)
        torch.manual_seed(0)
        config = GPT2Config(vocab_size=VOCAB, n_embd=hidden, n_layer=layers, n_head=heads, n_positions=1024,
                            bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
        GPT2LMHeadModel(config).eval().save_pretrained(source)
        tokenizer.save_pretrained(source)
        with open(os.path.join(source, "atenspace-source.json"), "w") as f:
            json.dump({"weights": "random-init"}, f)
        subprocess.run([sys.executable, "-m", "exporter", "export", source, "--task", "text-generation", "--name", name,
                        "--out", os.path.join(work, "models"), "--force"], cwd=REPO, check=True)
    words = " ".join(checkpoints._sentences()).split()
    rng = random.Random(0)
    prompts = []
    while len(prompts) < 64:
        target = rng.randint(8, 64)
        text = " ".join(rng.choice(words) for _ in range(target))
        ids = tokenizer(text)["input_ids"]
        while len(ids) > target and " " in text:
            text = text.rsplit(" ", 1)[0]
            ids = tokenizer(text)["input_ids"]
        prompts.append(text)
    with open(os.path.join(work, "prompts.json"), "w") as f:
        json.dump({"prompts": prompts, "lengths": [len(tokenizer(p)["input_ids"]) for p in prompts]}, f)


if __name__ == "__main__":
    main(sys.argv[1])
