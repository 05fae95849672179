"""Home: open to every signed-in user."""

import streamlit as st

import streamlit_gatehouse as gh

user = gh.current_user()

st.title("Home page")
st.write("Everyone who can sign in sees this page.")
st.subheader("What the app knows about you")
st.markdown(f"Name: {gh.escape_markdown(user.name)}")
st.markdown(f"Username: {gh.escape_markdown(user.username)}")
st.markdown(f"Email: {gh.escape_markdown(user.email or '(none on file)')}")
st.markdown(f"Roles: {gh.escape_markdown(', '.join(user.roles) or 'none')}")
st.caption(
    "These values come from the assertion Gatehouse signs for every request, "
    "checked with Gatehouse's public key."
)
