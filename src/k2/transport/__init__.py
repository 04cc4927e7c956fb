"""How K2 moves data: the WebSocket connection, REST reads and Kafka; it names no exchange."""
