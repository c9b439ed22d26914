"""The one place PATAS reads its environment.

Every other module takes a :class:`Settings` (or values from it) as an argument; nothing else reads
``os.environ`` at import time. The dbt profile reads the same values through ``env_var()``: call
:func:`dbt_env` to get them for a dbt subprocess.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    home: Path
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_enabled: bool = False
    llm_budget_tokens: int = 200_000
    # Money: a per-run budget in US dollars, from the price table (python_steps/mining/llm_prices.toml,
    # or PATAS_LLM_PRICES_FILE; PATAS_LLM_PRICE_INPUT_PER_1M / _OUTPUT_PER_1M for the model alone)
    llm_budget_usd: float = 1.0
    llm_prices_file: Path | None = None
    llm_price_input_per_1m: float | None = None
    llm_price_output_per_1m: float | None = None
    llm_timeout_s: float = 30.0
    llm_max_retries: int = 2
    profile: str = "conservative"
    max_text_bytes: int = 64 * 1024
    embeddings_provider: str = "lexical"
    embeddings_base_url: str | None = None
    embeddings_model: str | None = None
    embeddings_api_key: str | None = None
    embeddings_batch_size: int = 2048
    embeddings_timeout_s: float = 30.0
    embeddings_max_retries: int = 3
    embeddings_cache_ttl_days: float = 7.0
    log_level: str = "WARNING"  # what a run prints to the terminal; the full log goes to $PATAS_HOME/logs
    # Languages of the traffic, for the general-language prior (python_steps.lifecycle.evidence)
    languages: tuple[str, ...] = ("en",)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def cache_dir(self) -> Path:
        """Results that depend only on the code (the raw-text regexes of exported rules)."""
        return self.home / "cache"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"


def _float_or_none(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = Path(env.get("PATAS_HOME") or PROJECT_ROOT / ".patas").resolve()
    return Settings(
        database_url=env.get("PATAS_DATABASE_URL") or None,
        home=home,
        llm_base_url=env.get("PATAS_LLM_BASE_URL") or None,
        llm_api_key=env.get("PATAS_LLM_API_KEY") or env.get("OPENAI_API_KEY") or None,
        llm_model=env.get("PATAS_LLM_MODEL", "gpt-4o-mini"),
        llm_enabled=env.get("PATAS_LLM_ENABLED", "0").lower() in ("1", "true", "yes", "on"),
        llm_budget_tokens=int(env.get("PATAS_LLM_BUDGET_TOKENS", "200000")),
        llm_budget_usd=float(env.get("PATAS_LLM_BUDGET_USD", "1.0")),
        llm_prices_file=Path(env["PATAS_LLM_PRICES_FILE"]) if env.get("PATAS_LLM_PRICES_FILE") else None,
        llm_price_input_per_1m=_float_or_none(env.get("PATAS_LLM_PRICE_INPUT_PER_1M")),
        llm_price_output_per_1m=_float_or_none(env.get("PATAS_LLM_PRICE_OUTPUT_PER_1M")),
        llm_timeout_s=float(env.get("PATAS_LLM_TIMEOUT_S", "30")),
        llm_max_retries=int(env.get("PATAS_LLM_MAX_RETRIES", "2")),
        profile=env.get("PATAS_PROFILE", "conservative"),
        max_text_bytes=int(env.get("PATAS_MAX_TEXT_BYTES", str(64 * 1024))),
        embeddings_provider=env.get("PATAS_EMBEDDINGS_PROVIDER", "lexical").lower(),
        embeddings_base_url=env.get("PATAS_EMBEDDINGS_BASE_URL") or None,
        embeddings_model=env.get("PATAS_EMBEDDINGS_MODEL") or None,
        embeddings_api_key=env.get("PATAS_EMBEDDINGS_API_KEY") or env.get("OPENAI_API_KEY") or None,
        embeddings_batch_size=int(env.get("PATAS_EMBEDDINGS_BATCH_SIZE", "2048")),
        embeddings_timeout_s=float(env.get("PATAS_EMBEDDINGS_TIMEOUT_S", "30")),
        embeddings_max_retries=int(env.get("PATAS_EMBEDDINGS_MAX_RETRIES", "3")),
        embeddings_cache_ttl_days=float(env.get("PATAS_EMBEDDINGS_CACHE_TTL_DAYS", "7")),
        log_level=env.get("PATAS_LOG_LEVEL", "WARNING").upper(),
        languages=tuple(x.strip() for x in env.get("PATAS_LANGUAGES", "en").split(",") if x.strip())
        or ("en",),
    )


@dataclass(frozen=True)
class ConnParts:
    host: str
    port: int
    user: str
    password: str
    dbname: str


def url_parts(url: str) -> ConnParts:
    """Split a ``postgresql://`` URL into the parts a dbt profile wants."""
    u = urlsplit(url)
    if u.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"PATAS_DATABASE_URL must be a postgresql:// URL, got scheme {u.scheme!r}")
    query = dict(p.split("=", 1) for p in u.query.split("&") if "=" in p)
    host = u.hostname or unquote(query.get("host", "")) or "127.0.0.1"
    return ConnParts(
        host=host,
        port=u.port or int(query.get("port", 5432)),
        user=unquote(u.username or "postgres"),
        password=unquote(u.password or ""),
        dbname=(u.path or "/").lstrip("/") or "postgres",
    )


def masked_url(url: str) -> str:
    """The URL with its password (in the user part or a ``password=`` parameter) shown as ``***``:
    the form every message and output prints."""
    u = urlsplit(url)
    netloc = u.netloc
    if u.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    query = "&".join(
        f"{k}=***" if k == "password" else part
        for part in u.query.split("&")
        for k in [part.split("=", 1)[0]]
    )
    return urlunsplit((u.scheme, netloc, u.path, query if u.query else "", u.fragment))


def dbt_env(url: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a dbt subprocess: the profile in ``profiles/`` reads these."""
    p = url_parts(url)
    env = dict(os.environ if base is None else base)
    env.update(
        PATAS_PG_HOST=p.host,
        PATAS_PG_PORT=str(p.port),
        PATAS_PG_USER=p.user,
        PATAS_PG_PASSWORD=p.password,
        PATAS_PG_DBNAME=p.dbname,
        DBT_PROFILES_DIR=str(PROJECT_ROOT / "profiles"),
        # A test runs only when every model it reads is part of the invocation: Dagster runs the
        # project in several steps (dbt -> Python -> dbt), and a test spanning two steps runs in the later.
        DBT_INDIRECT_SELECTION="cautious",
        PGOPTIONS=pg_options(env.get("PGOPTIONS", "")),
    )
    return env


def dbt_profile_vars(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of :func:`dbt_env`'s environment that dbt's profile and libpq read
    (``PATAS_PG_*``, ``DBT_*``, ``PGOPTIONS``): what a process running dbt in-process sets in its
    own environment."""
    return {k: v for k, v in env.items() if k.startswith(("PATAS_PG_", "DBT_", "PGOPTIONS"))}


def pg_options(base: str = "") -> str:
    """libpq's PGOPTIONS for PATAS's connections (dbt's and the Python steps'): ``base`` (the
    user's own options, kept) with JIT off unless ``base`` sets it. Each PATAS statement runs once,
    over at most a few million rows: JIT compiled its expressions in the leader and in every
    parallel worker, about 0.1 s a statement, more than it saved (docs/benchmarks.md, session 16)."""
    if re.search(r"(?:^|\s)(?:-c\s*|--)jit=", base):
        return base
    return f"{base} -c jit=off".strip()
