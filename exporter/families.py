"""One class per task: which checkpoints it accepts, how the model is loaded and wrapped for tracing,
which example inputs it is traced and verified with, how transformers' own (eager) output is computed,
and the task-specific parts of the manifest.

``check_*`` methods only look at config.json and file names (no torch import) so that wrong tasks and
missing files fail fast. Everything else imports torch / transformers lazily.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ExportError
from .sources import Source

#: model_type -> task for the architectures this exporter supports (used for "wrong task" hints).
TASK_OF_MODEL_TYPE = {"gpt2": "text-generation", "vit": "image-classification", "yolos": "object-detection"}
#: model types that are never plain encoders (vision models, decoders) though they may not say so.
NOT_TEXT_ENCODERS = {"vit", "yolos", "deit", "beit", "swin", "convnext", "resnet", "detr", "clip", "clip_vision_model",
                     "gpt2", "gpt_neo", "gptj", "gpt_neox", "llama", "mistral", "opt", "bloom", "falcon", "phi", "qwen2"}
DECODER_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration", "ForSeq2SeqLM")

#: Sentences used to check that tokenizer.json tokenizes exactly like transformers' tokenizer.
TOKENIZER_SAMPLES = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "ATenSpace serves TorchScript models exported from Hugging Face checkpoints.",
    "  Leading and trailing   spaces, UPPER case, digits 12345 and punctuation?!  ",
    "Café naïve façade – Zürich, Tōkyō 東京, emoji 🙂.",
    "",
]


@dataclass
class Options:
    task: str
    dtype: str = "float32"
    quantize: str | None = None
    device: str = "cpu"
    max_length: int | None = None
    max_batch_size: int = 32
    pooling: str | None = None
    normalize: bool | None = None


def _task_hint(model_type: str) -> str:
    task = TASK_OF_MODEL_TYPE.get(model_type)
    if task:
        return f" (this checkpoint looks like --task {task})"
    if model_type and model_type not in NOT_TEXT_ENCODERS:
        return " (if it is a text encoder, try --task embedding)"
    return ""


def _is_decoder_config(config: dict) -> bool:
    archs = config.get("architectures") or []
    return bool(
        config.get("is_encoder_decoder")
        or config.get("is_decoder")
        or any(str(a).endswith(DECODER_SUFFIXES) for a in archs)
        or config.get("model_type") in NOT_TEXT_ENCODERS
    )


def float_dtype(model):
    """dtype of the model's floating-point parameters (float32 for dynamically quantized models)."""
    import torch

    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _generator(seed: int = 0):
    import torch

    return torch.Generator().manual_seed(seed)


class Family:
    task: str = ""
    text = False

    def __init__(self, source: Source, options: Options):
        self.source = source
        self.options = options
        self.model_type = source.model_type

    # ---- light checks (no torch) -------------------------------------------------------------
    def check_config(self) -> None:
        raise NotImplementedError

    def check_files(self) -> None:
        if self.text and not self.source.has_tokenizer():
            raise ExportError(
                f"no tokenizer files in {self.source.model_dir}: --task {self.task} needs tokenizer.json "
                "(or vocab.txt / vocab.json+merges.txt / a SentencePiece model); save it with tokenizer.save_pretrained"
            )
        if not self.text and not self.source.has_preprocessor():
            raise ExportError(
                f"no preprocessor_config.json in {self.source.model_dir}: --task {self.task} needs the image "
                "processor settings; save them with image_processor.save_pretrained"
            )

    def _wrong_task(self, expected: str) -> ExportError:
        return ExportError(
            f"wrong task: --task {self.task} needs {expected}, but {self.source.model_dir} holds a "
            f"{self.model_type!r} model ({self.source.architecture or 'no architectures listed'})"
            f"{_task_hint(self.model_type)}"
        )

    # ---- model ---------------------------------------------------------------------------------
    def load(self):
        raise NotImplementedError

    def _from_pretrained(self, cls):
        try:
            model = cls.from_pretrained(str(self.source.model_dir))
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"transformers could not load {self.source.model_dir} as {cls.__name__}: {msg}") from None
        return model.eval()

    def wrap(self, model):
        """nn.Module whose forward takes the manifest inputs positionally and returns the outputs in order."""
        raise NotImplementedError

    def reference(self, model, inputs: tuple) -> tuple:
        """transformers' own eager output for the manifest inputs (keyword call on the HF model)."""
        raise NotImplementedError

    def trace_inputs(self) -> tuple:
        raise NotImplementedError

    def verify_inputs(self) -> list[tuple]:
        """At least two input sets whose shapes differ from the trace inputs."""
        raise NotImplementedError

    def input_specs(self) -> list[dict]:
        raise NotImplementedError

    def output_specs(self) -> list[dict]:
        raise NotImplementedError

    # ---- preprocessing files + manifest sections ------------------------------------------------
    def write_preprocessing(self, out_dir: Path) -> dict:
        """Write tokenizer / image-processor files into out_dir; return manifest sections + checks."""
        raise NotImplementedError


# ============================================================================================
# text tasks: tokenizer handling shared by embedding and text-generation
# ============================================================================================


class TextFamily(Family):
    text = True

    def __init__(self, source, options):
        super().__init__(source, options)
        self.tokenizer = None
        self.max_sequence_length: int | None = None
        self.vocab_size: int | None = None
        self.pad_id = 0

    def _load_tokenizer(self):
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(str(self.source.model_dir))
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"transformers could not load the tokenizer in {self.source.model_dir}: {msg}") from None
        if not getattr(tok, "is_fast", False):
            raise ExportError(
                f"the tokenizer in {self.source.model_dir} has no fast (Rust) implementation, so no tokenizer.json "
                "can be written for the server"
            )
        self.tokenizer = tok
        return tok

    def _sane_tokenizer_max(self) -> int | None:
        value = getattr(self.tokenizer, "model_max_length", None)
        return int(value) if value and value < 1_000_000 else None

    def _choose_max_length(self, model_limit: int | None, extra_limits=()) -> int:
        limits = [v for v in (model_limit, self._sane_tokenizer_max(), *extra_limits) if v]
        if not limits:
            limits = [512]
        natural = min(limits)
        if self.options.max_length is not None:
            if self.options.max_length > natural:
                raise ExportError(
                    f"--max-length {self.options.max_length} exceeds what the model supports ({natural} tokens)"
                )
            return self.options.max_length
        return natural

    def write_tokenizer(self, out_dir: Path) -> dict:
        """Save the tokenizer (tokenizer.json is what the server uses) and prove it tokenizes identically."""
        tok = self.tokenizer
        tok.save_pretrained(str(out_dir))
        tokenizer_json = out_dir / "tokenizer.json"
        if not tokenizer_json.is_file():
            raise ExportError("transformers did not write tokenizer.json for this tokenizer")
        special = {k: v for k, v in tok.special_tokens_map.items() if v is not None}
        (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2, ensure_ascii=False) + "\n")
        self.check_tokenizer_json(tokenizer_json)
        pad_token = tok.pad_token
        section = {
            "file": "tokenizer.json",
            "max_length": self.max_sequence_length,
            "pad_token": pad_token,
            "pad_token_id": tok.pad_token_id if pad_token is not None else None,
            "add_special_tokens": True,
        }
        # The chat template (Jinja, rendered by the server for /v1/chat/completions) and the
        # special tokens templates refer to; a dict of named templates keeps its "default".
        template = getattr(tok, "chat_template", None)
        if isinstance(template, dict):
            template = template.get("default")
        if isinstance(template, str) and template:
            section["chat_template"] = template
            section["bos_token"] = tok.bos_token
            section["eos_token"] = tok.eos_token
        return section

    def check_tokenizer_json(self, path: Path) -> None:
        """The Rust tokenizer built from tokenizer.json must give transformers' ids (special tokens included)."""
        from tokenizers import Tokenizer

        try:
            rust = Tokenizer.from_file(str(path))
        except Exception as e:
            raise ExportError(f"cannot load {path} with the tokenizers library: {e}") from None
        rust.no_truncation()
        rust.no_padding()
        got = [e.ids for e in rust.encode_batch(TOKENIZER_SAMPLES, add_special_tokens=True)]
        expected = [list(ids) for ids in self.tokenizer(TOKENIZER_SAMPLES, add_special_tokens=True)["input_ids"]]
        for text, g, e in zip(TOKENIZER_SAMPLES, got, expected):
            if g != e:
                raise ExportError(f"{path.name} does not reproduce transformers' tokenizer on {text!r}: {g} vs {e}")

    def _text_batch(self, batch: int, seq: int, seed: int, pad_side: str) -> tuple:
        """Random token ids; row 0 is padded on pad_side (so masks are exercised), other rows are full."""
        import torch

        low = min(5, self.vocab_size - 1)
        ids = torch.randint(low, self.vocab_size, (batch, seq), generator=_generator(seed), dtype=torch.long)
        mask = torch.ones(batch, seq, dtype=torch.long)
        pad = seq // 3 if batch > 1 else 0
        if pad:
            if pad_side == "right":
                ids[0, seq - pad:] = self.pad_id
                mask[0, seq - pad:] = 0
            else:
                ids[0, :pad] = self.pad_id
                mask[0, :pad] = 0
        return ids, mask

    def _shapes(self) -> tuple[tuple[int, int], list[tuple[int, int]]]:
        """(trace (batch, seq), verification (batch, seq) list), all within the manifest limits."""
        max_b = max(1, self.options.max_batch_size)
        max_s = self.max_sequence_length
        if max_s < 4:
            raise ExportError(f"max sequence length {max_s} is too small to verify the export")
        seq = [min(11, max_s - 1), min(7, max_s - 2), min(19, max_s)]
        trace = (min(2, max_b), seq[0])
        verify = [(1, seq[1]), (min(3, max_b), seq[2])]
        return trace, verify


# ============================================================================================
# embedding
# ============================================================================================


class Embedding(TextFamily):
    task = "embedding"

    def check_config(self):
        cfg = self.source.config
        if self.model_type in TASK_OF_MODEL_TYPE or self.model_type in NOT_TEXT_ENCODERS:
            raise self._wrong_task("a text encoder (BERT family)")
        if _is_decoder_config(cfg):
            raise ExportError(
                f"unsupported architecture for --task embedding: {self.source.architecture or self.model_type} is a "
                "decoder or encoder-decoder model; embeddings need an encoder such as BertModel"
            )
        if "vocab_size" not in cfg:
            raise self._wrong_task("a text encoder (BERT family)")
        st = self.source.sentence_transformers
        if self.options.pooling is None and st is not None and st.pooling_raw is not None and st.pooling is None:
            raise ExportError(
                f"sentence-transformers pooling mode {st.pooling_raw!r} is not supported (mean or cls); "
                "pass --pooling mean|cls to override"
            )

    def load(self):
        from transformers import AutoModel

        model = self._from_pretrained(AutoModel)
        if getattr(model.config, "is_decoder", False) or getattr(model.config, "is_encoder_decoder", False):
            raise ExportError(f"unsupported architecture for --task embedding: {type(model).__name__}")
        self.model_class = type(model).__name__
        params = inspect.signature(model.forward).parameters
        if "input_ids" not in params or "attention_mask" not in params:
            raise ExportError(f"unsupported architecture for --task embedding: {type(model).__name__} takes no input_ids")
        self.use_token_types = "token_type_ids" in params and int(getattr(model.config, "type_vocab_size", 0) or 0) > 1
        self.hidden_size = int(model.config.hidden_size)
        self.vocab_size = int(model.config.vocab_size)
        self._load_tokenizer()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and self.model_type in ("roberta", "xlm-roberta", "camembert") and model.config.pad_token_id is not None:
            limit -= int(model.config.pad_token_id) + 1  # position ids start after padding_idx
        st = self.source.sentence_transformers
        self.max_sequence_length = self._choose_max_length(limit, [st.max_seq_length] if st else [])
        return model

    def wrap(self, model):
        import torch

        use_tt = self.use_token_types

        class EmbeddingModule(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.model = m

            def forward(self, input_ids, attention_mask, token_type_ids=None):
                kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "return_dict": True}
                if use_tt:
                    kwargs["token_type_ids"] = token_type_ids
                return self.model(**kwargs).last_hidden_state.float()

        return EmbeddingModule(model).eval()

    def reference(self, model, inputs):
        kwargs = {"input_ids": inputs[0], "attention_mask": inputs[1]}
        if self.use_token_types:
            kwargs["token_type_ids"] = inputs[2]
        return (model(**kwargs, return_dict=True).last_hidden_state,)

    def _inputs(self, batch, seq, seed):
        import torch

        ids, mask = self._text_batch(batch, seq, seed, "right")
        if not self.use_token_types:
            return ids, mask
        token_types = torch.zeros_like(ids)
        token_types[-1, seq // 2:] = 1  # a sentence pair in the last row
        return ids, mask, token_types * mask

    def trace_inputs(self):
        (b, s), _ = self._shapes()
        return self._inputs(b, s, 1)

    def verify_inputs(self):
        _, shapes = self._shapes()
        return [self._inputs(b, s, 10 + i) for i, (b, s) in enumerate(shapes)]

    def input_specs(self):
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if self.use_token_types else [])
        return [{"name": n, "dtype": "int64", "shape": [-1, -1]} for n in names]

    def output_specs(self):
        return [{"name": "last_hidden_state", "dtype": "float32", "shape": [-1, -1, self.hidden_size]}]

    def write_preprocessing(self, out_dir):
        st = self.source.sentence_transformers
        pooling = self.options.pooling or (st.pooling if st and st.pooling else "mean")
        normalize = self.options.normalize if self.options.normalize is not None else bool(st and st.normalize)
        return {
            "max_sequence_length": self.max_sequence_length,
            "embedding": {"pooling": pooling, "normalize": normalize, "dimension": self.hidden_size},
            "tokenizer": self.write_tokenizer(out_dir),
        }


# ============================================================================================
# text-generation (GPT-2)
# ============================================================================================


def positions_from_mask(attention_mask):
    """Position ids as transformers' generate() derives them: count of real tokens so far, 1 on padding.

    With right padding (or none) this equals the default 0..n-1; with left padding each row still
    starts at position 0 at its first real token, so a left-padded batch reproduces unbatched output.
    """
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 1)


def cache_from_flat(flat: list, n_layer: int):
    from transformers import DynamicCache

    pairs = [(flat[2 * i], flat[2 * i + 1]) for i in range(n_layer)]
    try:
        return DynamicCache(ddp_cache_data=pairs)
    except TypeError:  # older transformers
        return DynamicCache.from_legacy_cache(tuple(pairs))


def flat_from_cache(cache) -> list:
    if hasattr(cache, "layers"):
        return [t for layer in cache.layers for t in (layer.keys, layer.values)]
    legacy = cache.to_legacy_cache() if hasattr(cache, "to_legacy_cache") else cache
    return [t for kv in legacy for t in kv[:2]]


class TextGeneration(TextFamily):
    task = "text-generation"
    SUPPORTED = ("GPT2LMHeadModel", "GPT2Model")

    def check_config(self):
        if self.model_type != "gpt2":
            if self.model_type in TASK_OF_MODEL_TYPE or not _is_decoder_config(self.source.config):
                raise self._wrong_task("a GPT-2 checkpoint (GPT2LMHeadModel)")
            raise ExportError(
                f"unsupported architecture for --task text-generation: {self.source.architecture or self.model_type} "
                f"(model_type {self.model_type!r}); only GPT-2 (GPT2LMHeadModel) is supported"
            )
        arch = self.source.architecture
        if arch and arch not in self.SUPPORTED:
            raise ExportError(
                f"unsupported architecture for --task text-generation: {arch}; only GPT2LMHeadModel is supported"
            )

    def load(self):
        from transformers import GPT2LMHeadModel

        model = self._from_pretrained(GPT2LMHeadModel)
        cfg = model.config
        self.vocab_size = int(cfg.vocab_size)
        self.context_length = int(cfg.n_positions)
        self.n_layer, self.n_head = int(cfg.n_layer), int(cfg.n_head)
        self.head_dim = int(cfg.n_embd) // self.n_head
        self._load_tokenizer()
        tok = self.tokenizer
        self.eos_id = tok.eos_token_id if tok.eos_token_id is not None else cfg.eos_token_id
        self.bos_id = tok.bos_token_id if tok.bos_token_id is not None else cfg.bos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else cfg.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.eos_id if self.eos_id is not None else 0))
        if self.pad_id >= self.vocab_size:
            self.pad_id = 0
        self.max_sequence_length = self._choose_max_length(self.context_length)
        return model

    def wrap(self, model):
        import torch

        class GenerationModule(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.model = m

            def forward(self, input_ids, attention_mask):
                out = self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=positions_from_mask(attention_mask),
                    use_cache=False,
                    return_dict=True,
                )
                return out.logits.float()

        return GenerationModule(model).eval()

    def reference(self, model, inputs):
        ids, mask = inputs
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask), use_cache=False)
        return (out.logits,)

    def trace_inputs(self):
        (b, s), _ = self._shapes()
        return self._text_batch(b, s, 1, "left")

    def verify_inputs(self):
        _, shapes = self._shapes()
        return [self._text_batch(b, s, 10 + i, "left") for i, (b, s) in enumerate(shapes)]

    def input_specs(self):
        return [{"name": n, "dtype": "int64", "shape": [-1, -1]} for n in ("input_ids", "attention_mask")]

    def output_specs(self):
        return [{"name": "logits", "dtype": "float32", "shape": [-1, -1, self.vocab_size]}]

    def write_preprocessing(self, out_dir):
        return {
            "max_sequence_length": self.max_sequence_length,
            "generation": {
                "vocab_size": self.vocab_size,
                "context_length": self.context_length,
                "bos_token_id": self.bos_id,
                "eos_token_id": self.eos_id,
                "pad_token_id": self.pad_id,
                "position_ids": "from_attention_mask",
                "past_key_values": False,  # filled in by the exporter when the incremental module verifies
            },
            "tokenizer": self.write_tokenizer(out_dir),
        }

    # ---- incremental decoding with past key/values -------------------------------------------
    def wrap_with_past(self, model):
        import torch

        n_layer = self.n_layer

        class GenerationWithPastModule(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.model = m

            def forward(self, input_ids, attention_mask, *past):
                positions = positions_from_mask(attention_mask)
                positions = positions[:, positions.shape[1] - input_ids.shape[1]:]
                out = self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=positions,
                    past_key_values=cache_from_flat(list(past), n_layer),
                    use_cache=True,
                    return_dict=True,
                    # Only the last position's logits: all a decoder needs, and a prefill of T tokens
                    # then pays the LM head once per row instead of T times.
                    logits_to_keep=1,
                )
                return (out.logits.float(), *flat_from_cache(out.past_key_values))

        return GenerationWithPastModule(model).eval()

    def reference_with_past(self, model, inputs):
        ids, mask, *past = inputs
        positions = positions_from_mask(mask)[:, mask.shape[1] - ids.shape[1]:]
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                    past_key_values=cache_from_flat(list(past), self.n_layer), use_cache=True)
        return (out.logits[:, -1:, :], *flat_from_cache(out.past_key_values))

    def past_inputs(self, model, batch: int, past: int, new: int, seed: int) -> tuple[tuple, object]:
        """((new ids, full mask, *past k/v), full ids); the past is computed by the eager model itself."""
        import torch

        ids, mask = self._text_batch(batch, past + new, seed, "left")
        param = next(model.parameters())
        if past == 0:
            empty = torch.zeros(batch, self.n_head, 0, self.head_dim, dtype=float_dtype(model), device=param.device)
            flat = [empty] * (2 * self.n_layer)
        else:
            prefix_mask = mask[:, :past]
            out = model(input_ids=ids[:, :past].to(param.device), attention_mask=prefix_mask.to(param.device),
                        position_ids=positions_from_mask(prefix_mask).to(param.device), use_cache=True)
            flat = flat_from_cache(out.past_key_values)
        return (ids[:, past:], mask, *flat), ids

    def past_shapes(self) -> tuple[tuple, list[tuple]]:
        """(trace (batch, past, new), verification list) - past lengths 0, 1 and longer, 1 or more new tokens."""
        max_b = max(1, self.options.max_batch_size)
        limit = self.max_sequence_length
        trace = (min(2, max_b), min(4, limit - 2), 2)
        verify = [(1, 0, min(5, limit)), (min(3, max_b), 1, 1), (min(2, max_b), min(9, limit - 1), 1),
                  (min(3, max_b), min(13, limit - 3), 3)]
        return trace, verify

    def past_specs(self, dtype_name: str) -> tuple[list[dict], list[dict]]:
        kv_shape = [-1, self.n_head, -1, self.head_dim]
        inputs = self.input_specs()
        outputs = self.output_specs()
        outputs[0] = {**outputs[0], "shape": [outputs[0]["shape"][0], 1, *outputs[0]["shape"][2:]]}  # last position only
        for i in range(self.n_layer):
            for kind in ("key", "value"):
                inputs.append({"name": f"past_{kind}_{i}", "dtype": dtype_name, "shape": kv_shape})
                outputs.append({"name": f"present_{kind}_{i}", "dtype": dtype_name, "shape": kv_shape})
        return inputs, outputs


# ============================================================================================
# image tasks
# ============================================================================================


class ImageFamily(Family):
    model_types: tuple = ()
    model_class = ""
    expected = ""

    def check_config(self):
        if self.model_type not in self.model_types:
            raise self._wrong_task(self.expected)
        arch = self.source.architecture
        if arch and arch != self.model_class:
            raise ExportError(
                f"unsupported architecture for --task {self.task}: {arch}; the checkpoint must be a {self.model_class} "
                "(a checkpoint without the task head cannot produce labels)"
            )

    def load(self):
        import transformers

        from . import images

        model = self._from_pretrained(getattr(transformers, self.model_class))
        self.processor = images.load_processor(self.model_type, self.source.model_dir)
        self.image = images.image_spec(self.processor, self.model_type, model.config)
        self.config = model.config
        self.patch = int(model.config.patch_size)
        self.model_h, self.model_w = images._pair(model.config.image_size)
        return model

    def _pixels(self, batch, h, w, seed):
        import torch

        return (torch.randn(batch, 3, h, w, generator=_generator(seed)),)

    def _labels(self) -> list[str]:
        id2label = {int(k): str(v) for k, v in (self.config.id2label or {}).items()}
        return [id2label.get(i, f"LABEL_{i}") for i in range(int(self.config.num_labels))]

    def wrap(self, model):
        import torch

        names = [o["name"] for o in self.output_specs()]
        dtype = float_dtype(model)

        class ImageModule(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.model = m

            def forward(self, pixel_values):
                out = self.model(pixel_values=pixel_values.to(dtype), return_dict=True)
                results = tuple(getattr(out, n).float() for n in names)
                return results[0] if len(results) == 1 else results

        return ImageModule(model).eval()

    def reference(self, model, inputs):
        out = model(pixel_values=inputs[0].to(float_dtype(model)), return_dict=True)
        return tuple(getattr(out, o["name"]) for o in self.output_specs())

    def write_preprocessing(self, out_dir):
        self.processor.save_pretrained(str(out_dir))
        self.preprocessing_diff = self.check_image_spec(self.image)
        return {"labels": self.labels(), "image": self.image}

    def check_image_spec(self, spec: dict) -> float:
        """The manifest's image section must reproduce the processor's pixel_values (max difference returned)."""
        from . import images

        diff = images.preprocessing_parity(self.processor, spec)
        if not diff <= 1e-4:
            raise ExportError(f"the manifest's image section does not reproduce the image processor (max difference {diff:.3g})")
        return diff

    def labels(self) -> list[str]:
        return self._labels()


class ImageClassification(ImageFamily):
    task = "image-classification"
    model_types = ("vit",)
    model_class = "ViTForImageClassification"
    expected = "a ViT image classifier (ViTForImageClassification)"

    def load(self):
        model = super().load()
        if self.image["resize"] != "fixed" or (self.image["height"], self.image["width"]) != (self.model_h, self.model_w):
            raise ExportError(
                f"the image processor produces {self.image['height']}x{self.image['width']} images but the model "
                f"expects {self.model_h}x{self.model_w}"
            )
        return model

    def trace_inputs(self):
        return self._pixels(min(2, self.options.max_batch_size), self.model_h, self.model_w, 1)

    def verify_inputs(self):
        b = max(1, self.options.max_batch_size)
        return [self._pixels(1, self.model_h, self.model_w, 10), self._pixels(min(3, b), self.model_h, self.model_w, 11)]

    def input_specs(self):
        # ViT position embeddings are fixed to the configured grid: height and width are fixed too.
        return [{"name": "pixel_values", "dtype": "float32", "shape": [-1, 3, self.model_h, self.model_w]}]

    def output_specs(self):
        return [{"name": "logits", "dtype": "float32", "shape": [-1, int(self.config.num_labels)]}]


class ObjectDetection(ImageFamily):
    task = "object-detection"
    model_types = ("yolos",)
    model_class = "YolosForObjectDetection"
    expected = "a YOLOS detector (YolosForObjectDetection)"

    def _grid_shapes(self):
        """Image sizes (pixels) for tracing and verification: different sizes and aspect ratios,
        one of them not a multiple of the patch size."""
        p = self.patch
        gh, gw = max(2, min(self.model_h // p, 20)), max(2, min(self.model_w // p, 30))
        trace = (gh * p, gw * p)
        verify = [(max(2, gh - 1) * p, max(2, gw - 3) * p + p // 3), (gh * p + p, max(2, gw - 1) * p)]
        return trace, verify

    def trace_inputs(self):
        (h, w), _ = self._grid_shapes()
        return self._pixels(min(2, self.options.max_batch_size), h, w, 1)

    def verify_inputs(self):
        b = max(1, self.options.max_batch_size)
        _, shapes = self._grid_shapes()
        return [self._pixels(bs, h, w, 10 + i) for i, (bs, (h, w)) in enumerate(zip((1, min(3, b)), shapes))]

    def input_specs(self):
        return [{"name": "pixel_values", "dtype": "float32", "shape": [-1, 3, -1, -1]}]

    def output_specs(self):
        n = int(self.config.num_detection_tokens)
        return [
            {"name": "logits", "dtype": "float32", "shape": [-1, n, int(self.config.num_labels) + 1]},
            {"name": "pred_boxes", "dtype": "float32", "shape": [-1, n, 4]},
        ]

    def labels(self):
        return self._labels() + ["no object"]


FAMILIES: dict[str, type[Family]] = {
    f.task: f for f in (Embedding, TextGeneration, ImageClassification, ObjectDetection)
}
TASKS = tuple(FAMILIES)
