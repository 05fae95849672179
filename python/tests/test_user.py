"""User: built from verified claims; has_role means "any one of"."""

from __future__ import annotations

import pytest

from streamlit_gatehouse import User


def alice(*roles: str) -> User:
    return User(username="alice", name="Alice", roles=roles, is_authenticated=True)


def test_has_role_is_true_when_any_one_role_is_held() -> None:
    user = alice("analyst", "viewer")
    assert user.has_role("analyst")
    assert user.has_role("admin", "viewer")
    assert not user.has_role("admin")
    assert not user.has_role("admin", "ops")


def test_role_names_match_exactly() -> None:
    user = alice("admin")
    assert not user.has_role("Admin")
    assert not user.has_role("adm")
    assert user.has_role(" admin ")  # surrounding blanks in the *asked* name are ignored


def test_anonymous_user_has_no_role_even_if_roles_are_set() -> None:
    assert not User.anonymous().has_role("admin")
    assert not User(username="x", roles=("admin",), is_authenticated=False).has_role("admin")


def test_has_role_needs_a_role_name() -> None:
    with pytest.raises(ValueError):
        alice("admin").has_role()
    with pytest.raises(ValueError):
        alice("admin").has_role(" ")


def test_from_claims() -> None:
    user = User.from_claims(
        {"sub": "bob", "email": None, "name": "", "roles": ["b", "a", "b"], "iss": "gatehouse"}
    )
    assert user == User(username="bob", email=None, name="bob", roles=("b", "a"), is_authenticated=True)
