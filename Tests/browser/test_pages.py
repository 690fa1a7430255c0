"""Every console page renders for an admin, with a heading, landmarks, labelled controls and no script or CSP errors,
and (at phone width) without a horizontal scroll."""
import pytest
from selenium.webdriver.common.by import By

from conftest import find, sign_in, unlabelled_controls, wait

PAGES = ["/tokens", "/usage", "/groups", "/redeem", "/admin/users", "/admin/groups", "/admin/models",
         "/admin/channels", "/admin/redemptions", "/admin/logs"]


@pytest.mark.parametrize("route", PAGES)
def test_page_renders_accessibly(driver, root, route):
    sign_in(driver, root, route)
    heading = find(driver, "main .page h1")
    assert heading.text.strip()
    assert driver.find_elements(By.CSS_SELECTOR, "header[role=banner], header")
    assert driver.find_element(By.ID, "site-nav").get_attribute("aria-label") == "Main navigation"
    # let the page's own requests settle, then check its controls
    wait(driver).until(lambda d: not [n for n in d.find_elements(By.CSS_SELECTOR, "main .notice") if "Loading" in n.text])
    assert not unlabelled_controls(driver)
    assert driver.find_element(By.CSS_SELECTOR, f"#site-nav a[href='#{route}']").get_attribute("aria-current") == "page"


@pytest.mark.parametrize("route", ["/usage", "/groups", "/redeem", "/admin/models", "/admin/channels", "/admin/redemptions", "/admin/logs"])
def test_page_fits_a_phone(driver, root, route):
    driver.set_window_size(390, 844)
    sign_in(driver, root, route)
    wait(driver).until(lambda d: not [n for n in d.find_elements(By.CSS_SELECTOR, "main .notice") if "Loading" in n.text])
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{route} is {overflow}px wider than the phone"
    assert find(driver, "#nav-toggle").is_displayed()


def test_token_detail_page(driver, user):
    token = user["api"].post("/api/token/", {"name": "detail", "unlimited_quota": True, "expired_time": -1})[0]
    sign_in(driver, user["api"], f"/tokens/{token['id']}", "[data-page=tokendetail] h1")
    assert "detail" in find(driver, "main h1").text
    assert "Unlimited" in find(driver, "main .stats").text


def test_unknown_route_goes_home(driver, user):
    sign_in(driver, user["api"], "/nowhere", "[data-page=tokens] h1")
