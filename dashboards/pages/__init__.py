"""Dashboard pages, run by st.navigation in dashboards/app.py (not imported)."""
