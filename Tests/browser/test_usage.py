"""Point 4: usage (chart and table) and call logs, per account and per key.

Calls go through Sluice's relay to the fake OpenAI upstream of conftest (a channel on a loopback port), so the
chart, the usage table and the logs show real rows: 2500 quota units ($0.005) per call.
"""
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import QUOTA_PER_CALL, RELAY_MODEL, find, fund, relay_call, screenshot, sign_in, wait


def bar_heights(driver):
    return [float(bar.get_attribute("height")) for bar in driver.find_elements(By.CSS_SELECTOR, ".usage-body .chart-bar")]


def test_usage_page_without_calls(driver, user):
    sign_in(driver, user["api"], "/usage", "[data-page=usage] h1")
    find(driver, ".usage-body svg.chart")
    assert len(bar_heights(driver)) == 14 and not any(bar_heights(driver))
    assert "No usage in this period" in find(driver, ".usage-body .data-table").text
    find(driver, ".logs-body .data-table")
    Select(find(driver, "select[name=days]")).select_by_value("7")
    wait(driver).until(lambda d: len(bar_heights(d)) == 7)


def test_usage_and_logs_after_calls(driver, root, user, relay):
    fund(root, user)
    api = user["api"]
    token = api.post("/api/token/", {"name": "busy", "unlimited_quota": True, "expired_time": -1})[0]
    other = api.post("/api/token/", {"name": "quiet", "unlimited_quota": True, "expired_time": -1})[0]
    for _ in range(3):
        relay_call(token["key"])
    relay_call(other["key"])

    sign_in(driver, api, "/usage", "[data-page=usage] h1")
    wait(driver).until(lambda d: [h for h in bar_heights(d) if h > 0])
    assert len([h for h in bar_heights(driver) if h > 0]) == 1  # every call is today
    today = driver.find_elements(By.CSS_SELECTOR, ".usage-body .chart-bar")[-1]
    assert float(today.get_attribute("height")) > 0
    assert "4 requests" in find(driver, ".usage-body figcaption").text
    assert "$0.02" in find(driver, ".usage-body figcaption").text  # 4 * $0.005
    # the axis: five distinct, evenly spaced USD labels from $0
    ticks = [float(t.text.lstrip("$").replace(",", "")) for t in driver.find_elements(By.CSS_SELECTOR, ".usage-body .chart-axis[text-anchor=end]")]
    assert len(ticks) == 5 and ticks[0] == 0 and len(set(ticks)) == 5
    assert all(abs((b - a) - ticks[1]) < 1e-9 for a, b in zip(ticks, ticks[1:])) and ticks[-1] >= 0.02
    row = find(driver, f".usage-body tr[data-model='{RELAY_MODEL}']")
    assert row.find_element(By.CSS_SELECTOR, "[data-label=Requests]").text == "4"
    assert row.find_element(By.CSS_SELECTOR, "[data-label='Prompt tokens']").text == "4,000"
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".logs-body tbody tr[data-type='2']")) == 4)
    log = driver.find_element(By.CSS_SELECTOR, ".logs-body tbody tr[data-type='2']")
    assert RELAY_MODEL in log.text and "$0.005" in log.find_element(By.CSS_SELECTOR, "[data-label=Cost]").text
    assert api.get("/api/user/self")["used_quota"] == 4 * QUOTA_PER_CALL
    screenshot(driver, "usage")

    # the key name filter narrows the logs to one key
    logs = find(driver, "section.logs")
    logs.find_element(By.NAME, "token_name").send_keys("quiet")
    logs.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".logs-body tbody tr[data-type]")) == 1)

    sign_in(driver, api, f"/tokens/{token['id']}", "[data-page=tokendetail] h1")
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".logs-body tbody tr[data-type='2']")) == 3)
    assert "busy" in find(driver, "h1").text
    wait(driver).until(lambda d: "3 requests" in d.find_element(By.CSS_SELECTOR, ".usage-body figcaption").text)
    screenshot(driver, "token-usage")
