"""The one settings object. Every value comes from a `BACKOFFICE_*` environment variable or `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(".data")


class Settings(BaseSettings):
    """Configuration of the sidecar, the flows and the CLI (see the README's configuration table)."""

    model_config = SettingsConfigDict(env_prefix="BACKOFFICE_", env_file=".env", extra="ignore")

    # --- the task queue --------------------------------------------------------------------
    database_url: str = f"sqlite:///{DATA_DIR / 'backoffice.db'}"
    lock_timeout_seconds: int = Field(600, ge=1)
    max_lease_seconds: int = Field(3600, ge=1)
    max_data_bytes: int = Field(256 * 1024, ge=1)
    max_result_bytes: int = Field(1024 * 1024, ge=1)
    # Largest request body on any path (413 before or while it is read); room above the result limit.
    max_request_bytes: int = Field(1024 * 1024 + 256 * 1024, ge=1)
    admin_key: SecretStr | None = None
    retry_backoff_base_seconds: float = Field(10.0, gt=0)
    retry_backoff_max_seconds: float = Field(3600.0, gt=0)
    db_pool_size: int = Field(10, ge=1)
    db_connect_timeout_seconds: int = Field(5, ge=1)
    # How long a sidecar reuses a live function key it looked up (0: every request reads the
    # database). At most 1 s: a revoked key stops working on every sidecar within it.
    key_cache_seconds: float = Field(1.0, ge=0, le=1)
    # Run-out locks of every type are swept this often, not only when somebody locks that type.
    sweep_interval_seconds: float = Field(30.0, gt=0)
    # The periodic duties (lock sweep, Enabled reconciliation) in `backoffice api`: one sidecar per
    # database does them (backoffice/duties.py); false (BACKOFFICE_RECONCILE=off) keeps this one out.
    reconcile: bool = True
    # 30 s: a plain `prefect deploy` that un-paused a disabled job is paused again within a minute.
    reconcile_interval_seconds: float = Field(30.0, gt=0)
    # uvicorn's line per request (keys masked). Off saves the sidecar about 7 % of its CPU under a
    # drain of one task per call (measured); /metrics counts and times every route either way.
    access_log: bool = True
    # How long the sidecar keeps an idle keep-alive connection open. A client's pool must drop an
    # idle connection before the server does, or it sends a request on a socket the server is
    # closing that instant (seen: httpx.ReadError / RemoteProtocolError, uvicorn's 5 s against
    # httpx's 5 s pool expiry). 130 s is Kestrel's default, the host of the Azure Functions we
    # replace, and above the usual client expiries (httpx 5 s, .NET 60 s, Go 90 s, nginx 60 s).
    keep_alive_seconds: int = Field(130, ge=1)

    # --- task types, retention, result callbacks (backoffice/queue/task_types.py, retention.py,
    # callbacks.py) ---------------------------------------------------------------------------
    # True refuses to create a task of a type nobody defined (422 unknown_task_type).
    require_task_type_definitions: bool = False
    # How long a process reuses a task-type definition it read (a change reaches every sidecar within it).
    task_type_cache_seconds: float = Field(5.0, ge=0)
    # Finished tasks older than their type's retention_days (else this) are deleted by Queue_Retention;
    # events of deleted tasks are kept event_retention_days.
    task_retention_days: int = Field(30, ge=1)
    event_retention_days: int = Field(365, ge=1)
    retention_batch_size: int = Field(1000, ge=1, le=100_000)
    # Comma-separated host names a callback_url may point to; empty turns callbacks off.
    callback_allowed_hosts: str = ""
    callback_secret: SecretStr | None = None  # the HMAC-SHA256 key of X-Backoffice-Signature
    callback_max_attempts: int = Field(10, ge=1)
    callback_timeout_seconds: float = Field(10.0, gt=0)
    callback_poll_seconds: float = Field(2.0, gt=0)
    callback_backoff_base_seconds: float = Field(10.0, gt=0)
    callback_backoff_max_seconds: float = Field(3600.0, gt=0)

    # --- external services -----------------------------------------------------------------
    shoptet_base_url: str = "https://api.myshoptet.com"
    shoptet_api_token: SecretStr | None = None
    shoptet_stock_id: int = 1
    # Shoptet e-mails the customer on a status change the shop set up to do so; true suppresses it.
    shoptet_suppress_status_emails: bool = False
    comgate_base_url: str = "https://payments.comgate.cz"
    comgate_merchant: str | None = None
    comgate_secret: SecretStr | None = None
    # The expected payout account (Comgate's accountCounterparty) per currency: only a cross-check, a
    # payout's currency is its rows' `Měna`. Domestic number/bank form, as Comgate prints it (a Czech
    # IBAN compares equal to it).
    comgate_payout_account_czk: str = "2800000000/2010"
    comgate_payout_account_eur: str = "2900000000/2010"

    # --- warehouse -------------------------------------------------------------------------
    output_dir: Path = DATA_DIR / "output"
    printer: str | None = None
    picking_status_id: int = -2
    packing_status_id: int = 26
    check_status_id: int = 35

    # --- reporting and alerts ---------------------------------------------------------------
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "backoffice@localhost"
    smtp_to: str | None = None
    alert_webhook_url: str | None = None
    prefect_ui_url: str | None = None
    session_secret: SecretStr | None = None  # dashboard cookies; else .data/session_secret

    # --- sign-in hardening ------------------------------------------------------------------
    # Proxies (comma-separated IPs or CIDR networks) whose X-Forwarded-Proto/-For are believed.
    trusted_proxies: str = ""
    # Failed key checks (API and sign-in) one client address may make per window before a 429.
    auth_failure_limit: int = Field(10, ge=1)
    auth_failure_window_seconds: int = Field(300, ge=1)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
