"""Pseudonymised user ids: a keyed HMAC-SHA256 of the external id, applied at the boundary.

With pseudonymisation on, the service and ``lumenrec train`` replace every external user id by
``HMAC-SHA256(key, id)`` (hex, first 32 characters = 128 bits) before anything is stored,
trained, cached or logged; a lookup by the raw id goes through the same function, so callers
keep using their own ids. The key comes from the settings or the environment
(``LUMENREC_PSEUDONYM_KEY``) and is never written beside the data.

What it protects: a copy of the event store, the model artifacts, logs or reports does not
show who the users are, and cannot be joined with other data by user id without the key.
What it does not protect: anyone holding the key (or running the service) can map a known id to
its pseudonym; behaviour itself can re-identify people (a rare set of items is a fingerprint);
item ids, profile texts and attribute values are not pseudonymised. It is pseudonymisation in
the GDPR sense (Art. 4(5)), not anonymisation.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lumenrec.errors import ConfigError

__all__ = ["KEY_ENV", "Pseudonymizer", "pseudonymize_dataset"]

#: Environment variable holding the HMAC key (at least 16 bytes; hex or text).
KEY_ENV = "LUMENREC_PSEUDONYM_KEY"
_MIN_KEY_BYTES = 16
_PREFIX = "p"


@dataclass(frozen=True)
class Pseudonymizer:
    """``HMAC-SHA256(key, user_id)`` as a 33-character id (``"p"`` + 32 hex digits).

    Parameters
    ----------
    key : bytes
        At least 16 bytes. Keep it out of the data directory (environment or a secret store).
    """

    key: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) < _MIN_KEY_BYTES:
            msg = (
                f"the pseudonymisation key must be at least {_MIN_KEY_BYTES} bytes; set "
                f"{KEY_ENV} to a long random secret (e.g. `python -c 'import secrets; "
                "print(secrets.token_hex(32))'`)"
            )
            raise ConfigError(msg)

    def __repr__(self) -> str:  # never print the key
        return "Pseudonymizer(key=***)"

    @classmethod
    def from_secret(cls, secret: str | bytes) -> Pseudonymizer:
        """From a text or bytes secret (used as its UTF-8 bytes)."""
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        return cls(key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Pseudonymizer:
        """From ``$LUMENREC_PSEUDONYM_KEY``; a clear error when it is missing."""
        value = (environ if environ is not None else os.environ).get(KEY_ENV, "")
        if not value.strip():
            msg = (
                f"pseudonymisation is on but no key is set: export {KEY_ENV} (a long random "
                "secret, kept apart from the data)"
            )
            raise ConfigError(msg)
        return cls.from_secret(value.strip())

    def __call__(self, user_id: str) -> str:
        """The pseudonym of one external id (apply it once: a pseudonym of a pseudonym is
        another string)."""
        digest = hmac.new(self.key, str(user_id).encode("utf-8", "surrogatepass"), hashlib.sha256)
        return _PREFIX + digest.hexdigest()[:32]

    def many(self, user_ids: Iterable[Any]) -> list[str]:
        """Pseudonyms of several ids, in order."""
        return [self(str(u)) for u in user_ids]


def pseudonymize_dataset(data: Any, pseudonymizer: Pseudonymizer) -> Any:
    """The same :class:`~lumenrec.data.dataset.Dataset` with every user id replaced by its
    pseudonym (vocabulary and user attributes); interactions are unchanged.

    Parameters
    ----------
    data : Dataset
    pseudonymizer : Pseudonymizer

    Returns
    -------
    Dataset
    """
    from lumenrec.data.dataset import Dataset
    from lumenrec.data.vocab import IdIndex

    mapped = pseudonymizer.many(data.users.ids)
    if len(set(mapped)) != len(mapped):  # 2^-128 per pair; checked rather than assumed
        msg = "two user ids have the same pseudonym; use another key"
        raise ConfigError(msg)
    attrs = data.user_attributes
    if attrs is not None:
        attrs = attrs.copy()
        name = attrs.index.name
        attrs.index = [pseudonymizer(str(u)) for u in attrs.index]
        attrs.index.name = name
    return Dataset(
        IdIndex(mapped, name="user"),
        data.items,
        data.user_idx,
        data.item_idx,
        data.ratings,
        data.timestamps,
        catalog=data.catalog,
        user_attributes=attrs,
        name=data.name,
    )
