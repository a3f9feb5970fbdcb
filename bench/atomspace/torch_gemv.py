"""Why one exact query is slower served than numpy: LibTorch's (MKL's) float32 matrix-vector
product against numpy's (OpenBLAS) on this CPU, and the matrix-product orientations the addon
could use instead. Prints milliseconds (median of 30) for a ROWS x D matrix.

Usage: python3 bench/atomspace/torch_gemv.py [ROWS=100000] [D=384]
"""
import json
import sys
import time

import numpy as np
import torch

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
d = int(sys.argv[2]) if len(sys.argv) > 2 else 384
X = torch.randn(rows, d)


def ms(f):
    for _ in range(5):
        f()
    ts = []
    for _ in range(30):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1000)
    return round(float(np.median(ts)), 2)


out = {"rows": rows, "d": d, "torch": torch.__version__, "threads": torch.get_num_threads(), "blas": "mkl" if torch.backends.mkl.is_available() else "other"}
q = torch.randn(d)
out["torch.mv(X, q) (the addon, one query)"] = ms(lambda: torch.mv(X, q))
out["numpy X @ q"] = ms(lambda: X.numpy() @ q.numpy())
for nq in (2, 16):
    Q = torch.randn(nq, d)
    out[f"torch.mm(Q, X.t()), {nq} queries (the addon)"] = ms(lambda: torch.mm(Q, X.t()))
    out[f"torch.mm(X, Q.t()), {nq} queries"] = ms(lambda: torch.mm(X, Q.t()))
    out[f"numpy Q @ X.T, {nq} queries"] = ms(lambda: Q.numpy() @ X.numpy().T)
print(json.dumps(out, indent=1))
