"""API keys and per-key rate limits.

Keys are configured as SHA-256 hex digests (``k2 api hash-key`` makes one), so the settings, the
environment and ``k2 config show`` never hold a usable key. A presented key is hashed and compared
with every configured digest in constant time (``hmac.compare_digest``, all of them, whatever
matches), so timing says nothing about which digest came close. Keys are never logged.

Rate limits are token buckets: each key (or, without keys, each client address) may make
``rate_limit_burst`` requests at once and ``rate_limit_per_s`` a second after that; a request
over the limit is answered 429 with ``Retry-After`` (whole seconds until a token is back).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable, Sequence

from pydantic import SecretStr

from k2.errors import ApiRateLimitedError, ApiRequestError

_MAX_BUCKETS = 100_000


def hash_key(key: str) -> str:
    """The digest to configure for ``key`` (SHA-256, hex)."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyCheck:
    """Which configured key, if any, a request presents."""

    def __init__(self, digests: Sequence[SecretStr]) -> None:
        self._digests = [d.get_secret_value().strip().lower().encode() for d in digests]

    @property
    def required(self) -> bool:
        return bool(self._digests)

    def identify(self, presented: str | None) -> str:
        """An identity for rate limiting: the key's digest prefix (never the key).

        Raises :class:`ApiRequestError` (401) when keys are configured and ``presented`` is
        missing or matches none.
        """
        if presented is None:
            raise ApiRequestError(401, "an API key is required (X-API-Key header)")
        digest = hash_key(presented).encode()
        matched = False
        for candidate in self._digests:
            matched |= hmac.compare_digest(digest, candidate)
        if not matched:
            raise ApiRequestError(401, "the API key is not valid")
        return "key:" + digest[:12].decode()


def presented_key(headers: dict[str, str], query_key: str | None = None) -> str | None:
    """The key of ``X-API-Key`` or ``Authorization: Bearer``, else ``query_key`` (WebSocket
    clients in a browser cannot set headers)."""
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return query_key or None


class RateLimiter:
    """Token buckets per identity (see the module doc); thread-safe."""

    def __init__(
        self, per_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_s, self._burst, self._clock = per_s, float(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, identity: str) -> None:
        """Spend one token of ``identity``; :class:`ApiRequestError` (429) when none is left,
        its message saying when to retry."""
        now = self._clock()
        with self._lock:
            tokens, since = self._buckets.get(identity, (self._burst, now))
            tokens = min(self._burst, tokens + (now - since) * self._per_s)
            if tokens < 1.0:
                self._buckets[identity] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / self._per_s)
                raise ApiRateLimitedError(wait)
            if len(self._buckets) >= _MAX_BUCKETS and identity not in self._buckets:
                self._buckets.clear()  # bounded memory; forgetting only refills buckets
            self._buckets[identity] = (tokens - 1.0, now)
