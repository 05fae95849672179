"""Reports: analysts and administrators (the menu only lists it for them)."""

import streamlit as st

import streamlit_gatehouse as gh

gh.require_role("analyst", "admin")

st.title("Reports page")
st.write("Figures for analysts and administrators.")
st.bar_chart({"Quarter": ["Q1", "Q2", "Q3", "Q4"], "Sales": [12, 18, 9, 21]}, x="Quarter", y="Sales")
