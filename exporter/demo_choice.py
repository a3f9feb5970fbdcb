"""Which demo models ``npm run setup`` exports: real pretrained checkpoints from the Hugging Face Hub when the
Hub answers, the offline random-init set otherwise.

``DEMO_MODELS`` (random | pretrained | none | auto, default auto) overrides the choice. ``auto`` asks the Hub
(``HF_ENDPOINT``, default https://huggingface.co) for the first pretrained model's main revision, within
PROBE_TIMEOUT_S in all (DNS included), and never when ``HF_HUB_OFFLINE`` is set.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable, Mapping

from .errors import ExportError

#: demo name -> (Hub id, task). The models the seed's design names for each task.
PRETRAINED = {
    "demo-embedder": ("sentence-transformers/all-MiniLM-L6-v2", "embedding"),
    "demo-gpt2": ("openai-community/gpt2", "text-generation"),
    "demo-vit": ("google/vit-base-patch16-224", "image-classification"),
    "demo-yolos": ("hustvl/yolos-tiny", "object-detection"),
}
CHOICES = ("auto", "random", "pretrained", "none")
DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Choice:
    kind: str  # "random" | "pretrained" | "none"
    reason: str  # one line saying why

    def __str__(self) -> str:
        if self.kind == "none":
            return f"{self.reason}: no demo models exported"
        return f"{self.reason}: exporting {self.kind}{'-init' if self.kind == 'random' else ''} demo models"


def _offline(env: Mapping[str, str]) -> bool:
    return env.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_answers(endpoint: str, repo_id: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the Hub at ENDPOINT answers for REPO_ID's main revision within TIMEOUT seconds, else why not."""
    url = f"{endpoint.rstrip('/')}/api/models/{repo_id}/revision/main"
    result: list[str | None] = [f"no answer within {timeout:g} s"]

    def ask() -> None:
        try:
            request = urllib.request.Request(url, headers={"user-agent": "atenspace-exporter"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.loads(response.read(1 << 20) or b"{}")
            result[0] = None if isinstance(body, dict) and body.get("sha") else "an answer without a commit sha"
        except urllib.error.HTTPError as e:
            result[0] = f"HTTP {e.code}"
        except urllib.error.URLError as e:
            result[0] = str(getattr(e.reason, "strerror", None) or e.reason)
        except (OSError, ValueError) as e:
            result[0] = str(e) or type(e).__name__

    thread = threading.Thread(target=ask, daemon=True)  # getaddrinfo ignores timeouts: bound it from outside
    thread.start()
    thread.join(timeout)
    return result[0]


def choose(env: Mapping[str, str] | None = None,
           probe: Callable[[str, str, float], str | None] = hub_answers) -> Choice:
    env = os.environ if env is None else env
    wanted = (env.get("DEMO_MODELS") or "auto").strip().lower()
    if wanted not in CHOICES:
        raise ExportError(f"DEMO_MODELS must be one of {', '.join(CHOICES)}, got {env.get('DEMO_MODELS')!r}")
    if wanted != "auto":
        return Choice(wanted, f"DEMO_MODELS={wanted}")
    if _offline(env):
        return Choice("random", "HF_HUB_OFFLINE is set")
    endpoint = env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    start = time.monotonic()
    reason = probe(endpoint, next(iter(PRETRAINED.values()))[0], PROBE_TIMEOUT_S)
    if reason is not None:
        return Choice("random", f"hub not reachable ({endpoint}: {reason})")
    return Choice("pretrained", f"hub reachable ({endpoint}, {1000 * (time.monotonic() - start):.0f} ms)")
