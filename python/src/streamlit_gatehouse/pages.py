"""`navigation()`: `st.navigation` with only the pages the signed-in user may open.

Streamlit serves only the pages passed to `st.navigation` on that run: a page left out is neither
listed nor reachable by typing its URL (Streamlit shows its default page instead). So filtering
the list per user is access control, not just a tidier menu.

`filter_pages` is the pure rule, testable without a Streamlit runtime; `navigation` applies it to
the current user and hands the result to `st.navigation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import Any, TypeVar

import streamlit as st

from .guards import require_login
from .user import normalize_roles

PageT = TypeVar("PageT")
# Page (its object, url_path or title) -> the roles that may open it.
RoleRules = Mapping[Any, Iterable[str] | str]


def filter_pages(
    pages: Sequence[PageT] | Mapping[str, Sequence[PageT]],
    roles: RoleRules | None,
    user_roles: Iterable[str],
) -> list[PageT] | dict[str, list[PageT]]:
    """The pages a user holding `user_roles` may open, in the shape they were given.

    `pages` is a list, or a dict of section -> list, as for `st.navigation`. `roles` maps a page
    (the page object, its `url_path` or its `title`) to the roles allowed to open it; any one
    suffices, and an empty list allows nobody. A page named by several keys must satisfy each.
    Pages `roles` does not name are open to every signed-in user. Sections left empty are dropped.

    Raises ValueError when `roles` names a page that is not in `pages`: a misspelt name would
    otherwise leave the page it meant open to everybody.
    """
    rules = _compile_rules(pages, roles or {})
    held = set(normalize_roles(user_roles))

    def allowed(page: PageT) -> bool:
        needed = [rule for key, rule in rules if _names(page, key)]
        return all(held.intersection(rule) for rule in needed)

    if isinstance(pages, Mapping):
        sections = {section: [p for p in items if allowed(p)] for section, items in pages.items()}
        return {section: items for section, items in sections.items() if items}
    return [page for page in pages if allowed(page)]


def navigation(
    pages: Sequence[Any] | Mapping[str, Sequence[Any]],
    roles: RoleRules | None = None,
    **kwargs: Any,
) -> Any:
    """`st.navigation(pages, **kwargs)` restricted to the pages the current user may open.

    `roles` is as for `filter_pages`; besides a page's object, URL path or title, a key can be the
    script path or function given in `pages`. Page-likes that are not `st.Page` objects are
    wrapped in `st.Page` first, as `st.navigation` would. Other keyword arguments (`position`,
    `expanded`) go to `st.navigation`. Visitors who are not signed in get
    `require_login()`'s message; a signed-in user allowed no page at all gets an error.
    Both stop the script. Returns the page to run: call `.run()` on it.
    """
    user = require_login()
    as_pages: Sequence[Any] | Mapping[str, Sequence[Any]]
    if isinstance(pages, Mapping):
        as_pages = {section: [_as_page(p) for p in items] for section, items in pages.items()}
    else:
        as_pages = [_as_page(p) for p in pages]
    visible = filter_pages(as_pages, _translate_keys(pages, as_pages, roles or {}), user.roles)
    if not visible:
        st.error(
            "**No pages for you.** You are signed in, but none of this app's pages is open to your "
            "roles. Ask an administrator if you need access.",
            icon=":material/block:",
        )
        st.stop()
    return st.navigation(visible, **kwargs)


def _compile_rules(
    pages: Sequence[PageT] | Mapping[str, Sequence[PageT]], roles: RoleRules
) -> list[tuple[Any, tuple[str, ...]]]:
    every_page = _flatten(pages)
    compiled = []
    for key, allowed_roles in roles.items():
        if not any(_names(page, key) for page in every_page):
            known = ", ".join(sorted({repr(n) for p in every_page for n in _identifiers(p)}))
            raise ValueError(f"roles names a page that is not in pages: {key!r} (pages: {known})")
        compiled.append((key, normalize_roles(allowed_roles)))
    return compiled


def _names(page: Any, key: Any) -> bool:
    """Whether the rule key `key` designates `page`: the page itself, its title or its URL path."""
    if key is page:
        return True
    if not isinstance(key, str):
        return False
    return key == getattr(page, "title", None) or key.strip("/") in _url_paths(page)


def _url_paths(page: Any) -> set[str]:
    """The page's URL path, without slashes.

    Streamlit reports "" as the `url_path` of the default page, so the path the page was given
    (`_url_path`) counts too; otherwise a rule for the first page would depend on its position.
    """
    paths = (getattr(page, attribute, None) for attribute in ("url_path", "_url_path"))
    return {path.strip("/") for path in paths if isinstance(path, str) and path.strip("/")}


def _identifiers(page: Any) -> set[str]:
    """Every string that names `page`, for error messages."""
    title = getattr(page, "title", None)
    return _url_paths(page) | ({title} if isinstance(title, str) and title else set())


def _flatten(pages: Sequence[PageT] | Mapping[str, Sequence[PageT]]) -> list[PageT]:
    if isinstance(pages, Mapping):
        return [page for items in pages.values() for page in items]
    return list(pages)


def _as_page(page: Any) -> Any:
    """An `st.Page` for a page-like (a `StreamlitPage` is returned as is)."""
    if hasattr(page, "url_path") and hasattr(page, "run"):
        return page
    return st.Page(page)


def _translate_keys(
    original: Sequence[Any] | Mapping[str, Sequence[Any]],
    converted: Sequence[Any] | Mapping[str, Sequence[Any]],
    roles: RoleRules,
) -> RoleRules:
    """Rules keyed by a page-like the caller passed (a script path, a function) re-keyed to its page.

    A string that is one of the script paths in `pages` means that script's page; any other
    string is left to match a title or URL path.
    """
    by_path: dict[str, Any] = {}
    by_object: dict[int, Any] = {}
    for before, after in zip(_flatten(original), _flatten(converted), strict=True):
        if isinstance(before, str | PurePath):
            by_path[str(before)] = after
        else:
            by_object[id(before)] = after

    def translate(key: Any) -> Any:
        if isinstance(key, str | PurePath):
            return by_path.get(str(key), key)
        return by_object.get(id(key), key)

    return {translate(key): value for key, value in roles.items()}
