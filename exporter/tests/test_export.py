"""Exports of every family through the CLI; parity checked here independently of the exporter's own
verification: the test loads model.pt itself and compares it with the transformers model it built,
at shapes the exporter neither traced nor verified."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from conftest import BERT, BERT_ST_MAX_SEQ, GPT2, HUB_COMMIT, HUB_ID, VIT, YOLOS, load_manifest, no_leftovers, token_ids

F32 = 1e-4


def _jit(folder, file="model.pt"):
    return torch.jit.load(str(folder / file)).eval()


@pytest.mark.parametrize("family", ["bert", "gpt2", "vit", "yolos"])
def test_cli_export_writes_complete_folder(exported, models_dir, family):
    folder, res = exported[f"t-{family}"]
    assert res.returncode == 0, res
    assert "Traceback" not in res.stderr
    assert "max |diff|" in res.stdout and "parameters" in res.stdout and "TorchScript" in res.stdout
    files = {p.name for p in folder.iterdir()}
    assert {"model.pt", "config.json", "atenspace.json"} <= files
    if family in ("bert", "gpt2"):
        assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= files
    else:
        assert "preprocessor_config.json" in files
    assert no_leftovers(models_dir) == []


@pytest.mark.parametrize("family", ["bert", "gpt2", "vit", "yolos"])
def test_manifest_common_fields(exported, checkpoints, family):
    folder, res = exported[f"t-{family}"]
    assert res.returncode == 0, res
    m = load_manifest(folder)
    assert m["format"] == 1 and m["name"] == folder.name
    assert m["file"] == "model.pt" and m["file_bytes"] == (folder / "model.pt").stat().st_size
    assert m["file_sha256"] == hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    src = checkpoints[family]
    assert m["source"]["id"] is None and m["source"]["path"] == str(src.resolve())
    assert m["source"]["weights_sha256"] == hashlib.sha256((src / "model.safetensors").read_bytes()).hexdigest()
    assert m["weights"] == "random-init"
    assert (m["dtype"], m["quantization"], m["export_device"]) == ("float32", None, "cpu")
    assert m["max_batch_size"] == 8
    assert m["exporter"]["torch"] == torch.__version__ and m["exporter"]["version"] == "0.1.0"
    v = m["verification"]
    assert v["max_abs_diff"] <= v["tolerance"] == F32
    assert len(v["shapes"]) >= 2 and all(s != v["trace_shape"] for s in v["shapes"])
    assert v["eager_ms"] > 0 and v["torchscript_ms"] > 0
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(src))
    assert m["model_type"] == config.model_type and m["architecture"] == config.architectures[0]
    import transformers

    model = getattr(transformers, config.architectures[0]).from_pretrained(str(src))
    assert m["parameters"] == sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# embedding
# ---------------------------------------------------------------------------------------------


def test_embedding_manifest(exported):
    folder, res = exported["t-bert"]
    assert res.returncode == 0, res
    m = load_manifest(folder)
    assert m["task"] == "embedding"
    assert [i["name"] for i in m["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(i["dtype"] == "int64" and i["shape"] == [-1, -1] for i in m["inputs"])
    assert m["outputs"] == [{"name": "last_hidden_state", "dtype": "float32", "shape": [-1, -1, BERT["hidden"]]}]
    # from the sentence-transformers files (modules.json, 1_Pooling/config.json, sentence_bert_config.json)
    assert m["embedding"] == {"pooling": "cls", "normalize": True, "dimension": BERT["hidden"]}
    assert m["max_sequence_length"] == BERT_ST_MAX_SEQ
    assert m["tokenizer"] == {"file": "tokenizer.json", "max_length": BERT_ST_MAX_SEQ, "pad_token": "[PAD]",
                              "pad_token_id": 0, "add_special_tokens": True}


def test_embedding_parity_at_untraced_shapes(exported, checkpoints):
    from transformers import BertModel

    folder, _ = exported["t-bert"]
    ts = _jit(folder)
    hf = BertModel.from_pretrained(str(checkpoints["bert"])).eval()
    vocab = hf.config.vocab_size
    for batch, seq, seed in ((1, 13, 1), (5, 31, 2), (2, BERT_ST_MAX_SEQ, 3)):
        ids, mask = token_ids(batch, seq, vocab, seed, pad_rows=range(1, batch, 2), pad=seq // 2)
        types = torch.zeros_like(ids)
        types[0, seq // 2:] = 1
        with torch.no_grad():
            expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            got = ts(ids, mask, types)
        assert got.shape == expected.shape
        assert (got - expected).abs().max().item() <= F32


def test_embedding_tokenizer_json_has_special_tokens(exported, checkpoints):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    folder, _ = exported["t-bert"]
    rust = Tokenizer.from_file(str(folder / "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(str(checkpoints["bert"]))
    texts = ["Hello world!", "the lazy dog sells sea shells", "Numbers 42 and 2024."]
    for text in texts:
        enc = rust.encode(text)
        assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
        assert enc.ids == hf(text)["input_ids"]
    pair = rust.encode("first part", "second part")
    assert pair.tokens.count("[SEP]") == 2 and 1 in pair.type_ids


# ---------------------------------------------------------------------------------------------
# text generation
# ---------------------------------------------------------------------------------------------


def test_gpt2_manifest(exported):
    folder, _ = exported["t-gpt2"]
    m = load_manifest(folder)
    assert m["task"] == "text-generation" and m["architecture"] == "GPT2LMHeadModel"
    assert [i["name"] for i in m["inputs"]] == ["input_ids", "attention_mask"]
    vocab = m["generation"]["vocab_size"]
    assert m["outputs"] == [{"name": "logits", "dtype": "float32", "shape": [-1, -1, vocab]}]
    gen = m["generation"]
    assert gen["context_length"] == GPT2["positions"] == m["max_sequence_length"]
    assert gen["eos_token_id"] == gen["bos_token_id"] == gen["pad_token_id"] == 0
    assert m["tokenizer"]["pad_token"] is None and m["tokenizer"]["pad_token_id"] is None


def test_gpt2_parity_and_left_padding(exported, checkpoints):
    from transformers import GPT2LMHeadModel

    folder, _ = exported["t-gpt2"]
    ts = _jit(folder)
    hf = GPT2LMHeadModel.from_pretrained(str(checkpoints["gpt2"])).eval()
    vocab = hf.config.vocab_size
    for batch, seq, seed in ((1, 5, 1), (4, 37, 2)):
        ids, mask = token_ids(batch, seq, vocab, seed)
        with torch.no_grad():
            expected = hf(input_ids=ids, attention_mask=mask).logits
            got = ts(ids, mask)
        assert got.shape == expected.shape
        assert (got - expected).abs().max().item() <= F32
    # A left-padded row gives the same logits as the sequence alone (positions follow the mask).
    ids, mask = token_ids(3, 20, vocab, 3, pad_rows=[0, 2], pad=7, side="left")
    with torch.no_grad():
        got = ts(ids, mask)
        alone = hf(input_ids=ids[0:1, 7:]).logits[0]
        full_row = hf(input_ids=ids[1:2]).logits[0]
    assert (got[0, 7:] - alone).abs().max().item() <= F32
    assert (got[1] - full_row).abs().max().item() <= F32


def test_gpt2_incremental_decoding_matches_full_recompute(exported, checkpoints):
    from transformers import GPT2LMHeadModel

    folder, _ = exported["t-gpt2"]
    m = load_manifest(folder)
    past = m["generation"]["past_key_values"]
    assert past, "the incremental-decoding module should verify for GPT-2"
    assert past["file"] == "model_with_past.pt" and (folder / past["file"]).is_file()
    assert (past["n_layer"], past["n_head"], past["head_dim"]) == (GPT2["layers"], GPT2["heads"], GPT2["hidden"] // GPT2["heads"])
    names = [i["name"] for i in past["inputs"]]
    assert names[:4] == ["input_ids", "attention_mask", "past_key_0", "past_value_0"]
    assert len(names) == 2 + 2 * GPT2["layers"] and past["outputs"][0]["name"] == "logits"

    step = _jit(folder, past["file"])
    hf = GPT2LMHeadModel.from_pretrained(str(checkpoints["gpt2"])).eval()
    prompts = [[11, 12, 13], [21, 22, 23, 24, 25, 26]]  # different lengths -> left padding
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    kv = [torch.zeros(2, past["n_head"], 0, past["head_dim"]) for _ in range(2 * past["n_layer"])]
    seqs = [list(p) for p in prompts]
    new_ids, full_mask = ids, mask
    with torch.no_grad():
        for _ in range(6):
            logits, *kv = step(new_ids, full_mask, *kv)
            for row, seq in enumerate(seqs):  # oracle: transformers on the unpadded sequence so far
                expected = hf(input_ids=torch.tensor([seq])).logits[0, -1]
                assert (logits[row, -1] - expected).abs().max().item() <= F32
            nxt = logits[:, -1].argmax(-1)
            for row, seq in enumerate(seqs):
                seq.append(int(nxt[row]))
            new_ids = nxt[:, None]
            full_mask = torch.cat([full_mask, torch.ones(2, 1, dtype=torch.long)], dim=1)
    assert kv[0].shape == (2, past["n_head"], width + 5, past["head_dim"])


# ---------------------------------------------------------------------------------------------
# image classification
# ---------------------------------------------------------------------------------------------


def test_vit_manifest_and_parity(exported, checkpoints):
    from transformers import ViTForImageClassification

    folder, _ = exported["t-vit"]
    m = load_manifest(folder)
    size = VIT["image_size"]
    assert m["inputs"] == [{"name": "pixel_values", "dtype": "float32", "shape": [-1, 3, size, size]}]
    assert m["outputs"] == [{"name": "logits", "dtype": "float32", "shape": [-1, len(VIT["labels"])]}]
    assert m["labels"] == VIT["labels"]
    img = m["image"]
    assert (img["height"], img["width"], img["resize"], img["resample"]) == (size, size, "fixed", "bilinear")
    assert img["image_mean"] == [0.5, 0.5, 0.5] and img["channel_order"] == "RGB" and img["layout"] == "NCHW"
    ts = _jit(folder)
    hf = ViTForImageClassification.from_pretrained(str(checkpoints["vit"])).eval()
    for batch in (1, 5):
        x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            assert (ts(x) - hf(pixel_values=x).logits).abs().max().item() <= F32


def test_vit_image_section_reproduces_processor(exported, checkpoints):
    """Follow the manifest's image section by hand (PIL resize, rescale, normalize) -> processor output."""
    from PIL import Image
    from transformers import ViTImageProcessorPil

    folder, _ = exported["t-vit"]
    img = load_manifest(folder)["image"]
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8), "RGB")
    resized = picture.resize((img["width"], img["height"]), Image.Resampling.BILINEAR)
    x = np.asarray(resized, np.float32) * img["rescale_factor"]
    x = (x - np.array(img["image_mean"], np.float32)) / np.array(img["image_std"], np.float32)
    expected = ViTImageProcessorPil.from_pretrained(str(folder))(images=picture, return_tensors="np")["pixel_values"][0]
    assert np.abs(x.transpose(2, 0, 1) - expected).max() < 1e-5


# ---------------------------------------------------------------------------------------------
# object detection
# ---------------------------------------------------------------------------------------------


def test_yolos_manifest(exported):
    folder, _ = exported["t-yolos"]
    m = load_manifest(folder)
    n = YOLOS["detection_tokens"]
    assert m["inputs"] == [{"name": "pixel_values", "dtype": "float32", "shape": [-1, 3, -1, -1]}]
    assert m["outputs"] == [
        {"name": "logits", "dtype": "float32", "shape": [-1, n, len(YOLOS["labels"]) + 1]},
        {"name": "pred_boxes", "dtype": "float32", "shape": [-1, n, 4]},
    ]
    assert m["labels"] == YOLOS["labels"] + ["no object"]
    img = m["image"]
    assert img["resize"] == "shortest_edge" and img["multiple_of"] == 16
    assert (img["shortest_edge"], img["longest_edge"]) == (min(YOLOS["image_size"]), max(YOLOS["image_size"]))


def test_yolos_parity_at_other_image_sizes(exported, checkpoints):
    from transformers import YolosForObjectDetection

    folder, _ = exported["t-yolos"]
    ts = _jit(folder)
    hf = YolosForObjectDetection.from_pretrained(str(checkpoints["yolos"])).eval()
    trace_shape = load_manifest(folder)["verification"]["trace_shape"]["pixel_values"]
    for batch, h, w in ((1, 32, 112), (3, 96, 48), (2, 57, 83)):  # aspect ratios and non-multiples of the patch
        assert [batch, 3, h, w] != trace_shape
        x = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(h))
        with torch.no_grad():
            logits, boxes = ts(x)
            out = hf(pixel_values=x)
        assert logits.shape == out.logits.shape and boxes.shape == out.pred_boxes.shape
        assert (logits - out.logits).abs().max().item() <= F32
        assert (boxes - out.pred_boxes).abs().max().item() <= F32


def test_hub_id_from_local_cache(exported, checkpoints):
    """A Hub id resolves through the Hugging Face cache (offline here) and is recorded as such."""
    folder, res = exported["hub-vit"]
    assert res.returncode == 0, res
    m = load_manifest(folder)
    assert m["source"]["id"] == HUB_ID and m["source"]["revision"] == HUB_COMMIT
    assert m["source"]["path"].endswith(f"snapshots/{HUB_COMMIT}")
    assert m["weights"] == "pretrained"  # no atenspace-source.json in the Hub snapshot
    local = load_manifest(exported["t-vit"][0])
    assert m["source"]["weights_sha256"] == local["source"]["weights_sha256"]
    assert m["verification"]["max_abs_diff"] <= F32


# ---------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------


def test_demo_builds_all_families_offline_and_is_idempotent(cli, work):
    out = work / "demo-models"
    res = cli("demo", "--out", out, env={"HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res
    tasks = {}
    for name in ("demo-embedder", "demo-gpt2", "demo-vit", "demo-yolos"):
        m = load_manifest(out / name)
        assert m["weights"] == "random-init" and m["verification"]["max_abs_diff"] <= F32
        tasks[name] = m["task"]
    assert tasks == {"demo-embedder": "embedding", "demo-gpt2": "text-generation",
                     "demo-vit": "image-classification", "demo-yolos": "object-detection"}
    emb = load_manifest(out / "demo-embedder")
    assert emb["embedding"]["pooling"] == "mean" and emb["embedding"]["normalize"] is True
    assert 64 <= emb["embedding"]["dimension"] <= 128
    src = out / ".demo-sources" / "demo-embedder"
    assert json.loads((src / "modules.json").read_text())[1]["path"] == "1_Pooling"
    before = (out / "demo-gpt2" / "atenspace.json").read_text()
    again = cli("demo", "--out", out)
    assert again.returncode == 0, again
    assert "up to date" in again.stdout
    assert (out / "demo-gpt2" / "atenspace.json").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == [".demo-sources", "demo-embedder", "demo-gpt2", "demo-vit", "demo-yolos"]
