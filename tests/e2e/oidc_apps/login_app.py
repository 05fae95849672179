"""A Streamlit app that signs in with Streamlit's own `st.login()` (OpenID Connect), for test_oidc.py.

Nothing here knows about Gatehouse: the provider is whatever `.streamlit/secrets.toml` in the working
directory names in its `[auth]` section (client_id, client_secret, server_metadata_url, ...). The test
starts two copies of this file, each from its own folder with its own secrets, and tells them apart by
the title in $LOGIN_APP_TITLE.

`st.user` holds the claims of the provider's ID token (Streamlit never calls the userinfo endpoint).
Values are shown with st.text, so an address or a name is never read as Markdown.
"""

from __future__ import annotations

import os

import streamlit as st

TITLE = os.environ.get("LOGIN_APP_TITLE", "Login app")

st.set_page_config(page_title=TITLE)
st.title(TITLE)

if not st.user.is_logged_in:
    st.text("Not logged in")
    if st.button("Log in"):
        st.login()
else:
    roles = st.user.get("roles") or []
    if isinstance(roles, str):
        roles = [roles]
    st.text(f"Name: {st.user.get('name')}")
    st.text(f"Email: {st.user.get('email')}")
    st.text(f"Roles: {', '.join(str(role) for role in roles)}")
    st.text(f"Username: {st.user.get('preferred_username')}")
    if st.button("Log out"):
        st.logout()
