"""The Streamlit side: guards, links and navigation, run in Streamlit's own AppTest runtime.

The request headers of the session are replaced by the test's (Streamlit's test runtime has no
WebSocket request), and the resolver's clock is the test's, so assertions signed at NOW are fresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from conftest import AUDIENCE, FakeClock, KeyPair
from streamlit_gatehouse import configure, identity
from streamlit_gatehouse.first_sight import FirstSightVerifier
from streamlit_gatehouse.identity import IdentityResolver

SessionHeaders = Callable[[dict[str, str]], None]


@pytest.fixture
def session_headers(
    monkeypatch: pytest.MonkeyPatch, keys: KeyPair, clock: FakeClock
) -> Iterator[SessionHeaders]:
    """Sets the headers every Streamlit session in this test sees; Gatehouse's key is configured."""
    headers: dict[str, str] = {}
    monkeypatch.setattr(identity, "_session_headers", lambda: (headers, "test-session"))
    monkeypatch.setattr(identity, "_resolver", IdentityResolver(verifier=FirstSightVerifier(clock=clock)))
    configure(public_key=keys.public_b64, audience=AUDIENCE)

    def set_headers(values: dict[str, str]) -> None:
        headers.clear()
        headers.update(values)

    yield set_headers


def signed_in(keys: KeyPair, *roles: str) -> dict[str, str]:
    return {"X-Gatehouse-Assertion": keys.sign(sub="sam", name="Sam Sample", roles=list(roles))}


def run(script: Callable[[], None]) -> AppTest:
    app = AppTest.from_function(script, default_timeout=10)
    app.run()
    assert not app.exception, app.exception
    return app


def texts(elements: Any) -> list[str]:
    return [element.value for element in elements]


def guarded_by_login() -> None:
    import streamlit as st

    import streamlit_gatehouse as gh

    user = gh.require_login()
    st.write(f"secret for {user.username}")


def guarded_by_roles() -> None:
    import streamlit as st

    import streamlit_gatehouse as gh

    gh.require_role("admin", "auditor")
    st.write("the audit log")


def decorated_page() -> None:
    import streamlit as st

    import streamlit_gatehouse as gh

    @gh.requires_role("admin")
    def admin_page() -> None:
        st.write("admin only")

    admin_page()
    st.write(f"page name kept: {admin_page.__name__}")


def links_for_everyone() -> None:
    import streamlit_gatehouse as gh

    gh.logout_button()
    gh.account_link()
    gh.admin_link()


def test_require_login_stops_a_visitor_who_is_not_behind_gatehouse(session_headers: SessionHeaders) -> None:
    session_headers({"X-Gatehouse-User": "sam", "X-Gatehouse-Roles": "admin"})  # unsigned: ignored
    app = run(guarded_by_login)
    assert len(app.error) == 1
    assert "Sign-in required" in app.error[0].value
    assert "X\\-Gatehouse\\-Assertion" in app.error[0].value
    # The hint names the script that is running (AppTest's is a temporary file), not a generic app.py.
    [command] = [block.value for block in app.code]
    assert command.startswith("gatehouse run -- streamlit run "), command
    assert command != "gatehouse run -- streamlit run app.py", command
    assert "secret" not in " ".join(texts(app.markdown))


def test_require_login_lets_a_verified_user_through(session_headers: SessionHeaders, keys: KeyPair) -> None:
    session_headers(signed_in(keys, "viewer"))
    app = run(guarded_by_login)
    assert not app.error
    assert "secret for sam" in texts(app.markdown)


def test_require_role_names_the_roles_needed(session_headers: SessionHeaders, keys: KeyPair) -> None:
    session_headers(signed_in(keys, "viewer"))
    app = run(guarded_by_roles)
    assert len(app.error) == 1
    message = app.error[0].value
    assert "Access denied" in message
    assert "**admin** or **auditor**" in message
    assert "**viewer**" in message
    assert "the audit log" not in texts(app.markdown)


def test_require_role_accepts_any_one_of_the_roles(session_headers: SessionHeaders, keys: KeyPair) -> None:
    session_headers(signed_in(keys, "viewer", "auditor"))
    app = run(guarded_by_roles)
    assert not app.error
    assert "the audit log" in texts(app.markdown)


def test_requires_role_decorator(session_headers: SessionHeaders, keys: KeyPair) -> None:
    session_headers(signed_in(keys, "viewer"))
    denied = run(decorated_page)
    assert "Access denied" in denied.error[0].value
    assert not [t for t in texts(denied.markdown) if "admin only" in t or "page name" in t]

    session_headers(signed_in(keys, "admin"))
    allowed = run(decorated_page)
    assert texts(allowed.markdown) == ["admin only", "page name kept: admin_page"]


def test_links_open_gatehouse_pages_in_the_same_tab(session_headers: SessionHeaders, keys: KeyPair) -> None:
    session_headers(signed_in(keys, "admin"))
    html = texts(run(links_for_everyone).markdown)
    assert len(html) == 3
    assert html[0].startswith('<a href="/_gatehouse/logout" target="_self"') and ">Sign out</a>" in html[0]
    assert html[1] == '<a href="/_gatehouse/account" target="_self">Your account</a>'
    assert html[2] == '<a href="/_gatehouse/admin" target="_self">Admin console</a>'


def test_admin_link_only_for_the_admin_role(
    session_headers: SessionHeaders, keys: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_headers(signed_in(keys, "viewer"))
    assert [h for h in texts(run(links_for_everyone).markdown) if "/_gatehouse/admin" in h] == []

    monkeypatch.setenv("GATEHOUSE_ADMIN_ROLE", "ops")
    session_headers(signed_in(keys, "ops"))
    assert [h for h in texts(run(links_for_everyone).markdown) if "/_gatehouse/admin" in h] != []
    session_headers(signed_in(keys, "admin"))
    assert [h for h in texts(run(links_for_everyone).markdown) if "/_gatehouse/admin" in h] == []


def test_no_links_for_a_visitor_who_is_not_signed_in(session_headers: SessionHeaders) -> None:
    session_headers({})
    assert texts(run(links_for_everyone).markdown) == []


def test_link_labels_are_escaped(session_headers: SessionHeaders, keys: KeyPair) -> None:
    from streamlit_gatehouse.links import anchor_html

    assert anchor_html("/x", "<b>Bye</b>") == '<a href="/x" target="_self">&lt;b&gt;Bye&lt;/b&gt;</a>'


def navigation_app() -> None:
    import streamlit as st

    import streamlit_gatehouse as gh

    def home() -> None:
        st.write("home page")

    def reports() -> None:
        st.write("reports page")

    def admin() -> None:
        st.write("admin page")

    admin_page = st.Page(admin, title="Admin")
    gh.navigation(
        {"Main": [home, reports], "Administration": [admin_page]},
        roles={reports: ["analyst", "admin"], admin_page: "admin"},
        position="top",
    ).run()


@pytest.fixture
def navigation_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, list[str]], dict[str, Any]]]:
    """What st.navigation receives (section -> page titles, keyword arguments); it still runs."""
    import streamlit as st

    calls: list[tuple[dict[str, list[str]], dict[str, Any]]] = []
    real_navigation = st.navigation

    def recording(pages: Any, **kwargs: Any) -> Any:
        titles = {section: [page.title for page in items] for section, items in pages.items()}
        calls.append((titles, kwargs))
        return real_navigation(pages, **kwargs)

    monkeypatch.setattr(st, "navigation", recording)
    return calls


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (("viewer",), {"Main": ["home"]}),
        (("analyst",), {"Main": ["home", "reports"]}),
        (("admin",), {"Main": ["home", "reports"], "Administration": ["Admin"]}),
    ],
)
def test_navigation_passes_only_permitted_pages(
    session_headers: SessionHeaders,
    keys: KeyPair,
    navigation_calls: list[tuple[dict[str, list[str]], dict[str, Any]]],
    roles: tuple[str, ...],
    expected: dict[str, list[str]],
) -> None:
    """Page functions are wrapped in st.Page, rules keyed by them still apply, kwargs pass through."""
    session_headers(signed_in(keys, *roles))
    app = run(navigation_app)
    assert navigation_calls == [(expected, {"position": "top"})]
    assert texts(app.markdown) == ["home page"]


def navigation_app_for_staff() -> None:
    import streamlit as st

    import streamlit_gatehouse as gh

    def staff_room() -> None:
        st.write("staff room")

    gh.navigation([staff_room], roles={"staff_room": ["staff"]}).run()


def test_navigation_with_no_page_for_the_user_stops_with_an_error(
    session_headers: SessionHeaders, keys: KeyPair, navigation_calls: list[Any]
) -> None:
    session_headers(signed_in(keys, "viewer"))
    app = run(navigation_app_for_staff)
    assert navigation_calls == []
    assert "No pages for you" in app.error[0].value
    assert texts(app.markdown) == []


def test_navigation_stops_a_visitor_who_is_not_signed_in(
    session_headers: SessionHeaders, navigation_calls: list[Any]
) -> None:
    session_headers({})
    app = run(navigation_app)
    assert navigation_calls == []
    assert "Sign-in required" in app.error[0].value
    assert texts(app.markdown) == []


def test_the_run_hint_names_the_script_as_it_was_probably_typed() -> None:
    from streamlit_gatehouse.identity import run_command_for

    assert run_command_for("/srv/sales/dashboard.py", "/srv/sales") == "gatehouse run -- streamlit run dashboard.py"
    assert run_command_for("/srv/sales/pages/x.py", "/srv/sales") == "gatehouse run -- streamlit run pages/x.py"
    assert run_command_for("/opt/apps/my app.py", "/home/me") == "gatehouse run -- streamlit run '/opt/apps/my app.py'"
    assert run_command_for(None, "/srv") == "gatehouse run -- streamlit run app.py"
