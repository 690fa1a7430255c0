"""Point 4: usage (chart and table) and call logs, per account and per token.

With the relay in place, a fake OpenAI upstream on a loopback port serves real calls through a channel,
so the chart, the usage table and the logs show them.
"""
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.common.by import By

from conftest import BASE_URL, ApiError, find, screenshot, sign_in, wait


class FakeOpenAI(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        answer = json.dumps({
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", "x"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the fake upstream"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 2000, "total_tokens": 3000},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self):  # noqa: N802
        answer = json.dumps({"object": "list", "data": [{"id": "usage-model", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def relay_call(key, model="usage-model"):
    request = urllib.request.Request(BASE_URL + "/v1/chat/completions", method="POST",
                                     data=json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2000}).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.needs_api("GET /api/log/self", "GET /api/data/self")
def test_usage_page_without_calls(driver, user):
    sign_in(driver, user["api"], "/usage", "[data-page=usage] h1")
    find(driver, ".usage-body svg.chart")
    assert len(driver.find_elements(By.CSS_SELECTOR, ".usage-body .chart-bar")) == 14
    find(driver, ".logs-body .data-table")


@pytest.mark.needs_api("GET /api/log/self", "GET /api/data/self", "GET /api/channel/", "GET /api/model/", "POST /v1/chat/completions")
def test_usage_and_logs_after_calls(driver, root, user, upstream):
    try:
        root.post("/api/model/", {"model": "usage-model", "input_price": 1, "output_price": 2, "call_price": 0.01, "max_output_tokens": 4096})
    except ApiError as error:
        assert error.status == 409
    root.post("/api/channel/", {"name": "fake-upstream", "type": "openai", "base_url": upstream, "key": "sk-fake",
                                "models": ["usage-model"], "groups": ["default"], "priority": 100, "weight": 1, "status": 1})
    root.put("/api/user/", {"id": user["id"], "quota": 50_000_000})
    api = user["api"]
    token = api.post("/api/token/", {"name": "busy", "unlimited_quota": True, "expired_time": -1})[0]
    other = api.post("/api/token/", {"name": "quiet", "unlimited_quota": True, "expired_time": -1})[0]
    for _ in range(3):
        relay_call(token["key"])
    relay_call(other["key"])
    # (1000 * 1 + 2000 * 2) / 1e6 * 500000 = 2500 units per call
    sign_in(driver, api, "/usage", "[data-page=usage] h1")
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".usage-body .chart-bar[height]:not([height='0'])"))
    table = find(driver, ".usage-body .data-table")
    assert "usage-model" in table.text and "4" in table.text
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".logs-body tbody tr")) == 4)
    screenshot(driver, "usage")

    sign_in(driver, api, f"/tokens/{token['id']}", "[data-page=tokendetail] h1")
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".logs-body tbody tr")) == 3)
    assert "busy" in find(driver, "h1").text
    figure = find(driver, ".usage-body figcaption")
    assert "3 requests" in figure.text
    screenshot(driver, "token-usage")
