"""Admin: administrators only.

`navigation()` already keeps this page from everybody else; the check below is defence in depth,
in case the page is ever listed without its rule (or run some other way).
"""

import streamlit as st

import streamlit_gatehouse as gh

user = gh.require_role("admin")

st.title("Admin page")
st.write(f"Only administrators see this page, {gh.escape_markdown(user.name)}.")
st.write("Users, roles and sessions are managed in Gatehouse's admin console (link in the sidebar).")
