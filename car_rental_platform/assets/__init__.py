"""Assets, one module per lake zone, in data-flow order: raw, processed, kpi, catalog, analyses."""
