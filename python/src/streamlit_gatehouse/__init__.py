"""streamlit-gatehouse: the signed-in user, roles and role-filtered navigation for Streamlit apps
running behind Gatehouse.

    import streamlit_gatehouse as gh

    user = gh.require_login()
    st.write(f"Hello {user.name}, your roles: {', '.join(user.roles)}")

Modules: `assertion` (pure token verification), `first_sight` (expiry checked once per token),
`config` and `keys` (settings and the public key), `identity` (`current_user`), `guards`
(`require_login`, `require_role`), `pages` (`navigation`), `links` (sign-out, account, admin console).
"""

from __future__ import annotations

from .assertion import InvalidAssertionError, PublicKeyError, Reason, load_public_key, verify_assertion
from .config import configure
from .first_sight import FirstSightVerifier
from .guards import require_login, require_role, requires_role
from .identity import current_user
from .links import account_link, admin_link, logout_button
from .pages import filter_pages, navigation
from .text import escape_markdown
from .user import User

__all__ = [
    "FirstSightVerifier",
    "InvalidAssertionError",
    "PublicKeyError",
    "Reason",
    "User",
    "account_link",
    "admin_link",
    "configure",
    "current_user",
    "escape_markdown",
    "filter_pages",
    "load_public_key",
    "logout_button",
    "navigation",
    "require_login",
    "require_role",
    "requires_role",
    "verify_assertion",
]

__version__ = "0.1.0"
