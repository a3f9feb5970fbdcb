"""Full-size random-init checkpoints (save_pretrained folders, as the Hub holds them) for the full-size table.

Usage: python3 bench/fullsize/make_checkpoints.py OUT_DIR

OUT_DIR/bert-base/      BERT-base (12 x 768, 12 heads, vocab 30522, 512 positions) as a sentence-transformers
                        folder (mean pooling, normalised): the shape of BERT-base embedders
OUT_DIR/gpt2/           GPT-2 small (12 x 768, 12 heads, vocab 50257, 1024 positions)
OUT_DIR/vit-base/       ViT-base/16 at 224 x 224, 1000 labels
OUT_DIR/yolos-tiny-512/ YOLOS-tiny (12 x 192, 3 heads, 100 detection tokens, no mid position embeddings,
                        91 labels), processor at 512
OUT_DIR/yolos-tiny/     the same weights with YOLOS' default size (800 x 1333)

The configurations are transformers' defaults for these architectures (BertConfig(), GPT2Config(), ViTConfig()
are bert-base-uncased, gpt2 and vit-base-patch16-224) and hustvl/yolos-tiny's. Weights are random
(torch.manual_seed), which is fine for time and memory. Tokenizers are the exporter's tiny trained ones with their
vocabulary padded to the model's size, so that every token id the model can produce decodes.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from exporter import checkpoints as ck  # noqa: E402


def _padded(tokenizer, size: int, fmt: str):
    """A copy of a trained fast tokenizer whose vocabulary has SIZE entries (the extra ones unreachable by
    encoding, so texts tokenize as before)."""
    from tokenizers import Tokenizer

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    i = 0
    while len(vocab) < size:
        token = fmt.format(i)
        if token not in vocab:
            vocab[token] = len(vocab)
        i += 1
    return Tokenizer.from_str(json.dumps(spec))


def _mark_random(folder: Path) -> None:
    (folder / "atenspace-source.json").write_text(json.dumps({"weights": "random-init"}) + "\n")


def bert_base(folder: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    config = BertConfig()  # bert-base-uncased: 12 x 768, 12 heads, 3072, vocab 30522, 512 positions
    small = ck.wordpiece_tokenizer(model_max_length=config.max_position_embeddings)
    tok = BertTokenizerFast(tokenizer_object=_padded(small, config.vocab_size, "[unused{}]"), unk_token="[UNK]",
                            pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                            model_max_length=config.max_position_embeddings)
    config.pad_token_id = tok.pad_token_id
    torch.manual_seed(0)
    BertModel(config).eval().save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": config.hidden_size, "pooling_mode_mean_tokens": True}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512}))
    _mark_random(folder)


def gpt2_small(folder: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    config = GPT2Config()  # gpt2: 12 x 768, 12 heads, vocab 50257, 1024 positions
    small = ck.bytelevel_bpe_tokenizer(model_max_length=config.n_positions)
    eos = "<|endoftext|>"
    tok = GPT2TokenizerFast(tokenizer_object=_padded(small, config.vocab_size, "zqx{}"), bos_token=eos,
                            eos_token=eos, unk_token=eos, model_max_length=config.n_positions)
    config.bos_token_id = config.eos_token_id = tok.eos_token_id
    torch.manual_seed(0)
    GPT2LMHeadModel(config).eval().save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    _mark_random(folder)


def vit_base(folder: Path) -> None:
    import torch
    import transformers
    from transformers import ViTConfig, ViTForImageClassification

    labels = [f"class {i}" for i in range(1000)]
    config = ViTConfig(id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    torch.manual_seed(0)
    ViTForImageClassification(config).eval().save_pretrained(str(folder))
    processor_cls = getattr(transformers, "ViTImageProcessorPil", None) or transformers.ViTImageProcessor
    processor_cls(size={"height": 224, "width": 224}).save_pretrained(str(folder))
    _mark_random(folder)


def yolos_tiny(folder: Path, shortest: int, longest: int) -> None:
    import torch
    import transformers
    from transformers import YolosConfig, YolosForObjectDetection

    labels = [f"object {i}" for i in range(91)]
    config = YolosConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768,
                         image_size=[800, 1333], num_detection_tokens=100, use_mid_position_embeddings=False,
                         id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    torch.manual_seed(0)
    YolosForObjectDetection(config).eval().save_pretrained(str(folder))
    processor_cls = getattr(transformers, "YolosImageProcessorPil", None) or transformers.YolosImageProcessor
    processor_cls(size={"shortest_edge": shortest, "longest_edge": longest}).save_pretrained(str(folder))
    _mark_random(folder)


BUILDERS = {
    "bert-base": bert_base,
    "gpt2": gpt2_small,
    "vit-base": vit_base,
    "yolos-tiny-512": lambda d: yolos_tiny(d, 512, 512),
    "yolos-tiny": lambda d: yolos_tiny(d, 800, 1333),
}


def main(out: Path) -> None:
    for name, build in BUILDERS.items():
        folder = out / name
        if (folder / "atenspace-source.json").is_file():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        build(folder)
        print(f"built {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
