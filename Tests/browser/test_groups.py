"""Point 5: the Groups page shows what users may choose (multiplier, models, limits)."""
from selenium.webdriver.common.by import By

from conftest import ApiError, find, screenshot, sign_in


def test_groups_page(driver, root, user):
    for body in ({"name": "gold", "description": "Priority upstreams", "ratio": 1.8, "models": ["gpt-4o", "o3-mini"], "rpm": 120, "tpm": 200000, "selectable": True},
                 {"name": "hidden", "description": "Not for users", "ratio": 0.5, "models": [], "selectable": False}):
        try:
            root.post("/api/group/", body)
        except ApiError as error:
            assert error.status == 409
    try:
        root.post("/api/model/", {"model": "gpt-4o", "input_price": 2.5, "output_price": 10, "call_price": None})
    except ApiError as error:
        assert error.status == 409
    sign_in(driver, user["api"], "/groups", "[data-page=groups] h1")
    gold = find(driver, "tr[data-group=gold]")
    assert "×1.8" in gold.text and "Priority upstreams" in gold.text
    assert [chip.text for chip in gold.find_elements(By.CSS_SELECTOR, ".chip")] == ["gpt-4o", "o3-mini"]
    assert "120 RPM" in gold.text and "200,000 TPM" in gold.text
    default = find(driver, "tr[data-group=default]")
    assert "Every model" in default.text and "your group" in default.text
    assert not driver.find_elements(By.CSS_SELECTOR, "tr[data-group=hidden]")
    assert find(driver, "#site-nav a[aria-current=page]").text == "Groups"
    # the price of each model in every group that offers it, the multiplier applied
    price = find(driver, "#pricing tr[data-model='gpt-4o']")
    assert price.find_element(By.CSS_SELECTOR, "[data-label='Base input / output']").text == "$2.5 / $10"
    assert "×1.8: $4.5 / $18" in price.find_element(By.CSS_SELECTOR, "li[data-group=gold]").text
    assert "×1: $2.5 / $10" in price.find_element(By.CSS_SELECTOR, "li[data-group=default]").text
    assert not price.find_elements(By.CSS_SELECTOR, "li[data-group=hidden]")
    screenshot(driver, "groups")
