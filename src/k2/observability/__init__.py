"""Logging set-up and the Prometheus metrics of every K2 service."""
