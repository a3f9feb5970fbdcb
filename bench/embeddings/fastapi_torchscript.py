"""The peer a user would write around the same export: FastAPI + the TorchScript file (torch.jit.load)
+ the export's tokenizer.json (HF tokenizers), one request per call in a `def` handler (FastAPI's
thread pool), mean pooling and normalisation, TEI-style POST /embed.

Usage: python3 bench/embeddings/fastapi_torchscript.py MODEL_DIR PORT THREADS
"""
import sys

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from tokenizers import Tokenizer

folder, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
tokenizer.no_padding()
tokenizer.no_truncation()
model = torch.jit.load(f"{folder}/model.pt").eval()
app = FastAPI()


class Embed(BaseModel):
    inputs: str | list[str]


@app.post("/embed")
def embed(body: Embed) -> list[list[float]]:
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    out = []
    for text in texts:
        enc = tokenizer.encode(text)
        ids = torch.tensor([enc.ids], dtype=torch.int64)
        mask = torch.ones_like(ids)
        types = torch.tensor([enc.type_ids], dtype=torch.int64)
        with torch.inference_mode():
            hidden = model(ids, mask, types)
            hidden = hidden[0] if isinstance(hidden, (tuple, list)) else hidden
        pooled = hidden.mean(dim=1)
        out.append(torch.nn.functional.normalize(pooled, dim=1)[0].tolist())
    return out


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
