"""The API's settings: loopback by default, key digests secret, limits from the environment."""

from __future__ import annotations

import json

import pytest

from k2.api.security import hash_key
from k2.config import Settings, load_settings, masked_dump


def test_api_binds_loopback_with_no_keys_by_default() -> None:
    """Out of the box the API listens on 127.0.0.1 only and needs no key."""
    api = Settings(_env_file=None).api  # type: ignore[call-arg]
    assert (api.host, api.port, api.workers, api.key_hashes) == ("127.0.0.1", 8000, 1, ())


def test_key_digests_come_from_the_environment_and_are_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """K2_API__KEY_HASHES is read as a list and never shown by `k2 config show`."""
    digest = hash_key("s3cret")
    monkeypatch.setenv("K2_API__KEY_HASHES", json.dumps([digest]))
    monkeypatch.setenv("K2_API__MAX_PAGE_SIZE", "500")
    settings = load_settings(_env_file=None)
    assert settings.api.key_hashes[0].get_secret_value() == digest
    assert settings.api.max_page_size == 500
    assert digest not in json.dumps(masked_dump(settings))
