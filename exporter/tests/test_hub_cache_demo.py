"""Setup's demo models: the choice (DEMO_MODELS, HF_HUB_OFFLINE, whether the Hub answers, asked over real HTTP
within a bounded time) and the pretrained set exported by Hub id from a Hugging Face cache, offline."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import load_manifest
from exporter.demo_choice import PRETRAINED, PROBE_TIMEOUT_S, choose, hub_answers
from exporter.errors import ExportError
from hub_cache import add_revision, commit_hash

FIRST_ID = PRETRAINED["demo-embedder"][0]


class _Hub:
    """An HTTP endpoint answering the Hub API's revision route with STATUS (and a commit sha when 200)."""

    def __init__(self, status: int):
        outer = self
        self.paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.paths.append(self.path)
                body = json.dumps({"id": FIRST_ID, "sha": commit_hash("hub")} if status == 200 else
                                  {"error": "unavailable"}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub_ok():
    hub = _Hub(200)
    yield hub
    hub.close()


def _no_probe(*args):
    raise AssertionError(f"the Hub was asked: {args}")


def test_offline_means_random_without_asking():
    choice = choose({"HF_HUB_OFFLINE": "1"}, probe=_no_probe)
    assert choice.kind == "random"
    assert str(choice) == "HF_HUB_OFFLINE is set: exporting random-init demo models"


@pytest.mark.parametrize("value, kind", [("random", "random"), ("pretrained", "pretrained"), ("none", "none"),
                                         (" Pretrained ", "pretrained")])
def test_demo_models_overrides_the_probe(value, kind):
    assert choose({"DEMO_MODELS": value, "HF_HUB_OFFLINE": "1"}, probe=_no_probe).kind == kind
    assert choose({"DEMO_MODELS": value}, probe=_no_probe).kind == kind


def test_bad_demo_models_names_the_variable():
    with pytest.raises(ExportError, match=r"DEMO_MODELS must be one of auto, random, pretrained, none, got 'yes'"):
        choose({"DEMO_MODELS": "yes"}, probe=_no_probe)


def test_hub_that_answers_means_pretrained(hub_ok):
    choice = choose({"HF_ENDPOINT": hub_ok.url + "/"})
    assert choice.kind == "pretrained", choice
    assert str(choice).startswith(f"hub reachable ({hub_ok.url}/, ") and "exporting pretrained demo models" in str(choice)
    assert hub_ok.paths == [f"/api/models/{FIRST_ID}/revision/main"]


def test_hub_error_status_means_random():
    hub = _Hub(503)
    try:
        choice = choose({"HF_ENDPOINT": hub.url})
    finally:
        hub.close()
    assert (choice.kind, choice.reason) == ("random", f"hub not reachable ({hub.url}: HTTP 503)")


def test_closed_port_means_random_at_once():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    choice = choose({"HF_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert choice.kind == "random" and "refused" in choice.reason.lower(), choice
    assert time.monotonic() - start < 1


def test_silent_endpoint_is_given_up_within_the_bound():
    with socket.socket() as s:  # accepts connections (backlog) and never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        start = time.monotonic()
        reason = hub_answers(f"http://127.0.0.1:{s.getsockname()[1]}", FIRST_ID)
        elapsed = time.monotonic() - start
    assert reason is not None and ("timed out" in reason or "no answer" in reason), reason
    assert PROBE_TIMEOUT_S - 0.5 < elapsed < PROBE_TIMEOUT_S + 1


def test_cli_demo_none_exports_nothing(cli, work):
    out = work / "demo-none"
    res = cli("demo", "--out", out, "--weights", "auto", env={"DEMO_MODELS": "none"})
    assert res.returncode == 0, res
    assert res.stdout.strip() == "DEMO_MODELS=none: no demo models exported"
    assert not out.exists()


def test_cli_demo_bad_demo_models_is_a_clear_error(cli, work):
    res = cli("demo", "--out", work / "demo-bad", "--weights", "auto", env={"DEMO_MODELS": "yes"})
    assert res.returncode == 1 and res.stderr.startswith("error: DEMO_MODELS must be one of"), res


@pytest.fixture(scope="module")
def pretrained_cache(work):
    """The four pretrained Hub ids in a Hugging Face cache, each holding a tiny local checkpoint of its family."""
    from exporter import checkpoints as ck

    root = work / "demo-hub-sources"
    builders = {
        "demo-embedder": lambda d: ck.build_bert(d, hidden=32, layers=1, heads=2, max_positions=64, seed=31),
        "demo-gpt2": lambda d: ck.build_gpt2(d, hidden=32, layers=1, heads=2, positions=64, seed=32),
        "demo-vit": lambda d: ck.build_vit(d, image_size=24, patch=8, hidden=32, layers=1, heads=2, seed=33),
        "demo-yolos": lambda d: ck.build_yolos(d, image_size=(32, 48), patch=16, hidden=32, layers=1, heads=2, seed=34),
    }
    cache = work / "demo-hub-cache"
    for name, build in builders.items():
        hub_id = PRETRAINED[name][0]
        add_revision(cache, hub_id, build(root / name), commit_hash(hub_id))
    return cache


def test_pretrained_demo_exports_each_hub_id_with_its_revision(cli, work, pretrained_cache):
    out = work / "demo-pretrained"
    env = {"DEMO_MODELS": "pretrained", "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(pretrained_cache)}
    res = cli("demo", "--out", out, "--weights", "auto", env=env)
    assert res.returncode == 0, res
    assert res.stdout.splitlines()[0] == "DEMO_MODELS=pretrained: exporting pretrained demo models"
    for name, (hub_id, task) in PRETRAINED.items():
        m = load_manifest(out / name)
        assert (m["task"], m["weights"], m["source"]["id"], m["source"]["revision"]) == (
            task, "pretrained", hub_id, commit_hash(hub_id))
        assert f"{name}: {hub_id}@{commit_hash(hub_id)} exported in " in res.stdout
    assert not (out / ".demo-sources").exists()  # nothing random was built
    again = cli("demo", "--out", out, "--weights", "pretrained", env=env)
    assert again.returncode == 0, again
    assert again.stdout.count("up to date") == 4, again
