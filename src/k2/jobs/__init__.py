"""Spark jobs: the session builder and one module per job (bronze, silver, gold)."""
