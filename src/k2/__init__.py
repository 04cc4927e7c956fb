"""K2: real-time crypto market data into an Apache Iceberg lakehouse."""
