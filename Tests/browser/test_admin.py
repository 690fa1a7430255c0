"""Point 6: admin pages (role >= 10): users, groups, models and prices, channels, redemption codes, all logs."""
import csv
import io
import socket
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import (RELAY_MODEL, ApiError, click, find, fund, make_user, relay_call, screenshot, sign_in, unique,
                      unlabelled_controls, wait, wait_for_file, wait_text)


def crud_row(driver, name):
    return find(driver, f".crud-list tr[data-name='{name}']")


def fill_form(driver, **values):
    form = find(driver, "dialog[open] #crud-form")
    for name, value in values.items():
        element = form.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(str(value))
        else:
            element.clear()
            element.send_keys(str(value))
    return form


def test_non_admin_sees_no_admin_pages(driver, user):
    sign_in(driver, user["api"], "/tokens", "[data-page=tokens] h1")
    assert not driver.find_elements(By.CSS_SELECTOR, "#site-nav a[href='#/admin/users']")
    driver.get(driver.current_url.split("#")[0] + "#/admin/users")
    wait_text(driver, "main", "needs an administrator")


def test_users_top_up_group_and_status(driver, root):
    member = make_user("member")
    sign_in(driver, root, "/admin/users", "[data-page=admin-users] h1")
    row = crud_row(driver, member["username"])
    assert "$0.00" in row.find_element(By.CSS_SELECTOR, "[data-label=Balance]").text
    assert not crud_row(driver, "root").find_elements(By.CSS_SELECTOR, "[data-action=delete]")
    screenshot(driver, "admin-users")

    row.find_element(By.CSS_SELECTOR, "[data-action=topup]").click()
    form = find(driver, "dialog[open] #topup-form")
    form.find_element(By.NAME, "amount").send_keys("10")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: "$10.00" in crud_row(d, member["username"]).text)
    assert root.get(f"/api/user/{member['id']}")["quota"] == 5_000_000

    crud_row(driver, member["username"]).find_element(By.CSS_SELECTOR, "[data-action=edit]").click()
    form = find(driver, "dialog[open] #crud-form")
    assert not unlabelled_controls(driver)
    assert form.find_element(By.NAME, "username").get_attribute("readonly") is not None
    fill_form(driver, quota="12.5", role="10")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: "$12.50" in crud_row(d, member["username"]).text)
    saved = root.get(f"/api/user/{member['id']}")
    assert saved["quota"] == 6_250_000 and saved["role"] == 10

    crud_row(driver, member["username"]).find_element(By.CSS_SELECTOR, "[data-action=disable]").click()
    wait(driver).until(lambda d: "Disabled" in crud_row(d, member["username"]).text)
    assert root.get(f"/api/user/{member['id']}")["status"] == 2


def test_admin_groups_create_edit_delete(driver, root):
    name = f"silver{int(time.time()) % 100000}"
    sign_in(driver, root, "/admin/groups", "[data-page=admin-groups] h1")
    click(driver, "#crud-create")
    form = fill_form(driver, name=name, description="Mid tier", ratio="1.25", models="gpt-4o, gpt-4o-mini", rpm="30", tpm="0")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    row = crud_row(driver, name)
    assert "×1.25" in row.text and "gpt-4o, gpt-4o-mini" in row.text and "30 RPM" in row.text
    group = root.get(f"/api/group/{name}")
    assert group["ratio"] == 1.25 and group["models"] == ["gpt-4o", "gpt-4o-mini"] and group["selectable"] is True
    screenshot(driver, "admin-groups")

    row.find_element(By.CSS_SELECTOR, "[data-action=edit]").click()
    form = fill_form(driver, description="Renamed tier")
    form.find_element(By.NAME, "selectable").click()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: "Renamed tier" in crud_row(d, name).text)
    assert root.get(f"/api/group/{name}")["selectable"] is False

    crud_row(driver, name).find_element(By.CSS_SELECTOR, "[data-action=delete]").click()
    click(driver, "dialog[open] button[value=confirm]")
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f".crud-list tr[data-name='{name}']"))
    with pytest.raises(ApiError):
        root.get(f"/api/group/{name}")


def test_admin_group_errors_are_shown(driver, root):
    sign_in(driver, root, "/admin/groups", "[data-page=admin-groups] h1")
    click(driver, "#crud-create")
    form = fill_form(driver, name="default")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_text(driver, "dialog[open] .form-error", "already exists")


def submit_form(driver):
    find(driver, "dialog[open] #crud-form button[type=submit]").click()


def price_of(root, model):
    return next(m for m in root.get("/api/model/?p=1&size=100")["items"] if m["model"] == model)


def test_models_and_prices(driver, root):
    model = unique("test-model-")
    sign_in(driver, root, "/admin/models", "[data-page=admin-models] h1")
    click(driver, "#crud-create")
    assert not unlabelled_controls(driver)
    fill_form(driver, model=model, input_price="2.5", output_price="10", max_output_tokens="8192")
    submit_form(driver)
    row = crud_row(driver, model)
    assert "$2.5" in row.text and "$10" in row.text
    assert row.find_element(By.CSS_SELECTOR, "[data-label='Per call']").text == "—"
    saved = price_of(root, model)
    assert saved["call_price"] is None and saved["max_output_tokens"] == 8192 and saved["input_price"] == 2.5

    row.find_element(By.CSS_SELECTOR, "[data-action=edit]").click()
    form = fill_form(driver, output_price="12", call_price="0.01")
    assert form.find_element(By.NAME, "model").get_attribute("readonly") is not None
    submit_form(driver)
    wait(driver).until(lambda d: "$12" in crud_row(d, model).text and "$0.01" in crud_row(d, model).text)
    assert price_of(root, model)["call_price"] == 0.01
    screenshot(driver, "admin-models")

    crud_row(driver, model).find_element(By.CSS_SELECTOR, "[data-action=delete]").click()
    click(driver, "dialog[open] button[value=confirm]")
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f".crud-list tr[data-name='{model}']"))
    assert model not in [m["model"] for m in root.get("/api/model/?p=1&size=100")["items"]]


def test_models_duplicate_is_refused(driver, root, relay):
    sign_in(driver, root, "/admin/models", "[data-page=admin-models] h1")
    click(driver, "#crud-create")
    fill_form(driver, model=RELAY_MODEL, input_price="1")
    submit_form(driver)
    wait_text(driver, "dialog[open] .form-error", "has a price already")


def test_models_clear_the_call_price(driver, root):
    model = unique("per-call-")
    root.post("/api/model/", {"model": model, "input_price": 1, "output_price": 1, "call_price": 0.02})
    sign_in(driver, root, "/admin/models", "[data-page=admin-models] h1")
    crud_row(driver, model).find_element(By.CSS_SELECTOR, "[data-action=edit]").click()
    form = find(driver, "dialog[open] #crud-form")
    form.find_element(By.NAME, "call_price").clear()
    submit_form(driver)
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"))
    try:
        assert price_of(root, model)["call_price"] is None
    finally:
        root.delete(f"/api/model/{price_of(root, model)['id']}")


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def health_cell(driver, name):
    return crud_row(driver, name).find_element(By.CSS_SELECTOR, ".health")


def test_channels_with_test_button_and_health(driver, root, upstream):
    good, bad = unique("local-"), unique("down-")
    root.post("/api/channel/", {"name": bad, "base_url": f"http://127.0.0.1:{closed_port()}", "key": "sk-nobody",
                                "models": ["probe-model"], "groups": ["default"], "priority": 1, "connect_timeout_ms": 1000})
    sign_in(driver, root, "/admin/channels", "[data-page=admin-channels] h1")
    click(driver, "#crud-create")
    assert not unlabelled_controls(driver)
    fill_form(driver, name=good, base_url=upstream, key="sk-fake-upstream", models="probe-model", groups="default", priority="5")
    submit_form(driver)
    row = crud_row(driver, good)
    assert "probe-model" in row.text and upstream.split("//")[1] in row.text
    assert "Healthy" in health_cell(driver, good).text
    channel = next(c for c in root.get("/api/channel/?p=1&size=100")["items"] if c["name"] == good)
    assert channel["key"] != "sk-fake-upstream" and channel["health"]["status"] == "healthy"

    # the fake upstream answers: the test passes and counts as a success
    row.find_element(By.CSS_SELECTOR, "[data-action=test]").click()
    wait(driver, 40).until(lambda d: crud_row(d, good).find_element(By.CSS_SELECTOR, ".test-result").get_attribute("data-ok"))
    result = crud_row(driver, good).find_element(By.CSS_SELECTOR, ".test-result")
    assert result.get_attribute("data-ok") == "true" and "Test OK · probe-model" in result.text and " ms" in result.text

    # nothing listens on the other port: the test fails, with the reason, and the health counts it
    crud_row(driver, bad).find_element(By.CSS_SELECTOR, "[data-action=test]").click()
    wait(driver, 40).until(lambda d: crud_row(d, bad).find_element(By.CSS_SELECTOR, ".test-result").get_attribute("data-ok"))
    result = crud_row(driver, bad).find_element(By.CSS_SELECTOR, ".test-result")
    assert result.get_attribute("data-ok") == "false" and result.text.startswith("Test failed")
    assert "1 failed" in health_cell(driver, bad).text and "Last error" in health_cell(driver, bad).text
    screenshot(driver, "admin-channels")

    # editing without a key keeps the stored key: the test still passes
    crud_row(driver, good).find_element(By.CSS_SELECTOR, "[data-action=edit]").click()
    form = fill_form(driver, priority="6")
    assert form.find_element(By.NAME, "key").get_attribute("value") == ""
    submit_form(driver)
    wait(driver).until(lambda d: "6 · w1" in crud_row(d, good).text)
    crud_row(driver, good).find_element(By.CSS_SELECTOR, "[data-action=test]").click()
    wait(driver, 40).until(lambda d: crud_row(d, good).find_element(By.CSS_SELECTOR, ".test-result").get_attribute("data-ok"))
    assert crud_row(driver, good).find_element(By.CSS_SELECTOR, ".test-result").get_attribute("data-ok") == "true"

    for name in (good, bad):
        crud_row(driver, name).find_element(By.CSS_SELECTOR, "[data-action=delete]").click()
        click(driver, "dialog[open] button[value=confirm]")
        wait(driver).until(lambda d, name=name: not d.find_elements(By.CSS_SELECTOR, f".crud-list tr[data-name='{name}']"))


def test_refused_channel_fails_its_test_at_once(driver, root):
    name = unique("refused-")
    channel = root.post("/api/channel/", {"name": name, "base_url": f"http://127.0.0.1:{closed_port()}", "key": "sk-nobody",
                                          "models": ["probe-model"], "groups": ["default"], "priority": 1})
    try:
        sign_in(driver, root, "/admin/channels", "[data-page=admin-channels] h1")
        crud_row(driver, name).find_element(By.CSS_SELECTOR, "[data-action=test]").click()
        wait(driver, 40).until(lambda d: crud_row(d, name).find_element(By.CSS_SELECTOR, ".test-result").get_attribute("data-ok"))
        text = crud_row(driver, name).find_element(By.CSS_SELECTOR, ".test-result").text
        assert text.startswith("Test failed")
        assert int(text.split(" · ")[-1].removesuffix(" ms")) < 3000, text
    finally:
        root.delete(f"/api/channel/{channel['id']}")


def csv_rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_redemption_codes_batch_and_csv(driver, root, downloads):
    batch = unique("launch")
    sign_in(driver, root, "/admin/redemptions", "[data-page=admin-redemptions] h1")
    click(driver, "#crud-create")
    assert not unlabelled_controls(driver)
    fill_form(driver, name=batch, count="3", quota="2")
    submit_form(driver)
    created = find(driver, "dialog[open] #created-codes")
    codes = created.find_element(By.CSS_SELECTOR, "textarea").get_attribute("value").split("\n")
    assert len(codes) == 3 and all(codes) and len(set(codes)) == 3

    # the CSV download of the new batch holds exactly its codes
    click(driver, "#codes-csv")
    rows = csv_rows(wait_for_file(downloads, ".csv"))
    assert sorted(r["key"] for r in rows) == sorted(codes)
    assert {r["name"] for r in rows} == {batch} and {r["quota"] for r in rows} == {"1000000"} and {r["kind"] for r in rows} == {"topup"}
    for path in downloads.iterdir():
        path.unlink()
    click(driver, "dialog[open] .dialog-close")

    # search by batch name, then export what is listed
    search = find(driver, "#code-search")
    search.find_element(By.NAME, "keyword").send_keys(batch)
    search.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".crud-list tbody tr")) == 3
                       and len(d.find_elements(By.CSS_SELECTOR, f".crud-list tr[data-name='{batch}']")) == 3)
    shown = [c.text for c in driver.find_elements(By.CSS_SELECTOR, f".crud-list tr[data-name='{batch}'] [data-label=Code]")]
    assert sorted(shown) == sorted(codes)
    click(driver, "#export-csv")
    rows = csv_rows(wait_for_file(downloads, ".csv"))
    assert sorted(r["key"] for r in rows) == sorted(codes) and {r["status"] for r in rows} == {"1"}
    screenshot(driver, "admin-redemptions")

    # disable one code: it is refused when redeemed
    first = driver.find_element(By.CSS_SELECTOR, f".crud-list tr[data-name='{batch}']")
    code_id = first.get_attribute("data-id")
    first.find_element(By.CSS_SELECTOR, "[data-action=disable]").click()
    wait(driver).until(lambda d: "Disabled" in d.find_element(By.CSS_SELECTOR, f".crud-list tr[data-id='{code_id}']").text)
    assert root.get(f"/api/redemption/{code_id}")["status"] == 2


def test_all_logs_page(driver, root, relay):
    member = make_user("logged")
    fund(root, member)
    key = member["api"].post("/api/token/", {"name": "audited", "unlimited_quota": True, "expired_time": -1})[0]["key"]
    relay_call(key)
    relay_call(key)
    sign_in(driver, root, "/admin/logs", "[data-page=admin-logs] h1")
    find(driver, ".logs-body .data-table")
    headers = [th.text.lower() for th in driver.find_elements(By.CSS_SELECTOR, ".logs-body th")]
    assert "user" in headers and "model" in headers and "cost" in headers and "channel" in headers
    logs = find(driver, "section.logs")
    logs.find_element(By.NAME, "username").send_keys(member["username"])
    logs.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".logs-body tbody tr[data-type]")) == 2)
    row = driver.find_element(By.CSS_SELECTOR, ".logs-body tbody tr[data-type='2']")
    assert row.find_element(By.CSS_SELECTOR, "[data-label=User]").text == f"#{member['id']}"
    assert row.find_element(By.CSS_SELECTOR, "[data-label=Key]").text == "audited"
    assert row.find_element(By.CSS_SELECTOR, "[data-label=Channel]").text == f"fake-upstream #{relay['id']}"
    assert RELAY_MODEL in row.text
    screenshot(driver, "admin-logs")
    # an unknown username lists nothing
    name = logs.find_element(By.NAME, "username")
    name.clear()
    name.send_keys("nobody-by-that-name")
    logs.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_text(driver, ".logs-body", "No logs in this period")
