"""Moving users in from streamlit-authenticator without asking them to reset.

The config.yaml is written with hashes made by streamlit-authenticator's own
Hasher (the pinned PyPI package), imported with `gatehouse users import`
into the running server's database, and the users then sign in with the
passwords they always had.
"""

from __future__ import annotations

import yaml
import streamlit_authenticator as stauth
from playwright.sync_api import Page, expect

from conftest import Gatehouse, run_cli

PASSWORDS = {"jsmith": "abc-john-secret", "rbriggs": "def-rebecca-secret"}


def test_streamlit_authenticator_users_sign_in_with_their_old_passwords(
    page: Page, gatehouse: Gatehouse
) -> None:
    config = {
        "cookie": {"expiry_days": 30, "key": "some_signature_key", "name": "some_cookie_name"},
        "credentials": {
            "usernames": {
                "jsmith": {
                    "email": "jsmith@gmail.com",
                    "failed_login_attempts": 0,
                    "first_name": "John",
                    "last_name": "Smith",
                    "logged_in": False,
                    "password": stauth.Hasher.hash(PASSWORDS["jsmith"]),
                    "roles": ["admin", "editor"],
                },
                "rbriggs": {
                    "email": "rbriggs@gmail.com",
                    "failed_login_attempts": 0,
                    "first_name": "Rebecca",
                    "last_name": "Briggs",
                    "logged_in": False,
                    "password": stauth.Hasher.hash(PASSWORDS["rbriggs"]),
                    "roles": ["viewer"],
                },
            }
        },
    }
    assert config["credentials"]["usernames"]["jsmith"]["password"].startswith("$2b$")
    path = gatehouse.workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run_cli(gatehouse, ["users", "import", str(path), "--format", "streamlit-authenticator"])

    for username, address, name in [("jsmith", "jsmith@gmail.com", "John Smith"), ("rbriggs", "rbriggs@gmail.com", "Rebecca Briggs")]:
        page.context.clear_cookies()
        page.goto("/")
        page.get_by_label("Username or email").fill(username)
        page.get_by_label("Password", exact=True).fill(PASSWORDS[username])
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_text(f"Signed in as {address}")).to_be_visible()
        expect(page.get_by_text(f"Name: {name}")).to_be_visible()
