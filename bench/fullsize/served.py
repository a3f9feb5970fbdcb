"""Served figures for the full-size table: ATenSpace Serve (node dist/src/server/main.js) on the exported models,
one fresh server per model: load times, RSS, and one request at a time through the raw KServe route and the
task route, timed by a keep-alive HTTP client (http.client).

Usage: python3 bench/fullsize/served.py MODELS_DIR OUT.json
Environment: SERVER_JS (default dist/src/server/main.js), THREADS (intra-op threads), REPS (default 15).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import DECODE_TOKENS, SEQ, SHAPES, image, jpeg_bytes, manifest, text_of_tokens, token_inputs  # noqa: E402
from inprocess import evict_page_cache  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Server:
    def __init__(self, models: Path, threads: int, log: Path):
        self.port = free_port()
        env = {**os.environ, "MODEL_REPOSITORY": str(models), "LOAD_MODELS": "none", "LAZY_LOAD": "false",
               "WARMUP": "false", "HOST": "127.0.0.1", "PORT": str(self.port), "GRPC_PORT": "0",
               "INTRA_OP_THREADS": str(threads), "BODY_LIMIT": "256MiB", "MAX_TENSOR_ELEMENTS": str(64 << 20),
               "MAX_IMAGE_BYTES": "64MiB", "LOG_LEVEL": "warn", "DATA_DIR": tempfile.mkdtemp(prefix="fullsize-data-"),
               "MEMORY_TRIM_INTERVAL_MS": "1000", "MAX_EVENT_LOOP_DELAY_MS": "0"}
        self.log = open(log, "w")
        self.proc = subprocess.Popen(["node", os.environ.get("SERVER_JS") or str(REPO / "dist/src/server/main.js")], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        for _ in range(600):
            try:
                if self.request("GET", "/health/live")[0] == 200:
                    return
            except OSError:
                self.conn.close()
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {log}")
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, float]:
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers or ({"content-type": "application/json"} if body else {}))
        resp = self.conn.getresponse()
        data = resp.read()
        elapsed = (time.perf_counter() - start) * 1000
        length = resp.getheader("inference-header-content-length")
        if length is not None:  # a binary answer: its JSON header (the bytes after it are the outputs)
            data = data[:int(length)]
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {"raw": data[:200].decode(errors="replace")}
        return resp.status, parsed, elapsed

    def ok(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[dict, float]:
        status, parsed, ms = self.request(method, path, body, headers)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {json.dumps(parsed)[:300]}")
        return parsed, ms

    def rss(self) -> int:
        return rss_of(self.proc.pid)

    def stop(self) -> None:
        self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def timed(server: Server, path: str, body: bytes | tuple[bytes, dict], reps: int, warmup: int = 2, check=None) -> dict:
    body, headers = body if isinstance(body, tuple) else (body, None)
    for _ in range(warmup):
        parsed, _ = server.ok("POST", path, body, headers)
        if check:
            check(parsed)
    ms = [server.ok("POST", path, body, headers)[1] for _ in range(reps)]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "reps": reps, "body_bytes": len(body)}


def raw_body(folder: Path, tensors) -> bytes:
    m = manifest(folder)
    kinds = {"int64": "INT64", "float32": "FP32"}
    inputs = [{"name": spec["name"], "shape": list(t.shape), "datatype": kinds[spec["dtype"]],
               "data": t.flatten().tolist()} for spec, t in zip(m["inputs"], tensors)]
    return json.dumps({"inputs": inputs}).encode()


def raw_binary_body(folder: Path, tensors) -> tuple[bytes, dict]:
    """The same tensors through the binary tensor data extension, with binary outputs."""
    m = manifest(folder)
    kinds = {"int64": ("INT64", "<i8"), "float32": ("FP32", "<f4")}
    blobs = [t.numpy().astype(kinds[spec["dtype"]][1]).tobytes() for spec, t in zip(m["inputs"], tensors)]
    inputs = [{"name": spec["name"], "shape": list(t.shape), "datatype": kinds[spec["dtype"]][0],
               "parameters": {"binary_data_size": len(b)}} for spec, t, b in zip(m["inputs"], tensors, blobs)]
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    return header + b"".join(blobs), {"content-type": "application/octet-stream",
                                      "inference-header-content-length": str(len(header))}


def measure(models: Path, name: str, threads: int, reps: int, logdir: Path) -> dict:
    folder = models / name
    m = manifest(folder)
    past = (m.get("generation") or {}).get("past_key_values")
    file = folder / (past["file"] if past else m["file"])
    server = Server(models, threads, logdir / f"server-{name}.log")
    try:
        time.sleep(1.5)
        result = {"model": name, "weights_bytes": m["parameters"] * 4, "rss_base": server.rss()}
        evict_page_cache(file)
        _, result["load_cold_ms"] = server.ok("POST", f"/models/{name}/load")
        time.sleep(1.5)  # let MEMORY_TRIM hand back what loading freed
        result["rss_after_load"] = server.rss()
        loaded = [server.ok("POST", f"/models/{name}/load")[1] for _ in range(20)]
        result["load_loaded_ms"] = statistics.median(loaded)
        shapes = {}
        raw = f"/v2/models/{name}/infer"
        if name == "bert-base":
            text = text_of_tokens(folder, SEQ, special=True)

            def check_tokens(batch):
                def check(parsed):
                    assert parsed["usage"]["tokens"] == SEQ * batch, parsed["usage"]
                return check

            for label, batch, _ in SHAPES[name]:
                shapes[label] = {
                    "raw": timed(server, raw, raw_body(folder, token_inputs(folder, batch, SEQ)), reps),
                    "raw_binary": timed(server, raw, raw_binary_body(folder, token_inputs(folder, batch, SEQ)), reps),
                    "task": timed(server, "/infer", json.dumps({"model": name, "text": [text] * batch}).encode(),
                                  reps, check=check_tokens(batch)),
                }
        elif name == "gpt2":
            prompt = text_of_tokens(folder, SEQ, special=False)
            one = json.dumps({"model": name, "text": prompt, "max_new_tokens": 1}).encode()
            many = json.dumps({"model": name, "text": prompt, "max_new_tokens": DECODE_TOKENS}).encode()
            first, _ = server.ok("POST", "/infer", one)
            assert first["usage"]["prompt_tokens"] == SEQ, first["usage"]
            answer, _ = server.ok("POST", "/infer", many)
            tokens = answer["tokens"]
            t1 = timed(server, "/infer", one, reps)
            tn = timed(server, "/infer", many, max(3, reps // 3), 1)
            shapes["prefill 128"] = {"task": t1}
            shapes["decode 1 token (past 128)"] = {
                "task": {"median_ms": (tn["median_ms"] - t1["median_ms"]) / max(tokens - 1, 1), "reps": tn["reps"],
                         "derived": f"(t({tokens} tokens) - t(1 token)) / {tokens - 1}"}}
            shapes[f"prefill 128 + {DECODE_TOKENS} tokens"] = {"task": {**tn, "tokens": tokens}}
        else:
            for label, _, (h, w) in SHAPES[name]:
                r = max(3, reps // 3) if h * w > 600_000 else reps
                task = {"model": name, "image": base64.b64encode(jpeg_bytes(h, w)).decode()}
                if m["task"] == "image-classification":
                    task["top_k"] = 5
                shapes[label] = {"raw": timed(server, raw, raw_body(folder, [image(h, w)]), r),
                                 "raw_binary": timed(server, raw, raw_binary_body(folder, [image(h, w)]), r),
                                 "task": timed(server, "/infer", json.dumps(task).encode(), r)}
        result["shapes"] = shapes
        time.sleep(1.5)
        result["rss_after_serving"] = server.rss()
        server.ok("POST", f"/models/{name}/unload")
        time.sleep(1.5)
        result["rss_after_unload"] = server.rss()
        _, result["load_again_ms"] = server.ok("POST", f"/models/{name}/load")  # the file in the page cache
        return result
    finally:
        server.stop()


def main() -> None:
    models, out = Path(sys.argv[1]), Path(sys.argv[2])
    threads = int(os.environ.get("THREADS") or os.cpu_count())
    reps = int(os.environ.get("REPS") or 15)
    results = []
    for name in SHAPES:
        results.append(measure(models, name, threads, reps, out.parent))
        r = results[-1]
        print(f"served {name}: load {r['load_cold_ms']:.0f} ms, RSS +{(r['rss_after_load'] - r['rss_base']) / 2**20:.0f} MiB; "
              + ", ".join(f"{k} " + "/".join(f"{kind} {v[kind]['median_ms']:.1f}" for kind in v) + " ms"
                          for k, v in r["shapes"].items()), flush=True)
    out.write_text(json.dumps({"threads": threads, "models": results}, indent=1))


if __name__ == "__main__":
    main()
