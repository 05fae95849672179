"""Gatehouse demo app.

An ordinary Streamlit app: it knows nothing about Gatehouse. Run it behind
Gatehouse and `st.user` tells it who is signed in:

    gatehouse run -- streamlit run demo/app.py

Gatehouse starts Streamlit with `--server.trustedUserHeaders`, so the
identity headers it sets on the WebSocket upgrade (X-Gatehouse-Email,
X-Gatehouse-Name, ...) show up as `st.user.email`, `st.user.name`, and so on.
Run it without Gatehouse and the app still works; it just says nobody is
signed in.
"""

from __future__ import annotations

import streamlit as st

LOGOUT_PATH = "/_gatehouse/logout"
ACCOUNT_PATH = "/_gatehouse/account"
MD_SPECIAL = set("\\`*_{}[]()#+-.!|~<>$:&")

st.set_page_config(page_title="Gatehouse demo", page_icon=":material/lock:")


def user_value(*keys: str) -> str | None:
    """First non-empty st.user value among `keys`, as a string, or None.

    Streamlit stores None for a trusted header that was absent from the
    request, and raises nothing for unknown keys through `.get`, so both
    "header missing" and "not configured" end up here as None.
    """
    for key in keys:
        value = st.user.get(key)
        if value is None or value is False or value == "":
            continue
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        return str(value)
    return None


def md(text: str) -> str:
    """Escape Markdown (and Streamlit's :color[...] / $math$ syntax) in user data."""
    return "".join("\\" + ch if ch in MD_SPECIAL else ch for ch in text)


def split_roles(raw: str | None) -> list[str]:
    """Roles arrive as one comma separated header value ("admin, analyst")."""
    if not raw:
        return []
    return [role.strip() for role in raw.split(",") if role.strip()]


st.title("Gatehouse demo")

email = user_value("email")
name = user_value("name")
username = user_value("username", "preferred_username", "user")
roles = split_roles(user_value("roles", "groups"))

if email or username:
    st.subheader("Who is signed in")
    st.markdown(f"Signed in as {md(email or username or '')}")
    st.markdown(f"Name: {md(name) if name else '(no name on file)'}")
    if username:
        st.markdown(f"Username: {md(username)}")
    if roles:
        st.markdown("Roles: " + " ".join(f":blue-badge[{md(role)}]" for role in roles))
    else:
        st.markdown("Roles: none")
    # target="_self": Gatehouse's pages replace the app in this tab (plain Markdown links open a new one).
    st.markdown(
        f'<a href="{ACCOUNT_PATH}" target="_self">Your account</a> · '
        f'<a href="{LOGOUT_PATH}" target="_self">Sign out</a>',
        unsafe_allow_html=True,
    )
else:
    st.info("Not signed in through Gatehouse", icon=":material/info:")
    st.caption(
        "Start the app with `gatehouse run -- streamlit run demo/app.py` "
        "to see the signed-in user here."
    )

st.divider()

st.subheader("Session round trip")
st.caption(
    "Each click goes to the server over the WebSocket that Gatehouse proxies "
    "and comes back with the new count."
)
if "clicks" not in st.session_state:
    st.session_state.clicks = 0
if st.button("Count", icon=":material/add:"):
    st.session_state.clicks += 1
st.markdown(f"Clicks: {st.session_state.clicks}")

with st.expander("What the app receives in st.user"):
    st.json(st.user.to_dict())
