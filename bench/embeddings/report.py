"""The embeddings benchmark's table from bench/.work/embeddings (points.jsonl, inprocess-*.json)."""
import json
import sys

work = sys.argv[1]
points = [json.loads(line) for line in open(f"{work}/points.jsonl") if line.strip()]
peer = {(p["workload"], p["c"]): p["load"] for p in points if p["server"] == "fastapi"}
print("| workload | c | ours emb/s | p50 / p99 ms | p99/p50 | in-process best (batch) | ours / in-process | FastAPI emb/s | ours / FastAPI | mean batch | queue ms / compute ms per request | compute busy |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for p in points:
    if p["server"] != "ours":
        continue
    w, c, load = p["workload"], p["c"], p["load"]
    ceiling = json.load(open(f"{work}/inprocess-{w}.json"))
    b, a = p["before"], p["after"]
    batches = a["batches"] - b["batches"]
    rows = a["rows"] - b["rows"]
    n = max(1, a["queue_n"] - b["queue_n"])
    queue_ms = 1000 * (a["queue_s"] - b["queue_s"]) / n
    compute_s = a["compute_s"] - b["compute_s"]
    compute_ms = 1000 * compute_s / max(1, a["compute_n"] - b["compute_n"])
    busy = compute_s / max(1e-9, a["at"] - b["at"])
    fast = peer.get((w, c))
    ours = load["embeddings_per_s"]
    versus_peer = f"{fast['embeddings_per_s']:.1f} | **{ours / fast['embeddings_per_s']:.2f}**" if fast else "- | -"
    print(
        f"| {w} | {c} | {ours:.1f} | {load['p50_ms']} / {load['p99_ms']} | {load['p99_ms'] / max(1e-9, load['p50_ms']):.2f} "
        f"| {ceiling['embeddings_per_s']:.1f} ({ceiling['best_batch']}) | **{ours / ceiling['embeddings_per_s']:.2f}** "
        f"| {versus_peer} | {rows / max(1, batches):.1f} | {queue_ms:.1f} / {compute_ms:.1f} | {busy:.0%} |"
    )
bad = [p for p in points if p["load"].get("errors") or p["load"].get("non2xx")]
if bad:
    print(f"\n{len(bad)} load point(s) had errors or non-2xx answers: {[(p['server'], p['workload'], p['c']) for p in bad]}")
