"""API keys (scrypt-hashed at rest, compared in constant time) and per-key token buckets.

A key is presented in the ``X-API-Key`` header. The write key allows every endpoint, a
read-only key only ``GET``. Plain keys from the settings are hashed when the app is built and
then dropped; a verified key is remembered by its SHA-256 digest so scrypt runs once per key,
not once per request.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, NamedTuple

from lumenrec.errors import ConfigError

if TYPE_CHECKING:
    from lumenrec.serving.settings import ServiceSettings

__all__ = ["API_KEY_HEADER", "KeyRing", "RateLimiter", "hash_key", "verify_key"]

API_KEY_HEADER = "X-API-Key"
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
_MAX_KEY_CHARS = 512


class _Hashed(NamedTuple):
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def hash_key(key: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$digest`` (hex) for ``key``: what to store instead of the key.

    Parameters
    ----------
    key : str
        At least 16 characters.
    salt : bytes, optional
        Random 16 bytes by default.
    """
    if len(key) < 16:
        msg = "API keys must have at least 16 characters"
        raise ConfigError(msg)
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(key.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def _parse(hashed: str) -> _Hashed:
    parts = hashed.strip().split("$")
    try:
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError
        parsed = _Hashed(
            int(parts[1]), int(parts[2]), int(parts[3]), *map(bytes.fromhex, parts[4:])
        )
    except ValueError as err:
        msg = "an API key hash must look like scrypt$N$r$p$salt_hex$digest_hex (see hash_key)"
        raise ConfigError(msg) from err
    return parsed


def verify_key(presented: str, hashed: str) -> bool:
    """True when ``presented`` matches the ``scrypt$...`` hash (``hmac.compare_digest``)."""
    h = _parse(hashed)
    cand = hashlib.scrypt(
        presented.encode("utf-8", "surrogatepass"),
        salt=h.salt,
        n=h.n,
        r=h.r,
        p=h.p,
        dklen=len(h.digest),
        maxmem=1 << 26,
    )
    return hmac.compare_digest(cand, h.digest)


class KeyRing:
    """The configured keys, by role (``"write"`` or ``"read"``), as scrypt hashes only.

    Parameters
    ----------
    write, read : list of str
        ``scrypt$...`` hashes.
    """

    def __init__(self, write: list[str], read: list[str]) -> None:
        self._hashes = [("write", h) for h in write] + [("read", h) for h in read]
        for _, h in self._hashes:
            _parse(h)
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()
        self._verify_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> KeyRing:
        """Hash the plain keys of ``settings`` (their hashed forms are used as they are).

        Plain keys are also remembered as verified (by digest, in memory only), so the first
        requests of a fresh server do not each pay for an scrypt check.
        """
        plain = [("write", settings.api_key), ("read", settings.read_api_key)]
        write = [hash_key(settings.api_key.get_secret_value())] if settings.api_key else []
        read = [hash_key(settings.read_api_key.get_secret_value())] if settings.read_api_key else []
        write += [settings.api_key_hash] if settings.api_key_hash else []
        read += [settings.read_api_key_hash] if settings.read_api_key_hash else []
        ring = cls(write, read)
        for role, secret in plain:
            if secret is not None:
                ring._remember(secret.get_secret_value(), role)
        return ring

    def _remember(self, presented: str, role: str) -> None:
        with self._lock:
            digest = hashlib.sha256(presented.encode("utf-8", "replace")).digest()
            self._verified[digest] = role
            while len(self._verified) > 64:
                self._verified.popitem(last=False)

    @property
    def hashes(self) -> list[str]:
        return [h for _, h in self._hashes]

    def cached_role(self, presented: str) -> str | None:
        """The role of an already verified key (fast path), else None."""
        with self._lock:
            return self._verified.get(hashlib.sha256(presented.encode("utf-8", "replace")).digest())

    def role(self, presented: str | None) -> str | None:
        """``"write"``, ``"read"`` or None (no key, unknown key) for a presented key."""
        if not presented or len(presented) > _MAX_KEY_CHARS:
            return None
        cached = self.cached_role(presented)
        if cached is not None:
            return cached
        # one scrypt check at a time: a burst of first requests with the same new key waits
        # for one verification instead of running (and starving the CPU with) one each
        with self._verify_lock:
            cached = self.cached_role(presented)
            if cached is not None:
                return cached
            for role, hashed in self._hashes:
                if verify_key(presented, hashed):
                    self._remember(presented, role)
                    return role
        return None


class RateLimiter:
    """Token buckets keyed by client (key digest or address): ``rate`` per second, ``burst`` deep.

    ``rate=0`` disables limiting. At most ``max_clients`` buckets are kept (least recently
    used ones are dropped, which only ever gives a client a full bucket back).
    """

    def __init__(self, rate: float, burst: float, *, max_clients: int = 10_000) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait

    @staticmethod
    def retry_after(wait: float) -> int:
        """Whole seconds for a ``Retry-After`` header (at least 1)."""
        return max(1, math.ceil(wait))
