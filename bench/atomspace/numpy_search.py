"""The in-process baseline for served search: numpy `X @ q` + argpartition top-k on the same
normalised matrix the server holds. Prints JSON: single-query p50 (and its GEMV / top-k parts),
batched-16 throughput (one matrix product), and each query's top-k row indices (the oracle
the served answers are checked against).

Usage: python3 bench/atomspace/numpy_search.py MATRIX.f32 QUERIES.f32 D [K=10]
"""
import json
import sys
import time

import numpy as np

matrix_path, queries_path, d = sys.argv[1], sys.argv[2], int(sys.argv[3])
k = int(sys.argv[4]) if len(sys.argv) > 4 else 10
X = np.fromfile(matrix_path, dtype=np.float32).reshape(-1, d)
X /= np.linalg.norm(X, axis=1, keepdims=True)
Q = np.fromfile(queries_path, dtype=np.float32).reshape(-1, d)
Q /= np.linalg.norm(Q, axis=1, keepdims=True)


def topk(scores, k):
    idx = np.argpartition(-scores, k)[:k]
    return idx[np.argsort(-scores[idx], kind="stable")]


def p50(xs):
    return float(np.median(xs))


# Warm-up, then one query at a time: GEMV + top-k, and each part alone.
for q in Q[:5]:
    topk(X @ q, k)
total, gemv, select = [], [], []
for _ in range(3):
    for q in Q:
        t0 = time.perf_counter()
        s = X @ q
        t1 = time.perf_counter()
        topk(s, k)
        t2 = time.perf_counter()
        total.append((t2 - t0) * 1000)
        gemv.append((t1 - t0) * 1000)
        select.append((t2 - t1) * 1000)

# 16 queries as one matrix product, then top-k of each row.
batches = []
for _ in range(3):
    for b in range(0, len(Q) - 15, 16):
        t0 = time.perf_counter()
        S = Q[b : b + 16] @ X.T
        for row in S:
            topk(row, k)
        batches.append(time.perf_counter() - t0)
batch_p50 = p50(batches)
oracle = [topk(X @ q, k).tolist() for q in Q]
print(
    json.dumps(
        {
            "rows": X.shape[0],
            "d": d,
            "numpy": np.__version__,
            "single_p50_ms": p50(total),
            "single_gemv_p50_ms": p50(gemv),
            "single_topk_p50_ms": p50(select),
            "batch16_p50_ms": batch_p50 * 1000,
            "batch16_qps": 16 / batch_p50,
            "oracle": oracle,
        }
    )
)
