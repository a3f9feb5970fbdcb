"""The generation benchmark's table from bench/.work/generation/points.jsonl."""
import json
import sys

work = sys.argv[1]
points = [json.loads(line) for line in open(f"{work}/points.jsonl") if line.strip()]
ours = {(p["model"], p["clients"]): p for p in points if p.get("kind") == "ours"}
inproc = {p["model"]: p for p in points if p.get("kind") == "inprocess"}
peer = {p["model"]: p for p in points if p.get("kind") == "peer"}
print("| model | 1 client tok/s | 16 clients tok/s | ×1 client | in-process batch tok/s | ours / in-process | FastAPI generate() tok/s | ours / FastAPI | TTFT p50 alone / loaded ms | loaded / alone |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for model in sorted({m for m, _ in ours}):
    one = ours.get((model, 1))
    many = max((p for (m, c), p in ours.items() if m == model and c > 1), key=lambda p: p["clients"], default=None)
    if not one or not many:
        continue
    ip = inproc.get(model, {}).get("tokens_per_s")
    pe = peer.get(model, {}).get("tokens_per_s")
    ratio = lambda a, b: f"**{a / b:.2f}**" if a and b else "-"
    print(f"| {model} | {one['tokens_per_s']} | {many['tokens_per_s']} | {ratio(many['tokens_per_s'], one['tokens_per_s'])} "
          f"| {ip or '-'} | {ratio(many['tokens_per_s'], ip)} | {pe or '-'} | {ratio(many['tokens_per_s'], pe)} "
          f"| {one['ttft_p50_ms']} / {many['ttft_p50_ms']} | {ratio(many['ttft_p50_ms'], one['ttft_p50_ms'])} |")
rss = [p for p in points if p.get("kind") == "rss"]
if rss:
    r = rss[0]
    print(f"\nServer RSS: {r['rss_kib_before'] / 1024:.0f} MiB loaded and warm, {r['rss_kib_after_load'] / 1024:.0f} MiB right after the load, "
          f"{r['rss_kib_after_idle'] / 1024:.0f} MiB after idling ({(r['rss_kib_after_idle'] / r['rss_kib_before'] - 1) * 100:+.1f} %)")
