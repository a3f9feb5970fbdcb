"""The .pt2 benchmark's models: the MiniLM-size embedder of bench/embeddings (BERT 6 x 384, 12 heads,
random init, max length 512) exported three ways by the exporter CLI from the same source folder:
  minilm         TorchScript (the default format)
  minilm-pt2     --format pt2 (torch.export + AOTInductor, freezing on: the exporter's default)
  minilm-pt2-nofreeze   the same without Inductor's freezing (Python API: pt2_freezing=False)
Each is verified against transformers eager before its folder appears. Prints the compile times.

Usage: python3 bench/pt2/make_models.py WORK_DIR
"""
import json
import os
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, REPO)


def main(work: str) -> None:
    models = os.path.join(work, "models")
    source = os.path.join(work, "source")
    if not os.path.isdir(os.path.join(models, "minilm")):
        sys.path.insert(0, os.path.join(REPO, "bench", "embeddings"))
        import make_model  # the source folder, the TorchScript export and the text workloads

        make_model.main(work)
    timings = {}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "exporter", "export", source, "--task", "embedding", "--name", "minilm-pt2",
                    "--out", models, "--force", "--max-length", "512", "--format", "pt2"], cwd=REPO, check=True)
    timings["minilm-pt2"] = round(time.perf_counter() - start, 1)
    from exporter.export import ExportRequest, export

    start = time.perf_counter()
    export(ExportRequest(source=source, task="embedding", name="minilm-pt2-nofreeze", out=models, force=True,
                         max_length=512, format="pt2", pt2_freezing=False))
    timings["minilm-pt2-nofreeze"] = round(time.perf_counter() - start, 1)
    print(json.dumps({"export_seconds": timings}))


if __name__ == "__main__":
    main(sys.argv[1])
