"""Browser tests of the Sluice console: shared fixtures.

The server is started by run.sh, which passes its address in SLUICE_URL and the root password in
SLUICE_ROOT_PASSWORD. Tests drive Debian's headless chromium through /usr/bin/chromedriver.

Calls through the relay go to a fake OpenAI upstream (standard library HTTP server on 127.0.0.1) behind a
channel made for the session (`relay` fixture); downloads land in a per-test folder (`downloads` fixture).
"""
import http.cookiejar
import itertools
import json
import os
import pathlib
import threading
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BASE_URL = os.environ.get("SLUICE_URL", "http://127.0.0.1:3000").rstrip("/")
ROOT_PASSWORD = os.environ.get("SLUICE_ROOT_PASSWORD", "sluice-browser-root")
REPO = pathlib.Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
WAIT = 15


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Api:
    """A management API client with its own session cookie (like a second browser)."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar))
        self.user = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(BASE_URL + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with self.opener.open(request, timeout=15) as response:
                envelope = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                envelope = json.loads(raw)
            except ValueError:
                envelope = {"message": raw.decode(errors="replace")}
            raise ApiError(error.code, envelope.get("message", "")) from None
        if not envelope.get("success", False):
            raise ApiError(200, envelope.get("message", ""))
        return envelope.get("data")

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, body=None):
        return self.call("POST", path, body if body is not None else {})

    def put(self, path, body):
        return self.call("PUT", path, body)

    def delete(self, path):
        return self.call("DELETE", path)

    def login(self, username, password):
        self.user = self.post("/api/user/login", {"username": username, "password": password})
        return self

    @property
    def session_cookie(self):
        for cookie in self.jar:
            if cookie.name == "sluice_session":
                return cookie.value
        return None


_counter = itertools.count(1)


def unique(prefix):
    return f"{prefix}{int(time.time()) % 100000}{next(_counter)}"


# ---------- fixtures ----------

@pytest.fixture(scope="session")
def base_url():
    return BASE_URL


@pytest.fixture(scope="session")
def root():
    return Api().login("root", ROOT_PASSWORD)


def make_user(prefix="user"):
    username = unique(prefix)
    password = "password-" + username
    api = Api()
    api.post("/api/user/register", {"username": username, "password": password})
    api.login(username, password)
    return {"username": username, "password": password, "api": api, "id": api.user["id"]}


@pytest.fixture
def user():
    """A fresh registered user with an API session."""
    return make_user()


@pytest.fixture(scope="session")
def _driver():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--proxy-server=direct://", "--proxy-bypass-list=*"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(15)
    try:
        driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": BASE_URL, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    except Exception:  # older chromium: clipboard tests fall back to the toast
        pass
    yield driver
    driver.quit()


@pytest.fixture
def driver(_driver):
    """The browser, reset to a desktop window and no session; fails a test that broke the CSP or threw."""
    _driver.set_window_size(1280, 900)
    _driver.get(BASE_URL + "/healthz")  # leave the console document, so the next load starts afresh
    _driver.delete_all_cookies()
    _driver.get(BASE_URL + "/#/login")
    _driver.get_log("browser")
    yield _driver
    entries = _driver.get_log("browser")
    problems = [entry["message"] for entry in entries
                if (entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"])
                or "Content Security Policy" in entry["message"]]
    assert not problems, f"browser errors: {problems}"


def wait(driver, timeout=WAIT):
    """A wait that retries while the page re-renders (stale or not yet present elements)."""
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))


def find(driver, css, timeout=WAIT):
    return wait(driver, timeout).until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def present(driver, css, timeout=WAIT):
    return wait(driver, timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))


def click(driver, css, timeout=WAIT):
    element = wait(driver, timeout).until(EC.element_to_be_clickable((By.CSS_SELECTOR, css)))
    element.click()
    return element


def wait_text(driver, css, text, timeout=WAIT):
    wait(driver, timeout).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return driver.find_element(By.CSS_SELECTOR, css)


def open_page(driver, route, ready_css=None):
    """Loads the console at `#/route` and waits until the page has rendered."""
    driver.get(f"{BASE_URL}/#{route}")
    present(driver, ready_css or "main .page h1")


def sign_in(driver, api, route="/tokens", ready_css=None):
    """Puts an API session's cookie into the browser (faster than the login form) and opens `route`."""
    driver.get(BASE_URL + "/healthz")
    driver.delete_all_cookies()
    driver.add_cookie({"name": "sluice_session", "value": api.session_cookie, "path": "/", "httpOnly": True})
    open_page(driver, route, ready_css)


def screenshot(driver, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def unlabelled_controls(driver):
    """Inputs, selects and textareas on the page with no accessible label."""
    return driver.execute_script("""
        return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
          .filter(el => !el.classList.contains('offscreen'))
          .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
          .map(el => el.outerHTML.slice(0, 120));
    """)


def wait_for_file(folder, suffix, timeout=WAIT):
    """The first finished download in `folder` whose name ends with `suffix` (polled until `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [path for path in folder.iterdir() if path.name.endswith(suffix)]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} download in {folder}: {[p.name for p in folder.iterdir()]}")


@pytest.fixture
def downloads(driver, tmp_path):
    """A folder the browser downloads into without asking."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder), "eventsEnabled": False})
    yield folder
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "default"})


# ---------- the relay: a fake OpenAI upstream on loopback, a channel and a price ----------

RELAY_MODEL = "console-model"
UPSTREAM_USAGE = (1000, 2000)  # prompt, completion tokens of every answer
# (1000 * $1 + 2000 * $2) per 1M tokens = $0.005 = 2500 quota units per call in the default group (ratio 1)
RELAY_PRICE = {"model": RELAY_MODEL, "input_price": 1, "output_price": 2, "call_price": 0.01, "max_output_tokens": 4096}
QUOTA_PER_CALL = 2500


class FakeOpenAI(BaseHTTPRequestHandler):
    """Chat completions with a fixed usage; `fail-upstream` as the model answers 500."""
    protocol_version = "HTTP/1.1"

    def _send(self, status, payload):
        answer = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.headers.get("Authorization") != "Bearer sk-fake-upstream":
            self._send(401, {"error": {"message": "wrong upstream key", "type": "invalid_request_error"}})
            return
        prompt, completion = UPSTREAM_USAGE
        self._send(200, {
            "id": "chatcmpl-console", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", "x"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the fake upstream"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        })

    def do_GET(self):  # noqa: N802
        self._send(200, {"object": "list", "data": [{"id": RELAY_MODEL, "object": "model"}]})

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def relay(root, upstream):
    """A price for RELAY_MODEL and a channel serving it from the fake upstream; answers the channel."""
    try:
        root.post("/api/model/", RELAY_PRICE)
    except ApiError as error:
        if error.status != 409:
            raise
    return root.post("/api/channel/", {"name": "fake-upstream", "type": "openai", "base_url": upstream, "key": "sk-fake-upstream",
                                       "models": [RELAY_MODEL], "groups": ["default"], "priority": 100, "weight": 1, "status": 1})


def fund(root, user, quota=50_000_000):
    """Gives `user` a balance (root sets the quota)."""
    root.put("/api/user/", {"id": user["id"], "quota": quota})


def relay_call(key, model=RELAY_MODEL):
    """One chat completion through Sluice's relay with `key`."""
    request = urllib.request.Request(BASE_URL + "/v1/chat/completions", method="POST",
                                     data=json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2000}).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as response:
        return json.loads(response.read())
