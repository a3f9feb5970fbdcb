"""The peer a user would write: FastAPI + transformers, model.generate() per request in a `def`
handler (FastAPI's thread pool), greedy, POST /generate {prompt, max_new_tokens} -> {text, tokens}.

Usage: python3 bench/generation/fastapi_generate.py SOURCE_DIR PORT THREADS
"""
import sys

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import AutoModelForCausalLM, AutoTokenizer

source, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
tokenizer = AutoTokenizer.from_pretrained(source)
model = AutoModelForCausalLM.from_pretrained(source).eval()
app = FastAPI()


class Generate(BaseModel):
    prompt: str
    max_new_tokens: int = 32


@app.post("/generate")
def generate(body: Generate) -> dict:
    ids = tokenizer(body.prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=body.max_new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    new = out[0, ids["input_ids"].shape[1]:]
    return {"text": tokenizer.decode(new, skip_special_tokens=True), "tokens": int(new.shape[0])}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
