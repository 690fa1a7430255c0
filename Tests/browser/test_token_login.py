"""Point 1 (token login): a session scoped to one token, opened with its sk- key or the code that issued it."""
from selenium.webdriver.common.by import By

from conftest import BASE_URL, QUOTA_PER_CALL, click, find, fund, relay_call, screenshot, wait, wait_text


def token_login(driver, key):
    driver.get(BASE_URL + "/#/token-login")
    form = find(driver, "#token-login-form")
    form.find_element(By.NAME, "key").send_keys(key)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    return find(driver, "[data-page=tokenview] h1")


def test_token_login_with_a_key(driver, user):
    token = user["api"].post("/api/token/", {"name": "shared-key", "unlimited_quota": False, "remain_quota": 1_000_000, "expired_time": -1})[0]
    driver.get(BASE_URL + "/#/login")
    click(driver, "a[href='#/token-login']")
    form = find(driver, "#token-login-form")
    form.find_element(By.NAME, "key").send_keys(token["key"])
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    find(driver, "[data-page=tokenview] h1")
    wait_text(driver, "main h1", "shared-key")
    assert "$2.00" in find(driver, "main .stats").text
    assert not driver.find_elements(By.CSS_SELECTOR, "#site-nav a[href='#/tokens']")
    assert find(driver, "#site-nav a[href='#/token']").get_attribute("aria-current") == "page"
    # the usage figures of /api/usage/token
    wait_text(driver, "#token-usage .stats", "Available")
    assert "$2.00" in find(driver, "#token-usage .stats").text
    # the full key, on request
    click(driver, "#reveal-key")
    assert find(driver, "#token-key input").get_attribute("value") == token["key"]
    click(driver, "#logout-button")
    find(driver, "#login-form")
    driver.get(BASE_URL + "/#/token")
    find(driver, "#login-form")


def test_token_view_shows_spend_and_calls(driver, root, user, relay):
    fund(root, user)
    token = user["api"].post("/api/token/", {"name": "team-key", "unlimited_quota": False, "remain_quota": 500_000, "expired_time": -1})[0]
    relay_call(token["key"])
    relay_call(token["key"])
    token_login(driver, token["key"])
    wait_text(driver, "main h1", "team-key")
    stats = find(driver, "#token-usage .stats")
    wait(driver).until(lambda d: "Requests\n2" in d.find_element(By.CSS_SELECTOR, "#token-usage .stats").text)
    assert "4,000" in stats.text  # completion tokens: 2 * 2000
    assert f"{500_000 - 2 * QUOTA_PER_CALL:,} units" in stats.text
    wait(driver).until(lambda d: "2 requests" in d.find_element(By.CSS_SELECTOR, ".usage-body figcaption").text)
    assert [b for b in d_heights(driver) if b > 0]
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".logs-body tbody tr[data-type='2']")) == 2)
    screenshot(driver, "token-view")


def d_heights(driver):
    return [float(bar.get_attribute("height")) for bar in driver.find_elements(By.CSS_SELECTOR, ".usage-body .chart-bar")]


def test_token_login_with_a_wrong_key(driver):
    driver.get(BASE_URL + "/#/token-login")
    form = find(driver, "#token-login-form")
    form.find_element(By.NAME, "key").send_keys("sk-" + "x" * 48)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "No API key or redemption code matches" in find(driver, "#token-login-form .form-error").text


def test_token_login_with_a_redemption_code(driver, root):
    code = root.post("/api/redemption/", {"name": "gift", "count": 1, "kind": "token", "quota": 500_000, "expired_time": -1, "valid_days": 30})[0]
    token_login(driver, code)
    assert "$1.00" in find(driver, "main .stats").text
    # the same code opens the same token again
    driver.get(BASE_URL + "/healthz")
    driver.delete_all_cookies()
    token_login(driver, code)
    assert root.get("/api/redemption/?keyword=gift")["items"][0]["status"] == 3
