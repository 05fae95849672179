"""Self-service accounts in a real browser, with mail received by a real SMTP server.

Register -> code from the email -> signed in to the Streamlit app; forgot
password -> reset link -> the old sessions are gone; change email on the
account page; end another browser's session from the account page. The
SMTP side (aiosmtpd, see conftest.py) checks what really went over the wire.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from conftest import MAIL_FROM, MAIL_REPLY_TO, Gatehouse, Mailbox, add_user, screenshot

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "tulip granite orbit lantern"
LOGIN_URL = re.compile(r"/_gatehouse/login(\?.*)?$")


def sign_in(page: Page, username: str, password: str) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def expect_app_for(page: Page, email_address: str) -> None:
    expect(page.get_by_text(f"Signed in as {email_address}")).to_be_visible()


def test_register_verify_with_the_emailed_code_and_land_in_the_app(
    page: Page, gatehouse: Gatehouse, mailbox: Mailbox
) -> None:
    page.goto("/_gatehouse/login")
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    # The password rules are on the page before anything is submitted.
    expect(page.get_by_text("At least 8 characters")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_attribute("autocomplete", "new-password")
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Display name").fill("New Comer")
    page.get_by_label("Password").fill(PASSWORD)
    screenshot(page, "register")
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_role("heading", name="Confirm your email")).to_be_visible()
    expect(page.get_by_label("Code")).to_have_attribute("autocomplete", "one-time-code")
    screenshot(page, "verify-code")

    mail = mailbox.next("newcomer@example.com", "confirmation code")
    # What went over SMTP: envelope, headers, both bodies.
    assert mail.envelope_from == "gatehouse@gatehouse.test"
    assert str(mail.message["From"]) == MAIL_FROM
    assert str(mail.message["Reply-To"]) == MAIL_REPLY_TO
    assert str(mail.message["To"]) == "newcomer@example.com"
    assert mail.message.get_content_type() == "multipart/alternative"
    assert mail.message["Message-ID"] and mail.message["Date"]
    code = mail.code()
    assert code in str(mail.message["Subject"])
    assert "/_gatehouse/verify?token=" in mail.text and "Confirm my address" in mail.html

    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(gatehouse.url("/"))
    expect_app_for(page, "newcomer@example.com")
    expect(page.get_by_text("Name: New Comer")).to_be_visible()
    screenshot(page, "registered-app")


def test_forgot_password_resets_it_and_ends_the_old_sessions(
    browser: Browser, gatehouse: Gatehouse, mailbox: Mailbox
) -> None:
    add_user(gatehouse, "forgetful", "forgetful@example.com", "Forgetful", PASSWORD)
    old = browser.new_context(base_url=gatehouse.base_url)
    fresh = browser.new_context(base_url=gatehouse.base_url)
    try:
        old_page = old.new_page()
        old_page.goto("/")
        sign_in(old_page, "forgetful", PASSWORD)
        expect_app_for(old_page, "forgetful@example.com")

        page = fresh.new_page()
        page.goto("/_gatehouse/login")
        page.get_by_role("link", name="Forgot password?").click()
        page.get_by_label("Username or email").fill("forgetful@example.com")
        page.get_by_role("button", name="Email me a link").click()
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

        link = mailbox.next("forgetful@example.com", "Reset your password").link()
        page.goto(link)
        expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        expect(page.get_by_label("New password")).to_have_attribute("autocomplete", "new-password")
        page.get_by_label("New password").fill(NEW_PASSWORD)
        screenshot(page, "reset-password")
        page.get_by_role("button", name="Set new password").click()
        expect(page).to_have_url(LOGIN_URL)
        expect(page.get_by_role("status")).to_contain_text("Your password was changed")
        sign_in(page, "forgetful", NEW_PASSWORD)
        expect_app_for(page, "forgetful@example.com")

        # The browser signed in before the reset is out.
        old_page.reload()
        expect(old_page).to_have_url(LOGIN_URL)
        mailbox.next("forgetful@example.com", "password was changed")
        # The link worked once.
        page.goto(link)
        expect(page.get_by_text("invalid, used or expired")).to_be_visible()
    finally:
        old.close()
        fresh.close()


def test_change_email_on_the_account_page(page: Page, gatehouse: Gatehouse, mailbox: Mailbox) -> None:
    add_user(gatehouse, "mover", "mover@example.com", "Mover", PASSWORD)
    page.goto("/_gatehouse/account")
    sign_in(page, "mover", PASSWORD)
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    screenshot(page, "account")
    page.get_by_label("New email").fill("mover@new.example")
    page.locator("#email_current_password").fill(PASSWORD)
    page.get_by_role("button", name="Change email").click()
    expect(page.get_by_role("heading", name="Confirm your email")).to_be_visible()

    code = mailbox.next("mover@new.example", "Confirm your new email").code()
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("Your email address was changed")
    expect(page.get_by_text("mover@new.example")).to_be_visible()
    notice = mailbox.next("mover@example.com", "email address of your account was changed")
    assert "mover@new.example" in notice.text
    page.goto("/")
    expect_app_for(page, "mover@new.example")


def test_the_session_list_ends_another_browsers_session(browser: Browser, gatehouse: Gatehouse) -> None:
    add_user(gatehouse, "twodevices", "twodevices@example.com", "Two Devices", PASSWORD)
    laptop = browser.new_context(base_url=gatehouse.base_url)
    phone = browser.new_context(
        base_url=gatehouse.base_url,
        viewport={"width": 390, "height": 800},
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1",
    )
    try:
        phone_page = phone.new_page()
        phone_page.goto("/")
        sign_in(phone_page, "twodevices", PASSWORD)
        expect_app_for(phone_page, "twodevices@example.com")

        page = laptop.new_page()
        page.goto("/_gatehouse/account")
        sign_in(page, "twodevices", PASSWORD)
        sessions = page.locator("ul.sessions > li")
        expect(sessions).to_have_count(2)
        expect(page.get_by_text("Safari on iPhone")).to_be_visible()
        screenshot(page, "account-sessions")
        page.get_by_role("button", name=re.compile(r"^End session: Safari on iPhone")).click()
        expect(page.get_by_role("status")).to_contain_text("The session was ended")
        expect(sessions).to_have_count(1)

        phone_page.reload()
        expect(phone_page).to_have_url(LOGIN_URL)
        page.goto("/")
        expect_app_for(page, "twodevices@example.com")
    finally:
        laptop.close()
        phone.close()
