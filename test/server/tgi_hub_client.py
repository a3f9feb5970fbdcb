"""huggingface_hub's InferenceClient(base_url=...) against the server, as the issue's user ran it.

Run by test/server/tgi.test.ts with the server's URL; prints one JSON object of what the client
returned (or {"skip": why} when huggingface_hub cannot be imported). No assertions here: the tap
test compares the answers with the server's other routes.
"""
import json
import sys

try:
    from huggingface_hub import InferenceClient
except ImportError as error:  # pragma: no cover - depends on the machine
    print(json.dumps({"skip": f"huggingface_hub is not importable: {error}"}))
    sys.exit(0)


def main(base_url: str) -> None:
    client = InferenceClient(base_url=base_url)
    out = {}
    out["embeddings"] = client.feature_extraction(["hello world", "a second text"]).tolist()
    out["embedding_raw"] = client.feature_extraction("hello world", normalize=False).tolist()

    out["text"] = client.text_generation("hello world", max_new_tokens=12)
    whole = client.text_generation("hello world", max_new_tokens=12, details=True)
    out["details"] = {
        "generated_text": whole.generated_text,
        "finish_reason": whole.details.finish_reason,
        "generated_tokens": whole.details.generated_tokens,
        "token_ids": [t.id for t in whole.details.tokens],
        "logprobs": [t.logprob for t in whole.details.tokens],
    }
    out["stream"] = list(client.text_generation("hello world", max_new_tokens=12, stream=True))
    events = list(client.text_generation("hello world", max_new_tokens=12, stream=True, details=True))
    out["stream_last"] = {
        "generated_text": events[-1].generated_text,
        "finish_reason": events[-1].details.finish_reason,
        "generated_tokens": events[-1].details.generated_tokens,
    }

    try:
        client.text_generation("hello world", max_new_tokens=4, best_of=2)
        out["error"] = None
    except Exception as error:  # the client's own exception type is what is checked
        out["error"] = {"type": type(error).__name__, "message": str(error)}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
