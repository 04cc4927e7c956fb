"""K2's settings as a fresh checkout has them, whatever the environment of the build says."""

from __future__ import annotations

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from k2.config import Settings


class DefaultSettings(Settings):
    """:class:`k2.config.Settings` that reads neither ``K2_*`` variables nor a ``.env`` file, so
    a page built on a machine with settings of its own still shows the defaults."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def default_settings() -> Settings:
    return DefaultSettings()
