"""--quantize int8 and --dtype bfloat16 exports stay within the bounds documented in models/README.md:
max |exported - float32 transformers| <= rel * max(1, max |float32 output|), rel = 0.2 (int8), 0.05 (bf16)."""

from __future__ import annotations

import pytest
import torch

from conftest import load_manifest

INT8_REL = 0.2
BF16_REL = 0.05


@pytest.fixture(scope="session")
def int8_bert(exported):
    return exported["q-bert"]


@pytest.fixture(scope="session")
def bf16_gpt2(exported):
    return exported["bf16-gpt2"]


def _bound(rel, reference):
    return rel * max(1.0, reference.abs().max().item())


def test_int8_embedding_within_documented_bound(int8_bert, checkpoints):
    from transformers import BertModel

    folder, res = int8_bert
    assert res.returncode == 0, res
    assert "accuracy change" in res.stdout
    m = load_manifest(folder)
    assert (m["dtype"], m["quantization"]) == ("float32", "int8-dynamic")
    v = m["verification"]
    assert 0 < v["max_abs_diff"] <= v["tolerance"] and v["max_ratio"] <= 1
    ts = torch.jit.load(str(folder / "model.pt"))
    assert "quantized::linear_dynamic" in str(ts.graph)
    hf = BertModel.from_pretrained(str(checkpoints["bert"])).eval()
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(5, hf.config.vocab_size, (3, 21), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    types = torch.zeros_like(ids)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        got = ts(ids, mask, types)
    diff = (got - expected).abs().max().item()
    assert 0 < diff <= _bound(INT8_REL, expected)


def test_bfloat16_generation_within_documented_bound(bf16_gpt2, checkpoints):
    from transformers import GPT2LMHeadModel

    folder, res = bf16_gpt2
    assert res.returncode == 0, res
    m = load_manifest(folder)
    assert (m["dtype"], m["quantization"]) == ("bfloat16", None)
    assert m["outputs"][0]["dtype"] == "float32"
    past = m["generation"]["past_key_values"]
    assert past and past["dtype"] == "bfloat16"
    ts = torch.jit.load(str(folder / "model.pt"))
    hf = GPT2LMHeadModel.from_pretrained(str(checkpoints["gpt2"])).eval()
    ids = torch.randint(5, hf.config.vocab_size, (2, 17), generator=torch.Generator().manual_seed(6))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).logits
        got = ts(ids, mask)
    assert got.dtype == torch.float32
    diff = (got - expected).abs().max().item()
    assert 0 < diff <= _bound(BF16_REL, expected)
    assert m["verification"]["max_abs_diff"] <= m["verification"]["tolerance"]
