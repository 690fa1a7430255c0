"""Support of the end-to-end suite: the official `openai` and `anthropic` Python SDKs against a running `sluice serve`.

Session fixtures start
- a fake upstream (standard library HTTP server on 127.0.0.1) that speaks the OpenAI Chat Completions,
  Completions and Embeddings APIs and the Anthropic Messages API, streams included, answers deterministic
  text and usage, and records every request it receives;
- a Sluice server from `SLUICE_BIN` (default `.build/debug/sluice`) on a fresh SQLite database, seeded
  through the management API: model prices, one `openai` and one `anthropic` channel pointing at the fake,
  and a balance for root.

Everything stays on the loopback interface, every network operation has a timeout, and waiting is
done by polling with a deadline.
"""
import base64
import contextlib
import errno
import itertools
import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

# Loopback only: never send test traffic through a proxy from the environment (requests and httpx honour these).
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

REPO = pathlib.Path(__file__).resolve().parents[2]
ROOT_PASSWORD = "e2e-Root-Passw0rd"
HTTP_TIMEOUT = 15  # seconds, for every management call
SDK_TIMEOUT = 20  # seconds, for every SDK call

# ---------------------------------------------------------------------------------------------
# The fake upstream
# ---------------------------------------------------------------------------------------------

OPENAI_UPSTREAM_KEY = "sk-upstream-openai-e2e-secret"
ANTHROPIC_UPSTREAM_KEY = "sk-ant-upstream-e2e-secret"

# Deterministic answers. Streams send the pieces in order; joined they make the same text.
CHAT_PIECES = ["Hello", " from", " the", " fake", " upstream"]
CHAT_TEXT = "".join(CHAT_PIECES)
CHAT_USAGE = (11, 7)  # prompt, completion
COMPLETION_TEXT = "Once upon a fake time"
COMPLETION_USAGE = (5, 3)
EMBEDDING = [0.5, 0.25, -0.125]
EMBEDDING_PROMPT_TOKENS = 4
ANTHROPIC_PIECES = ["Hi", " from", " the", " fake", " Claude"]
ANTHROPIC_TEXT = "".join(ANTHROPIC_PIECES)
ANTHROPIC_USAGE = (13, 5)  # input, output
REFUSE_TRIGGER = "please-refuse-this"  # a request holding this text gets a 400 from the fake, in its own format


class Recorded:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers  # lower-cased names
        self.body = body

    def __repr__(self):
        return f"Recorded({self.method} {self.path} {self.body!r})"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeUpstream/1"

    def log_message(self, *args):  # keep pytest output quiet
        pass

    # -- plumbing --

    def _send_json(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _data(self, payload):
        self._chunk("data: " + json.dumps(payload) + "\n\n")

    def _event(self, name, payload):
        self._chunk(f"event: {name}\ndata: " + json.dumps(payload) + "\n\n")

    # -- routing --

    def do_GET(self):
        self.server.fake.record(self, None)
        self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        self.server.fake.record(self, body)
        path = self.path.split("?", 1)[0]
        if body is None:
            return self._send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
        refuse = REFUSE_TRIGGER in json.dumps(body)
        if path == "/v1/messages":
            if refuse:
                return self._send_json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                                         "message": "upstream refuses: " + REFUSE_TRIGGER}})
            if self.headers.get("x-api-key") != ANTHROPIC_UPSTREAM_KEY:
                return self._send_json(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
            return self._messages(body)
        if self.headers.get("Authorization") != "Bearer " + OPENAI_UPSTREAM_KEY:
            return self._send_json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                                   "code": "invalid_api_key"}})
        if refuse:
            return self._send_json(400, {"error": {"message": "upstream refuses: " + REFUSE_TRIGGER,
                                                   "type": "invalid_request_error", "param": "messages", "code": "refused"}})
        if path == "/v1/chat/completions":
            return self._chat(body)
        if path == "/v1/completions":
            return self._completions(body)
        if path == "/v1/embeddings":
            return self._embeddings(body)
        self._send_json(404, {"error": {"message": f"unknown path {path}", "type": "invalid_request_error"}})

    # -- OpenAI --

    def _chat(self, body):
        model = body.get("model", "")
        prompt, completion = CHAT_USAGE
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        if not body.get("stream"):
            return self._send_json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": CHAT_TEXT}, "logprobs": None,
                             "finish_reason": "stop"}],
                "usage": usage,
            })
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
        self._start_stream()
        self._data({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        for piece in CHAT_PIECES:
            self._data({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        self._data({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if include_usage:
            self._data({**base, "choices": [], "usage": usage})
        self._chunk("data: [DONE]\n\n")
        self._end_stream()

    def _completions(self, body):
        prompt, completion = COMPLETION_USAGE
        self._send_json(200, {
            "id": "cmpl-fake", "object": "text_completion", "created": 1700000000, "model": body.get("model", ""),
            "choices": [{"text": COMPLETION_TEXT, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        })

    def _embeddings(self, body):
        inputs = body.get("input")
        count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(EMBEDDING)}f", *EMBEDDING)).decode()
        else:
            vector = EMBEDDING
        self._send_json(200, {
            "object": "list", "model": body.get("model", ""),
            "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)],
            "usage": {"prompt_tokens": EMBEDDING_PROMPT_TOKENS, "total_tokens": EMBEDDING_PROMPT_TOKENS},
        })

    # -- Anthropic --

    def _messages(self, body):
        model = body.get("model", "")
        prompt, completion = ANTHROPIC_USAGE
        if not body.get("stream"):
            return self._send_json(200, {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": ANTHROPIC_TEXT}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": completion},
            })
        self._start_stream()
        self._event("message_start", {"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": prompt, "output_tokens": 1}}})
        self._event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        for piece in ANTHROPIC_PIECES:
            self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": piece}})
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
        self._event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                      "usage": {"output_tokens": completion}})
        self._event("message_stop", {"type": "message_stop"})
        self._end_stream()


class FakeUpstream:
    """An OpenAI + Anthropic speaking HTTP server on 127.0.0.1 that records what it is sent."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def record(self, handler, body):
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self.requests.append(Recorded(handler.command, handler.path.split("?", 1)[0], headers, body))

    @property
    def last(self):
        with self._lock:
            return self.requests[-1] if self.requests else None

    def count(self):
        with self._lock:
            return len(self.requests)

    def since(self, index):
        with self._lock:
            return list(self.requests[index:])


# ---------------------------------------------------------------------------------------------
# The Sluice server
# ---------------------------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, message, interval=0.05):
    """Polls `predicate` until it answers something truthy, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} (not within {timeout}s; last: {last!r})")


class Sluice:
    def __init__(self, url, process, log_path):
        self.url = url
        self.process = process
        self.log_path = log_path

    def log_tail(self, lines=60):
        try:
            return "\n".join(pathlib.Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def upstream():
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


def _die_with_parent():
    """Linux: the server gets SIGTERM if the test process dies without cleaning up."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@contextlib.contextmanager
def running_sluice(root_password=ROOT_PASSWORD):
    """A `sluice serve` on a free loopback port and a fresh SQLite database, stopped on exit."""
    binary = pathlib.Path(os.environ.get("SLUICE_BIN") or REPO / ".build" / "debug" / "sluice")
    if not binary.is_absolute():
        binary = REPO / binary
    if not binary.exists():
        pytest.fail(f"Sluice binary not found at {binary}; build it with `swift build` or set SLUICE_BIN")
    workdir = tempfile.mkdtemp(prefix="sluice-e2e-")
    port = free_port()
    log_path = os.path.join(workdir, "sluice.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_ROOT_PASSWORD"] = root_password
    command = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port), "--database", f"sqlite:{workdir}/db.sqlite"]

    def spawn():
        # A build running beside the suite may be rewriting the binary (ETXTBSY): try again until it is done.
        with open(log_path, "wb") as log:
            try:
                return subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
            except OSError as error:
                if error.errno != errno.ETXTBSY:
                    raise
                return None

    process = wait_until(spawn, 120, f"{binary} stays busy (being rebuilt?)", interval=0.5)
    server = Sluice(f"http://127.0.0.1:{port}", process, log_path)

    def healthy():
        if process.poll() is not None:
            raise AssertionError(f"sluice exited with {process.returncode}:\n{server.log_tail()}")
        try:
            return requests.get(server.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, 60, "sluice did not answer /healthz", interval=0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def sluice():
    with running_sluice() as server:
        yield server


# ---------------------------------------------------------------------------------------------
# The management API
# ---------------------------------------------------------------------------------------------

class Admin:
    """Root's cookie session on the management API. No Origin header is sent (same-origin writes)."""

    def __init__(self, url):
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False

    def call(self, method, path, body=None, expect=200):
        response = self.http.request(method, self.url + path, json=body, timeout=HTTP_TIMEOUT)
        try:
            envelope = response.json()
        except ValueError:
            envelope = {"raw": response.text}
        if expect is not None:
            assert response.status_code == expect, f"{method} {path} -> {response.status_code}: {envelope}"
            if expect == 200:
                assert envelope.get("success") is True, f"{method} {path}: {envelope}"
        return envelope

    def data(self, method, path, body=None):
        return self.call(method, path, body)["data"]

    def login(self, username, password):
        return self.data("POST", "/api/user/login", {"username": username, "password": password})

    _names = itertools.count(1)

    def key(self, **fields):
        """Creates a token with these fields (unlimited by default) and answers it with its full key."""
        body = {"name": f"e2e-{next(self._names)}", "unlimited_quota": True, "expired_time": -1}
        body.update(fields)
        created = self.data("POST", "/api/token/", body)
        assert isinstance(created, list) and len(created) == 1, created
        token = created[0]
        assert token["key"].startswith("sk-") and "*" not in token["key"], token
        return token

    def token(self, token_id):
        return self.data("GET", f"/api/token/{token_id}")

    def logs(self, token_id):
        page = self.data("GET", f"/api/log/self?p=1&size=100&token_id={token_id}")
        return page["items"]


# Models, their prices (USD per 1M tokens) and the channel type that serves them.
PRICES = {
    "gpt-e2e": (2.0, 8.0),
    "text-embedding-e2e": (0.5, 0.0),
    "claude-e2e": (3.0, 15.0),
    "claude-via-openai": (1.0, 4.0),   # an Anthropic-format name served only by the openai channel
    "gpt-via-anthropic": (4.0, 12.0),  # an OpenAI-format name served only by the anthropic channel
}
OPENAI_CHANNEL_MODELS = ["gpt-e2e", "text-embedding-e2e", "claude-via-openai"]
ANTHROPIC_CHANNEL_MODELS = ["claude-e2e", "gpt-via-anthropic"]
# model_mapping: the name callers use -> the name the upstream is sent
OPENAI_MAPPING = {"claude-via-openai": "upstream-gpt-4o"}
ANTHROPIC_MAPPING = {"gpt-via-anthropic": "upstream-claude-sonnet"}
ROOT_BALANCE = 50_000_000


def check_logged(entry, model, usage, stream, **fields):
    """A call's log row: its model, tokens, exact charge and stream flag, and each of `fields` as given."""
    assert entry["model_name"] == model
    assert (entry["prompt_tokens"], entry["completion_tokens"]) == usage
    assert entry["quota"] == expected_quota(model, *usage)
    assert entry["is_stream"] is stream
    for name, value in fields.items():
        assert entry[name] == value, name


def expected_quota(model, prompt_tokens, completion_tokens, ratio=1.0):
    """Contract section 6: usage-mode cost in quota units, rounded half up, at least 1."""
    input_price, output_price = PRICES[model]
    exact = (prompt_tokens * input_price + completion_tokens * output_price) / 1e6 * 500000 * ratio
    units = int(exact + 0.5)
    return max(units, 1) if exact > 0 else 0


@pytest.fixture(scope="session")
def admin(sluice, upstream):
    root = Admin(sluice.url)
    me = root.login("root", ROOT_PASSWORD)
    assert me["username"] == "root" and me["role"] == 100
    for model, (input_price, output_price) in PRICES.items():
        root.data("POST", "/api/model/", {"model": model, "input_price": input_price, "output_price": output_price,
                                          "call_price": None, "max_output_tokens": 1024})
    root.openai_channel = root.data("POST", "/api/channel/", {
        "name": "fake-openai", "type": "openai", "base_url": upstream.base_url, "key": OPENAI_UPSTREAM_KEY,
        "models": OPENAI_CHANNEL_MODELS, "model_mapping": OPENAI_MAPPING, "groups": ["default"],
        "priority": 0, "weight": 1, "status": 1,
        "connect_timeout_ms": 5000, "first_byte_timeout_ms": 15000, "idle_timeout_ms": 15000})
    root.anthropic_channel = root.data("POST", "/api/channel/", {
        "name": "fake-anthropic", "type": "anthropic", "base_url": upstream.base_url, "key": ANTHROPIC_UPSTREAM_KEY,
        "models": ANTHROPIC_CHANNEL_MODELS, "model_mapping": ANTHROPIC_MAPPING, "groups": ["default"],
        "priority": 0, "weight": 1, "status": 1,
        "connect_timeout_ms": 5000, "first_byte_timeout_ms": 15000, "idle_timeout_ms": 15000})
    root.data("PUT", "/api/user/", {"id": me["id"], "quota": ROOT_BALANCE})
    root.user_id = me["id"]
    return root


@pytest.fixture(scope="session")
def base_url(sluice):
    return sluice.url


def make_openai(base_url, key):
    import openai
    return openai.OpenAI(base_url=base_url + "/v1", api_key=key, timeout=SDK_TIMEOUT, max_retries=0)


def make_anthropic(base_url, key):
    import anthropic
    return anthropic.Anthropic(base_url=base_url, api_key=key, timeout=SDK_TIMEOUT, max_retries=0)


@pytest.fixture
def new_key(admin):
    """A fresh key per call: `new_key(**token_fields)`."""
    return admin.key


def wait_for_logs(admin, token_id, count, timeout=10):
    """The token's logs once there are `count` of them (logs and charges may be written just after the answer)."""
    return wait_until(lambda: (lambda items: items if len(items) >= count else None)(admin.logs(token_id)),
                      timeout, f"{count} log entries for token {token_id}")


def assert_charged_exactly(admin, token_id, count, timeout=10):
    """`count` calls are logged for the token with quota > 0, and its used_quota is their sum."""
    logs = wait_for_logs(admin, token_id, count, timeout)
    assert len(logs) == count, logs
    for entry in logs:
        assert entry["quota"] > 0, entry
        assert entry["token_id"] == token_id, entry
    total = sum(entry["quota"] for entry in logs)
    wait_until(lambda: admin.token(token_id)["used_quota"] == total, timeout,
               f"used_quota of token {token_id} to equal the logged {total}")
    return logs
