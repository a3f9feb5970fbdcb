"""--format pt2: torch.export + AOTInductor. The BERT export runs by default; GPT-2 (with and without
past key/values), ViT and YOLOS compile for tens of seconds each on a small machine and run with
PT2_FULL=1. Parity is checked here independently of the exporter's own verification: the test loads
model.pt2 itself (torch._inductor.aoti_load_package) and compares it with the transformers model it
built, at shapes the exporter neither traced nor verified."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

from conftest import BERT, GPT2, YOLOS, load_manifest, no_leftovers, token_ids

F32 = 1e-4
FULL = os.environ.get("PT2_FULL") == "1"
full_only = pytest.mark.skipif(not FULL, reason="AOTInductor compiles of every family are slow here: set PT2_FULL=1")


def _package(folder, file="model.pt2"):
    import torch._inductor

    return torch._inductor.aoti_load_package(str(folder / file))


def _out(runner, *inputs):
    out = runner(*inputs)
    return out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out


@pytest.fixture(scope="module")
def pt2_exports(cli, checkpoints, models_dir):
    """pt2 exports through the CLI, run concurrently: BERT always, the other families with PT2_FULL=1."""
    jobs = {"p-bert": (checkpoints["bert"], "embedding", [])}
    if FULL:
        jobs.update({
            "p-gpt2": (checkpoints["gpt2"], "text-generation", []),
            "p-gpt2-nopast": (checkpoints["gpt2"], "text-generation", ["--no-past"]),
            "p-vit": (checkpoints["vit"], "image-classification", []),
            "p-yolos": (checkpoints["yolos"], "object-detection", []),
        })
    handles = {name: cli.start("export", src, "--task", task, "--name", name, "--out", models_dir, "--max-batch-size", "8",
                               "--format", "pt2", *extra, env={"OMP_NUM_THREADS": "2"})
               for name, (src, task, extra) in jobs.items()}
    return {name: (models_dir / name, cli.wait(h, timeout=900)) for name, h in handles.items()}


def test_bert_pt2_folder_and_manifest(pt2_exports, models_dir):
    folder, res = pt2_exports["p-bert"]
    assert res.returncode == 0, res
    assert "Traceback" not in res.stderr
    assert ".pt2" in res.stdout and "AOTInductor" in res.stdout
    files = {p.name for p in folder.iterdir()}
    assert {"model.pt2", "atenspace.json", "config.json", "tokenizer.json"} <= files
    assert "model.pt" not in files
    m = load_manifest(folder)
    assert m["model_format"] == "pt2" and m["file"] == "model.pt2"
    assert m["file_bytes"] == (folder / "model.pt2").stat().st_size
    assert m["file_sha256"] == hashlib.sha256((folder / "model.pt2").read_bytes()).hexdigest()
    limit = m["max_sequence_length"]
    for spec in m["inputs"]:
        assert spec["shape"] == [-1, -1]
        assert spec["min_shape"] == [1, 1] and spec["max_shape"] == [8, limit]
    assert m["pt2"]["device"] == "cpu" and m["pt2"]["freezing"] is True and m["pt2"]["weights"] == "binary_blob"
    assert m["pt2"]["threads"] >= 1 and m["pt2"]["compile_seconds"] > 0
    v = m["verification"]
    assert v["max_abs_diff"] <= v["tolerance"] == F32 and len(v["shapes"]) >= 2
    assert v["pt2_ms"] > 0 and "torchscript_ms" not in v
    assert no_leftovers(models_dir) == []


def test_bert_pt2_equals_transformers_at_new_shapes(pt2_exports, checkpoints):
    from transformers import AutoModel

    folder, res = pt2_exports["p-bert"]
    assert res.returncode == 0, res
    runner = _package(folder)
    model = AutoModel.from_pretrained(str(checkpoints["bert"])).eval()
    limit = load_manifest(folder)["max_sequence_length"]
    for batch, seq, seed in [(2, 23, 1), (5, 2, 2), (1, 1, 3), (8, limit, 4)]:
        ids, mask = token_ids(batch, seq, BERT_VOCAB(model), seed, pad_rows=(0,) if batch > 1 else (), pad=seq // 2)
        types = torch.zeros_like(ids)
        if batch > 1:
            types[-1, seq // 2:] = 1
        with torch.no_grad():
            expected = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            got = _out(runner, ids, mask, types)
        assert got.shape == expected.shape
        assert (got - expected).abs().max().item() <= F32, (batch, seq)


def BERT_VOCAB(model) -> int:
    return int(model.config.vocab_size)


def test_pt2_verify_rechecks_the_folder(pt2_exports, cli):
    folder, res = pt2_exports["p-bert"]
    assert res.returncode == 0, res
    check = cli("verify", folder)
    assert check.returncode == 0, check
    assert "model.pt2 matches transformers eager" in check.stdout


def test_pt2_refuses_int8_and_writes_nothing(cli, checkpoints, models_dir):
    res = cli("export", checkpoints["bert"], "--task", "embedding", "--name", "p-q", "--out", models_dir,
              "--format", "pt2", "--quantize", "int8")
    assert res.returncode == 1
    assert "--format pt2 does not support --quantize int8" in res.stderr
    assert not (models_dir / "p-q").exists() and no_leftovers(models_dir) == []


def test_export_failure_names_the_operator():
    from exporter import aoti
    from exporter.errors import ExportError

    @torch.library.custom_op("atenspace_test::opaque", mutates_args=())
    def opaque(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    class Opaque(torch.nn.Module):
        def forward(self, x):
            return opaque(x) + 1

    spec = [{"name": "x", "dtype": "float32", "shape": [-1, 3]}]
    with pytest.raises(ExportError, match=r"torch\.export failed for the model at operator atenspace_test::opaque"):
        aoti.export_program(Opaque(), (torch.ones(2, 3),), spec)


def test_failing_op_reads_lowering_errors():
    from exporter.aoti import failing_op

    class LoweringException(Exception):
        pass

    assert failing_op(LoweringException("NotImplementedError: \n  target: aten.foo_bar.default\n  args[0]: ...")) == "aten.foo_bar.default"
    assert failing_op(RuntimeError("no fake impl for <OpOverload(op='aten.baz', overload='Tensor')>")) == "aten.baz.Tensor"
    assert failing_op(RuntimeError("shape mismatch")) is None


# ---------------------------------------------------------------------------------------------
# the other families (PT2_FULL=1)
# ---------------------------------------------------------------------------------------------


@full_only
def test_gpt2_pt2_with_past_equals_transformers(pt2_exports, checkpoints):
    from transformers import GPT2LMHeadModel

    from exporter.families import cache_from_flat, flat_from_cache, positions_from_mask

    folder, res = pt2_exports["p-gpt2"]
    assert res.returncode == 0, res
    m = load_manifest(folder)
    past = m["generation"]["past_key_values"]
    assert past and past["file"] == "model_with_past.pt2"
    model = GPT2LMHeadModel.from_pretrained(str(checkpoints["gpt2"])).eval()
    runner = _package(folder)
    ids, mask = token_ids(3, 17, model.config.vocab_size, 5, pad_rows=(0,), pad=6, side="left")
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask)).logits
        got = _out(runner, ids, mask)
    assert (got - expected).abs().max().item() <= F32
    step = _package(folder, "model_with_past.pt2")
    n_layer = GPT2["layers"]
    for past_len, new in [(0, 6), (4, 1), (11, 2)]:
        ids, mask = token_ids(2, past_len + new, model.config.vocab_size, 7 + past_len, pad_rows=(1,), pad=2, side="left")
        with torch.no_grad():
            if past_len:
                prefix = model(input_ids=ids[:, :past_len], attention_mask=mask[:, :past_len],
                               position_ids=positions_from_mask(mask[:, :past_len]), use_cache=True)
                flat = flat_from_cache(prefix.past_key_values)
            else:
                flat = [torch.zeros(2, GPT2["heads"], 0, GPT2["hidden"] // GPT2["heads"])] * (2 * n_layer)
            positions = positions_from_mask(mask)[:, past_len:]
            ref = model(input_ids=ids[:, past_len:], attention_mask=mask, position_ids=positions,
                        past_key_values=cache_from_flat(list(flat), n_layer), use_cache=True)
            out = step(ids[:, past_len:], mask, *flat)
        assert (out[0] - ref.logits[:, -1:]).abs().max().item() <= F32, past_len
        for a, b in zip(out[1:], flat_from_cache(ref.past_key_values)):
            assert (a - b).abs().max().item() <= F32


@full_only
def test_gpt2_pt2_without_past(pt2_exports):
    folder, res = pt2_exports["p-gpt2-nopast"]
    assert res.returncode == 0, res
    m = load_manifest(folder)
    assert m["generation"]["past_key_values"] is False
    assert not (folder / "model_with_past.pt2").exists()


@full_only
@pytest.mark.parametrize("family", ["vit", "yolos"])
def test_image_pt2_equals_transformers(pt2_exports, checkpoints, family):
    import transformers

    folder, res = pt2_exports[f"p-{family}"]
    assert res.returncode == 0, res
    m = load_manifest(folder)
    model = getattr(transformers, m["architecture"]).from_pretrained(str(checkpoints[family])).eval()
    runner = _package(folder)
    if family == "vit":
        shapes = [(2, 24, 24), (5, 24, 24)]
    else:
        h, w = YOLOS["image_size"]
        shapes = [(2, h - 16, w), (1, h + 16, w - 32)]
        spec = m["inputs"][0]
        assert spec["min_shape"][2:] == [16, 16] and spec["max_shape"][2] >= h + 16
    for i, (b, h, w) in enumerate(shapes):
        pixels = torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(i))
        with torch.no_grad():
            ref = model(pixel_values=pixels)
            got = runner(pixels)
        got = got if isinstance(got, (list, tuple)) else [got]
        assert (got[0] - ref.logits).abs().max().item() <= F32
        if family == "yolos":
            assert (got[1] - ref.pred_boxes).abs().max().item() <= F32
