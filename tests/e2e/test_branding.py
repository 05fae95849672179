"""The app's own name and colour on Gatehouse's pages, and the way to the admin console (issue 15, items 3
and 4), in Chromium.

`gatehouse run -- streamlit run fleet_status.py` for an app whose script sets `page_title` and whose
`.streamlit/config.toml` sets `primaryColor`, with nothing in Gatehouse's configuration: the sign-in page
says "Sign in to continue to Fleet status" and its button wears the app's blue. An administrator finds the
console from the account page; a user without the role does not see the link. Screenshots, desktop and
phone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from conftest import (
    Gatehouse,
    _run_cli,
    child_env,
    device_context,
    gatehouse_binary,
    running_gatehouse,
    screenshot,
)

ADMIN_PASSWORD = "administrator passphrase 42"
PASSWORD = "fleet passphrase 42"
APP = """import streamlit as st

st.set_page_config(page_title="Fleet status", layout="wide")
st.title("Fleet status")
st.button("Refresh", type="primary")
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gatehouse]:
    workdir = tmp_path_factory.mktemp("branding")
    (workdir / "fleet_status.py").write_text(APP)
    (workdir / ".streamlit").mkdir()
    (workdir / ".streamlit" / "config.toml").write_text('[theme]\nprimaryColor = "#1E88E5"\n')
    env = child_env(f"sqlite://{workdir / 'gatehouse.db'}")
    for username, role, password in [("root", "admin", ADMIN_PASSWORD), ("uma", "viewer", PASSWORD)]:
        _run_cli(
            gatehouse_binary(),
            ["users", "add", username, "--email", f"{username}@example.com", "--role", role, "--password-stdin"],
            env, workdir, stdin=password,
        )
    with running_gatehouse(
        workdir, env, "branding: the app's title and colour",
        app_command=["streamlit", "run", "fleet_status.py"],
    ) as server:
        yield server


def test_the_sign_in_page_is_the_apps(browser: Browser, fleet: Gatehouse) -> None:
    for phone in (False, True):
        context = device_context(browser, fleet.base_url, phone)
        try:
            page = context.new_page()
            page.goto("/")
            expect(page.get_by_text("Sign in to continue to Fleet status.")).to_be_visible()
            assert page.title() == "Sign in · Fleet status"
            button = page.get_by_role("button", name="Sign in", exact=True)
            colour = button.evaluate("b => getComputedStyle(b).backgroundColor")
            assert colour == "rgb(30, 136, 229)", colour
            screenshot(page, f"branded-sign-in{'-phone' if phone else ''}")
        finally:
            context.close()


def test_administrators_find_the_console_and_others_do_not(browser: Browser, fleet: Gatehouse) -> None:
    for username, password, admin, phone in [
        ("root", ADMIN_PASSWORD, True, False), ("root", ADMIN_PASSWORD, True, True), ("uma", PASSWORD, False, False)
    ]:
        context = device_context(browser, fleet.base_url, phone)
        try:
            page = context.new_page()
            page.goto("/_gatehouse/account")
            page.get_by_label("Username or email").fill(username)
            page.get_by_label("Password", exact=True).fill(password)
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_role("heading", name="Your account")).to_be_visible()
            expect(page.get_by_role("link", name="Back to Fleet status")).to_be_visible()
            console = page.get_by_role("link", name="Admin console")
            if not admin:
                expect(console).to_have_count(0)
                continue
            screenshot(page, f"account-with-admin-console-link{'-phone' if phone else ''}")
            console.click()
            expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
            page.get_by_role("link", name="Back to Fleet status").click()
            expect(page.get_by_role("heading", name="Fleet status")).to_be_visible()
        finally:
            context.close()
