"""Point 1: register, log in, log out (and the errors shown next to the form)."""
from selenium.webdriver.common.by import By

from conftest import click, find, screenshot, unique, unlabelled_controls, wait, wait_text, BASE_URL


def fill(driver, form, **values):
    for name, value in values.items():
        element = driver.find_element(By.CSS_SELECTOR, f"{form} [name={name}]")
        element.clear()
        element.send_keys(value)


def test_register_then_logout_then_login(driver):
    username = unique("alice")
    password = "correct-horse-1"
    driver.get(BASE_URL + "/")
    find(driver, "#login-form")
    assert driver.current_url.endswith("#/login")
    assert not unlabelled_controls(driver)
    screenshot(driver, "login")

    click(driver, "a[href='#/register']")
    find(driver, "#register-form")
    fill(driver, "#register-form", username=username, password=password, confirm=password)
    click(driver, "#register-form button[type=submit]")
    find(driver, "[data-page=tokens] h1")
    wait_text(driver, "#account", username)
    assert driver.current_url.endswith("#/tokens")

    click(driver, "#logout-button")
    find(driver, "#login-form")
    # the session really is gone: the API answers 401 and the console stays on the login page
    driver.get(BASE_URL + "/#/tokens")
    find(driver, "#login-form")

    fill(driver, "#login-form", username=username, password=password)
    click(driver, "#login-form button[type=submit]")
    find(driver, "[data-page=tokens] h1")
    wait_text(driver, "#account", username)


def test_wrong_password_shows_the_server_message(driver, user):
    find(driver, "#login-form")
    fill(driver, "#login-form", username=user["username"], password="not-the-password")
    click(driver, "#login-form button[type=submit]")
    error = find(driver, "#login-form .form-error")
    assert "Wrong username or password" in error.text
    assert error.get_attribute("role") == "alert"


def test_register_errors_come_from_the_envelope(driver, user):
    driver.get(BASE_URL + "/#/register")
    find(driver, "#register-form")
    fill(driver, "#register-form", username=user["username"], password="another-pass-1", confirm="another-pass-1")
    click(driver, "#register-form button[type=submit]")
    error = find(driver, "#register-form .form-error")
    assert "already taken" in error.text


def test_keyboard_only_login(driver, user):
    """The login form is usable with the keyboard alone (Tab order, Enter submits)."""
    from selenium.webdriver.common.keys import Keys
    find(driver, "#login-form")
    username = driver.find_element(By.CSS_SELECTOR, "#login-form [name=username]")
    username.click()
    username.send_keys(user["username"], Keys.TAB, user["password"], Keys.ENTER)
    find(driver, "[data-page=tokens] h1")
    assert driver.execute_script("return document.activeElement.id") == "page-title"
