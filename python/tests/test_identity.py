"""IdentityResolver: request headers in, a User (trusted only through the assertion) out."""

from __future__ import annotations

import logging

import pytest

from conftest import AUDIENCE, NOW, FakeClock, KeyPair
from streamlit_gatehouse.config import Settings
from streamlit_gatehouse.first_sight import FirstSightVerifier
from streamlit_gatehouse.identity import IdentityResolver
from streamlit_gatehouse.keys import KeyProvider

# What Gatehouse also sends, in plain text; never trusted on its own.
PLAIN_HEADERS = {
    "X-Gatehouse-User": "alice",
    "X-Gatehouse-Email": "alice@example.com",
    "X-Gatehouse-Name": "Alice Example",
    "X-Gatehouse-Roles": "analyst,viewer",
}


def resolver(clock: FakeClock, public_key: object = None, audience: str | None = None) -> IdentityResolver:
    settings = Settings(public_key=public_key, audience=audience)  # type: ignore[arg-type]
    return IdentityResolver(
        keys=KeyProvider(fetch=_no_network),
        verifier=FirstSightVerifier(clock=clock),
        settings=lambda: settings,
    )


def _no_network(url: str, timeout: float) -> bytes:
    raise AssertionError(f"unexpected fetch of {url}")


def test_valid_assertion_makes_the_user_from_its_claims(keys: KeyPair, clock: FakeClock) -> None:
    headers = {**PLAIN_HEADERS, "x-gatehouse-assertion": keys.sign(), "X-Gatehouse-Roles": "admin"}
    identity = resolver(clock, keys.public_b64, AUDIENCE).resolve(headers, scope="s1")
    assert identity.problem is None
    user = identity.user
    assert user.is_authenticated
    assert (user.username, user.email, user.name) == ("alice", "alice@example.com", "Alice Example")
    # The roles are the signed ones, not the plain header (which says "admin" here).
    assert user.roles == ("analyst", "viewer")
    assert not user.has_role("admin")


def test_plain_headers_without_assertion_are_not_trusted(keys: KeyPair, clock: FakeClock) -> None:
    identity = resolver(clock, keys.public_b64).resolve(PLAIN_HEADERS)
    assert not identity.user.is_authenticated
    assert identity.user.username == ""
    assert identity.problem is not None and identity.problem.code == "missing"
    assert "not running behind Gatehouse" in identity.problem.message


@pytest.mark.parametrize(
    ("token_kind", "code", "words"),
    [
        ("other-key", "signature", "signature"),
        ("expired", "expired", "expired"),
        ("wrong-aud", "audience", "another site"),
        ("garbage", "malformed", "well-formed"),
    ],
)
def test_invalid_assertion_gives_anonymous_with_the_reason(
    keys: KeyPair, other_keys: KeyPair, clock: FakeClock, token_kind: str, code: str, words: str
) -> None:
    token = {
        "other-key": other_keys.sign(),
        "expired": keys.sign(iat=NOW - 600, exp=NOW - 480),
        "wrong-aud": keys.sign(aud="https://elsewhere.example"),
        "garbage": "garbage",
    }[token_kind]
    identity = resolver(clock, keys.public_b64, AUDIENCE).resolve({"X-Gatehouse-Assertion": token})
    assert not identity.user.is_authenticated
    assert identity.problem is not None
    assert identity.problem.code == code
    assert words in identity.problem.message


def test_missing_key_gives_anonymous_saying_so(keys: KeyPair, clock: FakeClock) -> None:
    identity = resolver(clock).resolve({"X-Gatehouse-Assertion": keys.sign()})
    assert not identity.user.is_authenticated
    assert identity.problem is not None and identity.problem.code == "key"
    assert "GATEHOUSE_ASSERTION_PUBLIC_KEY" in identity.problem.message


def test_each_kind_of_problem_is_logged_once(
    keys: KeyPair, other_keys: KeyPair, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    checker = resolver(clock, keys.public_b64)
    with caplog.at_level(logging.WARNING, logger="streamlit_gatehouse"):
        for _ in range(3):
            checker.resolve({})
            checker.resolve({"X-Gatehouse-Assertion": other_keys.sign()})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "X-Gatehouse-Assertion header" in warnings[0]
    assert "signature" in warnings[1]


def test_session_keeps_its_user_after_the_assertion_expires(keys: KeyPair, clock: FakeClock) -> None:
    checker = resolver(clock, keys.public_b64, AUDIENCE)
    headers = {"X-Gatehouse-Assertion": keys.sign()}
    assert checker.resolve(headers, scope="s1").user.is_authenticated
    clock.advance(3600)
    assert checker.resolve(headers, scope="s1").user.is_authenticated
    assert not checker.resolve(headers, scope="s2").user.is_authenticated
