"""In-process PyTorch throughput of the bench encoder on a device: sequences per second at
one batch size and sequence length, one forward at a time. Prints JSON.

Usage: python3 bench/device/python_throughput.py MODELS_DIR DEVICE BATCH SEQ SECONDS
"""
import json
import sys
import time

import torch

models, device, batch, seq, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
out = {"device": device, "batch": batch, "seq": seq, "torch": torch.__version__}
if device.startswith("cuda"):
    out["gpu"] = torch.cuda.get_device_name(0)
for variant in ("encoder-fp32", "encoder-fp16"):
    if variant.endswith("fp16") and not device.startswith("cuda"):
        continue
    model = torch.jit.load(f"{models}/{variant}/model.pt", map_location=device).eval()
    ids = torch.randint(1000, 30000, (batch, seq), device=device)
    mask = torch.ones(batch, seq, dtype=torch.int64, device=device)
    with torch.inference_mode():
        for _ in range(5):
            model(ids, mask).cpu()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model(ids, mask).cpu()  # results to the host, as a server must
            n += 1
        elapsed = time.perf_counter() - start
    out[variant] = {"sequences_per_s": n * batch / elapsed, "ms_per_batch": elapsed / n * 1e3}
print(json.dumps(out))
