"""How Gatehouse's own pages look and behave for people: phone-width layout, visible keyboard focus,
password-manager hints. Screenshots land in artifacts/screenshots/."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conftest import Gatehouse, screenshot


def test_login_page_fits_a_phone_screen(browser: Browser, gatehouse: Gatehouse) -> None:
    context = browser.new_context(base_url=gatehouse.base_url, viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto("/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than the phone screen"
        button = page.get_by_role("button", name="Sign in", exact=True).bounding_box()
        assert button is not None and button["width"] >= 300, "the sign-in button should span the narrow screen"
        screenshot(page, "login-phone")
    finally:
        context.close()


def test_keyboard_focus_is_visible_and_fields_carry_autocomplete(browser: Browser, gatehouse: Gatehouse) -> None:
    context = browser.new_context(base_url=gatehouse.base_url)
    try:
        page = context.new_page()
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
    finally:
        context.close()


def test_error_pages_are_branded_and_quote_a_request_id(browser: Browser, gatehouse: Gatehouse) -> None:
    context = browser.new_context(base_url=gatehouse.base_url)
    try:
        page = context.new_page()
        response = page.goto("/_gatehouse/no-such-page")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        expect(page.get_by_text("Request ID:")).to_be_visible()
        assert response.headers["x-request-id"] in page.content()
        screenshot(page, "error-404")
    finally:
        context.close()
