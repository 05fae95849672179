"""Shared test tools: Ed25519 keys made with `cryptography`, assertions shaped like Gatehouse's, a clock."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streamlit_gatehouse import config

AUDIENCE = "http://127.0.0.1:8501"
# A fixed "now" (2026-11-01T00:00:00Z): tests never read the real clock.
NOW = 1_793_491_200


@dataclass
class KeyPair:
    private: Ed25519PrivateKey

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_b64(self) -> str:
        """The form Gatehouse hands out: base64url without padding (the JWK `x`)."""
        return base64.urlsafe_b64encode(self.public_raw).rstrip(b"=").decode()

    def sign(self, omit: tuple[str, ...] = (), **overrides: Any) -> str:
        """An assertion like Gatehouse's, issued at NOW unless `iat`/`exp` say otherwise.

        `overrides` replace claims; the claims named in `omit` are left out.
        """
        claims: dict[str, Any] = {
            "iss": "gatehouse",
            "aud": AUDIENCE,
            "sub": "alice",
            "email": "alice@example.com",
            "name": "Alice Example",
            "roles": ["analyst", "viewer"],
            "sid": "session-1",
            "iat": NOW,
            "exp": NOW + 120,
        }
        claims.update(overrides)
        for name in omit:
            del claims[name]
        return jwt.encode(claims, self.private, algorithm="EdDSA")


@pytest.fixture
def keys() -> KeyPair:
    return KeyPair(Ed25519PrivateKey.generate())


@pytest.fixture
def other_keys() -> KeyPair:
    return KeyPair(Ed25519PrivateKey.generate())


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def segments(token: str) -> list[str]:
    return token.split(".")


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's GATEHOUSE_* variables or another test's configure()."""
    for name in (
        config.ENV_PUBLIC_KEY,
        config.ENV_PUBLIC_URL,
        config.ENV_GATEHOUSE_URL,
        config.ENV_ADMIN_ROLE,
    ):
        monkeypatch.delenv(name, raising=False)
    config.configure()
    yield
    config.configure()
