"""Point 5: redeem a code from the console, and add an independent key to the account."""
from selenium.webdriver.common.by import By

from conftest import Api, find, screenshot, sign_in, wait_text


def new_code(root, **fields):
    body = {"name": "console", "count": 1, "kind": "topup", "quota": 1_500_000, "expired_time": -1, **fields}
    return root.post("/api/redemption/", body)[0]


def submit(driver, form_id, value):
    form = find(driver, f"#{form_id}")
    form.find_element(By.NAME, "key").send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    return form


def test_redeem_topup_code(driver, root, user):
    code = new_code(root, name="topup")
    sign_in(driver, user["api"], "/redeem", "[data-page=redeem] h1")
    submit(driver, "redeem-form", code)
    wait_text(driver, "#redeem-result", "$3.00")
    wait_text(driver, "#balance", "$3.00")
    assert user["api"].get("/api/user/self")["quota"] == 1_500_000
    screenshot(driver, "redeem")
    # a code works once
    form = submit(driver, "redeem-form", code)
    wait_text(driver, "#redeem-form .form-error", "already been used")
    assert not form.find_element(By.NAME, "key").get_attribute("value") == ""


def test_redeem_token_code_gives_a_key(driver, root, user):
    code = new_code(root, name="keycode", kind="token", quota=500_000, valid_days=7)
    sign_in(driver, user["api"], "/redeem", "[data-page=redeem] h1")
    submit(driver, "redeem-form", code)
    key = find(driver, "#redeem-result input").get_attribute("value")
    assert key.startswith("sk-")
    assert [t["name"] for t in user["api"].get("/api/token/?p=1&size=100")["items"]]


def test_unknown_code_is_refused(driver, user):
    sign_in(driver, user["api"], "/redeem", "[data-page=redeem] h1")
    submit(driver, "redeem-form", "not-a-code-at-all")
    assert find(driver, "#redeem-form .form-error").text.strip()


def test_bind_an_independent_key(driver, root, user):
    code = new_code(root, name="loose", kind="token", quota=500_000)
    token = Api().post("/api/token/redeem", {"key": code})  # redeemed without an account: bound to none
    assert token["user_id"] is None and token["key"].startswith("sk-")
    sign_in(driver, user["api"], "/redeem", "[data-page=redeem] h1")
    submit(driver, "bind-form", token["key"])
    wait_text(driver, "#bind-result", "is now on your account")
    assert token["id"] in [t["id"] for t in user["api"].get("/api/token/?p=1&size=100")["items"]]
