"""Flywheel ops dashboard: `flywheel dashboard` (or `streamlit run dashboards/app.py`).

Reads the warehouse named by FLYWHEEL_WAREHOUSE (else $FLYWHEEL_HOME/warehouse.duckdb) through the
views of flywheel/store/migrations/0007_costs.sql and 0012_ops_headline.sql; see dashboards/data.py.
The sidebar's time range applies to every page (dashboards/timerange.py).
"""

from __future__ import annotations

import streamlit as st

from dashboards import data, timerange

st.set_page_config(page_title="Flywheel ops", page_icon=":material/cycle:", layout="wide")
navigation = st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/workload.py", title="Workloads", icon=":material/model_training:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/play_circle:"),
        st.Page("pages/costs.py", title="Costs", icon=":material/payments:"),
    ]
)
with st.sidebar:
    st.caption(f"warehouse: `{data.warehouse_path()}`")
    if st.button("Reload data", icon=":material/refresh:"):
        data.clear_cache()
    timerange.sidebar()  # every page reads the chosen window through timerange.current()
navigation.run()
