"""Spark jobs: the session builder, the streaming job of every layer (one query, one
``foreachBatch``), the rebuild from Bronze, and the lake maintenance run."""
