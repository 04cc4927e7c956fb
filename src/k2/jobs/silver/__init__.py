"""Silver: validated trades in the unified schema, per exchange, and the quarantine."""
