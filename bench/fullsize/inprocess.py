"""In-process Python figures for the full-size table: the exported TorchScript files (torch.jit.load, the very
files the server loads) and transformers eager on the source checkpoints; load time and RSS per model.

Usage: python3 bench/fullsize/inprocess.py MODELS_DIR CHECKPOINTS_DIR OUT.json
Environment: THREADS (intra-op threads, default: cores), REPS (timed TorchScript runs per shape, default 15;
four times that for a decode step, a third for eager and for images over 600k pixels).
Each model is measured in a fresh process (this script re-runs itself per model), so RSS deltas are its own.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import DECODE_TOKENS, SEQ, SHAPES, image, manifest, token_inputs  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def evict_page_cache(path: Path) -> None:
    """Drop the file's clean pages from the page cache, so that the next read comes from disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(fn, reps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(ms: list[float]) -> dict:
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "reps": len(ms)}


def measure_model(models: Path, checkpoints: Path, name: str, reps: int) -> dict:
    import torch

    torch.set_num_threads(int(os.environ.get("THREADS") or os.cpu_count()))
    folder = models / name
    m = manifest(folder)
    past = (m.get("generation") or {}).get("past_key_values")
    file = folder / (past["file"] if past else m["file"])  # what the server keeps loaded
    weights_bytes = m["parameters"] * 4
    result: dict = {"model": name, "parameters": m["parameters"], "weights_bytes": weights_bytes,
                    "file": file.name, "file_bytes": file.stat().st_size, "threads": torch.get_num_threads()}

    evict_page_cache(file)
    rss0 = rss_bytes()
    start = time.perf_counter()
    ts = torch.jit.load(str(file)).eval()
    result["load_cold_ms"] = (time.perf_counter() - start) * 1000
    result["rss_after_load"] = rss_bytes() - rss0
    start = time.perf_counter()
    torch.jit.load(str(file)).eval()  # page cache warm; a second copy, dropped at once
    result["load_cached_ms"] = (time.perf_counter() - start) * 1000

    from transformers import AutoModel, GPT2LMHeadModel, ViTForImageClassification, YolosForObjectDetection

    src = checkpoints / name
    eager_reps = max(3, reps // 3)  # transformers eager is a reference only: fewer runs
    shapes = {}
    with torch.inference_mode():
        if name == "bert-base":
            eager = AutoModel.from_pretrained(str(src)).eval()
            for label, batch, _ in SHAPES[name]:
                args = token_inputs(folder, batch, SEQ)
                shapes[label] = {"torchscript": summary(timed(lambda: ts(*args), reps)),
                                 "eager": summary(timed(lambda: eager(*args), eager_reps, 1))}
        elif name == "gpt2":
            eager = GPT2LMHeadModel.from_pretrained(str(src)).eval()
            n_layer, n_head, head_dim = past["n_layer"], past["n_head"], past["head_dim"]
            ids, mask = token_inputs(folder, 1, SEQ)
            empty = [torch.zeros(1, n_head, 0, head_dim) for _ in range(2 * n_layer)]
            prefill = lambda: ts(ids, mask, *empty)  # noqa: E731
            out = prefill()
            presents = list(out[1:])
            step_ids = torch.tensor([[1234]])
            step_mask = torch.ones(1, SEQ + 1, dtype=torch.long)
            decode = lambda: ts(step_ids, step_mask, *presents)  # noqa: E731
            cache = eager(input_ids=ids, attention_mask=mask, use_cache=True).past_key_values

            def eager_decode():
                import copy
                eager(input_ids=step_ids, attention_mask=step_mask, past_key_values=copy.copy(cache), use_cache=True)

            shapes["prefill 128"] = {"torchscript": summary(timed(prefill, reps)),
                                     "eager": summary(timed(lambda: eager(input_ids=ids, attention_mask=mask,
                                                                          use_cache=True), eager_reps, 1))}
            shapes["decode 1 token (past 128)"] = {"torchscript": summary(timed(decode, reps * 4)),
                                                   "eager": summary(timed(eager_decode, reps, 1))}
            # a whole greedy continuation of DECODE_TOKENS tokens through the TorchScript module, argmax included
            def continuation():
                o = ts(ids, mask, *empty)
                kv = list(o[1:])
                tok = o[0][:, -1].argmax(-1, keepdim=True)
                for i in range(DECODE_TOKENS - 1):
                    o = ts(tok, torch.ones(1, SEQ + 1 + i, dtype=torch.long), *kv)
                    kv = list(o[1:])
                    tok = o[0][:, -1].argmax(-1, keepdim=True)
            shapes[f"prefill 128 + {DECODE_TOKENS} tokens"] = {"torchscript": summary(timed(continuation, max(3, reps // 3), 1))}
        else:
            cls = ViTForImageClassification if name == "vit-base" else YolosForObjectDetection
            eager = cls.from_pretrained(str(src)).eval()
            for label, _, (h, w) in SHAPES[name]:
                x = image(h, w)
                r = max(3, reps // 3) if h * w > 600_000 else reps
                shapes[label] = {"torchscript": summary(timed(lambda: ts(x), r)),
                                 "eager": summary(timed(lambda: eager(pixel_values=x), min(r, eager_reps), 1))}
    result["shapes"] = shapes
    result["rss_after_forward"] = rss_bytes() - rss0  # TorchScript + eager model + activations: for reference only
    return result


def main() -> None:
    models, checkpoints, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    reps = int(os.environ.get("REPS") or 15)
    if len(sys.argv) > 4:  # child: one model
        print(json.dumps(measure_model(models, checkpoints, sys.argv[4], reps)))
        return
    results = []
    for name in SHAPES:
        proc = subprocess.run([sys.executable, __file__, str(models), str(checkpoints), str(out), name],
                              capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"in-process {name}: " + ", ".join(f"{k} {v['torchscript']['median_ms']:.1f} ms"
                                                 for k, v in results[-1]["shapes"].items()), flush=True)
    import torch
    out.write_text(json.dumps({"torch": torch.__version__, "models": results}, indent=1))


if __name__ == "__main__":
    main()
