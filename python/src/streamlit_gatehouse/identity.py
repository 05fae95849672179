"""`current_user()`: the signed-in user of this Streamlit session, proven by Gatehouse's assertion.

The plain identity headers (`X-Gatehouse-User`, `-Email`, `-Name`, `-Roles`) are not trusted here:
anyone who reaches Streamlit without going through Gatehouse could send them. Only the claims of
an `X-Gatehouse-Assertion` that verifies (signature by Gatehouse's key, issuer, audience when
known, expiry at first sight: see `first_sight`) make a signed-in `User`. Anything else gives
the anonymous user plus a `Problem` saying why, logged once per kind per process and shown by
`require_login()`.
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

from .assertion import InvalidAssertionError, Reason
from .config import Settings, current_settings
from .first_sight import FirstSightVerifier
from .keys import KeyProvider, KeyUnavailableError
from .user import User

ASSERTION_HEADER = "X-Gatehouse-Assertion"
RUN_COMMAND = "gatehouse run -- streamlit run app.py"


def run_command_for(script: str | None, cwd: str) -> str:
    """The command that starts this app behind Gatehouse: its own script, relative to `cwd` when it is
    under it (as it was most likely typed), else its full path; `app.py` when the script is unknown."""
    if not script:
        return RUN_COMMAND
    relative = os.path.relpath(script, cwd)
    shown = script if relative.startswith("..") else relative
    return f"gatehouse run -- streamlit run {shlex.quote(shown)}"


def run_command() -> str:
    """[`run_command_for`] for the running Streamlit script."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx(suppress_warning=True)
        script = getattr(ctx, "main_script_path", None) if ctx is not None else None
    except Exception:  # an older or newer Streamlit without it: the generic hint
        script = None
    return run_command_for(script, os.getcwd())

logger = logging.getLogger("streamlit_gatehouse")


@dataclass(frozen=True)
class Problem:
    """Why nobody is signed in: a short code (for logs and tests), a sentence (for people),
    and for a missing assertion the command that puts the app behind Gatehouse."""

    code: str
    message: str
    command: str | None = None


@dataclass(frozen=True)
class Identity:
    """The user of this session, and when anonymous, the reason."""

    user: User
    problem: Problem | None = None


class IdentityResolver:
    """Turns request headers into an `Identity`; owns the key provider and the first-sight cache."""

    def __init__(
        self,
        keys: KeyProvider | None = None,
        verifier: FirstSightVerifier | None = None,
        settings: Callable[[], Settings] = current_settings,
    ) -> None:
        # `is None`, not `or`: an empty FirstSightVerifier has len() 0 and so is falsy.
        self._keys = KeyProvider() if keys is None else keys
        self._verifier = FirstSightVerifier() if verifier is None else verifier
        self._settings = settings
        self._warned: set[str] = set()
        self._warned_lock = threading.Lock()

    def resolve(self, headers: Mapping[str, str], scope: Hashable = None) -> Identity:
        """The identity these headers prove; `scope` is the Streamlit session id (or None)."""
        token = _header(headers, ASSERTION_HEADER)
        if not token:
            return self._anonymous(
                Reason.MISSING.value,
                f"the request has no {ASSERTION_HEADER} header, so the app is not running behind Gatehouse",
                command=run_command(),
            )
        settings = self._settings()
        try:
            key = self._keys.public_key(settings)
        except KeyUnavailableError as error:
            return self._anonymous("key", f"the {ASSERTION_HEADER} header cannot be checked: {error}")
        try:
            claims = self._verifier.verify(token, key, settings.audience, scope=scope)
        except InvalidAssertionError as error:
            return self._anonymous(
                error.reason.value, f"the {ASSERTION_HEADER} header is not valid: {error.message}"
            )
        return Identity(User.from_claims(claims))

    def _anonymous(self, code: str, message: str, command: str | None = None) -> Identity:
        with self._warned_lock:
            first = code not in self._warned
            self._warned.add(code)
        if first:
            hint = f" (start it with: {command})" if command else ""
            logger.warning("streamlit-gatehouse: treating the visitor as not signed in: %s%s", message, hint)
        return Identity(User.anonymous(), Problem(code, message, command))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value; Streamlit's headers ignore case, a plain dict may not."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value.strip() if value else None


_resolver = IdentityResolver()


def resolve_identity() -> Identity:
    """The identity of the current Streamlit session (anonymous outside a Streamlit session)."""
    headers, scope = _session_headers()
    return _resolver.resolve(headers, scope)


def current_user() -> User:
    """The signed-in user of this Streamlit session, or the anonymous `User`.

    Trusts only a valid `X-Gatehouse-Assertion`; the user's details and roles are that
    assertion's claims. Call it (or `require_login`, `navigation`, ...) on every run of your
    script, near the top: the first run follows the connection at once, while the assertion is
    fresh, and later runs reuse that check (see the package README, "Trust model").
    """
    return resolve_identity().user


def _session_headers() -> tuple[Mapping[str, str], Hashable]:
    """`st.context.headers` and the session id, or empty headers when no session is running."""
    import streamlit as st
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None:
        return {}, None
    return st.context.headers, ctx.session_id
