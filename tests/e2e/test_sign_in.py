"""Sign in, use the app, sign out: the path every Gatehouse user takes.

Runs a real browser (Debian's Chromium, headless) against the real
`gatehouse run -- streamlit run demo/app.py`. See conftest.py for the setup.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import requests
from playwright.sync_api import Browser, Page, expect

from conftest import (
    EMAIL,
    FULL_NAME,
    PASSWORD,
    USERNAME,
    Gatehouse,
    screenshot,
)

LOGIN_URL = re.compile(r"/_gatehouse/login(\?.*)?$")
LOGOUT_URL = re.compile(r"/_gatehouse/logout(\?.*)?$")


def sign_in(page: Page, username: str = USERNAME, password: str = PASSWORD) -> None:
    """Fill in and submit the login form on the current page."""
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def expect_app_signed_in(page: Page) -> None:
    """The demo app rendered (client-side, after its WebSocket connected)."""
    expect(page.get_by_text(f"Signed in as {EMAIL}")).to_be_visible()
    expect(page.get_by_text(f"Name: {FULL_NAME}")).to_be_visible()


def cookie_header(page: Page) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())


def test_root_redirects_to_login_page(page: Page, gatehouse: Gatehouse) -> None:
    response = requests.get(
        gatehouse.url("/"),
        headers={"Accept": "text/html,application/xhtml+xml"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 303, response.text[:500]
    location = urljoin(gatehouse.url("/"), response.headers["Location"])
    assert location == gatehouse.url("/_gatehouse/login?rd=%2F")

    page.goto("/")
    expect(page).to_have_url(LOGIN_URL)
    assert "/_gatehouse/login" in page.url
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    form = page.locator('form[method="post" i][action="/_gatehouse/login"]')
    expect(form).to_have_count(1)
    expect(form.locator('input[name="username"]')).to_be_visible()
    expect(form.locator('input[name="password"]')).to_have_attribute("type", "password")
    expect(page.get_by_label("Username or email")).to_be_editable()
    expect(page.get_by_label("Password", exact=True)).to_be_editable()
    remember = page.get_by_label("Remember me")
    expect(remember).to_have_attribute("type", "checkbox")
    expect(remember).to_have_attribute("name", "remember")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_enabled()
    screenshot(page, "login-page")


def test_wrong_password_shows_error(page: Page, gatehouse: Gatehouse) -> None:
    page.goto("/")
    sign_in(page, password="not the password")
    expect(page).to_have_url(LOGIN_URL)
    alert = page.get_by_role("alert").filter(has_text="Incorrect username or password")
    expect(alert).to_be_visible()
    expect(page.get_by_text(f"Signed in as {EMAIL}")).to_have_count(0)
    screenshot(page, "login-error")


def test_right_password_shows_app(page: Page, gatehouse: Gatehouse) -> None:
    page.goto("/")
    sign_in(page)
    expect(page).to_have_url(gatehouse.url("/"))
    expect_app_signed_in(page)
    expect(page.get_by_role("heading", name="Gatehouse demo")).to_be_visible()
    screenshot(page, "signed-in-app")


def test_sign_in_with_email(page: Page, gatehouse: Gatehouse) -> None:
    page.goto("/")
    sign_in(page, username=EMAIL)
    expect(page).to_have_url(gatehouse.url("/"))
    expect_app_signed_in(page)


def test_count_round_trips_over_websocket(page: Page, gatehouse: Gatehouse) -> None:
    page.goto("/")
    sign_in(page)
    expect_app_signed_in(page)
    expect(page.get_by_text("Clicks: 0")).to_be_visible()
    count = page.get_by_role("button", name="Count")
    count.click()
    expect(page.get_by_text("Clicks: 1")).to_be_visible()
    count.click()
    expect(page.get_by_text("Clicks: 2")).to_be_visible()


def test_reload_stays_signed_in(page: Page, gatehouse: Gatehouse) -> None:
    page.goto("/")
    sign_in(page)
    expect_app_signed_in(page)
    page.reload()
    expect(page).to_have_url(gatehouse.url("/"))
    expect(page.get_by_text("Signed in as")).to_be_visible()
    expect_app_signed_in(page)


def test_return_path_is_kept(page: Page, gatehouse: Gatehouse) -> None:
    page.goto("/?foo=bar")
    expect(page).to_have_url(LOGIN_URL)
    assert "rd=" in page.url, page.url
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/\?foo=bar$"))
    assert page.url == gatehouse.url("/?foo=bar")
    expect_app_signed_in(page)


def test_logout_ends_the_session(page: Page, gatehouse: Gatehouse) -> None:
    page.goto("/")
    sign_in(page)
    expect_app_signed_in(page)

    old_cookies = cookie_header(page)
    assert "gatehouse_session" in old_cookies, old_cookies
    before = requests.get(
        gatehouse.url("/"), headers={"Cookie": old_cookies}, allow_redirects=False, timeout=10
    )
    assert before.status_code == 200, f"signed-in cookie not accepted: {before.status_code}"

    # The demo's own link leads to Gatehouse's sign-out page.
    page.get_by_role("link", name="Sign out", exact=True).click()
    expect(page).to_have_url(LOGOUT_URL)
    page.get_by_role("button", name="Sign out", exact=True).click()

    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_text("You have been signed out")).to_be_visible()
    screenshot(page, "after-logout")

    page.goto("/")
    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_have_count(0)

    # The old cookie is dead on the server, not just forgotten by the browser.
    after = requests.get(
        gatehouse.url("/"), headers={"Cookie": old_cookies}, allow_redirects=False, timeout=10
    )
    assert after.status_code == 303, f"old session still accepted: {after.status_code}"


def test_app_works_under_a_public_host_name(browser: Browser, gatehouse: Gatehouse) -> None:
    """Sign in and use the WebSocket through a non-loopback host name.

    Streamlit accepts a WebSocket only when its Origin matches the Host it
    sees (or is a loopback name), so this fails if Gatehouse rewrites Host
    or Origin on the way to Streamlit. On 127.0.0.1 such a bug would hide.
    """
    context = browser.new_context(
        base_url=gatehouse.public_base_url, viewport={"width": 1280, "height": 1000}
    )
    page = context.new_page()
    try:
        page.goto("/")
        expect(page).to_have_url(LOGIN_URL)
        assert page.url.startswith(gatehouse.public_base_url), page.url
        sign_in(page)
        expect(page).to_have_url(gatehouse.public_base_url + "/")
        expect_app_signed_in(page)
        page.get_by_role("button", name="Count").click()
        expect(page.get_by_text("Clicks: 1")).to_be_visible()
    except Exception:
        screenshot(page, "FAILED-test_app_works_under_a_public_host_name")
        raise
    finally:
        context.close()
