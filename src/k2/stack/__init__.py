"""The embedded default stack: a local Kafka broker (KRaft) and a schema registry, as processes."""
