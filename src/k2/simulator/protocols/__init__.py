"""The venue side of each protocol: WebSocket sessions and REST endpoints, one module each."""
