"""Point 3: request example and one-click setup with the key and this gateway filled in."""
import base64
import json
import urllib.parse

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import BASE_URL, click, find, screenshot, sign_in, wait


def panel_text(driver, tab):
    click(driver, f"dialog[open] [role=tab][data-tab={tab}]")
    panel = find(driver, f"dialog[open] [role=tabpanel][data-panel={tab}]")
    return "\n".join(box.get_attribute("value") for box in panel.find_elements(By.CSS_SELECTOR, "textarea, input[readonly]"))


def test_request_example_has_key_and_origin(driver, user):
    api = user["api"]
    token = api.post("/api/token/", {"name": "example", "unlimited_quota": True, "expired_time": -1, "model_limits": "gpt-4o-mini,claude-3-5-haiku"})[0]
    key = token["key"]
    sign_in(driver, api, "/tokens", "[data-page=tokens] h1")
    find(driver, "tr[data-token-name=example] [data-action=example]").click()
    find(driver, "dialog[open] #examples")
    screenshot(driver, "request-example")

    curl = panel_text(driver, "curl")
    assert f"curl {BASE_URL}/v1/chat/completions" in curl
    assert f"Authorization: Bearer {key}" in curl and '"model": "gpt-4o-mini"' in curl

    python = panel_text(driver, "python")
    assert "from openai import OpenAI" in python
    assert f'OpenAI(api_key="{key}", base_url="{BASE_URL}/v1")' in python

    node = panel_text(driver, "node")
    assert 'import OpenAI from "openai"' in node
    assert f'apiKey: "{key}", baseURL: "{BASE_URL}/v1"' in node

    anthropic = panel_text(driver, "anthropic")
    assert f'anthropic.Anthropic(api_key="{key}", base_url="{BASE_URL}")' in anthropic
    assert 'model="claude-3-5-haiku"' in anthropic
    assert f"{BASE_URL}/v1/messages" in anthropic and f"x-api-key: {key}" in anthropic

    env = panel_text(driver, "env")
    for line in (f'export OPENAI_API_KEY="{key}"', f'export OPENAI_BASE_URL="{BASE_URL}/v1"',
                 f'export ANTHROPIC_API_KEY="{key}"', f'export ANTHROPIC_BASE_URL="{BASE_URL}"'):
        assert line in env

    panel_text(driver, "clients")
    screenshot(driver, "one-click-setup")
    next_chat = find(driver, "dialog[open] #nextchat-link").get_attribute("href")
    assert next_chat.startswith("https://app.nextchat.dev/#/?settings=")
    settings = json.loads(urllib.parse.unquote(next_chat.split("settings=", 1)[1]))
    assert settings == {"key": key, "url": BASE_URL}
    assert find(driver, "dialog[open] #nextchat-link").get_attribute("rel") == "noopener noreferrer"
    client = driver.find_element(By.CSS_SELECTOR, "dialog[open] [name=client-url]")
    client.clear()
    client.send_keys("https://chat.example.org/")
    assert driver.find_element(By.CSS_SELECTOR, "dialog[open] #nextchat-link").get_attribute("href").startswith("https://chat.example.org/#/?settings=")

    cherry = driver.find_element(By.CSS_SELECTOR, "dialog[open] #cherry-link").get_attribute("href")
    assert cherry.startswith("cherrystudio://providers/api-keys?v=1&data=")
    config = json.loads(base64.b64decode(urllib.parse.unquote(cherry.split("data=", 1)[1])))
    assert config["apiKey"] == key and config["baseUrl"] == BASE_URL


def test_tabs_work_with_arrow_keys(driver, user):
    api = user["api"]
    api.post("/api/token/", {"name": "keys", "unlimited_quota": True, "expired_time": -1})
    sign_in(driver, api, "/tokens", "[data-page=tokens] h1")
    find(driver, "tr[data-token-name=keys] [data-action=example]").click()
    first = find(driver, "dialog[open] [role=tab][data-tab=curl]")
    first.click()
    first.send_keys(Keys.ARROW_RIGHT)
    active = driver.switch_to.active_element
    assert active.get_attribute("data-tab") == "python" and active.get_attribute("aria-selected") == "true"
    assert find(driver, "dialog[open] [data-panel=python]").is_displayed()
    active.send_keys(Keys.END)
    assert driver.switch_to.active_element.get_attribute("data-tab") == "clients"
    active = driver.switch_to.active_element
    active.send_keys(Keys.ARROW_RIGHT)
    assert driver.switch_to.active_element.get_attribute("data-tab") == "curl"


def test_example_right_after_create(driver, user):
    sign_in(driver, user["api"], "/tokens", "[data-page=tokens] h1")
    click(driver, "#create-key")
    form = find(driver, "dialog[open] #token-form")
    form.find_element(By.NAME, "name").send_keys("fresh")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    key = find(driver, "dialog[open] #new-key").get_attribute("value")
    click(driver, "dialog[open] #new-key-example")
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "dialog[open] #examples"))
    assert key in panel_text(driver, "curl")
