"""Checking an assertion's expiry once, when it is first seen, and remembering the result.

Why not check `exp` on every rerun: Streamlit reads request headers once, from the WebSocket
upgrade that opens the session, and `st.context.headers` keeps returning those same headers
for as long as the browser tab stays connected, while Gatehouse's assertion lives two minutes.
Checking `exp` on every rerun would sign everybody out of a tab after two minutes.

That connection is itself proof enough: Gatehouse checks the session on the upgrade, and when the
session ends (sign-out, expiry, revocation by an administrator, disabled account) it closes the
WebSockets of that session at once. So a connection that still exists belongs to a session that
is still valid. The helper therefore checks `iat`/`exp` (with a small leeway for clock skew) the
first time a token is seen and caches the verified claims keyed by the token; later reruns of
the same Streamlit session reuse them. An expired token seen for the first time is refused.

The cache entry is also scoped to the Streamlit session that saw the token (when there is one),
so a token copied from somewhere and replayed on a new connection straight to Streamlit, after it
expired, is still refused: the replay window is the token's own lifetime, not the process's.

The cache is bounded (least recently used entries go first) and safe to use from the threads
Streamlit runs sessions on. Time comes from an injectable clock, so tests move it instead of
sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .assertion import DEFAULT_LEEWAY_SECONDS, Claims, PublicKeyLike, load_public_key, verify_assertion

DEFAULT_MAX_ENTRIES = 10_000

Clock = Callable[[], float]


class FirstSightVerifier:
    """Verifies assertions, checking their times only the first time each one is seen.

    A cache hit needs the same token, the same public key and audience, and the same `scope`
    (the Streamlit session id; None outside Streamlit).
    """

    def __init__(
        self,
        clock: Clock = time.time,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        leeway: float = DEFAULT_LEEWAY_SECONDS,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max_entries = max_entries
        self._leeway = leeway
        self._verified: OrderedDict[Hashable, Claims] = OrderedDict()
        self._lock = threading.Lock()

    def verify(
        self,
        token: str | None,
        public_key: PublicKeyLike,
        audience: str | None = None,
        scope: Hashable = None,
    ) -> Claims:
        """The token's claims: from the cache, else verified now (raises `InvalidAssertionError`)."""
        key = load_public_key(public_key)
        cache_key = (scope, token, _raw_bytes(key), audience.rstrip("/") if audience else None)
        with self._lock:
            cached = self._verified.get(cache_key)
            if cached is not None:
                self._verified.move_to_end(cache_key)
                return dict(cached)
        # Verified outside the lock: signature checks of other sessions need not queue.
        claims = verify_assertion(token, key, audience, now=self._clock(), leeway=self._leeway)
        with self._lock:
            self._verified[cache_key] = claims
            self._verified.move_to_end(cache_key)
            while len(self._verified) > self._max_entries:
                self._verified.popitem(last=False)
        return dict(claims)

    def __len__(self) -> int:
        with self._lock:
            return len(self._verified)

    def clear(self) -> None:
        with self._lock:
            self._verified.clear()


def _raw_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
