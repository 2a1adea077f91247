"""JSON bytes for the hot read paths: orjson when installed, else the standard library."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps", "loads"]

try:
    import orjson

    def dumps(body: Any) -> bytes:
        return orjson.dumps(body)

    def loads(data: bytes) -> Any:
        return orjson.loads(data)

except ImportError:  # orjson is optional: the standard library gives the same JSON

    def dumps(body: Any) -> bytes:
        return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()

    def loads(data: bytes) -> Any:
        return json.loads(data)
