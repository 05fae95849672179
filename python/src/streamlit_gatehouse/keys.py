"""Finding Gatehouse's assertion public key: given in settings, or fetched from Gatehouse.

Order: `configure(public_key=...)`, then `$GATEHOUSE_ASSERTION_PUBLIC_KEY` (both resolved into
`Settings.public_key` by `config`), then `GET $GATEHOUSE_URL/_gatehouse/assertion-key`, a JWK
like `{"kty":"OKP","crv":"Ed25519","x":"<base64url>","alg":"EdDSA","use":"sig"}`.

A fetched key is kept for the life of the process (Gatehouse keeps one key in its database).
A failed fetch is remembered for `retry_after` seconds, so a Gatehouse that is down costs one
short timeout per interval, not one per rerun of every session. Nothing here raises past
`KeyProvider.public_key` except `KeyUnavailableError`, which says why in words.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .assertion import PublicKeyError, load_public_key
from .config import ENV_GATEHOUSE_URL, ENV_PUBLIC_KEY, Settings

KEY_PATH = "/_gatehouse/assertion-key"
FETCH_TIMEOUT_SECONDS = 3.0
RETRY_AFTER_SECONDS = 30.0

Clock = Callable[[], float]
Fetch = Callable[[str, float], bytes]


class KeyUnavailableError(Exception):
    """No usable public key: none configured, or the configured or fetched one is broken."""


@dataclass
class _FetchFailure:
    message: str
    at: float


def http_get(url: str, timeout: float) -> bytes:
    """The body of a 200 answer to GET `url` (raises OSError or ValueError otherwise)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # an http(s) URL from the settings
        status = getattr(response, "status", 200)
        if status != 200:
            raise ValueError(f"HTTP {status}")
        body: bytes = response.read(64 * 1024)
        return body


def key_from_jwk(body: bytes) -> Ed25519PublicKey:
    """The Ed25519 key in a JWK document, checking it is one (raises PublicKeyError)."""
    try:
        jwk = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PublicKeyError(f"the answer is not JSON: {error}") from None
    if not isinstance(jwk, dict):
        raise PublicKeyError("the answer is not a JSON object")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise PublicKeyError(f"not an Ed25519 key (kty={jwk.get('kty')!r}, crv={jwk.get('crv')!r})")
    if jwk.get("alg", "EdDSA") != "EdDSA":
        raise PublicKeyError(f"the key is for {jwk.get('alg')!r}, not EdDSA")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise PublicKeyError("the JWK has no 'x' member")
    return load_public_key(x)


class KeyProvider:
    """Resolves the public key for a `Settings`, caching fetched keys and recent fetch failures."""

    def __init__(
        self,
        fetch: Fetch = http_get,
        clock: Clock = time.monotonic,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        retry_after: float = RETRY_AFTER_SECONDS,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._timeout = timeout
        self._retry_after = retry_after
        self._fetched: dict[str, Ed25519PublicKey] = {}
        self._failures: dict[str, _FetchFailure] = {}
        # One fetch at a time: sessions starting together wait for it instead of repeating it.
        self._lock = threading.Lock()

    def public_key(self, settings: Settings) -> Ed25519PublicKey:
        """The key to verify assertions with (raises KeyUnavailableError saying why there is none)."""
        if settings.public_key is not None:
            try:
                return load_public_key(settings.public_key)
            except PublicKeyError as error:
                raise KeyUnavailableError(
                    f"the configured public key ({ENV_PUBLIC_KEY} or configure()) is unusable: {error}"
                ) from None
        if settings.gatehouse_url:
            return self._fetched_key(settings.gatehouse_url + KEY_PATH)
        raise KeyUnavailableError(
            f"no public key to check it with: {ENV_PUBLIC_KEY} is not set (`gatehouse run` sets it) "
            f"and neither is {ENV_GATEHOUSE_URL} to fetch it from"
        )

    def _fetched_key(self, url: str) -> Ed25519PublicKey:
        with self._lock:
            cached = self._fetched.get(url)
            if cached is not None:
                return cached
            failure = self._failures.get(url)
            if failure is not None and self._clock() - failure.at < self._retry_after:
                raise KeyUnavailableError(failure.message)
            try:
                key = key_from_jwk(self._fetch(url, self._timeout))
            except (OSError, ValueError) as error:
                # OSError covers URLError, timeouts and refused connections; ValueError bad answers.
                message = f"could not fetch the public key from {url}: {_describe(error)}"
                self._failures[url] = _FetchFailure(message, self._clock())
                raise KeyUnavailableError(message) from None
            self._failures.pop(url, None)
            self._fetched[url] = key
            return key


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__
