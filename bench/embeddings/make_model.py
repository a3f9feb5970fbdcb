"""A MiniLM-size sentence embedder (BERT, 6 layers, hidden 384, 12 heads, intermediate 1536,
mean pooling, normalised; random init) saved as a sentence-transformers folder and exported
through the exporter CLI, plus sets of texts: 8 to 128 tokens, and the short / mixed / long workloads.

Usage: python3 bench/embeddings/make_model.py WORK_DIR
Writes WORK/source (the HF folder), WORK/models/minilm (the export), WORK/texts.json (8-128
tokens) and the workloads WORK/texts-{short,mixed,long}.json.
"""
import json
import os
import random
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, REPO)


def main(work: str) -> None:
    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from exporter import checkpoints

    source = os.path.join(work, "source")
    os.makedirs(source, exist_ok=True)
    tokenizer = checkpoints.wordpiece_tokenizer(vocab_size=2000, model_max_length=512)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                        intermediate_size=1536, max_position_embeddings=512)
    BertModel(config).eval().save_pretrained(source)
    tokenizer.save_pretrained(source)
    with open(os.path.join(source, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}], f)
    os.makedirs(os.path.join(source, "1_Pooling"), exist_ok=True)
    with open(os.path.join(source, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, f)
    subprocess.run([sys.executable, "-m", "exporter", "export", source, "--task", "embedding", "--name", "minilm",
                    "--out", os.path.join(work, "models"), "--force", "--max-length", "512"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)

    # Workloads, one text per request (special tokens included in the counts):
    # short 4-12 tokens, mixed 6-62 (median about 33), long 64-256; plus the earlier 8-128 set.
    fast = PreTrainedTokenizerFast.from_pretrained(source)
    words = " ".join(checkpoints._sentences()).split()
    for name, low, high in (("texts", 8, 128), ("short", 4, 12), ("mixed", 6, 62), ("long", 64, 256)):
        rng = random.Random(f"{name}-0")
        texts, lengths = [], []
        while len(texts) < 512:
            target = rng.randint(low, high)
            text = " ".join(rng.choice(words) for _ in range(target))
            while len(fast(text)["input_ids"]) > target and " " in text:
                text = text.rsplit(" ", 1)[0]
            n = len(fast(text)["input_ids"])
            if n < low:
                continue
            texts.append(text)
            lengths.append(n)
        out = "texts.json" if name == "texts" else f"texts-{name}.json"
        with open(os.path.join(work, out), "w") as f:
            json.dump({"texts": texts, "lengths": lengths}, f)
        ordered = sorted(lengths)
        print(json.dumps({"workload": name, "texts": len(texts), "min_tokens": ordered[0], "median_tokens": ordered[len(ordered) // 2], "max_tokens": ordered[-1]}))


if __name__ == "__main__":
    main(sys.argv[1])
