"""Resources: the seams between the asset graph and where it runs (local or AWS)."""
