"""One error hierarchy for K2.

Every error K2 raises on purpose derives from :class:`K2Error`. The CLI catches ``K2Error`` and
prints its message as one line (cause and fix), so messages are written for the user who has to
act on them.
"""

from __future__ import annotations


class K2Error(Exception):
    """Root of every error K2 raises on purpose."""


class ConfigError(K2Error):
    """Raised when settings are invalid, unknown or inconsistent."""


class StackError(K2Error):
    """Raised when the embedded stack cannot be started, stopped or inspected."""


class JavaNotFoundError(StackError):
    """Raised when no Java runtime of a required version can be found."""


class PortInUseError(StackError):
    """Raised when a port the stack needs is held by another process."""


class StateCorruptedError(StackError):
    """Raised when the state folder exists but cannot be used as it is."""


class ArtifactsMissingError(StackError):
    """Raised when the Maven-fetched JVM artifacts are missing or incomplete."""


class ProgramMissingError(StackError):
    """Raised when a program a local service runs (PostgreSQL, SeaweedFS) is not installed."""


class FolderAccessError(StackError):
    """Raised when the OS account a local service runs as cannot reach its state folder."""


class TopicError(K2Error):
    """Raised when a Kafka topic cannot be created or does not match the configuration."""


class RegistryError(K2Error):
    """Raised when the schema registry refuses or cannot serve a request."""


class LakeError(K2Error):
    """Raised when the Iceberg catalog or a table cannot be opened or changed."""


class WriterBusyError(LakeError):
    """Raised when another job is writing the tables a job would write (one writer per table)."""


class LeaseLostError(WriterBusyError):
    """Raised when a writer finds its lease in the catalog taken by another writer."""


class ExchangeError(K2Error):
    """Raised when an exchange feed cannot be used (unknown symbol, rejected subscription, ...)."""


class RateLimitedError(ExchangeError):
    """Raised when an exchange's REST API answers with its rate limit; wait ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BackfillError(ExchangeError):
    """Raised when an exchange's trade history cannot be read for a gap; the gap is published as
    unfilled."""


class SubscriptionRejectedError(ExchangeError):
    """Raised when an exchange rejects a subscription for a symbol."""


class UnknownSymbolError(ExchangeError):
    """Raised when a symbol is not listed in the exchange's reference data."""


class TradeInvalidError(ExchangeError):
    """Raised when a raw trade's values cannot be normalised; ``reason`` is a short code."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class WsConnectionError(ExchangeError):
    """Raised when a WebSocket connection cannot be opened, or closes, or fails."""


class WsLivenessError(WsConnectionError):
    """Raised when a WebSocket connection received nothing within its liveness deadline."""


class MalformedFrameError(ExchangeError):
    """Raised inside a frame parser when the frame is malformed; the parser returns the frame
    as a dead letter with this reason, so it never escapes ``parse_frame``."""


class ParseError(K2Error):
    """Raised when a frame cannot be parsed; carries the raw text for the dead-letter path."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw


class QueryError(K2Error):
    """Raised when a SQL statement or an API query cannot be run; the message is the engine's."""


class ApiRequestError(K2Error):
    """Raised when an API request cannot be served as asked; ``status`` is the HTTP status and
    the message says what to change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ApiRateLimitedError(ApiRequestError):
    """Raised when an API key has used its request rate; ``retry_after_s`` says when a request
    may pass again."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            429, f"rate limit reached; retry after {retry_after_s} s (K2_API__RATE_LIMIT_PER_S)"
        )
        self.retry_after_s = retry_after_s
