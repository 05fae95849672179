"""How Gatehouse's own pages look and behave for people: phone-width layout, visible keyboard focus,
password-manager hints. Screenshots land in artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, expect

from conftest import Gatehouse, screenshot


@contextmanager
def fresh_page(browser: Browser, gatehouse: Gatehouse, **options: object) -> Iterator[Page]:
    """A page in a new browser profile (no cookies), closed afterwards."""
    context = browser.new_context(base_url=gatehouse.base_url, **options)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_login_page_fits_a_phone_screen(browser: Browser, gatehouse: Gatehouse) -> None:
    with fresh_page(browser, gatehouse, viewport={"width": 375, "height": 740}, is_mobile=True) as page:
        page.goto("/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than the phone screen"
        button = page.get_by_role("button", name="Sign in", exact=True).bounding_box()
        assert button is not None and button["width"] >= 300, "the sign-in button should span the narrow screen"
        screenshot(page, "login-phone")


def test_keyboard_focus_is_visible_and_fields_carry_autocomplete(browser: Browser, gatehouse: Gatehouse) -> None:
    with fresh_page(browser, gatehouse) as page:
        page.goto("/_gatehouse/login")
        username = page.get_by_label("Username or email")
        expect(username).to_have_attribute("autocomplete", "username")
        expect(page.get_by_label("Password", exact=True)).to_have_attribute("autocomplete", "current-password")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " return {name: e.name || e.textContent, shadow: s.boxShadow, outline: s.outlineStyle}; }"
        )
        assert focused["shadow"] != "none" or focused["outline"] not in ("none", ""), f"no visible focus on {focused}"
        screenshot(page, "login-focus")


def test_error_pages_are_branded_and_quote_a_request_id(browser: Browser, gatehouse: Gatehouse) -> None:
    with fresh_page(browser, gatehouse) as page:
        response = page.goto("/_gatehouse/no-such-page")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        expect(page.get_by_text("Request ID:")).to_be_visible()
        assert response.headers["x-request-id"] in page.content()
        screenshot(page, "error-404")
