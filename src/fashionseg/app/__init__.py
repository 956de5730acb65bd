"""The Streamlit app: ``fashionseg app`` serves it; :mod:`fashionseg.app.logic` holds what it computes."""
