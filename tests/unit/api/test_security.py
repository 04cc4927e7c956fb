"""API keys are checked against their digests; rate limits refill at their rate."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from k2.api.security import KeyCheck, RateLimiter, hash_key, presented_key
from k2.errors import ApiRateLimitedError, ApiRequestError


def test_only_a_configured_key_passes() -> None:
    """The right key is identified by a digest prefix, never by the key; others are 401."""
    check = KeyCheck([SecretStr(hash_key("alpha")), SecretStr(hash_key("beta").upper())])
    identity = check.identify("beta")
    assert identity.startswith("key:") and "beta" not in identity
    for wrong in (None, "gamma", "alph"):
        with pytest.raises(ApiRequestError) as refused:
            check.identify(wrong)
        assert refused.value.status == 401


def test_key_from_header_bearer_or_query() -> None:
    """X-API-Key, then a bearer token, then the query parameter."""
    assert presented_key({"x-api-key": "a", "authorization": "Bearer b"}, "c") == "a"
    assert presented_key({"authorization": "Bearer b"}, "c") == "b"
    assert presented_key({"authorization": "Basic b"}, "c") == "c"
    assert presented_key({}) is None


def test_rate_limit_allows_the_burst_then_refills_at_the_rate() -> None:
    """A burst passes, the next is 429 with the seconds to wait, and time refills tokens."""
    now = [100.0]
    limiter = RateLimiter(per_s=0.5, burst=2, clock=lambda: now[0])
    limiter.take("k")
    limiter.take("k")
    with pytest.raises(ApiRateLimitedError) as limited:
        limiter.take("k")
    assert limited.value.status == 429 and limited.value.retry_after_s == 2
    limiter.take("other")  # each identity has its own bucket
    now[0] += 2.0
    limiter.take("k")
