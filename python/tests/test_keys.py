"""Where the public key comes from: configure(), the environment, or Gatehouse's key endpoint."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conftest import FakeClock, KeyPair
from streamlit_gatehouse import configure
from streamlit_gatehouse.config import current_settings
from streamlit_gatehouse.keys import KEY_PATH, KeyProvider, KeyUnavailableError, http_get, key_from_jwk


def jwk(keys: KeyPair) -> bytes:
    return json.dumps(
        {"kty": "OKP", "crv": "Ed25519", "x": keys.public_b64, "alg": "EdDSA", "use": "sig"}
    ).encode()


def same_key(key: Ed25519PublicKey, expected: KeyPair) -> bool:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw == expected.public_raw


class RecordingFetch:
    """A fetch function that answers from a script and records the URLs asked for."""

    def __init__(self, *answers: bytes | Exception) -> None:
        self.answers = list(answers)
        self.urls: list[str] = []

    def __call__(self, url: str, timeout: float) -> bytes:
        self.urls.append(url)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_settings_prefer_configure_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, keys: KeyPair
) -> None:
    monkeypatch.setenv("GATEHOUSE_ASSERTION_PUBLIC_KEY", "from-env")
    monkeypatch.setenv("GATEHOUSE_PUBLIC_URL", "http://env.example")
    monkeypatch.setenv("GATEHOUSE_URL", "http://gatehouse.internal:8501/")
    monkeypatch.setenv("GATEHOUSE_ADMIN_ROLE", "ops")
    settings = current_settings()
    assert settings.public_key == "from-env"
    assert settings.audience == "http://env.example"
    assert settings.gatehouse_url == "http://gatehouse.internal:8501"
    assert settings.admin_role == "ops"

    configure(public_key=keys.public_b64, audience="https://code.example", admin_role="boss")
    settings = current_settings()
    assert settings.public_key == keys.public_b64
    assert settings.audience == "https://code.example"
    assert settings.admin_role == "boss"
    assert settings.gatehouse_url == "http://gatehouse.internal:8501"  # not configured: env


def test_defaults_without_any_setting() -> None:
    settings = current_settings()
    assert settings.public_key is None
    assert settings.audience is None
    assert settings.gatehouse_url is None
    assert settings.admin_role == "admin"


def test_configured_key_is_used_without_fetching(keys: KeyPair) -> None:
    fetch = RecordingFetch()
    configure(public_key=keys.public_b64, gatehouse_url="http://gatehouse.test")
    assert same_key(KeyProvider(fetch=fetch).public_key(current_settings()), keys)
    assert fetch.urls == []


def test_broken_configured_key_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_ASSERTION_PUBLIC_KEY", "too-short")
    with pytest.raises(KeyUnavailableError, match="GATEHOUSE_ASSERTION_PUBLIC_KEY"):
        KeyProvider(fetch=RecordingFetch()).public_key(current_settings())


def test_no_key_and_no_url_says_what_to_set() -> None:
    with pytest.raises(KeyUnavailableError) as caught:
        KeyProvider(fetch=RecordingFetch()).public_key(current_settings())
    assert "GATEHOUSE_ASSERTION_PUBLIC_KEY" in str(caught.value)
    assert "GATEHOUSE_URL" in str(caught.value)


def test_key_is_fetched_once_from_gatehouse(monkeypatch: pytest.MonkeyPatch, keys: KeyPair) -> None:
    monkeypatch.setenv("GATEHOUSE_URL", "http://gatehouse.internal:8501/")
    fetch = RecordingFetch(jwk(keys))
    provider = KeyProvider(fetch=fetch)
    assert same_key(provider.public_key(current_settings()), keys)
    assert same_key(provider.public_key(current_settings()), keys)
    assert fetch.urls == ["http://gatehouse.internal:8501" + KEY_PATH]


def test_failed_fetch_is_retried_only_after_a_pause(monkeypatch: pytest.MonkeyPatch, keys: KeyPair) -> None:
    monkeypatch.setenv("GATEHOUSE_URL", "http://gatehouse.internal:8501")
    clock = FakeClock(0)
    fetch = RecordingFetch(ConnectionRefusedError("connection refused"), jwk(keys))
    provider = KeyProvider(fetch=fetch, clock=clock, retry_after=30)

    with pytest.raises(KeyUnavailableError, match="connection refused"):
        provider.public_key(current_settings())
    clock.advance(29)
    with pytest.raises(KeyUnavailableError, match="connection refused"):
        provider.public_key(current_settings())
    assert len(fetch.urls) == 1

    clock.advance(1)
    assert same_key(provider.public_key(current_settings()), keys)
    assert len(fetch.urls) == 2


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b"[]",
        json.dumps({"kty": "RSA", "n": "abc", "e": "AQAB"}).encode(),
        json.dumps({"kty": "OKP", "crv": "X25519", "x": "AAAA"}).encode(),
        json.dumps({"kty": "OKP", "crv": "Ed25519"}).encode(),
        json.dumps({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}).encode(),
    ],
)
def test_answers_that_are_not_an_ed25519_jwk_are_refused(
    monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    monkeypatch.setenv("GATEHOUSE_URL", "http://gatehouse.internal:8501")
    with pytest.raises(KeyUnavailableError, match="could not fetch the public key"):
        KeyProvider(fetch=RecordingFetch(body)).public_key(current_settings())


def test_jwk_parsing_accepts_gatehouse_document(keys: KeyPair) -> None:
    assert same_key(key_from_jwk(jwk(keys)), keys)


class _KeyHandler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path != KEY_PATH:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def key_server(keys: KeyPair) -> Iterator[str]:
    handler = type("Handler", (_KeyHandler,), {"body": jwk(keys)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_real_http_fetch_from_a_key_endpoint(key_server: str, keys: KeyPair) -> None:
    configure(gatehouse_url=key_server)
    assert same_key(KeyProvider().public_key(current_settings()), keys)


def test_real_http_errors_become_key_unavailable(key_server: str) -> None:
    with pytest.raises(OSError):
        http_get(key_server + "/nothing-here", timeout=2)
    configure(gatehouse_url=key_server + "/prefix-that-404s")
    with pytest.raises(KeyUnavailableError, match="HTTP 404"):
        KeyProvider().public_key(current_settings())
