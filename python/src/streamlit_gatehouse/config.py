"""Where the helper's settings come from: `configure()` first, then the environment.

`gatehouse run` gives the app its settings in environment variables; an app started some other
way (next to `gatehouse serve`, in a container, in tests) can set them with `configure()`.
The environment is read at each use, so nothing here is stale after a change.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from .assertion import PublicKeyLike

ENV_PUBLIC_KEY = "GATEHOUSE_ASSERTION_PUBLIC_KEY"
ENV_PUBLIC_URL = "GATEHOUSE_PUBLIC_URL"
ENV_GATEHOUSE_URL = "GATEHOUSE_URL"
ENV_ADMIN_ROLE = "GATEHOUSE_ADMIN_ROLE"
DEFAULT_ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Settings:
    """The settings in force for one check.

    public_key:    Gatehouse's assertion key (base64url text, raw bytes or a key object), or None.
    audience:      Gatehouse's public origin, checked against the `aud` claim; None skips that check.
    gatehouse_url: where to fetch the key from when `public_key` is None (no trailing slash).
    admin_role:    the role that opens Gatehouse's admin console.
    """

    public_key: PublicKeyLike | None = None
    audience: str | None = None
    gatehouse_url: str | None = None
    admin_role: str = DEFAULT_ADMIN_ROLE


_lock = threading.Lock()
_configured = Settings(admin_role="")


def configure(
    *,
    public_key: PublicKeyLike | None = None,
    audience: str | None = None,
    gatehouse_url: str | None = None,
    admin_role: str | None = None,
) -> None:
    """Sets the helper's settings in code; each value left out falls back to the environment.

    public_key:    Gatehouse's assertion public key (default: $GATEHOUSE_ASSERTION_PUBLIC_KEY).
    audience:      Gatehouse's public origin, e.g. "https://apps.example.com"
                   (default: $GATEHOUSE_PUBLIC_URL; when neither is set, `aud` is not checked).
    gatehouse_url: where this app can reach Gatehouse to fetch the key from
                   `/_gatehouse/assertion-key` when no key is given (default: $GATEHOUSE_URL).
    admin_role:    the role shown the admin console link (default: $GATEHOUSE_ADMIN_ROLE, "admin").

    Each call replaces what an earlier call set, so calling it on every rerun is fine.
    """
    global _configured
    with _lock:
        _configured = Settings(
            public_key=public_key or None,
            audience=audience or None,
            gatehouse_url=gatehouse_url or None,
            admin_role=admin_role or "",
        )


def current_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings in force now: `configure()` values, else the environment, else defaults."""
    env = os.environ if environ is None else environ
    with _lock:
        configured = _configured
    gatehouse_url = configured.gatehouse_url or _env(env, ENV_GATEHOUSE_URL)
    return Settings(
        public_key=configured.public_key or _env(env, ENV_PUBLIC_KEY),
        audience=configured.audience or _env(env, ENV_PUBLIC_URL),
        gatehouse_url=gatehouse_url.rstrip("/") if gatehouse_url else None,
        admin_role=configured.admin_role or _env(env, ENV_ADMIN_ROLE) or DEFAULT_ADMIN_ROLE,
    )


def _env(env: Mapping[str, str], name: str) -> str | None:
    """A variable's value without surrounding blanks; None when unset or blank."""
    value = env.get(name, "").strip()
    return value or None
