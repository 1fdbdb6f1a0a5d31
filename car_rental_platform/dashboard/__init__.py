"""The analysts' KPI dashboard: a Streamlit app over the catalog, through the query engine."""
