"""FirstSightVerifier: expiry is checked when a token is first seen, then the result is reused."""

from __future__ import annotations

import threading

import pytest

from conftest import AUDIENCE, NOW, FakeClock, KeyPair
from streamlit_gatehouse import FirstSightVerifier, InvalidAssertionError, Reason

AN_HOUR = 3600


def test_token_valid_at_first_sight_stays_valid_for_later_reruns(keys: KeyPair, clock: FakeClock) -> None:
    verifier = FirstSightVerifier(clock=clock)
    token = keys.sign()
    assert verifier.verify(token, keys.public_b64, AUDIENCE, scope="session-a")["sub"] == "alice"

    clock.advance(AN_HOUR)  # long after exp: the WebSocket of that session is still open
    assert verifier.verify(token, keys.public_b64, AUDIENCE, scope="session-a")["sub"] == "alice"


def test_expired_token_seen_for_the_first_time_is_refused(keys: KeyPair, clock: FakeClock) -> None:
    verifier = FirstSightVerifier(clock=clock)
    token = keys.sign()
    clock.advance(AN_HOUR)
    with pytest.raises(InvalidAssertionError) as caught:
        verifier.verify(token, keys.public_b64, AUDIENCE, scope="session-a")
    assert caught.value.reason is Reason.EXPIRED
    assert len(verifier) == 0


def test_refused_token_is_not_remembered(keys: KeyPair, clock: FakeClock) -> None:
    verifier = FirstSightVerifier(clock=clock)
    token = keys.sign(iat=NOW + 600, exp=NOW + 720)  # from the future, valid later
    with pytest.raises(InvalidAssertionError):
        verifier.verify(token, keys.public_b64)
    clock.advance(600)
    assert verifier.verify(token, keys.public_b64)["sub"] == "alice"


def test_expired_token_replayed_in_another_session_is_refused(keys: KeyPair, clock: FakeClock) -> None:
    """A token copied out of one session cannot outlive its two minutes on a new connection."""
    verifier = FirstSightVerifier(clock=clock)
    token = keys.sign()
    verifier.verify(token, keys.public_b64, scope="session-a")
    clock.advance(AN_HOUR)
    with pytest.raises(InvalidAssertionError) as caught:
        verifier.verify(token, keys.public_b64, scope="session-b")
    assert caught.value.reason is Reason.EXPIRED
    assert verifier.verify(token, keys.public_b64, scope="session-a")["sub"] == "alice"


def test_cache_hit_needs_the_same_key_and_audience(
    keys: KeyPair, other_keys: KeyPair, clock: FakeClock
) -> None:
    verifier = FirstSightVerifier(clock=clock)
    token = keys.sign()
    verifier.verify(token, keys.public_b64, AUDIENCE)
    with pytest.raises(InvalidAssertionError) as caught:
        verifier.verify(token, other_keys.public_b64, AUDIENCE)
    assert caught.value.reason is Reason.SIGNATURE
    with pytest.raises(InvalidAssertionError) as caught:
        verifier.verify(token, keys.public_b64, "https://other.example")
    assert caught.value.reason is Reason.AUDIENCE


def test_cache_is_bounded_and_forgets_the_least_recently_used(keys: KeyPair, clock: FakeClock) -> None:
    verifier = FirstSightVerifier(clock=clock, max_entries=2)
    first, second, third = (keys.sign(sid=f"s{i}") for i in range(3))
    verifier.verify(first, keys.public_b64)
    verifier.verify(second, keys.public_b64)
    verifier.verify(first, keys.public_b64)  # first is now the most recently used
    verifier.verify(third, keys.public_b64)  # evicts second
    assert len(verifier) == 2

    clock.advance(AN_HOUR)
    assert verifier.verify(first, keys.public_b64)["sid"] == "s0"
    assert verifier.verify(third, keys.public_b64)["sid"] == "s2"
    with pytest.raises(InvalidAssertionError) as caught:
        verifier.verify(second, keys.public_b64)
    assert caught.value.reason is Reason.EXPIRED


def test_returned_claims_are_copies(keys: KeyPair, clock: FakeClock) -> None:
    verifier = FirstSightVerifier(clock=clock)
    token = keys.sign()
    verifier.verify(token, keys.public_b64)["sub"] = "mallory"
    assert verifier.verify(token, keys.public_b64)["sub"] == "alice"


def test_concurrent_sessions_share_one_cache(keys: KeyPair, clock: FakeClock) -> None:
    verifier = FirstSightVerifier(clock=clock, max_entries=50)
    tokens = [keys.sign(sid=f"s{i}") for i in range(20)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(40):
                token = tokens[(i + offset) % len(tokens)]
                verifier.verify(token, keys.public_b64, scope=offset % 3)
        except BaseException as error:  # reported below, threads cannot fail the test themselves
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(verifier) == 50  # 20 tokens x 3 scopes = 60, bounded at 50


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FirstSightVerifier(max_entries=0)
