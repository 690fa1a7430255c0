"""Point 5: redeem a code from the console."""
import pytest
from selenium.webdriver.common.by import By

from conftest import find, screenshot, sign_in, wait_text


def first_code(codes):
    item = codes[0]
    return item if isinstance(item, str) else item.get("key") or item.get("code")


@pytest.mark.needs_api("POST /api/user/topup", "POST /api/redemption/")
def test_redeem_topup_code(driver, root, user):
    code = first_code(root.post("/api/redemption/", {"name": "topup", "count": 1, "kind": "topup", "quota": 1_500_000, "expired_time": -1}))
    sign_in(driver, user["api"], "/redeem", "[data-page=redeem] h1")
    form = find(driver, "#redeem-form")
    form.find_element(By.NAME, "key").send_keys(code)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_text(driver, "#redeem-result", "$3.00")
    wait_text(driver, "#balance", "$3.00")
    assert user["api"].get("/api/user/self")["quota"] == 1_500_000
    screenshot(driver, "redeem")
    # a code works once
    form.find_element(By.NAME, "key").send_keys(code)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert find(driver, "#redeem-form .form-error").text.strip()


@pytest.mark.needs_api("POST /api/user/topup", "POST /api/redemption/")
def test_redeem_token_code_gives_a_key(driver, root, user):
    code = first_code(root.post("/api/redemption/", {"name": "keycode", "count": 1, "kind": "token", "quota": 500_000, "expired_time": -1, "valid_days": 7}))
    sign_in(driver, user["api"], "/redeem", "[data-page=redeem] h1")
    form = find(driver, "#redeem-form")
    form.find_element(By.NAME, "key").send_keys(code)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    key = find(driver, "#redeem-result input").get_attribute("value")
    assert key.startswith("sk-")
