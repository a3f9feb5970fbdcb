"""The baseline: the FastAPI + TorchScript server a user would otherwise write for the bench model.

Usage: python3 bench/serving/fastapi_server.py MODEL_PT PORT THREADS [sync|async]

uvicorn, one worker, on 127.0.0.1. POST /infer takes the same KServe-v2 style JSON body as
ATenSpace Serve's (model, inputs: [{name, shape, datatype, data}]), builds tensors, runs one
forward per request under torch.inference_mode, and answers {model_name, outputs: [...]}.
No batching, no queue: that is the point of comparison.

  sync  (default) `def` handler, the FastAPI idiom for blocking work: requests run on the
        threadpool, so concurrent requests run concurrent forwards.
  async `async def` handler: forwards run on the event loop, one at a time.
GET /health answers once the model is loaded and warmed up.
"""
import sys

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

MODEL_PT, PORT, THREADS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MODE = sys.argv[4] if len(sys.argv) > 4 else "sync"

torch.set_num_threads(THREADS)
model = torch.jit.load(MODEL_PT).eval()
with torch.inference_mode():  # a couple of forwards, as any server would before taking traffic
    for _ in range(3):
        model(torch.ones(1, 32, dtype=torch.int64), torch.ones(1, 32, dtype=torch.int64))


class InputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[int]


class InferRequest(BaseModel):
    model: str
    inputs: list[InputTensor]


app = FastAPI()


def run(request: InferRequest) -> dict:
    named = {t.name: torch.tensor(t.data, dtype=torch.int64).reshape(t.shape) for t in request.inputs}
    if set(named) != {"input_ids", "attention_mask"}:
        raise HTTPException(400, "inputs must be input_ids and attention_mask")
    with torch.inference_mode():
        embedding = model(named["input_ids"], named["attention_mask"])
    return {"model_name": request.model, "model_version": "1",
            "outputs": [{"name": "embedding", "shape": list(embedding.shape), "datatype": "FP32",
                         "data": embedding.flatten().tolist()}]}


if MODE == "async":
    @app.post("/infer")
    async def infer_async(request: InferRequest) -> dict:
        return run(request)
else:
    @app.post("/infer")
    def infer_sync(request: InferRequest) -> dict:
        return run(request)


@app.get("/health")
def health() -> dict:
    return {"status": "ready", "threads": torch.get_num_threads(), "mode": MODE}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, workers=1, log_level="warning", access_log=False)
