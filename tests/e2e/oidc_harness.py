"""The harness of test_oidc.py: a provider-only Gatehouse, Streamlit apps that use st.login(), and the
plain-HTTP and Authlib pieces of an OpenID Connect relying party.

- running_provider: `gatehouse serve --config FILE` (no [upstream]) with its own folder and SQLite database,
  the users below (made with `gatehouse users add`), clients from the config file and from
  `gatehouse clients add --json`.
- start_login_app / running_login_apps: `streamlit run oidc_apps/login_app.py`, each from its own folder
  holding the .streamlit/secrets.toml that points st.login() at the provider.
- gatehouse_cookie: a Gatehouse session over plain HTTP (GET the login page for its CSRF cookie and token,
  POST the form with an Origin header); authorize: the authorization request with that cookie, redirects not
  followed, so the code is read from the Location header. client_site serves the redirect URI anyway, for
  the browser tests that end there.
- code_flow / validate_id_token: Authlib's OAuth2Session with PKCE S256 and a nonce, and the ID-token checks
  Authlib's OpenID clients make (joserfc signature check against the JWKS, then authlib.oidc.core.CodeIDToken).

Nothing here is Gatehouse-specific beyond the paths and names of the contract, so the Streamlit and Authlib
parts can be pointed at another provider to check the harness itself (that was done with oidc-provider-mock).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from conftest import (
    _STATE,
    ARTIFACTS,
    GATEHOUSE_LOG,
    Gatehouse,
    _run_cli,
    _stop,
    _wait_healthy,
    child_env,
    free_port,
    gatehouse_binary,
    tail,
    venv_bin,
)

E2E = Path(__file__).resolve().parent
LOGIN_APP = E2E / "oidc_apps" / "login_app.py"
OIDC_RP = E2E / "oidc_rp"

SCOPE = "openid profile email roles"
# App two's host name; conftest's CHROMIUM_ARGS map every *.test name to 127.0.0.1 inside Chromium.
APP_TWO_HOST = "app-two.test"
LOGIN_URL = re.compile(r"/_gatehouse/login(\?.*)?$")
HTTP_TIMEOUT_S = 10
# Authlib's default leeway (also Streamlit's) is 120 s; the tests allow a little clock slack only.
LEEWAY_S = 5


@dataclass(frozen=True)
class User:
    username: str
    email: str
    name: str
    roles: tuple[str, ...]
    password: str


OLIVIA = User("olivia", "olivia@example.com", "Olivia Example", ("analyst", "viewer"), "olivia passphrase, long enough 7")
# Only for the consent-denied test, so that olivia's remembered consent cannot hide the consent page.
DANA = User("dana", "dana@example.com", "Dana Example", ("viewer",), "dana passphrase, long enough 7")
ADAM = User("adam", "adam@example.com", "Adam Admin", ("admin",), "adam passphrase, long enough 7")
USERS = (OLIVIA, DANA, ADAM)


# --- the provider ------------------------------------------------------------------------------------


@dataclass
class Provider:
    """The module's provider-only Gatehouse, and what the tests registered in it."""

    server: Gatehouse
    config: Path
    # client_id -> plain secret; None for a public client.
    secrets: dict[str, str | None]
    # Where the two Streamlit apps will listen (they are registered before they start).
    app_ports: tuple[int, int]
    # The redirect URI of the non-Streamlit clients, served by client_site().
    rp_callback: str
    rp_logged_out: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def issuer(self) -> str:
        return f"{self.server.base_url}/_gatehouse"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def url(self, path: str) -> str:
        return self.server.url(path)

    @cached_property
    def metadata(self) -> dict:
        response = requests.get(self.discovery_url, timeout=HTTP_TIMEOUT_S)
        assert response.status_code == 200, f"discovery: {response.status_code} {response.text[:300]}"
        return response.json()

    def jwks(self) -> dict:
        response = requests.get(self.metadata["jwks_uri"], timeout=HTTP_TIMEOUT_S)
        assert response.status_code == 200, f"jwks: {response.status_code} {response.text[:300]}"
        return response.json()

    def cli(self, args: list[str], stdin: str = "") -> str:
        """`gatehouse --config FILE ARGS` against this provider's database; its stdout."""
        return _run_cli(
            self.server.binary, ["--config", str(self.config), *args], self.server.env, self.server.workdir, stdin
        )


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the plain ASCII used here
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def write_secret(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


class _ClientPage(BaseHTTPRequestHandler):
    """Answers every GET with a small page: where a browser lands at the test clients' redirect URIs."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"<!doctype html><title>Client</title><h1>Callback reached</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        pass


@contextmanager
def client_site() -> Iterator[str]:
    """A tiny web server for the redirect URIs of the non-Streamlit clients; yields its origin.

    Non-browser clients never follow the redirect (they read the code from the Location header), but a
    browser (the consent tests) needs somewhere to land: Playwright's route() does not catch requests that
    come from a redirect.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ClientPage)
    thread = threading.Thread(target=server.serve_forever, name="client-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def running_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """A provider-only Gatehouse with USERS and the clients the tests use; stopped on exit.

    Config-file clients (app-one, app-two, rp-basic, third-party, admins-only) and CLI clients (rp-public,
    rp-post, node-rp, node-public) are all registered before `gatehouse serve` starts.
    """
    binary = gatehouse_binary()
    if not binary.is_file():
        pytest.fail(f"gatehouse binary not found at {binary}: run `cargo build` or set GATEHOUSE_BIN", pytrace=False)
    ARTIFACTS.mkdir(exist_ok=True)
    if not _STATE["log_written"]:  # the first server of this pytest run starts a new log
        GATEHOUSE_LOG.write_bytes(b"")
        _STATE["log_written"] = True

    with ExitStack() as cleanup:
        client_origin = cleanup.enter_context(client_site())
        workdir = tmp_path_factory.mktemp("oidc")
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        app_ports = (free_port(), free_port())
        rp_callback = f"{client_origin}/callback"
        rp_logged_out = f"{client_origin}/logged-out"
        app_one_callback = f"http://127.0.0.1:{app_ports[0]}/oauth2callback"
        app_two_callback = f"http://{APP_TWO_HOST}:{app_ports[1]}/oauth2callback"

        # Secrets of the clients in the config file: URL-safe characters, so that client_secret_basic means the
        # same whether or not a client form-encodes the secret before Base64 (Authlib does not, openid-client does).
        config_clients = [
            {"client_id": "app-one", "name": "App one", "redirect_uris": [app_one_callback],
             "post_logout_redirect_uris": [app_one_callback], "first_party": True},
            {"client_id": "app-two", "name": "App two", "redirect_uris": [app_two_callback],
             "post_logout_redirect_uris": [app_two_callback], "first_party": True},
            {"client_id": "rp-basic", "name": "Authlib basic", "redirect_uris": [rp_callback],
             "post_logout_redirect_uris": [rp_logged_out], "first_party": True},
            {"client_id": "third-party", "name": "Third-party reports", "redirect_uris": [rp_callback],
             "first_party": False},
            {"client_id": "admins-only", "name": "Admins only", "redirect_uris": [rp_callback],
             "first_party": True, "allowed_roles": ["admin"]},
        ]
        client_secrets: dict[str, str | None] = {}
        database_url = f"sqlite://{workdir / 'gh.db'}"
        lines = [
            "# Written by tests/e2e/oidc_harness.py: a provider-only Gatehouse (no [upstream]).",
            "[server]",
            f"listen = {toml_value(f'127.0.0.1:{port}')}",
            f"public_url = {toml_value(base_url)}",
            "",
            "[database]",
            f"url = {toml_value(database_url)}",
        ]
        for client in config_clients:
            client_id = client["client_id"]
            client_secrets[client_id] = secrets.token_urlsafe(32)
            secret_file = write_secret(workdir / f"{client_id}.secret", client_secrets[client_id])
            lines += ["", "[[oidc.clients]]"]
            for key, value in client.items():
                lines.append(f"{key} = {toml_value(value)}")
            lines.append(f"client_secret_file = {toml_value(str(secret_file))}")
        config = workdir / "gatehouse.toml"
        config.write_text("\n".join(lines) + "\n")

        # The config file is the only source of settings: no GATEHOUSE_DATABASE__URL.
        env = child_env(database_url)
        env.pop("GATEHOUSE_DATABASE__URL")
        # Not started yet: CLI commands only need the binary, the environment and the folder.
        server = Gatehouse(base_url, port, None, env, binary, workdir)  # type: ignore[arg-type]
        provider = Provider(server, config, client_secrets, app_ports, rp_callback, rp_logged_out)

        for user in USERS:
            roles = [arg for role in user.roles for arg in ("--role", role)]
            provider.cli(
                ["users", "add", user.username, "--email", user.email, "--name", user.name, *roles, "--password-stdin"],
                stdin=user.password,
            )
        # Clients made with the CLI (stored in the database), with the secret it prints once.
        for client_id, public in (("rp-public", True), ("rp-post", False), ("node-rp", False), ("node-public", True)):
            args = ["clients", "add", client_id, "--redirect-uri", rp_callback, "--name", client_id, "--first-party"]
            printed = provider.cli(args + (["--public"] if public else []) + ["--json"])
            created = json.loads(printed)
            assert created["client_id"] == client_id, printed
            if public:
                assert created["client_secret"] is None, printed
            else:
                assert isinstance(created["client_secret"], str) and len(created["client_secret"]) >= 16, printed
            client_secrets[client_id] = created["client_secret"]

        command = [str(binary), "serve", "--config", str(config)]
        with GATEHOUSE_LOG.open("ab") as log:
            log.write(f"$ gatehouse serve --config {config}  (test_oidc, provider only)\n".encode())
            log.write(config.read_bytes())
            log.flush()
            process = subprocess.Popen(
                command, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        server.process = process
        cleanup.callback(_stop, process)
        _wait_healthy(server)
        yield provider


# --- Streamlit apps that use st.login() --------------------------------------------------------------


@dataclass
class LoginApp:
    title: str
    client_id: str
    url: str  # the app's root, as the browser opens it
    redirect_uri: str
    process: subprocess.Popen[bytes]


def start_login_app(
    workdir: Path,
    *,
    title: str,
    host: str,
    port: int,
    client_id: str,
    client_secret: str,
    server_metadata_url: str,
) -> LoginApp:
    """Starts `streamlit run oidc_apps/login_app.py` from `workdir`, with its own .streamlit/secrets.toml.

    The [auth] keys are the ones Streamlit 1.67 reads for its default provider (streamlit/auth_util.py,
    validate_auth_credentials and generate_default_provider_section): redirect_uri and cookie_secret
    (required), client_id, client_secret, server_metadata_url (required), and client_kwargs, which
    becomes the keyword arguments of Authlib's client: without a "scope" there Streamlit asks for
    "openid email profile" only, and "roles" would never reach st.user. Streamlit adds
    prompt=select_account itself, and PKCE S256 when discovery advertises it.
    """
    redirect_uri = f"http://{host}:{port}/oauth2callback"
    streamlit_dir = workdir / ".streamlit"
    streamlit_dir.mkdir(parents=True, exist_ok=True)
    auth = {
        "redirect_uri": redirect_uri,
        "cookie_secret": secrets.token_urlsafe(32),
        "client_id": client_id,
        "client_secret": client_secret,
        "server_metadata_url": server_metadata_url,
    }
    lines = ["[auth]", *(f"{key} = {toml_value(value)}" for key, value in auth.items())]
    lines.append(f"client_kwargs = {{ scope = {toml_value(SCOPE)} }}")
    write_secret(streamlit_dir / "secrets.toml", "\n".join(lines))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEHOUSE_", "STREAMLIT_"))}
    # HOME too: no ~/.streamlit/secrets.toml or config.toml of the developer's is read.
    env.update(HOME=str(workdir), LOGIN_APP_TITLE=title, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    command = [
        str(venv_bin() / "streamlit"), "run", str(LOGIN_APP),
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--server.fileWatcherType", "none",
    ]
    with GATEHOUSE_LOG.open("ab") as log:
        log.write(f"$ streamlit run {LOGIN_APP.name} --server.port {port}  ({title}, cwd {workdir})\n".encode())
        log.flush()
        process = subprocess.Popen(
            command, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    app = LoginApp(title, client_id, f"http://{host}:{port}/", redirect_uri, process)
    wait_for_streamlit(app, port)
    return app


def wait_for_streamlit(app: LoginApp, port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            pytest.fail(f"{app.title}: streamlit exited with {app.process.returncode}:\n{tail(GATEHOUSE_LOG)}",
                        pytrace=False)
        try:
            response = requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code}"
        except requests.RequestException as error:
            last = repr(error)
        time.sleep(0.25)
    pytest.fail(f"{app.title} did not become healthy in {timeout_s} s (last: {last})", pytrace=False)


@contextmanager
def running_login_apps(
    provider: Provider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LoginApp, LoginApp]]:
    """App one on 127.0.0.1, app two on app-two.test, both signing in with Gatehouse."""
    started: list[LoginApp] = []
    try:
        for index, (title, host, client_id) in enumerate(
            (("App one", "127.0.0.1", "app-one"), ("App two", APP_TWO_HOST, "app-two"))
        ):
            secret = provider.secrets[client_id]
            assert secret is not None
            started.append(start_login_app(
                tmp_path_factory.mktemp(client_id), title=title, host=host, port=provider.app_ports[index],
                client_id=client_id, client_secret=secret, server_metadata_url=provider.discovery_url,
            ))
        yield started[0], started[1]
    finally:
        for app in started:
            _stop(app.process)


# --- plain-HTTP sign-in and the authorization response -----------------------------------------------


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def path_of(url: str) -> str:
    return urlsplit(url).path


class _Forms(HTMLParser):
    """The forms of a page: action, method and the named <input>s as name -> (type, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"action": attributes.get("action", ""), "method": attributes.get("method", "get"),
                               "inputs": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            kind = attributes.get("type", "text").lower()
            self.forms[-1]["inputs"][attributes["name"]] = (kind, attributes.get("value", ""))


def gatehouse_cookie(provider: Provider, user: User) -> str:
    """Signs in over plain HTTP, as a browser would; returns the `gatehouse_session=...` Cookie header."""
    login_url = provider.url("/_gatehouse/login")
    page = requests.get(login_url, timeout=HTTP_TIMEOUT_S)
    assert page.status_code == 200, f"login page: {page.status_code}"
    parser = _Forms()
    parser.feed(page.text)
    forms = [f for f in parser.forms if path_of(urljoin(login_url, f["action"])) == "/_gatehouse/login"]
    assert len(forms) == 1, parser.forms
    fields = {name: value for name, (kind, value) in forms[0]["inputs"].items() if kind == "hidden"}
    assert fields.get("csrf_token"), forms[0]
    fields.update(username=user.username, password=user.password)
    answer = requests.post(
        urljoin(login_url, forms[0]["action"]), data=fields, cookies=page.cookies,
        headers={"Origin": provider.base_url}, allow_redirects=False, timeout=HTTP_TIMEOUT_S,
    )
    assert answer.status_code == 303, f"sign-in: {answer.status_code} {answer.text[:500]}"
    session = answer.cookies.get("gatehouse_session")
    assert session, f"no gatehouse_session cookie: {answer.headers}"
    return f"gatehouse_session={session}"


def authorize(url: str, cookie: str | None) -> requests.Response:
    headers = {"Cookie": cookie} if cookie else {}
    return requests.get(url, headers=headers, allow_redirects=False, timeout=HTTP_TIMEOUT_S)


def redirect_parameters(response: requests.Response, redirect_uri: str) -> dict[str, str]:
    """The query of a redirect to `redirect_uri` (the authorization response)."""
    assert response.status_code in (302, 303), f"{response.status_code}: {response.text[:500]}"
    location = urljoin(response.url, response.headers["Location"])
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == redirect_uri, location
    return query_of(location)


def refused_without_code(response: requests.Response, redirect_uri: str) -> dict[str, str]:
    """No code: either an error page, or a redirect to the client with `error` (returned)."""
    if response.status_code in (302, 303):
        parameters = redirect_parameters(response, redirect_uri)
        assert "code" not in parameters and parameters.get("error"), parameters
        return parameters
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    assert "Location" not in response.headers
    return {}


# --- Authlib -----------------------------------------------------------------------------------------


@dataclass
class Flow:
    """One authorization code flow of an Authlib client."""

    session: OAuth2Session
    token: dict
    claims: CodeIDToken
    nonce: str
    callback: dict[str, str] = field(default_factory=dict)


def authlib_client(provider: Provider, client_id: str, auth_method: str | None = None) -> OAuth2Session:
    secret = provider.secrets[client_id]
    return OAuth2Session(
        client_id, secret,
        token_endpoint_auth_method=auth_method or ("client_secret_basic" if secret else "none"),
        scope=SCOPE, redirect_uri=provider.rp_callback, code_challenge_method="S256",
        default_timeout=HTTP_TIMEOUT_S,
    )


def start_flow(provider: Provider, session: OAuth2Session) -> tuple[str, str, str, str]:
    """An authorization URL with PKCE S256, state and nonce: (url, state, code_verifier, nonce)."""
    verifier = generate_token(48)
    nonce = generate_token(24)
    url, state = session.create_authorization_url(
        provider.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    return url, state, verifier, nonce


def code_flow(provider: Provider, session: OAuth2Session, cookie: str) -> Flow:
    url, state, verifier, nonce = start_flow(provider, session)
    response = authorize(url, cookie)
    callback = redirect_parameters(response, provider.rp_callback)
    assert callback.get("state") == state and callback.get("code"), callback
    location = urljoin(response.url, response.headers["Location"])
    token = session.fetch_token(
        provider.metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
    )
    claims = validate_id_token(provider, token["id_token"], session.client_id, nonce, token["access_token"])
    return Flow(session, dict(token), claims, nonce, callback)


def validate_id_token(provider: Provider, id_token: str, client_id: str, nonce: str | None,
                      access_token: str | None) -> CodeIDToken:
    """Checks an ID token the way Authlib's OpenID clients do (base_client/sync_openid.py, parse_id_token),
    plus the audience, which they only check when told to."""
    keys = KeySet.import_key_set(provider.jwks())
    algorithms = provider.metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    decoded = jose_jwt.decode(id_token, keys, algorithms=algorithms)
    options = {
        "iss": {"essential": True, "value": provider.issuer},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    params = {"client_id": client_id}
    if nonce is not None:
        params["nonce"] = nonce
    if access_token is not None:
        params["access_token"] = access_token
    claims = CodeIDToken(decoded.claims, decoded.header, options, params)
    claims.validate(leeway=LEEWAY_S)
    return claims


def assert_user_claims(claims: dict, user: User) -> None:
    """The per-scope claims of `user`: profile, email and roles."""
    assert claims["sub"] != user.username, "sub must be an opaque id, not the username"
    assert claims["preferred_username"] == user.username
    assert claims["name"] == user.name
    assert claims["email"] == user.email
    assert isinstance(claims["email_verified"], bool)
    assert sorted(claims["roles"]) == sorted(user.roles)
