"""The Iceberg lakehouse: the shared catalog ``k2``, table definitions and maintenance."""
