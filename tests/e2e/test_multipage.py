"""The multi-page example (examples/multipage) behind Gatehouse: pages follow the user's roles.

This module starts its own `gatehouse run -- streamlit run examples/multipage/app.py`, with a
fresh database holding two users made with the CLI: `boss` (role admin) and `vera` (role viewer).
The app uses the streamlit-gatehouse helper (python/), so everything it shows about the user comes
from Gatehouse's signed assertion, checked with the key `gatehouse run` hands the app: a helper
that failed to verify it would show "Sign-in required" instead of any page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from streamlit_gatehouse import verify_assertion
from streamlit_gatehouse.keys import KEY_PATH, key_from_jwk

from conftest import (
    REPO,
    Gatehouse,
    _run_cli,
    child_env,
    gatehouse_binary,
    running_gatehouse,
    screenshot,
)

APP = REPO / "examples" / "multipage" / "app.py"
USERS = {
    # username: (email, name, role, password)
    "boss": ("boss@example.com", "Boss Person", "admin", "boss password, long enough"),
    "vera": ("vera@example.com", "Vera Viewer", "viewer", "vera password, long enough"),
}
LOGIN_URL = re.compile(r"/_gatehouse/login(\?.*)?$")


@pytest.fixture(scope="module")
def multipage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gatehouse]:
    """Gatehouse in front of the example app, with boss and vera, for this module only."""
    workdir = tmp_path_factory.mktemp("multipage")
    env = child_env(f"sqlite://{workdir / 'gatehouse.db'}")
    for username, (email, name, role, password) in USERS.items():
        _run_cli(
            gatehouse_binary(),
            ["users", "add", username, "--email", email, "--name", name, "--role", role, "--password-stdin"],
            env,
            workdir,
            stdin=password,
        )
    with running_gatehouse(workdir, env, "test_multipage", app_command=["streamlit", "run", str(APP)]) as server:
        yield server


@pytest.fixture
def signed_in(
    browser: Browser, multipage: Gatehouse, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], Page]]:
    """Opens the app in a fresh browser profile and signs in as the given user (through the form)."""
    contexts: list[BrowserContext] = []

    def sign_in(username: str) -> Page:
        multipage.assert_running()
        context = browser.new_context(base_url=multipage.base_url, viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.goto("/")
        expect(page).to_have_url(LOGIN_URL)
        page.get_by_label("Username or email").fill(username)
        page.get_by_label("Password", exact=True).fill(USERS[username][3])
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(multipage.url("/"))
        return page

    yield sign_in
    report = getattr(request.node, "rep_call", None)
    for index, context in enumerate(contexts):
        if report is not None and report.failed and context.pages:
            screenshot(context.pages[0], f"FAILED-{request.node.name}-{index}")
        context.close()


def nav_links(page: Page) -> Locator:
    """The page links of Streamlit's sidebar menu."""
    return page.get_by_test_id("stSidebarNav").get_by_role("link")


def sidebar(page: Page) -> Locator:
    return page.get_by_test_id("stSidebar")


def expect_home(page: Page) -> None:
    expect(page.get_by_role("heading", name="Home page")).to_be_visible()


def test_admin_sees_every_page_and_the_admin_console_link(signed_in: Callable[[str], Page]) -> None:
    page = signed_in("boss")
    expect_home(page)
    expect(nav_links(page)).to_have_count(3)
    # Each link's text starts with its icon's ligature name ("homeHome").
    expect(nav_links(page)).to_have_text(
        [re.compile(r"Home$"), re.compile(r"Reports$"), re.compile(r"Admin$")]
    )

    # current_user() data, from the verified assertion.
    expect(sidebar(page).get_by_text("Signed in as Boss Person")).to_be_visible()
    expect(sidebar(page).get_by_text("Roles: admin")).to_be_visible()
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("Name: Boss Person")).to_be_visible()
    expect(main.get_by_text("Username: boss")).to_be_visible()
    expect(main.get_by_text("Email: boss@example.com")).to_be_visible()

    admin_console = sidebar(page).get_by_role("link", name="Admin console", exact=True)
    expect(admin_console).to_have_attribute("href", "/_gatehouse/admin")
    expect(admin_console).to_have_attribute("target", "_self")
    expect(sidebar(page).get_by_role("link", name="Your account", exact=True)).to_be_visible()
    expect(sidebar(page).get_by_role("link", name="Sign out", exact=True)).to_be_visible()

    nav_links(page).filter(has_text="Reports").click()
    expect(page.get_by_role("heading", name="Reports page")).to_be_visible()
    nav_links(page).filter(has_text="Admin").click()
    expect(page.get_by_role("heading", name="Admin page")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/admin$"))
    screenshot(page, "multipage-admin")

    # Typing the URL works for someone allowed: the control for the viewer test below.
    page.goto("/reports")
    expect(page.get_by_role("heading", name="Reports page")).to_be_visible()
    page.goto("/admin")
    expect(page.get_by_role("heading", name="Admin page")).to_be_visible()


def test_viewer_sees_only_home_and_no_admin_console_link(signed_in: Callable[[str], Page]) -> None:
    page = signed_in("vera")
    expect_home(page)
    expect(sidebar(page).get_by_text("Signed in as Vera Viewer")).to_be_visible()
    expect(sidebar(page).get_by_text("Roles: viewer")).to_be_visible()
    expect(page.get_by_test_id("stMain").get_by_text("Name: Vera Viewer")).to_be_visible()
    expect(sidebar(page).get_by_role("link", name="Sign out", exact=True)).to_be_visible()
    expect(sidebar(page).get_by_role("link", name="Your account", exact=True)).to_be_visible()
    # One page left: Streamlit shows no page menu at all for a single page.
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("^(Reports|Admin)$"))).to_have_count(0)
    expect(page.get_by_role("link", name="Admin console")).to_have_count(0)
    expect(page.locator('a[href="/_gatehouse/admin"]')).to_have_count(0)
    screenshot(page, "multipage-viewer")


@pytest.mark.parametrize(("path", "heading"), [("/admin", "Admin page"), ("/reports", "Reports page")])
def test_viewer_cannot_open_a_page_by_typing_its_url(
    signed_in: Callable[[str], Page], path: str, heading: str
) -> None:
    page = signed_in("vera")
    expect_home(page)
    page.goto(path)
    # Streamlit does not know the page in vera's session: it runs the default page instead.
    expect_home(page)
    expect(page.get_by_role("heading", name=heading)).to_have_count(0)
    expect(page.get_by_text("Only administrators see this page")).to_have_count(0)


def test_links_to_gatehouse_pages_stay_in_the_same_tab(
    signed_in: Callable[[str], Page], multipage: Gatehouse
) -> None:
    page = signed_in("vera")
    expect_home(page)
    sidebar(page).get_by_role("link", name="Your account", exact=True).click()
    expect(page).to_have_url(multipage.url("/_gatehouse/account"))
    assert len(page.context.pages) == 1, [p.url for p in page.context.pages]

    page.goto("/")
    expect_home(page)
    sidebar(page).get_by_role("link", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/_gatehouse/logout(\?.*)?$"))
    assert len(page.context.pages) == 1, [p.url for p in page.context.pages]
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(LOGIN_URL)
    page.goto("/")
    expect(page).to_have_url(LOGIN_URL)


def test_helper_verifies_the_assertion_gatehouse_signs(
    signed_in: Callable[[str], Page], multipage: Gatehouse
) -> None:
    """The Python verifier against the Rust signer, with the key from /_gatehouse/assertion-key.

    The assertion comes from the forward-auth endpoint, which sends the same identity headers the
    proxy adds to the app's requests; `aud` must be the public origin, here the listen address.
    """
    page = signed_in("boss")
    expect_home(page)
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    answer = requests.get(multipage.url("/_gatehouse/auth"), headers={"Cookie": cookies}, timeout=10)
    assert answer.status_code == 200, answer.text[:300]
    token = answer.headers["X-Gatehouse-Assertion"]

    jwk = requests.get(multipage.url(KEY_PATH), timeout=10)
    assert jwk.status_code == 200, jwk.text[:300]
    claims = verify_assertion(token, key_from_jwk(jwk.content), audience=multipage.base_url)
    assert claims["sub"] == "boss"
    assert claims["name"] == "Boss Person"
    assert claims["email"] == "boss@example.com"
    assert claims["roles"] == ["admin"]
    assert claims["exp"] - claims["iat"] == 120
