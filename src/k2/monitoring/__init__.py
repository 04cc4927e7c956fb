"""What Prometheus and Grafana are given: where each part serves its metrics, the scrape
configuration, the alert rules and the dashboards, all generated from the settings."""
