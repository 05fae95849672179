"""verify_assertion: what makes an X-Gatehouse-Assertion trustworthy, and every way it can fail."""

from __future__ import annotations

import hashlib
import hmac

import jwt
import pytest

from conftest import AUDIENCE, NOW, KeyPair, b64url, b64url_json, segments
from streamlit_gatehouse import (
    InvalidAssertionError,
    PublicKeyError,
    Reason,
    load_public_key,
    verify_assertion,
)


def refused(reason: Reason, token: str | None, key: object, **kwargs: object) -> InvalidAssertionError:
    with pytest.raises(InvalidAssertionError) as caught:
        verify_assertion(token, key, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason is reason, caught.value
    return caught.value


def test_valid_assertion_returns_its_claims(keys: KeyPair) -> None:
    claims = verify_assertion(keys.sign(), keys.public_b64, audience=AUDIENCE, now=NOW + 1)
    assert claims["sub"] == "alice"
    assert claims["email"] == "alice@example.com"
    assert claims["name"] == "Alice Example"
    assert claims["roles"] == ["analyst", "viewer"]
    assert claims["sid"] == "session-1"


def test_key_forms_gatehouse_hands_out_are_all_accepted(keys: KeyPair) -> None:
    token = keys.sign()
    padded = keys.public_b64 + "=" * (-len(keys.public_b64) % 4)
    for key in (keys.public_b64, padded, keys.public_raw, keys.private.public_key()):
        assert verify_assertion(token, key, now=NOW)["sub"] == "alice"


def test_audience_is_skipped_when_unknown_but_issuer_is_not(keys: KeyPair) -> None:
    assert verify_assertion(keys.sign(aud="https://elsewhere.example"), keys.public_b64, now=NOW)
    refused(Reason.ISSUER, keys.sign(iss="someone-else"), keys.public_b64, now=NOW)


def test_trailing_slash_on_the_expected_audience_is_ignored(keys: KeyPair) -> None:
    assert verify_assertion(keys.sign(), keys.public_b64, audience=AUDIENCE + "/", now=NOW)


def test_wrong_audience_is_refused(keys: KeyPair) -> None:
    token = keys.sign(aud="https://other-app.example")
    error = refused(Reason.AUDIENCE, token, keys.public_b64, audience=AUDIENCE, now=NOW)
    assert AUDIENCE in str(error)


def test_missing_audience_is_refused_when_one_is_expected(keys: KeyPair) -> None:
    refused(Reason.CLAIMS, keys.sign(omit=("aud",)), keys.public_b64, audience=AUDIENCE, now=NOW)


def test_wrong_or_missing_issuer_is_refused(keys: KeyPair) -> None:
    refused(Reason.ISSUER, keys.sign(iss="gatehouse2"), keys.public_b64, audience=AUDIENCE, now=NOW)
    refused(Reason.CLAIMS, keys.sign(omit=("iss",)), keys.public_b64, audience=AUDIENCE, now=NOW)


def test_expired_assertion_is_refused_after_the_leeway(keys: KeyPair) -> None:
    token = keys.sign()  # exp = NOW + 120
    assert verify_assertion(token, keys.public_b64, now=NOW + 120 + 30)
    error = refused(Reason.EXPIRED, token, keys.public_b64, now=NOW + 120 + 31)
    assert "expired" in str(error)
    refused(Reason.EXPIRED, token, keys.public_b64, now=NOW + 3600, leeway=0)


def test_assertion_from_the_future_is_refused(keys: KeyPair) -> None:
    token = keys.sign(iat=NOW + 100, exp=NOW + 220)
    assert verify_assertion(token, keys.public_b64, now=NOW + 70)
    refused(Reason.NOT_YET_VALID, token, keys.public_b64, now=NOW + 69)


def test_signature_by_another_key_is_refused(keys: KeyPair, other_keys: KeyPair) -> None:
    refused(Reason.SIGNATURE, other_keys.sign(), keys.public_b64, now=NOW)


def test_tampered_payload_is_refused(keys: KeyPair) -> None:
    header, _, signature = segments(keys.sign())
    promoted = jwt.decode(keys.sign(), options={"verify_signature": False})
    promoted["roles"] = ["admin"]
    forged = ".".join([header, b64url_json(promoted), signature])
    refused(Reason.SIGNATURE, forged, keys.public_b64, now=NOW)


def test_tampered_signature_is_refused(keys: KeyPair) -> None:
    header, payload, signature = segments(keys.sign())
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    refused(Reason.SIGNATURE, f"{header}.{payload}.{flipped}", keys.public_b64, now=NOW)
    refused(Reason.SIGNATURE, f"{header}.{payload}.", keys.public_b64, now=NOW)


def test_missing_assertion_is_refused(keys: KeyPair) -> None:
    refused(Reason.MISSING, None, keys.public_b64, now=NOW)
    refused(Reason.MISSING, "", keys.public_b64, now=NOW)


def test_garbage_is_malformed(keys: KeyPair) -> None:
    for garbage in ("not-a-jwt", "a.b", "###.###.###"):
        refused(Reason.MALFORMED, garbage, keys.public_b64, now=NOW)


def test_alg_none_is_refused(keys: KeyPair) -> None:
    _, payload, _ = segments(keys.sign(roles=["admin"]))
    unsigned = f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    refused(Reason.ALGORITHM, unsigned, keys.public_b64, now=NOW)


def test_hs256_signed_with_the_public_key_is_refused(keys: KeyPair) -> None:
    """The classic confusion: HMAC keyed with the (public) verification key."""
    _, payload, _ = segments(keys.sign(roles=["admin"]))
    for secret in (keys.public_raw, keys.public_b64.encode()):
        signing_input = f"{b64url_json({'alg': 'HS256', 'typ': 'JWT'})}.{payload}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        refused(Reason.ALGORITHM, f"{signing_input}.{b64url(mac)}", keys.public_b64, now=NOW)


def test_eddsa_header_over_an_hs256_signature_is_refused(keys: KeyPair) -> None:
    _, payload, _ = segments(keys.sign(roles=["admin"]))
    signing_input = f"{b64url_json({'alg': 'EdDSA', 'typ': 'JWT'})}.{payload}"
    mac = hmac.new(keys.public_raw, signing_input.encode(), hashlib.sha256).digest()
    refused(Reason.SIGNATURE, f"{signing_input}.{b64url(mac)}", keys.public_b64, now=NOW)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", ""),
        ("sub", 7),
        ("roles", "admin"),
        ("roles", ["admin", 1]),
        ("email", 5),
        ("name", ["x"]),
        ("exp", "later"),
        ("iat", True),
    ],
)
def test_claims_of_the_wrong_type_are_refused(keys: KeyPair, claim: str, value: object) -> None:
    refused(Reason.CLAIMS, keys.sign(**{claim: value}), keys.public_b64, now=NOW)


@pytest.mark.parametrize("claim", ["sub", "iat", "exp"])
def test_required_claims_must_be_present(keys: KeyPair, claim: str) -> None:
    refused(Reason.CLAIMS, keys.sign(omit=(claim,)), keys.public_b64, now=NOW)


def test_null_email_is_allowed(keys: KeyPair) -> None:
    assert verify_assertion(keys.sign(email=None), keys.public_b64, now=NOW)["email"] is None


@pytest.mark.parametrize("bad", ["", "!!!", b64url(b"short"), b"\x00" * 31, 42])
def test_unusable_public_keys_are_reported(bad: object) -> None:
    with pytest.raises(PublicKeyError):
        load_public_key(bad)  # type: ignore[arg-type]
