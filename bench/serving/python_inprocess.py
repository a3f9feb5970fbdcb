"""In-process batched throughput of the bench model through Python torch.jit: the ceiling that
a server on the same machine is measured against.

Usage: python3 bench/serving/python_inprocess.py MODELS_DIR THREADS SECONDS_PER_BATCH

For each batch size in 1, 2, 4, 8, 16, 32 at sequence 32 it warms up, then calls forward one at a
time under inference_mode in 1-second windows for SECONDS_PER_BATCH and reports the sequences per
second of the best window during which other processes left the CPUs alone (this machine may be
shared; noise only ever slows a window down). Prints one JSON line. node-inprocess.ts does the
same through the Node binding.
"""
import json
import statistics
import sys
import time

import torch

BATCHES = (1, 2, 4, 8, 16, 32)
SEQ = 32
QUIET_CORES = 0.15


def token_ids(batch: int) -> torch.Tensor:
    # The same ids as node-inprocess.ts and the HTTP request body (load.mjs's bodies).
    return torch.tensor([1000 + (i * 7919) % 29000 for i in range(batch * SEQ)], dtype=torch.int64).reshape(batch, SEQ)


def machine_busy_seconds() -> float:
    """CPU seconds all processes have used since boot (Linux /proc/stat, USER_HZ ticks)."""
    try:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, open("/proc/stat").readline().split()[1:9])
        return (user + nice + system + irq + softirq + steal) / 100
    except OSError:
        return float("nan")


def window(fn, seconds: float, min_calls: int) -> dict:
    """Call fn one at a time for `seconds` (at least min_calls times); calls/s and other processes' cores."""
    samples = []
    busy0, own0 = machine_busy_seconds(), time.process_time()
    start = time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    other = (machine_busy_seconds() - busy0 - (time.process_time() - own0)) / elapsed
    return {"calls": len(samples), "seconds": elapsed, "calls_per_s": len(samples) / elapsed,
            "median_ms": statistics.median(samples) * 1e3, "other_cores": max(0.0, other)}


def measure(fn, seconds: float) -> dict:
    """1-second windows for `seconds`, continued (up to 4x as long) until one window had the CPUs to
    itself (other processes < QUIET_CORES); the best quiet window, or the best window if none was."""
    windows = []
    start = time.perf_counter()
    while True:
        windows.append(window(fn, 1.0, 3))
        spent = time.perf_counter() - start
        quiet = [w for w in windows if w["other_cores"] < QUIET_CORES]
        if (spent >= seconds and quiet) or spent >= 4 * seconds:
            break
    best = max(quiet or windows, key=lambda w: w["calls_per_s"])
    return {**best, "windows": len(windows), "quiet_windows": len(quiet)}


def main(models: str, threads: int, seconds: float) -> None:
    torch.set_num_threads(threads)
    model = torch.jit.load(f"{models}/minilm/model.pt")
    results = {"runtime": "python", "torch": torch.__version__, "threads": torch.get_num_threads(), "seq": SEQ, "batches": {}}
    with torch.inference_mode():
        for batch in BATCHES:
            ids, mask = token_ids(batch), torch.ones(batch, SEQ, dtype=torch.int64)
            call = lambda: model(ids, mask)  # noqa: E731
            window(call, 0.5, 3)  # the profiling executor specialises on the first calls
            m = measure(call, seconds)
            m["sequences_per_s"] = batch * m["calls_per_s"]
            results["batches"][str(batch)] = m
            print(f"python batch {batch}: {m['sequences_per_s']:.1f} seq/s ({m['quiet_windows']}/{m['windows']} quiet windows)",
                  file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
