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


def read_jsonl(path: str) -> list:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def best_of_rounds(rounds: list) -> dict:
    """Noise only slows a run down: per figure, keep the best round (and say which)."""
    best = dict(rounds[0])
    best["rounds"] = len(rounds)
    best["batches"] = {}
    for b in rounds[0]["batches"]:
        round_no, m = max(enumerate(rounds, 1), key=lambda ir: ir[1]["batches"][b]["sequences_per_s"])
        best["batches"][b] = {**m["batches"][b], "round": round_no}
    for key in ("tiny", "tiny_gap100"):
        if key in rounds[0]:
            best[key] = min((r[key] for r in rounds), key=lambda m: m["p50_us"])
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work")
    parser.add_argument("--setting", default="")
    args = parser.parse_args()
    work = args.work

    node_rounds, python_rounds = read_jsonl(f"{work}/inprocess-node.jsonl"), read_jsonl(f"{work}/inprocess-python.jsonl")
    node, python = best_of_rounds(node_rounds), best_of_rounds(python_rounds)
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
    fastapi_top = {s: v for s, v in fastapi_top.items() if v > 0}
    fastapi_best_name = max(fastapi_top, key=fastapi_top.get) if fastapi_top else None

    problems = [f"{p['label']} {p['body']} c{p['connections']}: {p['non2xx']} non-2xx, {p['errors']} errors, {p['timeouts']} timeouts"
                for p in points if p["non2xx"] or p["errors"] or p["timeouts"] or not p["requests"]]  # no response at all counts too
    problems += [f"{p['label']} {p['body']} c{p['connections']}: other processes used {p['cpu_cores']['other']:.2f} cores"
                 for p in points if (p.get("cpu_cores") or {}).get("other", 0) > 0.25]
    loadavg = {w: open(f"{work}/loadavg-{w}").read().split()[:3] for w in ("start", "end") if os.path.exists(f"{work}/loadavg-{w}")}

    summary = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(), "loadavg": loadavg},
        "setting": args.setting,
        "overhead": {"http_p50_us": tiny["latency_ms"]["p50"] * 1000, "inprocess_p50_us": node["tiny"]["p50_us"],
                     "overhead_us": overhead_us, "goal_us": GOAL_OVERHEAD_US},
        "inprocess": {"node": node, "python": python, "node_rounds": node_rounds, "python_rounds": python_rounds,
                      "best_sequences_per_s": inprocess_best,
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
    print(f"| in-process `TorchScriptModule.forward` p50, back to back | {node['tiny']['p50_us']:.1f} |")
    print(f"| **overhead** (goal ≤ {GOAL_OVERHEAD_US}) | **{overhead_us:.0f}** ({ok(overhead_us <= GOAL_OVERHEAD_US)}) |")
    if "tiny_gap100" in node:
        print(f"| (in-process p50 with 100 µs of JS work between calls: {node['tiny_gap100']['p50_us']:.1f}) | |")
    print(f"| (tiny at concurrency 1: {tiny['requests_per_s']:.0f} req/s, p99 {tiny['latency_ms']['p99'] * 1000:.0f} µs) | |")
    print()
    print(f"In-process MiniLM-size BERT, sequence 32, one call at a time (sequences/s, best of {len(node_rounds)} rounds):")
    print()
    batches = list(node["batches"])
    print("| runtime | " + " | ".join(f"batch {b}" for b in batches) + " |")
    print("|---|" + "---:|" * len(batches))
    for name, run in (("Node binding", node), ("Python torch.jit", python)):
        print(f"| {name} | " + " | ".join(f"{run['batches'][b]['sequences_per_s']:.1f}" for b in batches) + " |")
    print()
    noisy = [f"{r['runtime']} batch {b}" for r in (node, python) for b, m in r["batches"].items() if not m.get("quiet_windows")]
    print("(each figure: the best 1-second window, over rounds, in which other processes used < 0.15 cores"
          + (f"; no quiet window for {', '.join(noisy)}: noisy" if noisy else "") + ")")
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
            lat = p["latency_ms"]
            row += [f"{p['requests_per_s']:.1f}", f"{lat['p50']:.1f} / {lat['p99']:.1f}" if p["requests"] else "-"]
        ours = point[("ours", "minilm", c)]["requests_per_s"]
        row += [f"{ours / point[(s, 'minilm', c)]['requests_per_s']:.2f}×" if point[(s, 'minilm', c)]["requests_per_s"] else "-"
                for s in servers if s != "ours"]
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
    print("CPU used in each measured window, in cores (of %d): the server, the load generator, other processes (noise):" % os.cpu_count())
    print()
    print("| point | server | load generator | other |")
    print("|---|---:|---:|---:|")
    for p in points:
        cpu = p.get("cpu_cores")
        if cpu:
            print(f"| {p['label']} {p['body']} c{p['connections']} | {cpu['server']:.2f} | {cpu['loadgen']:.2f} | {cpu['other']:.2f} |")
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
