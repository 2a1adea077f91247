"""Text encoders: texts → cached, L2-normalised float32 embeddings that any model may consume.

:class:`HashingEncoder` needs nothing; :class:`SentenceEncoder` needs the ``text`` extra
(its int8 CPU path the ``text-fast`` extra). Wrap either in :class:`CachedEncoder` so each
(encoder, text) pair is encoded once.
"""

from lumenrec.encoders.base import TextEncoder, check_texts, l2_normalize
from lumenrec.encoders.cache import CachedEncoder, EmbeddingCache, text_sha256
from lumenrec.encoders.hashing import HashingEncoder
from lumenrec.encoders.sentence import BACKENDS, DEFAULT_MODEL, SentenceEncoder, resolve_model
from lumenrec.encoders.templates import (
    DEFAULT_ITEM_FIELDS,
    ItemTextTemplate,
    UserProfileTemplate,
    format_value,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_ITEM_FIELDS",
    "DEFAULT_MODEL",
    "CachedEncoder",
    "EmbeddingCache",
    "HashingEncoder",
    "ItemTextTemplate",
    "SentenceEncoder",
    "TextEncoder",
    "UserProfileTemplate",
    "check_texts",
    "format_value",
    "l2_normalize",
    "resolve_model",
    "text_sha256",
]
