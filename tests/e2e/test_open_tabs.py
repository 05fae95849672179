"""An ended session's open tab, in Chromium (issue 15, item 1).

A user has the Streamlit app open when their session ends: disabled from the shell, disabled in the admin
console, or idle past `[session] idle_timeout` (12 s here). Each time the tab must leave the app's content
for the sign-in page within a second, by itself, and signing in must bring it back where it was. Shortly
before the idle timeout the tab offers "Stay signed in", which keeps the session. Screenshots of that
offer and of the sign-in page the tab lands on, desktop and phone width.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from conftest import (
    Gatehouse,
    _run_cli,
    child_env,
    device_context,
    gatehouse_binary,
    run_cli,
    running_gatehouse,
    screenshot,
)

IDLE_TIMEOUT_S = 12
PASSWORD = "tab follows its session 42"
ADMIN_PASSWORD = "administrator passphrase 42"
LOGIN_URL = re.compile(r"/_gatehouse/login\?ended=(1|idle)&rd=")
ENDED = "Your session has ended. Sign in again to go back to where you were."
IDLED = "You were signed out because the page was not used for a while. Sign in again to go back to where you were."
# What the issue asks: the tab shows the sign-in page within a second of the session ending.
LIMIT_S = 1.0
# The app's page with a query string, to show the tab comes back to exactly where it was.
APP_PATH = "/?view=tab-test"


@pytest.fixture(scope="module")
def short_idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gatehouse]:
    workdir = tmp_path_factory.mktemp("open-tabs")
    env = child_env(f"sqlite://{workdir / 'gatehouse.db'}")
    env["GATEHOUSE_SESSION__IDLE_TIMEOUT"] = f"{IDLE_TIMEOUT_S}s"
    for username, role, password in [("tess", "analyst", PASSWORD), ("root", "admin", ADMIN_PASSWORD)]:
        _run_cli(
            gatehouse_binary(),
            ["users", "add", username, "--email", f"{username}@example.com", "--role", role, "--password-stdin"],
            env, workdir, stdin=password,
        )
    with running_gatehouse(workdir, env, "open tabs, 12 s idle timeout") as server:
        yield server


def sign_in(page: Page, username: str, password: str) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def open_app(page: Page, username: str, password: str) -> None:
    page.goto(APP_PATH)
    sign_in(page, username, password)
    expect(page).to_have_url(re.compile(re.escape(APP_PATH) + "$"))
    expect(page.get_by_role("heading", name="Gatehouse demo")).to_be_visible()


def seconds_until_sign_in_page(page: Page, started: float, limit: float, notice: str = ENDED) -> float:
    """Waits (from the browser) for the tab to show the sign-in page, saying why; seconds since `started`."""
    page.wait_for_url(LOGIN_URL, timeout=(limit + 5) * 1000)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    took = time.monotonic() - started
    expect(page.get_by_role("status")).to_have_text(notice)
    return took


def back_in_the_app(page: Page, username: str, password: str) -> None:
    """Signing in on the page the tab landed on returns to the app page it was showing."""
    assert page.url.endswith("&rd=%2F%3Fview%3Dtab-test"), page.url
    sign_in(page, username, password)
    expect(page).to_have_url(re.compile(re.escape(APP_PATH) + "$"))
    expect(page.get_by_role("heading", name="Gatehouse demo")).to_be_visible()


def test_a_tab_goes_to_sign_in_when_the_user_is_disabled_in_a_shell(browser: Browser, short_idle: Gatehouse) -> None:
    context = device_context(browser, short_idle.base_url)
    try:
        page = context.new_page()
        open_app(page, "tess", PASSWORD)
        run_cli(short_idle, ["users", "disable", "tess"])
        took = seconds_until_sign_in_page(page, time.monotonic(), LIMIT_S)
        assert took <= LIMIT_S, f"the tab showed the sign-in page {took:.2f} s after the disable"
        expect(page.get_by_text("Connection error")).to_have_count(0)
        screenshot(page, "open-tab-signed-out")
        run_cli(short_idle, ["users", "enable", "tess"])
        back_in_the_app(page, "tess", PASSWORD)
    finally:
        context.close()


def test_a_tab_goes_to_sign_in_when_an_administrator_disables_the_user(
    browser: Browser, short_idle: Gatehouse
) -> None:
    user_context = device_context(browser, short_idle.base_url)
    admin_context = device_context(browser, short_idle.base_url)
    try:
        tab = user_context.new_page()
        open_app(tab, "tess", PASSWORD)
        console = admin_context.new_page()
        console.goto("/_gatehouse/admin/users")
        sign_in(console, "root", ADMIN_PASSWORD)
        console.get_by_role("link", name="tess", exact=True).click()
        console.get_by_role("button", name=re.compile("^Disable")).click()
        expect(console.get_by_role("status")).to_contain_text("The user was disabled")
        took = seconds_until_sign_in_page(tab, time.monotonic(), LIMIT_S)
        assert took <= LIMIT_S, f"the tab showed the sign-in page {took:.2f} s after the console's disable"
        run_cli(short_idle, ["users", "enable", "tess"])
        back_in_the_app(tab, "tess", PASSWORD)
    finally:
        user_context.close()
        admin_context.close()


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_stay_signed_in_before_the_idle_timeout_then_idle_out(
    browser: Browser, short_idle: Gatehouse, phone: bool
) -> None:
    context = device_context(browser, short_idle.base_url, phone)
    try:
        page = context.new_page()
        open_app(page, "tess", PASSWORD)
        # A quarter of the idle timeout before it ends, the tab offers to stay signed in.
        stay = page.get_by_role("button", name="Stay signed in")
        expect(stay).to_be_visible(timeout=IDLE_TIMEOUT_S * 1000)
        expect(page.get_by_role("alertdialog")).to_contain_text("You will be signed out in")
        screenshot(page, f"open-tab-stay-signed-in{'-phone' if phone else ''}")
        stay.click()
        stayed = time.monotonic()
        expect(stay).to_have_count(0)

        # Not signed out when the old timeout passes...
        page.wait_for_timeout(4000)
        assert "/_gatehouse/login" not in page.url, "Stay signed in did not keep the session"
        expect(page.get_by_role("heading", name="Gatehouse demo")).to_be_visible()

        # ...but nobody touches the tab again: it idles out IDLE_TIMEOUT_S after "Stay signed in", and the
        # tab shows the sign-in page within a second of that (the offer appears once more before).
        took = seconds_until_sign_in_page(page, stayed, IDLE_TIMEOUT_S + LIMIT_S, IDLED)
        assert IDLE_TIMEOUT_S - 1.5 <= took <= IDLE_TIMEOUT_S + LIMIT_S, f"signed out {took:.2f} s after staying"
        screenshot(page, f"open-tab-idled-out{'-phone' if phone else ''}")
        back_in_the_app(page, "tess", PASSWORD)
    finally:
        context.close()
