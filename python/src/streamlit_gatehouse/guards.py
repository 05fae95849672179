"""Stopping a page for visitors who may not see it: `require_login`, `require_role`, `@requires_role`.

Each shows one clear message in the page (what is needed, and for a visitor who is not signed
in, why the helper could not tell who they are) and then calls `st.stop()`, so nothing after it
runs for that visitor.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import streamlit as st

from .identity import Identity, resolve_identity
from .text import escape_markdown, role_list
from .user import User, normalize_roles

P = ParamSpec("P")
R = TypeVar("R")


def require_login() -> User:
    """The signed-in user; for anyone else, an error message and `st.stop()`."""
    identity = resolve_identity()
    if not identity.user.is_authenticated:
        _stop_anonymous(identity)
    return identity.user


def require_role(*roles: str) -> User:
    """The signed-in user if they hold at least one of `roles`; else a message and `st.stop()`."""
    wanted = normalize_roles(roles)
    if not wanted:
        raise ValueError("require_role() needs at least one role name")
    user = require_login()
    if not user.has_role(*wanted):
        st.error(role_denied_message(user, wanted), icon=":material/block:")
        st.stop()
    return user


def requires_role(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator for a page function: runs it only for users holding one of `roles`.

    The wrapped function keeps its name, so `st.Page(fn)` still derives its title and URL from it.
    """
    wanted = normalize_roles(roles)
    if not wanted:
        raise ValueError("requires_role() needs at least one role name")

    def decorate(page: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(page)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            require_role(*wanted)
            return page(*args, **kwargs)

        return guarded

    return decorate


def role_denied_message(user: User, needed: tuple[str, ...]) -> str:
    """What a signed-in user without the needed role is told (Markdown)."""
    if len(needed) == 1:
        needs = f"the role {role_list(needed)}"
    else:
        needs = f"one of the roles {role_list(needed, 'or')}"
    held = f"your roles: {role_list(user.roles)}" if user.roles else "you have no roles"
    return (
        f"**Access denied.** This page needs {needs}; "
        f"you are signed in as {escape_markdown(user.username)} and {held}. "
        "Ask an administrator if you need access."
    )


def login_required_message(identity: Identity) -> str:
    """What a visitor who is not (provably) signed in is told (Markdown)."""
    reason = identity.problem.message if identity.problem else "nobody is signed in"
    return f"**Sign-in required.** This app could not confirm who you are: {escape_markdown(reason)}."


def _stop_anonymous(identity: Identity) -> None:
    st.error(login_required_message(identity), icon=":material/lock:")
    if identity.problem and identity.problem.command:
        st.caption("To put this app behind Gatehouse, start it with:")
        st.code(identity.problem.command, language="bash")
    st.stop()
