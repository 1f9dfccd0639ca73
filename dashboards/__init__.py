"""The ops dashboard (Streamlit): reads warehouse views only, no business logic."""
