"""Browser tests of the Sluice console: shared fixtures.

The server is started by run.sh, which passes its address in SLUICE_URL and the root password in
SLUICE_ROOT_PASSWORD. Tests drive Debian's headless chromium through /usr/bin/chromedriver.

`@pytest.mark.needs_api("GET /api/channel/")` skips a test while that endpoint does not exist on the
server (it answers 404 "Not found: ..."), so such tests start running by themselves once it lands.
"""
import http.cookiejar
import itertools
import json
import os
import pathlib
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
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
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


# ---------- needs_api ----------

_probes = {}


def endpoint_exists(spec):
    """False when the route is missing: an anonymous call answers 404 "Not found: METHOD PATH"."""
    if spec in _probes:
        return _probes[spec]
    method, path = spec.split(" ", 1)
    data = b"{}" if method in ("POST", "PUT") else None
    request = urllib.request.Request(BASE_URL + path, data=data, method=method, headers={"Content-Type": "application/json"})
    exists = True
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            try:
                message = json.loads(error.read()).get("message", "")
            except ValueError:
                message = ""
            # under /api a missing route says "Not found: ..."; elsewhere (/v1) any 404 means missing
            exists = path.startswith("/api/") and not message.startswith("Not found")
    except urllib.error.URLError:
        exists = True
    _probes[spec] = exists
    return exists


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_api(*endpoints): skip unless every 'METHOD /path' exists on the server")


def pytest_runtest_setup(item):
    for marker in item.iter_markers(name="needs_api"):
        for spec in marker.args:
            if not endpoint_exists(spec):
                pytest.skip(f"{spec} is not on this server yet")


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
