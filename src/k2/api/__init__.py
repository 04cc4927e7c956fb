"""The read-only HTTP API over Gold and the bars, its live trade stream and its web page."""
