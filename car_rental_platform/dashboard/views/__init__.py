"""One Streamlit script per dashboard page (run by ``app.py``'s navigation)."""
