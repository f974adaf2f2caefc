"""Settings: each value has a ``SEGSYNC_*`` environment variable and a default."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.home() / ".segsync"


class Settings(BaseSettings):
    """Runtime settings. Documented one by one in docs/settings.md (a test checks)."""

    model_config = SettingsConfigDict(env_prefix="SEGSYNC_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    profiles_url: str | None = None
    secret_key: SecretStr | None = None
    log_level: str = "WARNING"

    @property
    def metadata_url(self) -> str:
        """The metadata DB URL: ``database_url`` or a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'segsync.db'}"

    @property
    def profile_engine_url(self) -> str:
        """The profile engine URL: ``profiles_url`` or a DuckDB file in the data dir."""
        if self.profiles_url:
            return self.profiles_url
        return f"duckdb://{self.data_dir / 'profiles.duckdb'}"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"
