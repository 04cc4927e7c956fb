"""Operating K2: what ``k2 status`` shows, what ``k2 doctor`` checks, the dashboards.

It sits just below the CLI: it reads the running services (their ``/metrics``, Kafka, the
catalog, the run record of ``k2 run``) and returns plain data that the CLI formats.
"""
