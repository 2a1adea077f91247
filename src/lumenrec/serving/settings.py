"""ServiceSettings: every knob of ``lumenrec serve``, read from ``LUMENREC_*`` environment variables."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lumenrec.errors import ConfigError

__all__ = ["ServiceSettings", "is_loopback"]

log = logging.getLogger(__name__)
MIB = 1 << 20


class ServiceSettings(BaseSettings):
    """Settings of the HTTP service (environment prefix ``LUMENREC_``).

    Attributes
    ----------
    model_dir : Path
        Model registry root (``versions/`` + ``current`` pointer), see
        :class:`~lumenrec.serving.registry.ModelRegistry`.
    db : Path
        SQLite event store file (created when missing).
    host, port : str, int
        Bind address; a non-loopback host needs a write API key.
    api_key, read_api_key : SecretStr, optional
        Write (and admin) key and read-only key, sent as ``X-API-Key``. Only their scrypt
        hashes are kept once the app is built.
    api_key_hash, read_api_key_hash : str, optional
        The same keys given as ``scrypt$...`` hashes (see ``serving.auth.hash_key``), so the
        plain key need not be stored anywhere.
    require_read_key : bool
        Reads need a key too (default: reads are open, writes always need the write key).
    rate_limit, rate_burst : float
        Token bucket per key (per client address without a key): requests per second and
        bucket size; ``rate_limit=0`` turns limiting off.
    store_synchronous : {"FULL", "NORMAL"}
        SQLite ``synchronous``: FULL survives power loss, NORMAL only process crashes.
    store_group_commit : bool
        One writer thread commits the feedback of concurrent requests together (one fsync
        per batch; each request is answered after its batch commits).
    retrieval : {"exact", "ann", "auto"}
        How lists of factor models (ALS, BPR) are ranked: score every item (``exact``, the
        default), a faiss HNSW index (``ann``), or HNSW from ``ann_min_items`` items on
        (``auto``). Other models always rank exactly.
    ann_m, ann_ef_construction, ann_ef_search, ann_rebuild_share
        HNSW graph degree, build and search candidate list sizes, and the share of deleted
        items (tombstones) that triggers a rebuild of the graph.
    """

    model_config = SettingsConfigDict(env_prefix="LUMENREC_", extra="ignore")

    model_dir: Path
    db: Path
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: SecretStr | None = None
    api_key_hash: str | None = None
    read_api_key: SecretStr | None = None
    read_api_key_hash: str | None = None
    require_read_key: bool = False
    max_body_bytes: int = Field(MIB, ge=1024)
    max_batch: int = Field(10_000, ge=1)
    rate_limit: float = Field(1000.0, ge=0)
    rate_burst: float = Field(2000.0, ge=1)
    store_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    store_group_commit: bool = True
    busy_timeout_ms: int = Field(5000, ge=0)
    auto_insert_item: bool = True
    history_limit: int = Field(500, ge=1)
    cache_size: int = Field(10_000, ge=0)
    cache_ttl_s: float = Field(60.0, ge=0)
    blas_threads: int = Field(1, ge=1)
    reload_interval_s: float = Field(0.0, ge=0)
    retrieval: Literal["exact", "ann", "auto"] = "exact"
    ann_min_items: int = Field(100_000, ge=1)
    ann_m: int = Field(32, ge=4, le=256)
    ann_ef_construction: int = Field(200, ge=8)
    ann_ef_search: int = Field(512, ge=8)
    ann_rebuild_share: float = Field(0.2, gt=0, le=1)
    explore_default: str | None = None
    explore_split: str | None = None
    explore_candidates: int = Field(50, ge=1, le=1000)
    explore_feedback_window_s: float = Field(300.0, gt=0)
    explore_save_every: int = Field(100, ge=1)
    log_impressions: bool = False
    pseudonymize: bool = False
    pseudonym_key: SecretStr | None = None

    @field_validator(
        "api_key",
        "read_api_key",
        "api_key_hash",
        "read_api_key_hash",
        "pseudonym_key",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """An empty variable (``LUMENREC_API_KEY=``) means no key, not an empty key."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(raw, str) and not raw.strip() else value

    def pseudonymizer(self) -> Any:
        """The :class:`~lumenrec.privacy.ids.Pseudonymizer` when ``pseudonymize`` is on (a
        missing or short ``pseudonym_key`` is a ConfigError), else None."""
        if not self.pseudonymize:
            return None
        from lumenrec.errors import ConfigError
        from lumenrec.privacy.ids import KEY_ENV, Pseudonymizer

        if self.pseudonym_key is None or not self.pseudonym_key.get_secret_value().strip():
            msg = (
                f"pseudonymize is on but no HMAC key is set: export {KEY_ENV} (a long random "
                "secret kept apart from the data)"
            )
            raise ConfigError(msg)
        return Pseudonymizer.from_secret(self.pseudonym_key.get_secret_value().strip())

    def has_write_key(self) -> bool:
        """True when a write key (plain or hashed) is configured."""
        return self.api_key is not None or self.api_key_hash is not None

    def check_bind(self) -> None:
        """Refuse an open service: a non-loopback host needs a write API key.

        Raises
        ------
        ConfigError
        """
        if not is_loopback(self.host) and not self.has_write_key():
            msg = (
                f"refusing to listen on {self.host}: it is reachable from other machines and no "
                "API key is set; set LUMENREC_API_KEY (or LUMENREC_API_KEY_HASH) or bind to "
                "127.0.0.1"
            )
            raise ConfigError(msg)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
