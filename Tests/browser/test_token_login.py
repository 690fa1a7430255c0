"""Point 1 (token login): a session scoped to one token, opened with its sk- key or the code that issued it."""
import pytest
from selenium.webdriver.common.by import By

from conftest import BASE_URL, click, find, screenshot, wait_text


@pytest.mark.needs_api("POST /api/token/login")
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
    screenshot(driver, "token-view")
    click(driver, "#logout-button")
    find(driver, "#login-form")


@pytest.mark.needs_api("POST /api/token/login")
def test_token_login_with_a_wrong_key(driver):
    driver.get(BASE_URL + "/#/token-login")
    form = find(driver, "#token-login-form")
    form.find_element(By.NAME, "key").send_keys("sk-" + "x" * 48)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert find(driver, "#token-login-form .form-error").text.strip()


@pytest.mark.needs_api("POST /api/token/login", "POST /api/redemption/")
def test_token_login_with_a_redemption_code(driver, root):
    codes = root.post("/api/redemption/", {"name": "gift", "count": 1, "kind": "token", "quota": 500_000, "expired_time": -1, "valid_days": 30})
    code = codes[0] if isinstance(codes[0], str) else codes[0].get("key") or codes[0].get("code")
    driver.get(BASE_URL + "/#/token-login")
    form = find(driver, "#token-login-form")
    form.find_element(By.NAME, "key").send_keys(code)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    find(driver, "[data-page=tokenview] h1")
