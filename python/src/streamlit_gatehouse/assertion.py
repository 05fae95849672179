"""Verifying `X-Gatehouse-Assertion`, the signed token Gatehouse adds to every request it forwards.

This module is pure: no Streamlit, no environment, no network, no clock unless none is passed in.
It owns the rules an assertion must pass (EdDSA signature by Gatehouse's key, issuer, audience,
issue and expiry times, claim types) and the reasons it can fail. Caching, key discovery and
the Streamlit side live elsewhere (`first_sight`, `keys`, `identity`).

The token is a JWT: header `{"alg":"EdDSA","typ":"JWT"}`, claims `iss` ("gatehouse"), `aud`
(Gatehouse's public origin), `sub` (username), `email` (string or null), `name`, `roles`
(list of strings), `sid` (Gatehouse session id), `iat` and `exp` (iat + 120 s).
"""

from __future__ import annotations

import base64
import binascii
import enum
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ISSUER = "gatehouse"
ALGORITHM = "EdDSA"
# Allowance for clocks of Gatehouse and the app that disagree a little.
DEFAULT_LEEWAY_SECONDS = 30.0

Claims = dict[str, Any]
PublicKeyLike = str | bytes | Ed25519PublicKey


class Reason(str, enum.Enum):
    """Why an assertion was refused (stable short codes, usable in logs and tests)."""

    MISSING = "missing"
    MALFORMED = "malformed"
    ALGORITHM = "algorithm"
    SIGNATURE = "signature"
    ISSUER = "issuer"
    AUDIENCE = "audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    CLAIMS = "claims"


class InvalidAssertionError(Exception):
    """The assertion cannot be trusted; `reason` says which rule it broke."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"InvalidAssertionError({self.reason.value!r}, {self.message!r})"


class PublicKeyError(ValueError):
    """The public key given to verify with is not a usable Ed25519 key."""


def load_public_key(value: PublicKeyLike) -> Ed25519PublicKey:
    """An Ed25519 public key from what Gatehouse hands out.

    Accepts the raw 32-byte key, the same base64url text (with or without padding) that
    Gatehouse puts in `GATEHOUSE_ASSERTION_PUBLIC_KEY` and in the JWK `x` member, or a key
    object from `cryptography`.
    """
    if isinstance(value, Ed25519PublicKey):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise PublicKeyError("the public key is empty")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError) as error:
            raise PublicKeyError(f"the public key is not base64url text: {error}") from None
    elif isinstance(value, bytes):
        raw = value
    else:
        raise PublicKeyError(f"unsupported public key type {type(value).__name__}")
    if len(raw) != 32:
        raise PublicKeyError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_assertion(
    token: str | None,
    public_key: PublicKeyLike,
    audience: str | None = None,
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY_SECONDS,
) -> Claims:
    """The claims of a valid assertion; raises `InvalidAssertionError` otherwise.

    `audience` is Gatehouse's public origin (e.g. "https://apps.example.com"): when given, the
    `aud` claim must equal it (a trailing slash is ignored); when None the audience is not
    checked, but the issuer always is. `now` is the current Unix time (default: the system
    clock); `leeway` the seconds of clock difference tolerated on `iat` and `exp`.

    Raises `PublicKeyError` when `public_key` itself is unusable.
    """
    key = load_public_key(public_key)
    if not token:
        raise InvalidAssertionError(Reason.MISSING, "no assertion was given")
    _check_header(token)
    wanted_audience = audience.rstrip("/") if audience else None
    try:
        claims: Claims = jwt.decode(
            token,
            key,
            # Only EdDSA: "none", HS256 with the public key as secret, and the like are refused.
            algorithms=[ALGORITHM],
            audience=wanted_audience,
            issuer=ISSUER,
            options={
                # Times are checked below against the injectable `now`.
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": wanted_audience is not None,
                "require": ["iss", "sub", "iat", "exp"],
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidAssertionError(
            Reason.SIGNATURE, "the signature does not match Gatehouse's public key"
        ) from None
    except jwt.InvalidAlgorithmError as error:
        raise InvalidAssertionError(Reason.ALGORITHM, f"algorithm refused: {error}") from None
    except jwt.InvalidIssuerError:
        raise InvalidAssertionError(Reason.ISSUER, f"the issuer is not {ISSUER!r}") from None
    except jwt.InvalidAudienceError:
        raise InvalidAssertionError(
            Reason.AUDIENCE, f"the assertion was made for another site, not {wanted_audience!r}"
        ) from None
    except jwt.MissingRequiredClaimError as error:
        raise InvalidAssertionError(Reason.CLAIMS, str(error)) from None
    except jwt.DecodeError as error:
        raise InvalidAssertionError(Reason.MALFORMED, f"not a well-formed JWT: {error}") from None
    except jwt.InvalidTokenError as error:
        raise InvalidAssertionError(Reason.CLAIMS, str(error)) from None
    _check_times(claims, time.time() if now is None else now, leeway)
    _check_identity_claims(claims)
    return claims


def _check_header(token: str) -> None:
    """Refuses anything but an EdDSA JWT before its signature is looked at."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as error:
        raise InvalidAssertionError(Reason.MALFORMED, f"not a well-formed JWT: {error}") from None
    algorithm = header.get("alg")
    if algorithm != ALGORITHM:
        raise InvalidAssertionError(
            Reason.ALGORITHM, f"algorithm {algorithm!r} refused: only {ALGORITHM} is accepted"
        )


def _check_times(claims: Claims, now: float, leeway: float) -> None:
    issued_at, expires_at = _number(claims, "iat"), _number(claims, "exp")
    if now > expires_at + leeway:
        raise InvalidAssertionError(Reason.EXPIRED, f"the assertion expired {int(now - expires_at)} s ago")
    if issued_at > now + leeway:
        raise InvalidAssertionError(
            Reason.NOT_YET_VALID,
            f"the assertion is issued {int(issued_at - now)} s in the future (clocks out of step?)",
        )


def _number(claims: Claims, name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAssertionError(Reason.CLAIMS, f"claim {name!r} is not a number")
    return float(value)


def _check_identity_claims(claims: Claims) -> None:
    """The claims the helper builds a user from must have the types Gatehouse sends."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidAssertionError(Reason.CLAIMS, "claim 'sub' is not a username")
    if not isinstance(claims.get("email"), str | None):
        raise InvalidAssertionError(Reason.CLAIMS, "claim 'email' is not a string or null")
    if not isinstance(claims.get("name", ""), str):
        raise InvalidAssertionError(Reason.CLAIMS, "claim 'name' is not a string")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidAssertionError(Reason.CLAIMS, "claim 'roles' is not a list of strings")
