"""Settings: each value has a ``SEGSYNC_*`` environment variable and a default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.home() / ".segsync"


class Settings(BaseSettings):
    """Runtime settings. Documented one by one in docs/settings.md (a test checks)."""

    model_config = SettingsConfigDict(env_prefix="SEGSYNC_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    profiles_url: str | None = None
    # PostgreSQL schema of the profile tables (docs/profiles.md); unset: "segsync_profiles" when
    # the profiles share a database with the metadata, else the connection's default schema.
    profiles_schema: str | None = None
    secret_key: SecretStr | None = None
    log_level: str = "WARNING"
    # Notification channels (docs/notifications.md). Empty smtp_recipients = the administrators.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "segsync@localhost"
    smtp_recipients: Annotated[list[str], NoDecode] = Field(default_factory=list)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # Which URLs segsync may call (docs/security.md, "Outbound URLs"); empty: https anywhere,
    # plain http to loopback only.
    outbound_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Web UI (docs/web.md): mark the session cookie Secure when served over HTTPS.
    web_secure_cookies: bool = False
    # The change record (docs/exports.md "The change record"): how many runs of each export keep
    # theirs (who was added, updated or removed, with previous values for undo).
    change_log_runs: int = Field(default=10, ge=1, le=1000)
    # A first run's reading in a process of its own (docs/exports.md "Running an export"), where
    # the command made one ready (`exports run`); off: on a thread of the run's process.
    read_apart: bool = True

    @field_validator("smtp_recipients", "outbound_allow", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """A list given as one string, items apart by commas or spaces:
        ``SEGSYNC_SMTP_RECIPIENTS=a@example.com,b@example.com``,
        ``SEGSYNC_OUTBOUND_ALLOW=https://*,loopback``."""
        if isinstance(value, str):
            return [part for part in value.replace(",", " ").split() if part]
        return value

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
    def profiles_on_duckdb(self) -> bool:
        """Whether the profile engine is a DuckDB file (the embedded default), told without
        opening it: a run streams, and keeps its SQL, only there."""
        return self.profile_engine_url.startswith("duckdb:")

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"
