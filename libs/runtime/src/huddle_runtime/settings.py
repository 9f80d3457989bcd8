"""Service settings, read once from the environment in ``main()`` and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


# httpx keeps idle connections 5 s, cloud load balancers 60 s: a server must outlast both.
KEEP_ALIVE_SECONDS = 75


class KafkaSettings(BaseSettings):
    """Kafka client settings; the safe delivery settings are not configurable on purpose."""

    model_config = SettingsConfigDict(
        env_prefix="HUDDLE_KAFKA_", extra="ignore", validate_by_name=True
    )

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "HUDDLE_KAFKA_BOOTSTRAP_SERVERS"),
    )
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # Hostname verification stays on unless explicitly disabled for a lab.
    ssl_check_hostname: bool = True
    client_id_prefix: str = "huddle"

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_"):
            missing = [
                name
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs "
                    + ", ".join(f"HUDDLE_KAFKA_{m.upper()}" for m in missing)
                )
        return self


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUDDLE_DB_", extra="ignore", validate_by_name=True
    )

    url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/postgres"),
        validation_alias=AliasChoices("DATABASE_URL", "HUDDLE_DB_URL"),
    )
    # The role the service works as; row-level security applies to it (never a superuser).
    role: str | None = None
    pool_min_size: int = Field(default=2, ge=1)
    pool_max_size: int = Field(default=10, ge=1)
    statement_timeout_ms: int = Field(default=15_000, ge=100)


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUDDLE_AUTH_", extra="ignore", validate_by_name=True
    )

    # Where the signing keys come from: an https JWKS endpoint, or a JWKS file (mounted secret,
    # or the local stack's issuer). Exactly one is needed to accept any token.
    jwks_url: str | None = None
    jwks_file: str | None = None
    issuer: str = "huddle-local"
    audience: str = "huddle"
    algorithms: list[str] = ["RS256", "ES256", "PS256"]
    leeway_seconds: int = Field(default=30, ge=0, le=300)

    @model_validator(mode="after")
    def _one_key_source(self) -> AuthSettings:
        if self.jwks_url and self.jwks_file:
            raise ValueError("set HUDDLE_AUTH_JWKS_URL or HUDDLE_AUTH_JWKS_FILE, not both")
        return self

    @field_validator("jwks_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None:
            return value
        url = urlsplit(value)
        loopback = url.hostname in ("localhost", "127.0.0.1", "::1")
        if url.scheme != "https" and not (url.scheme == "http" and loopback):
            raise ValueError("HUDDLE_AUTH_JWKS_URL must be https (plain http only on loopback)")
        return value

    @property
    def configured(self) -> bool:
        return bool(self.jwks_url or self.jwks_file)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = [a for a in value if a.lower() == "none" or a.upper().startswith("HS")]
        if refused:
            raise ValueError(f"algorithms {refused} are not allowed; use asymmetric algorithms")
        return value


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUDDLE_TELEMETRY_", extra="ignore", validate_by_name=True
    )

    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_ENDPOINT", "HUDDLE_TELEMETRY_OTLP_ENDPOINT"
        ),
    )
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("HUDDLE_LOG_LEVEL", "LOG_LEVEL")
    )
    log_json: bool = True


class DeliverySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUDDLE_DELIVERY_", extra="ignore", validate_by_name=True
    )

    relay_enabled: bool = True
    consumer_enabled: bool = True
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    # After a commit wakes the relay it waits this long, so the commits behind it share one
    # batch (one transaction, one Kafka round, one WAL flush); adds at most this to delivery.
    relay_gather_ms: float = Field(default=5.0, ge=0, le=1_000)
    # Records of one partition handled in one transaction (one fsync); each holds its advisory
    # and row locks until the batch commits, so keep it well under max_locks_per_transaction x
    # max_connections.
    consumer_batch_size: int = Field(default=500, ge=1, le=2_000)
    # Offsets of the batches committed meanwhile go to Kafka in one request, at most this often
    # (and before a rebalance or a stop); a crash redelivers that much, which the inbox absorbs.
    consumer_commit_interval_ms: float = Field(default=1_000, ge=0, le=60_000)
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_backoff_seconds: float = Field(default=0.2, ge=0)
    consumer_backoff_max_seconds: float = Field(default=5.0, ge=0)
    shutdown_grace_seconds: float = Field(default=20.0, gt=0)


class ServiceSettings(BaseSettings):
    """Everything a Huddle service needs, grouped; built once by ``ServiceSettings.load``."""

    model_config = SettingsConfigDict(env_prefix="HUDDLE_", extra="ignore", validate_by_name=True)

    service: str = "huddle"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    http_keep_alive_seconds: int = Field(default=KEEP_ALIVE_SECONDS, ge=1, le=3600)
    """How long an idle HTTP connection is kept open: longer than clients' and load balancers'
    own idle timeouts, so that they close it first and never send on a connection being closed."""
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    """The event loop ``serve`` runs on. uvloop spends less CPU per HTTP request; asyncio's own
    loop took a back-fill (consuming, hardly any HTTP) about 8% faster in benchmark #5."""
    pseudonym_key: SecretStr = SecretStr("local-development-only-pseudonym-key")
    # Fails closed: development secrets are refused unless the environment says local or test.
    environment: Literal["local", "test", "production"] = "production"

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @model_validator(mode="after")
    def _production_refuses_defaults(self) -> ServiceSettings:
        if self.environment == "production":
            if self.pseudonym_key.get_secret_value().startswith("local-development"):
                raise ValueError("HUDDLE_PSEUDONYM_KEY must be set to a real secret in production")
            if not self.auth.configured:
                raise ValueError("HUDDLE_AUTH_JWKS_URL or _JWKS_FILE must be set in production")
        return self

    @property
    def schema_name(self) -> str:
        return self.service

    @property
    def db_role(self) -> str:
        return self.database.role or f"huddle_{self.service}"

    @property
    def consumer_group(self) -> str:
        return f"huddle.{self.service}"

    @classmethod
    def load(cls, service: str, *, http_port: int) -> ServiceSettings:
        """Read the environment once; service name and default port come from the service."""
        settings = cls(service=service)
        if "http_port" not in settings.model_fields_set:
            settings = settings.model_copy(update={"http_port": http_port})
        return settings
