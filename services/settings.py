"""Configuration from ZONEHUB_* environment variables (and a `.env` file).

A missing or invalid value stops start-up with a message that names the variable;
secrets are `SecretStr`, so they never appear in reprs or logs.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ZONEHUB_"
DEFAULT_DATA_DIR = Path("var")


class ConfigError(Exception):
    """Start-up configuration is missing or invalid; the message names the variables."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default=f"sqlite://{DEFAULT_DATA_DIR}/zonehub.sqlite3",
        description="postgres://user:pass@host:5432/db, or sqlite://path (embedded default)",
    )
    database_read_url: str | None = Field(
        default=None, description="postgres://... of a read replica for heavy reads (ledgers, evaluation, "
                                  "dashboards, exports); unset: everything reads the primary")
    redis_url: str | None = Field(
        default=None, description="redis://host:6379/0; unset: `zonehub up` starts an embedded Redis"
    )
    redis_sentinels: str = Field(
        default="", description="host:port,host:port of Redis Sentinels: with ZONEHUB_REDIS_SENTINEL_MASTER, "
                                "every client asks them for the current master (the URL then gives only "
                                "the password and database number)")
    redis_sentinel_master: str = Field(default="", max_length=200,
                                       description="the service name the Sentinels monitor (e.g. zonehub)")
    secret_key: SecretStr = Field(description="signs tokens, bind tickets and check-in codes")
    wechat_appid: str = "wx-zonehub-demo"
    wechat_secret: SecretStr = SecretStr("zonehub-demo-secret")
    wechat_api_base: str = "http://127.0.0.1:8081"
    admin_password: SecretStr | None = None
    member_token_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, le=90 * 24 * 3600)
    staff_token_ttl_s: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600)
    bind_ticket_ttl_s: int = Field(default=600, ge=30, le=3600)
    login_failures_per_minute: int = Field(default=5, ge=1, le=100,
                                           description="per account and address")
    login_failures_per_address_per_minute: int = Field(default=20, ge=1, le=1000,
                                                       description="per address, any account")
    bind_failures_per_hour: int = Field(default=10, ge=1, le=1000,
                                        description="roster mismatches per WeChat account")
    bind_failures_per_invite_per_hour: int = Field(default=30, ge=1, le=10_000,
                                                   description="roster mismatches per invite code")
    wechat_notice_template_id: str = Field(default="zonehub-notice",
                                           description="subscribe-message template of notices")
    wechat_activity_template_id: str = Field(
        default="zonehub-activity", description="activities: reminders, waitlist promotions, cancellations")
    wechat_supervision_template_id: str = Field(
        default="zonehub-supervision", description="supervision: assignments, urges, escalations, reviews")
    wechat_duty_template_id: str = Field(
        default="zonehub-duty", description="duty: next quarter on duty, three-ones warnings, rotation plans")
    wechat_funds_template_id: str = Field(
        default="zonehub-funds", description="funds: subsidy requests and decisions")
    push_per_minute: int = Field(default=600_000, ge=1, description="token bucket shared by all workers")
    push_in_flight: int = Field(default=50, ge=1, le=1000, description="WeChat sends in flight per worker")
    push_retries: int = Field(default=3, ge=0, le=10)
    push_batch_budget_s: int = Field(
        default=150, ge=1, le=3600,
        description="a notice's push batch finishes within this (half the worker's job timeout): "
                    "batches push at once only as many as the rate lets finish in it")
    notice_batch_size: int = Field(default=1000, ge=10, le=10_000)
    notice_remind_after_s: int = Field(default=24 * 3600, ge=60)
    notice_remind_late_s: int = Field(
        default=2 * 24 * 3600, ge=600,
        description="a reminder that fell due longer ago than this (the jobs were stopped, rows were "
                    "imported) is dropped and logged, not sent late")
    activity_remind_before_s: int = Field(default=24 * 3600, ge=600, le=7 * 24 * 3600,
                                          description="signed-up members are reminded this long before the start")
    duty_notice_before_days: int = Field(default=14, ge=1, le=90,
                                         description="a unit is told this long before its quarter on duty")
    rotation_plan_ahead_days: int = Field(default=60, ge=7, le=180,
                                          description="next year's rotations are generated this long before 1 January")
    wechat_pay_mchid: str | None = Field(default=None, description="merchant id; unset: paying answers 503")
    wechat_pay_serial_no: str = Field(default="", description="serial number of the merchant API certificate")
    wechat_pay_private_key: SecretStr | None = Field(
        default=None, description="merchant API private key: PEM text or the path of apiclient_key.pem")
    wechat_pay_apiv3_key: SecretStr | None = Field(default=None, description="APIv3 key, 32 characters")
    wechat_pay_public_key: str | None = Field(
        default=None, description="WeChat Pay platform public key: PEM text or the path of pub_key.pem")
    wechat_pay_public_key_id: str = Field(default="", description="PUB_KEY_ID_... of that public key")
    wechat_pay_api_base: str = Field(default="http://127.0.0.1:8081",
                                     description="https://api.mch.weixin.qq.com in production")
    wechat_pay_notify_url: str = Field(
        default="http://127.0.0.1:8080/api/v1/pay/wechat/notify",
        description="public URL of POST /api/v1/pay/wechat/notify; refunds use .../refund-notify")
    pay_order_ttl_s: int = Field(default=1800, ge=300, le=7200, description="unpaid orders close after this")
    pay_query_after_s: int = Field(default=180, ge=10, le=3600,
                                   description="query WeChat Pay for orders still pending after this, then every 5 min")
    data_dir: Path = DEFAULT_DATA_DIR
    storage_dir: Path | None = Field(default=None, description="attachments; default data_dir/files")
    attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one object a line with request_id (and job, in a worker)")
    worker_name: str = Field(default="", max_length=64,
                             description="this worker's health-check name; default the host name")
    worker_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="a worker serves its /metrics on this port; 0: none")
    checkin_coordinates_retention_days: int = Field(
        default=30, ge=1, le=3650, description="check-in latitude and longitude are dropped after this")
    inbox_retention_days: int = Field(
        default=365, ge=30, le=3650,
        description="inbox rows of notices older than this are archived into per-unit counts")
    trusted_proxies: str = Field(
        default="", description="comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed "
                                "(e.g. 127.0.0.1/32,10.0.0.0/8); empty: the peer address is the client")

    @field_validator("secret_key")
    @classmethod
    def _secret_long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)")
        return v

    @field_validator("database_read_url")
    @classmethod
    def _known_replica(cls, v: str | None) -> str | None:
        if v and not v.startswith(("postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("must start with postgres:// or postgresql:// (a PostgreSQL read replica)")
        return v or None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, v: str) -> str:
        if not v.startswith(("postgres://", "postgresql://", "asyncpg://", "sqlite://")):
            raise ValueError("must start with postgres://, postgresql:// or sqlite://")
        return v

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, v: str | None) -> str | None:
        if v is not None and v != "" and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v or None

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_addresses(cls, v: str) -> str:
        for part in filter(None, (p.strip() for p in v.split(","))):
            host, _, port = part.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{part!r} is not host:port (e.g. 10.0.0.5:26379,10.0.0.6:26379)")
        return v

    @model_validator(mode="after")
    def _sentinel_complete(self) -> "Settings":
        if bool(self.redis_sentinel_hosts) != bool(self.redis_sentinel_master.strip()):
            raise ValueError("ZONEHUB_REDIS_SENTINELS and ZONEHUB_REDIS_SENTINEL_MASTER go together: "
                             "set both (Sentinel) or neither (one Redis at ZONEHUB_REDIS_URL)")
        if self.redis_sentinel_hosts and not self.redis_url:
            raise ValueError("ZONEHUB_REDIS_SENTINELS needs ZONEHUB_REDIS_URL too: its password and "
                             "database number are used, its host is not (e.g. redis://:password@sentinel/0)")
        if self.redis_sentinel_hosts and self.redis_url and self.redis_url.startswith("unix://"):
            raise ValueError("ZONEHUB_REDIS_SENTINELS cannot go with a unix:// ZONEHUB_REDIS_URL "
                             "(use redis:// or rediss://)")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, v: str) -> str:
        for part in filter(None, (p.strip() for p in v.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an address or CIDR (e.g. 10.0.0.0/8)") from None
        return v

    @field_validator("wechat_pay_apiv3_key")
    @classmethod
    def _apiv3_key_length(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value().encode()) != 32:
            raise ValueError("must be exactly 32 bytes (the APIv3 key set in the merchant platform)")
        return v

    @field_validator("wechat_api_base", "wechat_pay_api_base", "wechat_pay_notify_url")
    @classmethod
    def _http_base(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v.rstrip("/")

    def template_for(self, topic: str) -> str:
        """The subscribe-message template of a message kind (its topic's first word)."""
        kind = topic.split(".", 1)[0]
        return {"activity": self.wechat_activity_template_id,
                "supervision": self.wechat_supervision_template_id,
                "compliance": self.wechat_duty_template_id, "rotation": self.wechat_duty_template_id,
                "plan": self.wechat_duty_template_id, "meeting": self.wechat_duty_template_id,
                "handover": self.wechat_duty_template_id,
                "ledger": self.wechat_funds_template_id,
                }.get(kind, self.wechat_notice_template_id)

    @property
    def redis_sentinel_hosts(self) -> tuple[tuple[str, int], ...]:
        """The Sentinels' (host, port) pairs; empty: no Sentinel."""
        pairs = []
        for part in filter(None, (p.strip() for p in self.redis_sentinels.split(","))):
            host, _, port = part.rpartition(":")
            pairs.append((host.strip("[]"), int(port)))
        return tuple(pairs)

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(p.strip(), strict=False)
                     for p in self.trusted_proxies.split(",") if p.strip())

    @property
    def files_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "files"


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise ConfigError naming each bad ZONEHUB_* variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across settings: its message names them
                lines.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            field = str(err["loc"][0])
            reason = "is required but not set" if err["type"] == "missing" else err["msg"]
            lines.append(f"{ENV_PREFIX}{field.upper()} {reason}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
