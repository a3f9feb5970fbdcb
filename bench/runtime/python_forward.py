"""Time torch.jit forward in Python, the yardstick for the Node binding.

Usage: python3 bench/runtime/python_forward.py MODELS_DIR ITERATIONS
Prints one JSON line: {"minilm_b1": {...}, "minilm_b8": {...}, "tiny": {...}} with
median and mean milliseconds per forward, run one at a time under inference_mode.
"""
import json
import statistics
import sys
import time

import torch


def timed(fn, iterations: int, warmup: int):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": statistics.median(samples), "mean_ms": statistics.fmean(samples), "n": iterations}


def main(models: str, iterations: int) -> None:
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else torch.get_num_threads()
    torch.set_num_threads(threads)
    results = {"threads": threads, "torch": torch.__version__}
    minilm = torch.jit.load(f"{models}/minilm.pt")
    tiny = torch.jit.load(f"{models}/tiny.pt")
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for batch in (1, 8):
            ids = torch.randint(1000, 30000, (batch, 32), generator=gen)
            mask = torch.ones(batch, 32, dtype=torch.int64)
            results[f"minilm_b{batch}"] = timed(lambda: minilm(ids, mask), iterations, max(10, iterations // 10))
        x = torch.zeros(4)
        results["tiny"] = timed(lambda: tiny(x), iterations * 50, 1000)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
