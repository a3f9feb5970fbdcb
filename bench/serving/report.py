"""Summarise a serving benchmark run: read what run.sh left in WORK, write
bench/.work/serving-results.json and print the Markdown for bench/RESULTS.md.

Usage: python3 bench/serving/report.py WORK_DIR [--setting TEXT]
"""
import argparse
import json
import os
import platform

GOAL_OVERHEAD_US = 300
GOAL_VS_INPROCESS = 0.9
GOAL_VS_FASTAPI = 2.0


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work")
    parser.add_argument("--setting", default="")
    args = parser.parse_args()
    work = args.work

    node, python = read_json(f"{work}/inprocess-node.json"), read_json(f"{work}/inprocess-python.json")
    points = [json.loads(line) for line in open(f"{work}/load.jsonl") if line.strip()]
    point = {(p["label"], p["body"], p["connections"]): p for p in points}
    concurrencies = sorted({p["connections"] for p in points if p["body"] == "minilm"})
    servers = [s for s in ("ours", "fastapi-sync", "fastapi-async") if any(k[0] == s for k in point)]

    def best(run):
        batch, m = max(run["batches"].items(), key=lambda kv: kv[1]["sequences_per_s"])
        return int(batch), m["sequences_per_s"]

    node_best, python_best = best(node), best(python)
    inprocess_best = max(node_best[1], python_best[1])
    tiny = point[("ours", "tiny", 1)]
    overhead_us = tiny["latency_ms"]["p50"] * 1000 - node["tiny"]["p50_us"]

    top = max(concurrencies)
    ours_top = point[("ours", "minilm", top)]["requests_per_s"]
    fastapi_top = {s: point[(s, "minilm", top)]["requests_per_s"] for s in servers if s != "ours"}
    fastapi_best_name = max(fastapi_top, key=fastapi_top.get) if fastapi_top else None

    problems = [f"{p['label']} {p['body']} c{p['connections']}: {p['non2xx']} non-2xx, {p['errors']} errors, {p['timeouts']} timeouts"
                for p in points if p["non2xx"] or p["errors"] or p["timeouts"]]
    loadavg = {w: open(f"{work}/loadavg-{w}").read().split()[:3] for w in ("start", "end") if os.path.exists(f"{work}/loadavg-{w}")}

    summary = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(), "loadavg": loadavg},
        "setting": args.setting,
        "overhead": {"http_p50_us": tiny["latency_ms"]["p50"] * 1000, "inprocess_p50_us": node["tiny"]["p50_us"],
                     "overhead_us": overhead_us, "goal_us": GOAL_OVERHEAD_US},
        "inprocess": {"node": node, "python": python, "best_sequences_per_s": inprocess_best,
                      "node_best": {"batch": node_best[0], "sequences_per_s": node_best[1]},
                      "python_best": {"batch": python_best[0], "sequences_per_s": python_best[1]}},
        "load": points,
        "ratios": {
            "concurrency": top,
            "ours_vs_inprocess_best": ours_top / inprocess_best, "goal_vs_inprocess": GOAL_VS_INPROCESS,
            "ours_vs_fastapi": {s: ours_top / v for s, v in fastapi_top.items()}, "goal_vs_fastapi": GOAL_VS_FASTAPI,
        },
        "problems": problems,
    }
    with open(f"{work}/../serving-results.json", "w") as f:
        json.dump(summary, f, indent=1)

    ok = lambda passed: "met" if passed else "**missed**"  # noqa: E731
    print(f"setting: {args.setting}; machine: {os.cpu_count()} CPUs, load average start {' '.join(loadavg.get('start', []))}, end {' '.join(loadavg.get('end', []))}")
    if problems:
        print("PROBLEMS: " + "; ".join(problems))
    print()
    print("| service overhead (tiny `x + 1`, concurrency 1) | µs |")
    print("|---|---:|")
    print(f"| HTTP POST /infer p50 | {tiny['latency_ms']['p50'] * 1000:.0f} |")
    print(f"| in-process `TorchScriptModule.forward` p50 | {node['tiny']['p50_us']:.1f} |")
    print(f"| **overhead** (goal ≤ {GOAL_OVERHEAD_US}) | **{overhead_us:.0f}** ({ok(overhead_us <= GOAL_OVERHEAD_US)}) |")
    print(f"| (tiny at concurrency 1: {tiny['requests_per_s']:.0f} req/s, p99 {tiny['latency_ms']['p99'] * 1000:.0f} µs) | |")
    print()
    print("In-process MiniLM-size BERT, sequence 32, one call at a time (sequences/s):")
    print()
    batches = list(node["batches"])
    print("| runtime | " + " | ".join(f"batch {b}" for b in batches) + " |")
    print("|---|" + "---:|" * len(batches))
    for name, run in (("Node binding", node), ("Python torch.jit", python)):
        print(f"| {name} | " + " | ".join(f"{run['batches'][b]['sequences_per_s']:.1f}" for b in batches) + " |")
    print()
    print(f"Best in-process: Node {node_best[1]:.1f} seq/s at batch {node_best[0]}, Python {python_best[1]:.1f} seq/s at batch {python_best[0]}.")
    print()
    head = "| concurrency | " + " | ".join(f"{s} req/s | {s} p50 / p99 ms" for s in servers)
    head += " | ours/FastAPI-" + " | ours/FastAPI-".join(s.split("-")[1] for s in servers if s != "ours") + " | ours/in-process best |"
    print(head)
    print("|---:|" + "---:|---:|" * len(servers) + "---:|" * (len(servers) - 1) + "---:|")
    for c in concurrencies:
        row = [str(c)]
        for s in servers:
            p = point[(s, "minilm", c)]
            row += [f"{p['requests_per_s']:.1f}", f"{p['latency_ms']['p50']:.1f} / {p['latency_ms']['p99']:.1f}"]
        ours = point[("ours", "minilm", c)]["requests_per_s"]
        row += [f"{ours / point[(s, 'minilm', c)]['requests_per_s']:.2f}×" for s in servers if s != "ours"]
        row.append(f"{ours / inprocess_best:.2f}")
        print("| " + " | ".join(row) + " |")
    print()
    print("Our server's own view (from /metrics, measured window):")
    print()
    print("| point | executions | mean batch | batch sizes | queue ms | compute ms | total ms |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for p in points:
        if "server" not in p:
            continue
        sv, st = p["server"], p["server"]["stages"]
        sizes = ", ".join(f"{k}: {v:.0f}" for k, v in sv["batch_sizes"].items())
        mean = lambda stage: f"{st[stage]['mean_ms']:.3f}" if stage in st else "-"  # noqa: E731
        print(f"| {p['body']} c{p['connections']} | {sv['executions']:.0f} | {sv['mean_batch']:.1f} | {sizes} | {mean('queue')} | {mean('compute')} | {mean('total')} |")
    print()
    r = summary["ratios"]
    print(f"Goals at concurrency {top}: ours/in-process best = {r['ours_vs_inprocess_best']:.2f} (goal ≥ {GOAL_VS_INPROCESS}: "
          f"{ok(r['ours_vs_inprocess_best'] >= GOAL_VS_INPROCESS)})", end="")
    if fastapi_best_name:
        v = r["ours_vs_fastapi"][fastapi_best_name]
        print(f"; ours/FastAPI (best variant, {fastapi_best_name}) = {v:.2f}× (goal ≥ {GOAL_VS_FASTAPI}×: {ok(v >= GOAL_VS_FASTAPI)})", end="")
    print(f"; service overhead {overhead_us:.0f} µs (goal ≤ {GOAL_OVERHEAD_US}: {ok(overhead_us <= GOAL_OVERHEAD_US)}).")


if __name__ == "__main__":
    main()
