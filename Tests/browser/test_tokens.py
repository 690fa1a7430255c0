"""Point 2: the API Tokens page: list, Create Key, Edit, Disable/Enable, Delete, Copy."""
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import (ApiError, click, find, present, screenshot, sign_in, unlabelled_controls, wait, wait_text)


@pytest.fixture(scope="module")
def groups(root):
    for body in ({"name": "premium", "description": "Faster upstreams", "ratio": 2, "models": ["gpt-4o", "claude-3-5-sonnet"], "rpm": 60, "tpm": 100000, "selectable": True},
                 {"name": "backup", "description": "Spare capacity", "ratio": 1.5, "models": ["gpt-4o-mini"], "rpm": 0, "tpm": 0, "selectable": True}):
        try:
            root.post("/api/group/", body)
        except ApiError as error:
            assert error.status == 409
    return ["premium", "backup"]


def row_of(driver, name):
    return find(driver, f"tr[data-token-name='{name}']")


def clipboard(driver):
    return driver.execute_async_script("const done = arguments[0]; navigator.clipboard.readText().then(done, () => done(null));")


def test_create_key_with_every_option(driver, user, groups):
    sign_in(driver, user["api"], "/tokens", "[data-page=tokens] h1")
    find(driver, ".data-table")
    click(driver, "#create-key")
    form = find(driver, "dialog[open] #token-form")
    assert driver.switch_to.active_element.get_attribute("name") == "name"
    assert not unlabelled_controls(driver)

    form.find_element(By.NAME, "name").send_keys("my-project")
    Select(form.find_element(By.NAME, "group")).select_by_value("premium")
    Select(form.find_element(By.NAME, "fallback1")).select_by_value("backup")
    # the model picker offers what the chosen groups allow
    present(driver, "#token-form .model-list [data-model='gpt-4o-mini']")
    models = [el.get_attribute("data-model") for el in form.find_elements(By.CSS_SELECTOR, ".model-list .check")]
    assert models == ["claude-3-5-sonnet", "gpt-4o", "gpt-4o-mini"]
    form.find_element(By.CSS_SELECTOR, ".model-list [data-model='gpt-4o'] label").click()
    form.find_element(By.NAME, "never").click()            # set an expiry (prefilled 30 days ahead)
    assert form.find_element(By.NAME, "expires").is_enabled()
    form.find_element(By.NAME, "unlimited").click()        # set a credit limit
    limit = form.find_element(By.NAME, "limit")
    limit.clear()
    limit.send_keys("12.5")
    form.find_element(By.NAME, "allow_ips").send_keys("127.0.0.1\n10.0.0.0/8")
    form.find_element(By.CSS_SELECTOR, "input[value=per_call] + label").click()
    screenshot(driver, "create-key")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    key_box = find(driver, "dialog[open] #new-key")
    key = key_box.get_attribute("value")
    assert key.startswith("sk-") and len(key) == 51
    click(driver, "dialog[open] #new-key-result .copy-box button")
    wait_text(driver, "#toast", "copied")
    copied = clipboard(driver)
    if copied is not None:
        assert copied == key
    screenshot(driver, "new-key")
    click(driver, "dialog[open] .dialog-close")
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"))

    token = user["api"].get("/api/token/?p=1&size=20")["items"][0]
    assert token["name"] == "my-project"
    assert token["group"] == "premium" and token["fallback_groups"] == ["backup"]
    assert token["unlimited_quota"] is False and token["remain_quota"] == 6250000
    assert abs(token["expired_time"] - (time.time() + 30 * 86400)) < 86400 * 1.1
    assert token["model_limits_enabled"] is True and token["model_limits"] == "gpt-4o"
    assert token["allow_ips"].replace("\n", ",") == "127.0.0.1,10.0.0.0/8"
    assert token["billing_mode"] == "per_call"

    row = row_of(driver, "my-project")
    text = row.text
    assert "Enabled" in text and "$0.00" in text and "$12.50" in text
    assert row.find_element(By.CSS_SELECTOR, "[data-label=Remaining] .money").get_attribute("title") == "6,250,000 units"
    assert "Never" not in row.find_element(By.CSS_SELECTOR, "[data-label=Expires]").text


def test_list_shows_name_status_used_remaining_expiry(driver, user):
    api = user["api"]
    api.post("/api/token/", {"name": "forever", "unlimited_quota": True, "expired_time": -1})
    api.post("/api/token/", {"name": "capped", "unlimited_quota": False, "remain_quota": 1000000, "expired_time": int(time.time()) + 3 * 86400})
    sign_in(driver, api, "/tokens", "[data-page=tokens] h1")
    forever = row_of(driver, "forever")
    assert "Unlimited" in forever.text and "Never" in forever.text
    capped = row_of(driver, "capped")
    assert "$2.00" in capped.text
    headers = [th.text.lower() for th in driver.find_elements(By.CSS_SELECTOR, ".data-table th")]
    assert headers[:5] == ["name", "status", "used", "remaining", "expires"]
    screenshot(driver, "tokens")
    search = driver.find_element(By.CSS_SELECTOR, "#token-search [name=keyword]")
    search.send_keys("capp")
    driver.find_element(By.CSS_SELECTOR, "#token-search button").click()
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "tr[data-token-name=forever]"))
    assert row_of(driver, "capped")


def test_edit_key(driver, user, groups):
    api = user["api"]
    api.post("/api/token/", {"name": "to-edit", "unlimited_quota": True, "expired_time": -1})
    sign_in(driver, api, "/tokens", "[data-page=tokens] h1")
    row_of(driver, "to-edit").find_element(By.CSS_SELECTOR, "[data-action=edit]").click()
    form = find(driver, "dialog[open] #token-form")
    name = form.find_element(By.NAME, "name")
    assert name.get_attribute("value") == "to-edit"
    name.clear()
    name.send_keys("edited")
    Select(form.find_element(By.NAME, "group")).select_by_value("backup")
    form.find_element(By.NAME, "unlimited").click()
    limit = form.find_element(By.NAME, "limit")
    limit.clear()
    limit.send_keys("3")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    row = row_of(driver, "edited")
    assert "$3.00" in row.text
    token = api.get("/api/token/?p=1&size=20")["items"][0]
    assert token["name"] == "edited" and token["group"] == "backup" and token["remain_quota"] == 1500000


def test_server_validation_is_shown_next_to_the_form(driver, user):
    sign_in(driver, user["api"], "/tokens", "[data-page=tokens] h1")
    click(driver, "#create-key")
    form = find(driver, "dialog[open] #token-form")
    form.find_element(By.NAME, "name").send_keys("bad-ip")
    form.find_element(By.NAME, "allow_ips").send_keys("300.1.2.3")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = find(driver, "dialog[open] #token-form .form-error")
    assert error.text.strip()
    assert not user["api"].get("/api/token/?p=1&size=20")["items"]
    # a name that is too long is caught before sending
    name = form.find_element(By.NAME, "name")
    driver.execute_script("arguments[0].removeAttribute('maxlength')", name)
    name.clear()
    name.send_keys("x" * 31)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_text(driver, "dialog[open] #token-form .form-error", "too long")


def test_disable_enable_delete_and_copy(driver, user):
    api = user["api"]
    created = api.post("/api/token/", {"name": "lifecycle", "unlimited_quota": True, "expired_time": -1})[0]
    full_key = created["key"]
    sign_in(driver, api, "/tokens", "[data-page=tokens] h1")

    row_of(driver, "lifecycle").find_element(By.CSS_SELECTOR, "[data-action=copy]").click()
    wait_text(driver, "#toast", "copied")
    copied = clipboard(driver)
    if copied is not None:
        assert copied == full_key

    row_of(driver, "lifecycle").find_element(By.CSS_SELECTOR, "[data-action=disable]").click()
    wait(driver).until(lambda d: "Disabled" in row_of(d, "lifecycle").text)
    assert api.get(f"/api/token/{created['id']}")["status"] == 2
    row_of(driver, "lifecycle").find_element(By.CSS_SELECTOR, "[data-action=enable]").click()
    wait(driver).until(lambda d: "Enabled" in row_of(d, "lifecycle").text)
    assert api.get(f"/api/token/{created['id']}")["status"] == 1

    # Delete asks first; Cancel keeps the key and gives focus back to the button
    row_of(driver, "lifecycle").find_element(By.CSS_SELECTOR, "[data-action=delete]").click()
    dialog = find(driver, "dialog[open]")
    assert "cannot be undone" in dialog.text
    assert driver.switch_to.active_element.text == "Cancel"
    dialog.find_element(By.CSS_SELECTOR, "button[value=cancel]").click()
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"))
    assert driver.switch_to.active_element.get_attribute("data-action") == "delete"
    assert api.get(f"/api/token/{created['id']}")["name"] == "lifecycle"

    row_of(driver, "lifecycle").find_element(By.CSS_SELECTOR, "[data-action=delete]").click()
    click(driver, "dialog[open] button[value=confirm]")
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "tr[data-token-name='lifecycle']"))
    with pytest.raises(ApiError) as missing:
        api.get(f"/api/token/{created['id']}")
    assert missing.value.status == 404


def test_escape_closes_the_dialog_and_restores_focus(driver, user):
    from selenium.webdriver.common.keys import Keys
    sign_in(driver, user["api"], "/tokens", "[data-page=tokens] h1")
    click(driver, "#create-key")
    find(driver, "dialog[open] #token-form")
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"))
    assert driver.switch_to.active_element.get_attribute("id") == "create-key"


def test_phone_width(driver, user):
    api = user["api"]
    api.post("/api/token/", {"name": "phone", "unlimited_quota": False, "remain_quota": 250000, "expired_time": -1})
    driver.set_window_size(375, 812)
    sign_in(driver, api, "/tokens", "[data-page=tokens] h1")
    row = row_of(driver, "phone")
    assert "$0.50" in row.text
    assert driver.execute_script("return document.documentElement.scrollWidth") <= driver.execute_script("return window.innerWidth") + 1
    nav = driver.find_element(By.ID, "site-nav")
    assert not nav.is_displayed()
    toggle = find(driver, "#nav-toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    screenshot(driver, "mobile-tokens")
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    find(driver, "#site-nav a[href='#/groups']").click()
    find(driver, "[data-page=groups] h1")
    assert not driver.find_element(By.ID, "site-nav").is_displayed()
    click(driver, "#nav-toggle")
    find(driver, "#site-nav a[href='#/tokens']").click()
    find(driver, "[data-page=tokens] h1")
    click(driver, "#create-key")
    form = find(driver, "dialog[open] #token-form")
    width = driver.execute_script("return document.querySelector('dialog[open]').getBoundingClientRect().width")
    assert width <= 375
    screenshot(driver, "mobile-create-key")
