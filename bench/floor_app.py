"""The floor for bench/answer_latency.py: the least a Streamlit page can do between a click and a metric.

One button shows a metric, another hides it again; nothing else is on the page.
"""

import streamlit as st

if st.button("Hide", key="hide"):
    st.session_state.shown = False
if st.button("Read", key="read"):
    st.session_state.shown = True
if st.session_state.get("shown"):
    st.metric("Prediction", 1)
