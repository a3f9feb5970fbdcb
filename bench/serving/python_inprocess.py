"""In-process batched throughput of the bench model through Python torch.jit: the ceiling that
a server on the same machine is measured against.

Usage: python3 bench/serving/python_inprocess.py MODELS_DIR THREADS SECONDS_PER_BATCH

For each batch size in 1, 2, 4, 8, 16, 32 at sequence 32 it warms up, then calls forward one at a
time under inference_mode for SECONDS_PER_BATCH (at least 5 calls) and reports sequences per
second. Prints one JSON line. node-inprocess.ts does the same through the Node binding.
"""
import json
import statistics
import sys
import time

import torch

BATCHES = (1, 2, 4, 8, 16, 32)
SEQ = 32


def token_ids(batch: int) -> torch.Tensor:
    # The same ids as node-inprocess.ts and the HTTP request body (load.mjs's bodies).
    return torch.tensor([1000 + (i * 7919) % 29000 for i in range(batch * SEQ)], dtype=torch.int64).reshape(batch, SEQ)


def measure(fn, seconds: float, min_calls: int = 5) -> dict:
    samples = []
    start = time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return {"calls": len(samples), "seconds": time.perf_counter() - start, "median_ms": statistics.median(samples) * 1e3}


def main(models: str, threads: int, seconds: float) -> None:
    torch.set_num_threads(threads)
    model = torch.jit.load(f"{models}/minilm/model.pt")
    results = {"runtime": "python", "torch": torch.__version__, "threads": torch.get_num_threads(), "seq": SEQ, "batches": {}}
    with torch.inference_mode():
        for batch in BATCHES:
            ids, mask = token_ids(batch), torch.ones(batch, SEQ, dtype=torch.int64)
            call = lambda: model(ids, mask)  # noqa: E731
            measure(call, min(1.0, seconds / 3), min_calls=3)  # the profiling executor specialises on the first calls
            m = measure(call, seconds)
            m["sequences_per_s"] = batch * m["calls"] / m["seconds"]
            results["batches"][str(batch)] = m
            print(f"python batch {batch}: {m['sequences_per_s']:.1f} seq/s", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
