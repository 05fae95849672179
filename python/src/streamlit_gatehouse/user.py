"""`User`: who is signed in, as stated by a verified Gatehouse assertion."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class User:
    """The person using the app.

    username:         Gatehouse username ("" when not signed in).
    email:            email address, or None when the account has none.
    name:             display name (Gatehouse falls back to the username).
    roles:            role names, in the order Gatehouse lists them.
    is_authenticated: True only when a valid Gatehouse assertion vouched for all of the above.
    """

    username: str = ""
    email: str | None = None
    name: str = ""
    roles: tuple[str, ...] = ()
    is_authenticated: bool = False

    @classmethod
    def anonymous(cls) -> User:
        """Nobody signed in (or nobody proven to be)."""
        return cls()

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> User:
        """The user described by the claims of a verified assertion."""
        username = str(claims["sub"])
        email = claims.get("email")
        return cls(
            username=username,
            email=email if isinstance(email, str) and email else None,
            name=str(claims.get("name") or username),
            roles=tuple(dict.fromkeys(str(role) for role in claims.get("roles") or ())),
            is_authenticated=True,
        )

    def has_role(self, *roles: str) -> bool:
        """Whether the user holds at least one of `roles` (always False when not signed in)."""
        wanted = normalize_roles(roles)
        if not wanted:
            raise ValueError("has_role() needs at least one role name")
        return self.is_authenticated and any(role in self.roles for role in wanted)


def normalize_roles(roles: Iterable[str] | str) -> tuple[str, ...]:
    """Role names without blanks or duplicates; a lone string is one role, not its letters."""
    if isinstance(roles, str):
        roles = (roles,)
    names: list[str] = []
    for role in roles:
        if not isinstance(role, str):
            raise TypeError(f"role names are strings, got {type(role).__name__}")
        name = role.strip()
        if name and name not in names:
            names.append(name)
    return tuple(names)
