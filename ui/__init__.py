"""The app's page parts: Streamlit widgets wired to model/, services/ and training.config.

app.py lays the page out from these, top to bottom. Every session-state key is
declared in ui.state.
"""
