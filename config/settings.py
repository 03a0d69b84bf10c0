"""Configuration, from environment variables prefixed ``EHC_`` or a ``.env`` file."""

from __future__ import annotations

import base64
import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHC_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="local state: SQLite files, caught mail")
    database_url: str = Field(
        "", description="SQLAlchemy URL; default SQLite in data_dir. PostgreSQL: "
        "postgresql+psycopg://user:password@host/db",
    )
    db_pool_size: int | None = Field(
        None, ge=1, le=200, description="database connections each process keeps open; "
        "empty: 20 for SQLite, 10 for PostgreSQL (store/db.py)")
    db_max_overflow: int | None = Field(
        None, ge=0, le=200, description="and how many more it may open under load; empty: 40 "
        "for SQLite, 20 for PostgreSQL")
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "ehc-cases"
    temporal_ui_port: int = 8233
    engine_read_timeout_seconds: float = Field(
        10, gt=0, le=120, description="the longest a page or API call waits to read a case "
        "from its workflow before answering 503 (services/temporal.py)")
    engine_timeout_seconds: float = Field(
        20, gt=0, le=300, description="the longest a step waits for its workflow to take it "
        "before answering 504: the step was sent and may still be applied, so reload the case "
        "to see (services/temporal.py)")
    worker_cache: int = Field(
        100, ge=0, description="workflows a worker keeps in memory between their tasks "
        "(Temporal's sticky cache): enough for the ones in the middle of something (an "
        "action and the save that follows it, an alert and its emails). Cases sleep for days "
        "and reviews for months between tasks, so more only holds memory (about 0.3 MiB each). "
        "0 keeps none: every task then replays its workflow's history, which costs an "
        "assessment taken through its steps back to back five to six times the worker CPU "
        "(docs/benchmarks.md)")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = "http://localhost:8000"

    # Staff sessions (api/auth.py).
    session_idle_minutes: int = Field(
        60, ge=5, le=720, description="a signed-in browser is signed out after this long "
        "without a request")
    session_max_hours: float = Field(
        10, gt=0, le=24, description="and after this long in any case (a working day)")
    cookie_secure: bool | None = Field(
        None, description="send the session cookie over HTTPS only; empty: when "
        "public_base_url starts with https://")

    # Signing in with the council's own accounts over OpenID Connect
    # (services/council_sign_in.py; docs/access.md, "Signing in with the council's accounts").
    oidc_issuer: str = Field(
        "", description="the council's OpenID provider (its issuer URL, where "
        "/.well-known/openid-configuration is found), e.g. "
        "https://login.microsoftonline.com/<tenant id>/v2.0; empty: council sign-in is off")
    oidc_client_id: str = Field("", description="this service's client (application) id "
                                "at the provider")
    oidc_client_secret: str = Field(
        "", description="its client secret; empty for a public client (PKCE alone)")
    oidc_scopes: str = Field("openid profile email", description="the scopes asked for")
    oidc_groups_claim: str = Field(
        "groups", description="the claim that carries the person's groups (Entra ID: "
        "'groups', the groups' object ids; or 'roles' for the application's app roles)")
    oidc_caseworker_groups: str = Field(
        "", description="groups (comma-separated) whose members are caseworkers")
    oidc_manager_groups: str = Field(
        "", description="groups (comma-separated) whose members are managers")
    oidc_admin_groups: str = Field(
        "", description="groups (comma-separated) whose members are administrators; the "
        "highest role of someone's groups is theirs, and someone in none is refused")
    oidc_trust_email: bool = Field(
        True, description="link a council sign-in to an existing password account with the "
        "same email address even when the provider does not say the address is verified "
        "(Entra ID never does; it is the council's own directory)")
    oidc_button_label: str = Field("Sign in with your council account",
                                   description="the sign-in page's button")
    password_sign_in: bool = Field(
        True, description="staff may sign in with a password; false (with council sign-in "
        "set up): only with the council's accounts")

    smtp_host: str = "localhost"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "send-team@council.example"

    payload_key: str = Field(
        "", description="base64 AES-256 key that encrypts everything sent to Temporal. Empty: "
        "a key is made once and kept in data_dir/payload.key (fine for one machine; set it "
        "explicitly, from a secret store, when the worker and API run on several)",
    )
    payload_retired_keys: list[str] = Field(
        [], description="earlier payload keys, kept to read histories sealed before a rotation"
    )

    link_secret: str = Field(
        "", description="secret that signs the links in emails to professionals. Empty: made "
        "once and kept in data_dir/link.key; set it explicitly when the API and workers run on "
        "several machines (they must share it)",
    )
    escalation_file: Path | None = Field(
        None, description="the escalation ladders (TOML); default config/escalation.toml")
    council_name: str = Field("Council SEND service", description="shown on pages and emails")
    send_team_email: str = Field(
        "send-team@council.example", description="where professionals reply with questions")

    # How long a child's record is kept (services/retention.py; docs/data-protection.md).
    retention_years_after_birth: int = Field(
        31, ge=18, le=100, description="a child's record is anonymised this many years after "
        "their date of birth, once they have no open case or active plan (`ehc retention "
        "apply`). 31: the IRMS Information Management Toolkit for Schools' retention for an "
        "EHC plan and its advice (date of birth + 31 years)")

    # The council's local policy for new cases (statutory limits are not configurable).
    draft_target_weeks: int = Field(16, ge=1, le=20)
    due_soon_days: int = Field(5, ge=0, le=42)
    under_five_review_months: int | None = Field(
        None, ge=3, le=6, description="review plans of children under five every N months "
        "(CoP 9.178 suggests 3 to 6); empty: yearly, like everyone else")

    def resolved_payload_key(self) -> str:
        return self.payload_key or self._local_secret("payload.key")

    def resolved_link_secret(self) -> str:
        return self.link_secret or self._local_secret("link.key")

    def _local_secret(self, name: str) -> str:
        """A random secret made once and kept (mode 0600) in data_dir."""
        path = self.data_dir / name
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it a moment ago
                return path.read_text().strip()
            with os.fdopen(fd, "w") as f:
                f.write(new_key())
        return path.read_text().strip()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'ehc.db').resolve()}"


def new_key() -> str:
    """A new random secret: 32 bytes, base64 (a payload key, ``ehc keygen``; or a link
    secret)."""
    return base64.b64encode(os.urandom(32)).decode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
