# The smallest Streamlit app: the benchmark only measures Streamlit's HTTP endpoints
# (/_stcore/health and a static JS asset), so the script never runs.
import streamlit as st

st.write("hello")
