"""Markdown tables from inprocess.json and served.json, beside the design document's CPU figures.

Usage: python3 bench/fullsize/report.py WORK_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MiB = 2**20
#: (model, shape) -> the design document's figure for it
DESIGN_MS = {
    ("bert-base", "seq 128, batch 1"): "≈ 15 ms per batch",
    ("bert-base", "seq 128, batch 8"): "≈ 15 ms per batch",
    ("gpt2", "prefill 128"): "≈ 20 ms",
    ("gpt2", "decode 1 token (past 128)"): "≈ 20 ms",
    ("vit-base", "224x224"): "≈ 80 ms",
    ("yolos-tiny-512", "512x512"): "≈ 100 ms (YOLO, 640²)",
    ("yolos-tiny", "800x1333 (default)"): "≈ 100 ms (YOLO, 640²)",
}
DESIGN_MB = {"bert-base": "≈ 500 MB", "gpt2": "≈ 550 MB", "vit-base": "≈ 350 MB"}


def ms(d: dict | None, key: str = "median_ms") -> str:
    return f"{d[key]:.1f}" if d and key in d else "–"


def ratio(a: dict | None, b: dict | None) -> str:
    return f"{a['median_ms'] / b['median_ms']:.2f}×" if a and b else "–"


def main(work: Path) -> None:
    inproc = {m["model"]: m for m in json.loads((work / "inprocess.json").read_text())["models"]}
    served = {m["model"]: m for m in json.loads((work / "served.json").read_text())["models"]}
    print("| model | shape | design doc (CPU) | Python eager | Python TorchScript | served raw (JSON) "
          "| served raw (binary) | served by task | raw / TorchScript | binary / TorchScript | task / TorchScript |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, s in served.items():
        p = inproc[name]["shapes"]
        for label in dict.fromkeys(list(p) + list(s["shapes"])):
            ip, sv = p.get(label, {}), s["shapes"].get(label, {})
            ts = ip.get("torchscript")
            print(f"| {name} | {label} | {DESIGN_MS.get((name, label), '')} | {ms(ip.get('eager'))} | {ms(ts)} "
                  f"| {ms(sv.get('raw'))} | {ms(sv.get('raw_binary'))} | {ms(sv.get('task'))} | {ratio(sv.get('raw'), ts)} "
                  f"| {ratio(sv.get('raw_binary'), ts)} | {ratio(sv.get('task'), ts)} |")
    print()
    print("| model | weights | design doc | served: RSS added by load | / weights | after serving | after unload "
          "| Python: RSS added by torch.jit.load | cold load (served) | load of a loaded model | reload (page cache warm) "
          "| torch.jit.load cold / cached |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, s in served.items():
        p = inproc[name]
        w = s["weights_bytes"]
        added = s["rss_after_load"] - s["rss_base"]
        print(f"| {name} | {w / MiB:.0f} MiB | {DESIGN_MB.get(name, '')} | {added / MiB:.0f} MiB | {added / w:.2f}× "
              f"| +{(s['rss_after_serving'] - s['rss_base']) / MiB:.0f} MiB | +{(s['rss_after_unload'] - s['rss_base']) / MiB:.0f} MiB "
              f"| {p['rss_after_load'] / MiB:.0f} MiB ({p['rss_after_load'] / w:.2f}×) | {s['load_cold_ms']:.0f} ms "
              f"| {s['load_loaded_ms']:.2f} ms | {s['load_again_ms']:.0f} ms | {p['load_cold_ms']:.0f} / {p['load_cached_ms']:.0f} ms |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
