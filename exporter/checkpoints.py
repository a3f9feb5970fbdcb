"""Tiny randomly initialised checkpoints of every supported family, written exactly as a Hub model
folder is (config.json + model.safetensors + tokenizer / image-processor files), fully offline.

Used by ``python3 -m exporter demo`` and by the tests. Tokenizers are trained with the ``tokenizers``
library on a small built-in English corpus. Each folder also gets ``atenspace-source.json``
({"weights": "random-init"}) so that the manifest can say the weights are not pretrained.
"""

from __future__ import annotations

import json
from pathlib import Path

from .sources import SOURCE_INFO_FILE

CORPUS = """
The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step.
Machine learning models turn numbers into predictions, and servers turn predictions into answers.
ATenSpace serves TorchScript models exported from Hugging Face checkpoints with LibTorch and Node.
Every sentence in this small corpus is plain English text used to train a tiny tokenizer offline.
Hello world! How are you today? I am fine, thank you. The weather is sunny, warm and bright.
Cats and dogs are friendly animals; birds sing in the morning while the river flows to the sea.
Numbers like 1, 2, 3, 10, 42 and 2024 appear in text, as do words such as model, token and image.
She sells sea shells by the sea shore. Peter Piper picked a peck of pickled peppers.
To be, or not to be, that is the question. All that glitters is not gold.
Embeddings map sentences to vectors; similar sentences have similar vectors and a high cosine score.
Text generation predicts the next token, one token at a time, until an end of text token appears.
Image classification assigns a label to a picture, and object detection finds boxes around objects.
""".strip()

DEFAULT_LABELS = ["cat", "dog", "bird", "car", "tree"]


def _sentences() -> list[str]:
    lines = [line.strip() for line in CORPUS.splitlines() if line.strip()]
    return lines * 4


def _mark_random(folder: Path) -> None:
    (folder / SOURCE_INFO_FILE).write_text(json.dumps({"weights": "random-init"}) + "\n")


def wordpiece_tokenizer(vocab_size: int = 400, model_max_length: int = 128):
    """BERT-style WordPiece tokenizer ([CLS] $A [SEP] template) wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(_sentences(), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece()
    return BertTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=model_max_length,
    )


def bytelevel_bpe_tokenizer(vocab_size: int = 400, model_max_length: int = 128):
    """GPT-2-style byte-level BPE tokenizer with <|endoftext|> as bos/eos/unk (no padding token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GPT2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_sentences(), trainer)
    eos = "<|endoftext|>"
    return GPT2TokenizerFast(tokenizer_object=tok, bos_token=eos, eos_token=eos, unk_token=eos,
                             model_max_length=model_max_length)


def build_bert(folder: Path, *, hidden: int = 64, layers: int = 2, heads: int = 4, max_positions: int = 128,
               sentence_transformers: bool = True, pooling: str = "mean", normalize: bool = True,
               seed: int = 0) -> Path:
    """Tiny BertModel; with sentence_transformers=True also modules.json + 1_Pooling (+ Normalize)."""
    import torch
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = wordpiece_tokenizer(model_max_length=max_positions)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 2, max_position_embeddings=max_positions,
                        pad_token_id=tokenizer.pad_token_id)
    BertModel(config).eval().save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    if sentence_transformers:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
            (folder / "2_Normalize").mkdir(exist_ok=True)
        (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
        (folder / "1_Pooling").mkdir(exist_ok=True)
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": hidden,
            "pooling_mode_cls_token": pooling == "cls",
            "pooling_mode_mean_tokens": pooling == "mean",
            "pooling_mode_max_tokens": pooling == "max",
            "pooling_mode_mean_sqrt_len_tokens": False,
        }, indent=2) + "\n")
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": max_positions, "do_lower_case": False}) + "\n")
    _mark_random(folder)
    return folder


# A small chat template for the demo and test GPT-2 checkpoints (GPT-2 itself has none): roles in
# <|role|> headers, each message closed by the EOS token; other roles are refused, as real
# templates refuse what they cannot render.
DEMO_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('roles must be system, user or assistant, got ' + message['role']) }}{% endif %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def build_gpt2(folder: Path, *, hidden: int = 64, layers: int = 2, heads: int = 4, positions: int = 128,
               seed: int = 0, chat_template: str | None = DEMO_CHAT_TEMPLATE) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = bytelevel_bpe_tokenizer(model_max_length=positions)
    eos = tokenizer.eos_token_id
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=hidden, n_layer=layers, n_head=heads, n_positions=positions,
                        bos_token_id=eos, eos_token_id=eos)
    GPT2LMHeadModel(config).eval().save_pretrained(str(folder))
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(str(folder))
    _mark_random(folder)
    return folder


def build_vit(folder: Path, *, image_size: int = 32, patch: int = 8, hidden: int = 64, layers: int = 2,
              heads: int = 4, labels: list[str] | None = None, seed: int = 0) -> Path:
    import torch
    import transformers
    from transformers import ViTConfig, ViTForImageClassification

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    labels = labels or DEFAULT_LABELS
    torch.manual_seed(seed)
    config = ViTConfig(image_size=image_size, patch_size=patch, hidden_size=hidden, num_hidden_layers=layers,
                       num_attention_heads=heads, intermediate_size=hidden * 2,
                       id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    ViTForImageClassification(config).eval().save_pretrained(str(folder))
    processor_cls = getattr(transformers, "ViTImageProcessorPil", None) or transformers.ViTImageProcessor
    processor_cls(size={"height": image_size, "width": image_size}).save_pretrained(str(folder))
    _mark_random(folder)
    return folder


def build_yolos(folder: Path, *, image_size: tuple[int, int] = (64, 96), patch: int = 16, hidden: int = 64,
                layers: int = 2, heads: int = 4, detection_tokens: int = 10, labels: list[str] | None = None,
                seed: int = 0) -> Path:
    import torch
    import transformers
    from transformers import YolosConfig, YolosForObjectDetection

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    labels = labels or DEFAULT_LABELS
    torch.manual_seed(seed)
    config = YolosConfig(image_size=list(image_size), patch_size=patch, hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, intermediate_size=hidden * 2, num_detection_tokens=detection_tokens,
                         id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    YolosForObjectDetection(config).eval().save_pretrained(str(folder))
    processor_cls = getattr(transformers, "YolosImageProcessorPil", None) or transformers.YolosImageProcessor
    processor_cls(size={"shortest_edge": min(image_size), "longest_edge": max(image_size)}).save_pretrained(str(folder))
    _mark_random(folder)
    return folder
