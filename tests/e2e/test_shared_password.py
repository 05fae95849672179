"""One shared password instead of accounts, in Chromium (issue 15, item 7).

`gatehouse run --shared-password-file FILE -- streamlit run demo/app.py` with no account and no setup
link: the sign-in page asks only for the password, a wrong one is refused, the right one opens the app,
which sees the user `shared` in `st.user`, and signing out works. Screenshots of the password-only page,
desktop and phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from conftest import GATEHOUSE_LOG, Gatehouse, child_env, device_context, running_gatehouse, screenshot

SHARED_PASSWORD = "one password for the whole team"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gatehouse]:
    workdir = tmp_path_factory.mktemp("shared-password")
    secret = workdir / "team-password"
    secret.write_text(SHARED_PASSWORD + "\n")
    secret.chmod(0o600)
    env = child_env(f"sqlite://{workdir / 'gatehouse.db'}")
    with running_gatehouse(
        workdir, env, "shared password", gatehouse_args=["--shared-password-file", str(secret)]
    ) as server:
        yield server


def test_the_password_alone_opens_the_app_as_shared(browser: Browser, shared: Gatehouse) -> None:
    assert "Sign-in is by the shared password" in GATEHOUSE_LOG.read_text(errors="replace")
    for phone in (False, True):
        context = device_context(browser, shared.base_url, phone)
        try:
            page = context.new_page()
            page.goto("/?from=shared")
            expect(page.get_by_text("Enter the password to continue to Gatehouse demo.")).to_be_visible()
            expect(page.get_by_label("Username or email")).to_have_count(0)
            expect(page.get_by_label("Password", exact=True)).to_be_focused()
            screenshot(page, f"shared-password-sign-in{'-phone' if phone else ''}")

            page.get_by_label("Password", exact=True).fill("a wrong guess")
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.get_by_role("alert")).to_have_text("Incorrect password.")

            page.get_by_label("Password", exact=True).fill(SHARED_PASSWORD)
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page).to_have_url(re.compile(r"/\?from=shared$"))
            expect(page.get_by_text("Username: shared")).to_be_visible(timeout=20_000)

            page.get_by_role("link", name="Sign out", exact=True).click()
            page.get_by_role("button", name="Sign out", exact=True).click()
            expect(page.get_by_text("Enter the password to continue to Gatehouse demo.")).to_be_visible()
        finally:
            context.close()
