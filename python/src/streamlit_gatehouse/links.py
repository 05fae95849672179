"""Links to Gatehouse's own pages: sign out, account, admin console.

They are plain `<a target="_self">` anchors rendered with `st.markdown`, because the pages they
open replace the whole app in the same tab. (`st.link_button`, `st.page_link` and Markdown links
to other paths open a new tab; a sign-out page in a second tab would leave the app open in the
first.) Sign-out is a link on purpose: Gatehouse's `/_gatehouse/logout` page asks for
confirmation and posts the form with its CSRF token.

Gatehouse serves these pages at the root of the site, whatever path the app is under, so the
links are root-relative and work under any host name the visitor used.
"""

from __future__ import annotations

import html

import streamlit as st

from .config import current_settings
from .identity import current_user

LOGOUT_PATH = "/_gatehouse/logout"
ACCOUNT_PATH = "/_gatehouse/account"
ADMIN_PATH = "/_gatehouse/admin"

# Looks like a Streamlit secondary button and follows the light/dark theme through
# `currentColor`; Streamlit keeps inline styles in Markdown rendered with unsafe_allow_html.
_BUTTON_STYLE = (
    "display:inline-block;padding:0.25rem 0.75rem;border-radius:0.5rem;"
    "border:1px solid color-mix(in srgb, currentColor 25%, transparent);"
    "color:inherit;text-decoration:none;line-height:1.6"
)


def anchor_html(href: str, label: str, button: bool = False) -> str:
    """An anchor that opens `href` in place of the app (same tab)."""
    style = f' style="{_BUTTON_STYLE}"' if button else ""
    return f'<a href="{html.escape(href, quote=True)}" target="_self"{style}>{html.escape(label)}</a>'


def logout_button(label: str = "Sign out") -> bool:
    """A button-like link to Gatehouse's sign-out page, shown to signed-in users only.

    Returns whether it was shown.
    """
    if not current_user().is_authenticated:
        return False
    st.markdown(anchor_html(LOGOUT_PATH, label, button=True), unsafe_allow_html=True)
    return True


def account_link(label: str = "Your account") -> bool:
    """A link to the user's Gatehouse account page (password, email, sessions); signed-in users only."""
    if not current_user().is_authenticated:
        return False
    st.markdown(anchor_html(ACCOUNT_PATH, label), unsafe_allow_html=True)
    return True


def admin_link(label: str = "Admin console") -> bool:
    """A link to Gatehouse's admin console, shown only to holders of the admin role.

    The admin role is `$GATEHOUSE_ADMIN_ROLE` (set by `gatehouse run`), `configure(admin_role=...)`,
    or "admin". Gatehouse itself guards the console; this only hides a link that would not work.
    """
    if not current_user().has_role(current_settings().admin_role):
        return False
    st.markdown(anchor_html(ADMIN_PATH, label), unsafe_allow_html=True)
    return True
