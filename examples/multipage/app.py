"""A multi-page Streamlit app whose pages depend on the signed-in user's roles.

    gatehouse run -- streamlit run examples/multipage/app.py

Pages: Home (everyone signed in), Reports (roles analyst or admin), Admin (role admin).
`streamlit_gatehouse.navigation` passes `st.navigation` only the pages the user may open, so a
page the user may not open is neither in the menu nor reachable by typing its URL: Streamlit
shows the Home page instead. The sidebar shows who is signed in and links to Gatehouse's own
pages (sign out, account, and for administrators the admin console).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import streamlit_gatehouse as gh

HERE = Path(__file__).parent

st.set_page_config(page_title="Gatehouse multi-page example", page_icon=":material/lock:")

home = st.Page(HERE / "views" / "home.py", title="Home", icon=":material/home:", default=True)
reports = st.Page(HERE / "views" / "reports.py", title="Reports", icon=":material/bar_chart:")
admin = st.Page(HERE / "views" / "admin.py", title="Admin", icon=":material/shield_person:")

# Called on every run, before anything else: it stops visitors who are not signed in, and it
# is the check that verifies the session's Gatehouse assertion while it is fresh.
page = gh.navigation(
    [home, reports, admin],
    # Pages are named by their st.Page object, URL path or title; pages not named here are open
    # to every signed-in user. Any one of the listed roles opens the page.
    roles={"reports": ["analyst", "admin"], admin: ["admin"]},
)

user = gh.current_user()
with st.sidebar:
    st.markdown(f"Signed in as **{gh.escape_markdown(user.name)}**")
    st.caption(f"Username: {gh.escape_markdown(user.username)}")
    roles = ", ".join(user.roles) if user.roles else "none"
    st.caption(f"Roles: {gh.escape_markdown(roles)}")
    gh.logout_button()
    gh.account_link()
    gh.admin_link()

page.run()
