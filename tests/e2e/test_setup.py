"""An installation with accounts but no administrator, as the README's first steps can leave it
(`gatehouse users add alice --role analyst`, then start): Gatehouse prints a setup link at start, and
in Chromium that link makes an existing account the administrator after its own password, then the
administrator reaches the console. Screenshots of the setup page at desktop and phone width."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, expect

from conftest import (
    ARTIFACTS,
    _run_cli,
    _stop,
    child_env,
    free_port,
    gatehouse_binary,
    screenshot,
)

ANALYST = "bob"
ANALYST_PASSWORD = "bob's long passphrase"
SETUP_LINK = re.compile(r"http://127\.0\.0\.1:\d+/_gatehouse/setup\?token=[A-Za-z0-9_-]+")


class Instance:
    def __init__(self, base_url: str, output: Path, process: subprocess.Popen[bytes]) -> None:
        self.base_url = base_url
        self.output = output
        self.process = process

    def setup_link(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = SETUP_LINK.search(self.output.read_text())
            if found:
                return found.group(0)
            time.sleep(0.1)
        pytest.fail(f"no setup link printed:\n{self.output.read_text()}", pytrace=False)


@pytest.fixture
def without_administrator(tmp_path: Path) -> Iterator[Instance]:
    """`gatehouse serve` (no app) on a database whose only account is not an administrator."""
    binary = gatehouse_binary()
    ARTIFACTS.mkdir(exist_ok=True)
    env = child_env(f"sqlite://{tmp_path / 'gatehouse.db'}")
    _run_cli(
        binary,
        ["users", "add", ANALYST, "--email", "bob@example.com", "--role", "analyst", "--password-stdin"],
        env,
        tmp_path,
        stdin=ANALYST_PASSWORD,
    )
    port = free_port()
    output = tmp_path / "stdout.txt"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{port}"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{base_url}/_gatehouse/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("gatehouse serve did not become healthy", pytrace=False)
            time.sleep(0.1)
        yield Instance(base_url, output, process)
    finally:
        _stop(process)


def test_the_setup_link_makes_an_existing_account_the_administrator(
    browser: Browser, without_administrator: Instance
) -> None:
    printed = without_administrator.output.read_text()
    link = without_administrator.setup_link()
    assert "Gatehouse has no administrator." in printed, printed
    assert "gatehouse users roles NAME --add admin" in printed, printed

    context = browser.new_context(base_url=without_administrator.base_url, viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose the administrator")).to_be_visible()
    screenshot(page, "setup-choose-administrator")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "setup-choose-administrator-phone")
    page.set_viewport_size({"width": 1280, "height": 1000})

    # A wrong password for the existing account: refused, nothing changes, the link still works.
    page.get_by_label("Username or email").fill(ANALYST)
    page.locator("#existing-password").fill("not bob's password")
    page.get_by_role("button", name="Make this account the administrator").click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect username or password.")

    page.locator("#existing-password").fill(ANALYST_PASSWORD)
    page.get_by_role("button", name="Make this account the administrator").click()
    # Signed in as bob, now an administrator: his account page (no app behind) and the console.
    page.wait_for_url(lambda url: "/_gatehouse/setup" not in url)
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.goto("/_gatehouse/admin")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # The link is used up.
    page.goto(link)
    expect(page.get_by_text("This setup link is invalid, used or expired.")).to_be_visible()
    context.close()
