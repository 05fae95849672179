"""Gatehouse as an OpenID Connect provider, driven by third-party relying parties.

This module starts its own provider-only Gatehouse (`gatehouse serve --config FILE`, no upstream) with a
fresh SQLite database, three users made with the CLI, and clients both from the config file and from
`gatehouse clients add` (see oidc_harness.py). The relying parties are real, unmodified libraries:

- Streamlit's own `st.login()` (Authlib inside Streamlit 1.67), in two running apps
  (oidc_apps/login_app.py) driven by Chromium: sign-in through Gatehouse's page, sign-out through the
  end-session endpoint, and single sign-on into the second app. App one is on 127.0.0.1, app two on
  app-two.test (mapped to 127.0.0.1 inside Chromium by conftest's CHROMIUM_ARGS), because Streamlit's
  `_streamlit_user` cookie belongs to a host, not to a port.
- Authlib's requests client (OAuth2Session): confidential clients (client_secret_basic and
  client_secret_post) and a public one, all with PKCE S256 and a nonce; the ID token checked against
  the JWKS the way Authlib's own OpenID clients check it; userinfo; refresh-token rotation and reuse
  detection; forged ID tokens.
- openid-client from npm (a certified relying party), through oidc_rp/code_flow.mjs.
- Gatehouse's own pages around them: consent for a third-party client, allowed roles, end session,
  and error pages for bad authorization requests.

Clients other than the browsers get their Gatehouse session over plain HTTP and take the code from the
authorization endpoint's Location header without following it; in the browser consent tests the browser
lands on a tiny local page at that redirect URI (oidc_harness.client_site). Timings are printed, not asserted.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuthError
from joserfc import jwt as jose_jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from conftest import GATEHOUSE_LOG, screenshot
from oidc_harness import (
    ADAM,
    DANA,
    LOGIN_URL,
    HTTP_TIMEOUT_S,
    LEEWAY_S,
    OIDC_RP,
    OLIVIA,
    SCOPE,
    LoginApp,
    Provider,
    User,
    assert_user_claims,
    authlib_client,
    authorize,
    code_flow,
    gatehouse_cookie,
    path_of,
    query_of,
    redirect_parameters,
    refused_without_code,
    running_login_apps,
    running_provider,
    start_flow,
    validate_id_token,
)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """This module's provider-only Gatehouse (oidc_harness.running_provider)."""
    with running_provider(tmp_path_factory) as running:
        yield running


@pytest.fixture(scope="module")
def login_apps(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoginApp, LoginApp]]:
    """App one on 127.0.0.1 and app two on app-two.test, both signing in with st.login() at the provider."""
    with running_login_apps(provider, tmp_path_factory) as apps:
        yield apps


@pytest.fixture
def new_context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[], BrowserContext]]:
    """Fresh browser profiles (no cookies) for one test; a screenshot of each on failure."""
    contexts: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        return context

    yield make
    report = getattr(request.node, "rep_call", None)
    for index, context in enumerate(contexts):
        if report is not None and report.failed:
            for number, page in enumerate(context.pages):
                try:
                    screenshot(page, f"FAILED-{request.node.name}-{index}-{number}")
                except Exception as error:  # the page may be gone; the report matters more
                    print(f"could not take a failure screenshot: {error}")
        context.close()


def sign_in(page: Page, user: User) -> None:
    """Fills in and submits Gatehouse's sign-in form on the current page."""
    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username or email").fill(user.username)
    page.get_by_label("Password", exact=True).fill(user.password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def expect_app_user(page: Page, app: LoginApp, user: User) -> None:
    """The app shows the ID token's claims, after its WebSocket connected."""
    expect(page.get_by_role("heading", name=app.title)).to_be_visible()
    expect(page.get_by_text(f"Name: {user.name}")).to_be_visible()
    expect(page.get_by_text(f"Email: {user.email}")).to_be_visible()
    roles = page.get_by_text(re.compile(r"^Roles: "))
    for role in user.roles:  # in whatever order the provider lists them
        expect(roles).to_contain_text(role)
    expect(page.get_by_text(f"Username: {user.username}")).to_be_visible()
    assert page.url == app.url, page.url


def print_timing(capsys: pytest.CaptureFixture[str], message: str) -> None:
    with capsys.disabled():
        print(f"\n[timing] {message}")


def test_streamlit_login_shows_the_user_and_logout_ends_the_gatehouse_session(
    provider: Provider, login_apps: tuple[LoginApp, LoginApp], new_context: Callable[[], BrowserContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, _ = login_apps
    page = new_context().new_page()
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request))

    page.goto(app.url)
    expect(page.get_by_text("Not logged in")).to_be_visible()
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(LOGIN_URL)
    assert page.url.startswith(provider.url("/_gatehouse/login?")), page.url
    screenshot(page, "oidc-gatehouse-sign-in-from-streamlit")
    submitted = time.monotonic()
    sign_in(page, OLIVIA)
    expect_app_user(page, app, OLIVIA)
    print_timing(capsys, f"st.login: sign-in submit to user shown {time.monotonic() - submitted:.2f} s")
    screenshot(page, "oidc-streamlit-app-signed-in")

    # What Streamlit asked for (PKCE only because discovery advertises S256).
    authorize_requests = [r for r in seen if r.url.startswith(provider.metadata["authorization_endpoint"])]
    assert authorize_requests, [r.url for r in seen]
    asked = query_of(authorize_requests[0].url)
    assert asked["client_id"] == "app-one"
    assert asked["response_type"] == "code"
    assert asked["redirect_uri"] == app.redirect_uri
    assert set(asked["scope"].split()) == set(SCOPE.split())
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    assert asked["state"] and asked["nonce"]
    session_cookies = [c for c in page.context.cookies(provider.base_url) if c["name"] == "gatehouse_session"]
    assert len(session_cookies) == 1, page.context.cookies(provider.base_url)
    old_session = f"gatehouse_session={session_cookies[0]['value']}"

    # Log out: Streamlit sends the browser to the end-session endpoint, which comes back to /oauth2callback.
    seen.clear()
    with page.expect_request(lambda r: r.url.startswith(app.redirect_uri), timeout=20_000):
        page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    expect(page.get_by_text("Not logged in")).to_be_visible()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_text("Name:")).to_have_count(0)
    assert page.url == app.url, page.url
    end_session = [r for r in seen if r.url.startswith(provider.metadata["end_session_endpoint"])]
    assert len(end_session) == 1, [r.url for r in seen]
    sent = query_of(end_session[0].url)
    assert sent["client_id"] == "app-one"
    assert sent["post_logout_redirect_uri"] == app.redirect_uri
    assert sent.get("id_token_hint"), sent
    answer = end_session[0].response()
    assert answer is not None and answer.status == 303, answer and answer.status
    assert urljoin(end_session[0].url, answer.headers["location"]) == app.redirect_uri
    assert end_session[0].redirected_to is not None and end_session[0].redirected_to.url == app.redirect_uri
    screenshot(page, "oidc-streamlit-app-logged-out")

    # The Gatehouse session is over on the server, not just in this browser.
    retry = requests.get(authorize_requests[0].url, headers={"Cookie": old_session}, allow_redirects=False,
                         timeout=HTTP_TIMEOUT_S)
    assert retry.status_code == 303, retry.status_code
    assert LOGIN_URL.search(urlsplit(urljoin(retry.url, retry.headers["Location"])).path)

    # Logging in again asks for the password again.
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(LOGIN_URL)
    sign_in(page, OLIVIA)
    expect_app_user(page, app, OLIVIA)


def test_streamlit_second_app_signs_in_without_a_password(
    provider: Provider, login_apps: tuple[LoginApp, LoginApp], new_context: Callable[[], BrowserContext],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app_one, app_two = login_apps
    page = new_context().new_page()
    page.goto(app_one.url)
    page.get_by_role("button", name="Log in").click()
    sign_in(page, OLIVIA)
    expect_app_user(page, app_one, OLIVIA)

    page.goto(app_two.url)
    expect(page.get_by_role("heading", name=app_two.title)).to_be_visible()
    # Its own Streamlit cookie (another host): app two starts logged out.
    expect(page.get_by_text("Not logged in")).to_be_visible()
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request))
    clicked = time.monotonic()
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Name: {OLIVIA.name}")).to_be_visible()
    print_timing(capsys, f"st.login single sign-on: click to user shown {time.monotonic() - clicked:.2f} s")
    expect_app_user(page, app_two, OLIVIA)
    screenshot(page, "oidc-streamlit-app-two-single-sign-on")

    paths = [path_of(r.url) for r in seen]
    assert "/_gatehouse/oidc/authorize" in paths, paths
    assert not any(LOGIN_URL.search(p) for p in paths), f"the sign-in form was shown: {paths}"
    assert query_of(next(r.url for r in seen if path_of(r.url) == "/_gatehouse/oidc/authorize"))["client_id"] == "app-two"

    # Both apps are signed in, each with its own Streamlit cookie.
    page.goto(app_one.url)
    expect_app_user(page, app_one, OLIVIA)


# --- Authlib -----------------------------------------------------------------------------------------


def test_discovery_and_jwks(provider: Provider) -> None:
    response = requests.get(provider.discovery_url, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    metadata = response.json()
    assert metadata["issuer"] == provider.issuer
    assert not metadata["issuer"].endswith("/")
    endpoints = {
        "authorization_endpoint": "/_gatehouse/oidc/authorize",
        "token_endpoint": "/_gatehouse/oidc/token",
        "userinfo_endpoint": "/_gatehouse/oidc/userinfo",
        "jwks_uri": "/_gatehouse/oidc/jwks",
        "end_session_endpoint": "/_gatehouse/oidc/logout",
    }
    for key, path in endpoints.items():
        assert metadata[key] == provider.url(path), key
    assert set(SCOPE.split()) <= set(metadata["scopes_supported"])
    assert "code" in metadata["response_types_supported"]
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert {"client_secret_basic", "client_secret_post", "none"} <= set(
        metadata["token_endpoint_auth_methods_supported"]
    )
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]
    if "grant_types_supported" in metadata:
        assert {"authorization_code", "refresh_token"} <= set(metadata["grant_types_supported"])

    keys = provider.jwks()["keys"]
    rsa = [key for key in keys if key.get("kty") == "RSA"]
    assert rsa and all(key.get("kid") for key in keys), keys
    private_members = {"d", "p", "q", "dp", "dq", "qi"}
    assert not any(private_members & set(key) for key in keys), "the JWKS holds private key material"


def test_authlib_confidential_client_code_flow_userinfo_and_refresh(provider: Provider) -> None:
    cookie = gatehouse_cookie(provider, OLIVIA)
    flow = code_flow(provider, authlib_client(provider, "rp-basic"), cookie)
    token, claims = flow.token, flow.claims

    assert token["token_type"].lower() == "bearer"
    assert isinstance(token["expires_in"], int) and token["expires_in"] > 0
    assert set(token["scope"].split()) == set(SCOPE.split())
    assert token["refresh_token"]
    assert claims.header["alg"] == "RS256" and claims.header.get("kid"), claims.header
    assert claims["aud"] in ("rp-basic", ["rp-basic"])
    assert claims["azp"] == "rp-basic"
    assert claims["nonce"] == flow.nonce
    assert claims["at_hash"]  # CodeIDToken.validate checked it against the access token
    for name in ("auth_time", "sid", "iat", "exp"):
        assert name in claims, name
    assert claims["exp"] > claims["iat"] >= claims["auth_time"] - LEEWAY_S
    assert_user_claims(claims, OLIVIA)

    userinfo = flow.session.get(provider.metadata["userinfo_endpoint"])
    assert userinfo.status_code == 200, userinfo.text[:300]
    assert userinfo.headers["Content-Type"].startswith("application/json")
    info = userinfo.json()
    assert info["sub"] == claims["sub"]
    assert_user_claims(info, OLIVIA)
    assert requests.get(provider.metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT_S).status_code == 401

    # The same user signs in again: the same subject.
    again = code_flow(provider, authlib_client(provider, "rp-basic"), cookie)
    assert again.claims["sub"] == claims["sub"]

    # A code works once.
    url, state, verifier, _ = start_flow(provider, flow.session)
    code = redirect_parameters(authorize(url, cookie), provider.rp_callback)["code"]
    session = authlib_client(provider, "rp-basic")
    session.fetch_token(provider.metadata["token_endpoint"], code=code, code_verifier=verifier)
    with pytest.raises(OAuthError) as reused_code:
        authlib_client(provider, "rp-basic").fetch_token(
            provider.metadata["token_endpoint"], code=code, code_verifier=verifier
        )
    assert reused_code.value.error == "invalid_grant"

    # Refresh: a new refresh token each time; the old one is refused and revokes the whole grant.
    refresh = flow.session
    first = token["refresh_token"]
    renewed = dict(refresh.refresh_token(provider.metadata["token_endpoint"], refresh_token=first))
    assert renewed["refresh_token"] and renewed["refresh_token"] != first
    assert renewed["access_token"] != token["access_token"]
    assert renewed["token_type"].lower() == "bearer"
    if "id_token" in renewed:
        refreshed_claims = validate_id_token(provider, renewed["id_token"], "rp-basic", None,
                                             renewed["access_token"])
        assert refreshed_claims["sub"] == claims["sub"]
    fresh_userinfo = requests.get(provider.metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT_S,
                                  headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert fresh_userinfo.status_code == 200 and fresh_userinfo.json()["sub"] == claims["sub"]

    with pytest.raises(OAuthError) as reused:
        refresh.refresh_token(provider.metadata["token_endpoint"], refresh_token=first)
    assert reused.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as revoked:
        refresh.refresh_token(provider.metadata["token_endpoint"], refresh_token=renewed["refresh_token"])
    assert revoked.value.error == "invalid_grant", "reusing a refresh token must revoke the whole grant"


def test_authlib_public_client_needs_pkce(provider: Provider) -> None:
    cookie = gatehouse_cookie(provider, OLIVIA)
    session = authlib_client(provider, "rp-public")
    assert session.token_endpoint_auth_method == "none"
    flow = code_flow(provider, session, cookie)
    assert flow.claims["aud"] in ("rp-public", ["rp-public"])
    assert_user_claims(flow.claims, OLIVIA)
    assert flow.token["refresh_token"]

    # Without a code challenge a public client gets no tokens: refused at the authorization endpoint
    # (preferred), or at the latest when it brings the code without a verifier.
    url, _ = session.create_authorization_url(provider.metadata["authorization_endpoint"], nonce=generate_token(24))
    assert "code_challenge" not in url
    answer = authorize(url, cookie)
    issued = redirect_parameters(answer, provider.rp_callback) if answer.status_code in (302, 303) else {}
    if "code" in issued:
        with pytest.raises(OAuthError) as refused:
            authlib_client(provider, "rp-public").fetch_token(provider.metadata["token_endpoint"], code=issued["code"])
        assert refused.value.error in ("invalid_request", "invalid_grant")
    else:
        refused_without_code(answer, provider.rp_callback)

    # The code is bound to the challenge: a wrong verifier is refused.
    url, _, _, _ = start_flow(provider, session)
    code = redirect_parameters(authorize(url, cookie), provider.rp_callback)["code"]
    with pytest.raises(OAuthError) as wrong:
        authlib_client(provider, "rp-public").fetch_token(
            provider.metadata["token_endpoint"], code=code, code_verifier=generate_token(48)
        )
    assert wrong.value.error == "invalid_grant"


def test_authlib_client_secret_post(provider: Provider) -> None:
    cookie = gatehouse_cookie(provider, OLIVIA)
    flow = code_flow(provider, authlib_client(provider, "rp-post", "client_secret_post"), cookie)
    assert flow.claims["aud"] in ("rp-post", ["rp-post"])
    assert_user_claims(flow.claims, OLIVIA)


def test_wrong_client_secret_is_invalid_client(provider: Provider) -> None:
    cookie = gatehouse_cookie(provider, OLIVIA)
    url, _, verifier, _ = start_flow(provider, authlib_client(provider, "rp-basic"))
    code = redirect_parameters(authorize(url, cookie), provider.rp_callback)["code"]
    answer = requests.post(
        provider.metadata["token_endpoint"], auth=("rp-basic", "not-the-secret"), timeout=HTTP_TIMEOUT_S,
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
              "redirect_uri": provider.rp_callback},
    )
    assert answer.status_code == 401, answer.text[:300]
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"] == "invalid_client"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_tampered_id_tokens_are_rejected(provider: Provider) -> None:
    cookie = gatehouse_cookie(provider, OLIVIA)
    flow = code_flow(provider, authlib_client(provider, "rp-basic"), cookie)
    id_token = flow.token["id_token"]
    header, payload, signature = id_token.split(".")

    # One character of the payload flipped.
    middle = len(payload) // 2
    flipped = payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1:]
    # A forged claim: the same signature on a payload granting the admin role.
    claims = json.loads(_b64url_decode(payload))
    claims["roles"] = [*claims["roles"], "admin"]
    forged = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    tampered = [f"{header}.{flipped}.{signature}", f"{header}.{forged}.{signature}"]

    # joserfc, the JOSE library Authlib's OpenID clients decode ID tokens with.
    keys = KeySet.import_key_set(provider.jwks())
    jose_jwt.decode(id_token, keys, algorithms=["RS256"])  # the original passes
    for token in tampered:
        with pytest.raises(BadSignatureError):
            jose_jwt.decode(token, keys, algorithms=["RS256"])

    # Authlib's own (older, still widely used) JOSE API: authlib.jose.jwt.decode. It parses the payload
    # before it checks the signature, so the flipped character may fail as a DecodeError; the forged
    # claim (valid JSON) must fail on the signature.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "authlib.jose module is deprecated" since Authlib 1.7
        from authlib.jose import JsonWebKey, JoseError
        from authlib.jose import jwt as authlib_jwt
        from authlib.jose.errors import BadSignatureError as AuthlibBadSignature

        key_set = JsonWebKey.import_key_set(provider.jwks())
        assert authlib_jwt.decode(id_token, key_set)["sub"] == flow.claims["sub"]
        with pytest.raises(JoseError):
            authlib_jwt.decode(tampered[0], key_set)
        with pytest.raises(AuthlibBadSignature):
            authlib_jwt.decode(tampered[1], key_set)


# --- end session, errors, roles, the clients CLI -----------------------------------------------------


def test_end_session_with_id_token_hint_signs_out_and_redirects(provider: Provider) -> None:
    cookie = gatehouse_cookie(provider, OLIVIA)
    flow = code_flow(provider, authlib_client(provider, "rp-basic"), cookie)
    query = urlencode({
        "client_id": "rp-basic", "id_token_hint": flow.token["id_token"],
        "post_logout_redirect_uri": provider.rp_logged_out, "state": "bye-123",
    })
    answer = requests.get(f"{provider.metadata['end_session_endpoint']}?{query}", headers={"Cookie": cookie},
                          allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert answer.status_code == 303, answer.status_code
    returned = redirect_parameters(answer, provider.rp_logged_out)
    assert returned.get("state") == "bye-123" and "code" not in returned, returned

    # The session is over: authorize sends the same cookie to the sign-in page.
    url, _, _, _ = start_flow(provider, flow.session)
    retry = authorize(url, cookie)
    assert retry.status_code == 303, retry.status_code
    assert LOGIN_URL.search(urlsplit(urljoin(retry.url, retry.headers["Location"])).path)


def test_end_session_without_hint_asks_first_and_ignores_unregistered_uris(provider: Provider) -> None:
    cookie = gatehouse_cookie(provider, OLIVIA)
    query = urlencode({"client_id": "rp-basic", "post_logout_redirect_uri": provider.rp_logged_out})
    answer = requests.get(f"{provider.metadata['end_session_endpoint']}?{query}", headers={"Cookie": cookie},
                          allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert answer.status_code == 200, answer.status_code
    assert "text/html" in answer.headers["Content-Type"]
    # Nothing happened yet: the session still gives codes.
    code_flow(provider, authlib_client(provider, "rp-basic"), cookie)

    # A valid hint with a post-logout URI the client never registered: never redirected there.
    flow = code_flow(provider, authlib_client(provider, "rp-basic"), cookie)
    evil = "http://evil.test/after-logout"
    query = urlencode({"client_id": "rp-basic", "id_token_hint": flow.token["id_token"],
                       "post_logout_redirect_uri": evil})
    answer = requests.get(f"{provider.metadata['end_session_endpoint']}?{query}", headers={"Cookie": cookie},
                          allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert not answer.headers.get("Location", "").startswith(evil), answer.headers.get("Location")


def test_authorize_errors_are_pages_not_redirects(provider: Provider) -> None:
    cookie = gatehouse_cookie(provider, OLIVIA)
    base = {"response_type": "code", "scope": SCOPE, "state": "s", "nonce": "n",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
    cases = {
        "unknown client": {**base, "client_id": "nobody", "redirect_uri": provider.rp_callback},
        "unregistered redirect_uri": {**base, "client_id": "rp-basic", "redirect_uri": "http://evil.test/callback"},
        "redirect_uri of another path": {**base, "client_id": "rp-basic", "redirect_uri": provider.rp_callback + "x"},
    }
    for name, parameters in cases.items():
        url = f"{provider.metadata['authorization_endpoint']}?{urlencode(parameters)}"
        for who, session in (("signed in", cookie), ("signed out", None)):
            answer = authorize(url, session)
            assert answer.status_code == 400, f"{name}, {who}: {answer.status_code} {answer.headers.get('Location')}"
            assert "Location" not in answer.headers, f"{name}, {who}"
            assert "text/html" in answer.headers["Content-Type"], f"{name}, {who}"


def test_allowed_roles_keep_other_users_out(provider: Provider) -> None:
    session = authlib_client(provider, "admins-only")
    url, _, _, _ = start_flow(provider, session)
    refused_without_code(authorize(url, gatehouse_cookie(provider, OLIVIA)), provider.rp_callback)

    flow = code_flow(provider, authlib_client(provider, "admins-only"), gatehouse_cookie(provider, ADAM))
    assert flow.claims["roles"] == ["admin"]
    assert flow.claims["preferred_username"] == ADAM.username


def test_clients_list_shows_cli_clients_and_remove_takes_effect(provider: Provider) -> None:
    listed = provider.cli(["clients", "list", "--json"])
    text = json.dumps(json.loads(listed))
    for client_id in ("rp-public", "rp-post", "node-rp", "node-public"):
        assert client_id in text, listed
    assert provider.secrets["rp-post"] not in listed, "clients list must not print secrets"

    created = json.loads(provider.cli(["clients", "add", "short-lived", "--redirect-uri", provider.rp_callback,
                                       "--first-party", "--json"]))
    provider.secrets["short-lived"] = created["client_secret"]
    cookie = gatehouse_cookie(provider, OLIVIA)
    code_flow(provider, authlib_client(provider, "short-lived"), cookie)
    provider.cli(["clients", "remove", "short-lived"])
    url, _, _, _ = start_flow(provider, authlib_client(provider, "short-lived"))
    answer = authorize(url, cookie)
    assert answer.status_code == 400 and "Location" not in answer.headers, answer.status_code


# --- consent (browser) -------------------------------------------------------------------------------


def test_third_party_client_asks_for_consent_once(
    provider: Provider, new_context: Callable[[], BrowserContext]
) -> None:
    page = new_context().new_page()
    session = authlib_client(provider, "third-party")
    url, state, verifier, nonce = start_flow(provider, session)
    page.goto(url)
    sign_in(page, OLIVIA)

    form = page.locator('form[method="post" i][action^="/_gatehouse/oidc/consent"]')
    expect(form).to_have_count(1)
    expect(page.get_by_text("Third-party reports").first).to_be_visible()
    expect(form.get_by_role("button", name="Allow")).to_be_visible()
    expect(form.get_by_role("button", name="Deny")).to_be_visible()
    screenshot(page, "oidc-consent-page")
    form.get_by_role("button", name="Allow").click()

    expect(page).to_have_url(re.compile("^" + re.escape(provider.rp_callback) + r"\?"))
    callback = query_of(page.url)
    assert callback["state"] == state and callback["code"], callback
    token = session.fetch_token(provider.metadata["token_endpoint"], code=callback["code"], code_verifier=verifier)
    claims = validate_id_token(provider, token["id_token"], "third-party", nonce, token["access_token"])
    assert_user_claims(claims, OLIVIA)

    # Remembered: the next request goes straight back to the client.
    url, state, _, _ = start_flow(provider, session)
    page.goto(url)
    expect(page).to_have_url(re.compile("^" + re.escape(provider.rp_callback) + r"\?"))
    assert query_of(page.url)["state"] == state and query_of(page.url)["code"]


def test_denying_consent_returns_access_denied(
    provider: Provider, new_context: Callable[[], BrowserContext]
) -> None:
    page = new_context().new_page()
    url, state, _, _ = start_flow(provider, authlib_client(provider, "third-party"))
    page.goto(url)
    sign_in(page, DANA)
    page.locator('form[action^="/_gatehouse/oidc/consent"]').get_by_role("button", name="Deny").click()
    expect(page).to_have_url(re.compile("^" + re.escape(provider.rp_callback) + r"\?"))
    callback = query_of(page.url)
    assert callback.get("error") == "access_denied" and callback.get("state") == state, callback
    assert "code" not in callback


def test_pages_for_refused_requests_in_the_browser(
    provider: Provider, new_context: Callable[[], BrowserContext]
) -> None:
    page = new_context().new_page()
    # A user without the client's role: a page naming the role, and "Sign in as someone else" that keeps
    # the request, so the right user lands back at the app with a code.
    url, state, _, _ = start_flow(provider, authlib_client(provider, "admins-only"))
    page.goto(url)
    sign_in(page, OLIVIA)
    expect(page.get_by_role("heading", name="Access denied")).to_be_visible()
    expect(page.get_by_text("is open only to people with the role 'admin'")).to_be_visible()
    screenshot(page, "oidc-role-refused")
    page.get_by_role("link", name="Sign in as someone else").click()
    expect(page.locator("#password")).to_be_visible()
    sign_in(page, ADAM)
    expect(page).to_have_url(re.compile("^" + re.escape(provider.rp_callback) + r"\?"))
    assert query_of(page.url)["state"] == state and query_of(page.url)["code"]

    # An unregistered redirect URI: an error page naming what the app sent, and no redirect.
    session = authlib_client(provider, "rp-basic")
    session.redirect_uri = "http://evil.test/callback"
    url, _, _, _ = start_flow(provider, session)
    answer = page.goto(url)
    assert answer is not None and answer.status == 400
    expect(page.get_by_text("redirect_uri: http://evil.test/callback")).to_be_visible()
    assert path_of(page.url) == "/_gatehouse/oidc/authorize"
    screenshot(page, "oidc-unregistered-redirect")


# --- openid-client (npm) -----------------------------------------------------------------------------


def node_runtime() -> str:
    """`node`, checked: openid-client 6 needs Node.js 20+, and its package must be installed (npm ci)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/test.sh installs Debian's nodejs and npm)", pytrace=False)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"openid-client needs Node.js 20 or newer; {node} is {version}", pytrace=False)
    if not (OIDC_RP / "node_modules" / "openid-client" / "package.json").is_file():
        pytest.fail(f"openid-client is not installed: run `npm ci` in {OIDC_RP}", pytrace=False)
    return node


@pytest.mark.parametrize("client_id", ["node-rp", "node-public"])
def test_openid_client_code_flow(provider: Provider, client_id: str) -> None:
    node = node_runtime()
    secret = provider.secrets[client_id]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ISSUER": provider.issuer,
        "CLIENT_ID": client_id,
        "CLIENT_SECRET": secret or "",
        "REDIRECT_URI": provider.rp_callback,
        "GATEHOUSE_COOKIE": gatehouse_cookie(provider, OLIVIA),
        "SCOPE": SCOPE,
    }
    result = subprocess.run([node, "code_flow.mjs"], cwd=OIDC_RP, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    with GATEHOUSE_LOG.open("a") as log:
        log.write(f"$ node code_flow.mjs ({client_id})\n{result.stdout}{result.stderr}(exit {result.returncode})\n")
    assert result.returncode == 0, f"code_flow.mjs failed:\n{result.stderr}\n{result.stdout}"
    out = json.loads(result.stdout)

    assert out["issuer"] == provider.issuer
    assert out["token_endpoint_auth_method"] == ("client_secret_basic" if secret else "none")
    assert {"code", "state"} <= set(out["callback_parameters"])
    assert out["token_type"] == "bearer"
    assert set(out["scope"].split()) == set(SCOPE.split())
    assert out["has_refresh_token"]
    claims = out["claims"]
    assert claims["iss"] == provider.issuer
    assert claims["aud"] in (client_id, [client_id])
    for name in ("nonce", "at_hash", "auth_time", "sid"):
        assert name in claims, name
    assert_user_claims(claims, OLIVIA)
    assert out["userinfo"]["sub"] == claims["sub"]
    assert_user_claims(out["userinfo"], OLIVIA)

    refreshed = out["refreshed"]
    assert refreshed["refresh_token_rotated"], refreshed
    assert refreshed["access_token_changed"], refreshed
    assert refreshed["userinfo_sub"] == claims["sub"]
    if refreshed["claims"] is not None:
        assert refreshed["claims"]["sub"] == claims["sub"]
    assert out["old_refresh_token"]["accepted"] is False, out["old_refresh_token"]
    assert out["old_refresh_token"]["error"] == "invalid_grant", out["old_refresh_token"]
