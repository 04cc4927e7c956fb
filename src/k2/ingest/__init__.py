"""The ingest service: exchange feed → Avro → Kafka, with delivery accounting and gap recovery."""
