"""The peer a user would otherwise write: FastAPI + transformers (eager), one request at a
time per worker thread, tokenizer + model + mean pooling + normalisation, TEI-style /embed.

Usage: python3 bench/embeddings/fastapi_transformers.py SOURCE_DIR PORT THREADS
"""
import sys

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import AutoModel, AutoTokenizer

source, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
tokenizer = AutoTokenizer.from_pretrained(source)
model = AutoModel.from_pretrained(source).eval()
app = FastAPI()


class Embed(BaseModel):
    inputs: str | list[str]


@app.post("/embed")
def embed(body: Embed) -> list[list[float]]:
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1).tolist()


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
