"""The single progress-bar helper; nothing else in LumenRec imports tqdm."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("lumenrec")


def progress_enabled(enabled: bool | None) -> bool:
    """Resolve ``progress=None``: on when INFO logging is enabled and stderr is a TTY."""
    if enabled is not None:
        return enabled
    return log.isEnabledFor(logging.INFO) and sys.stderr.isatty()


def progress(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str | None = None,
    enabled: bool | None = None,
    **kwargs: Any,
) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar when enabled, else return it unchanged."""
    if not progress_enabled(enabled):
        return iter(iterable)
    from tqdm.auto import tqdm

    return iter(tqdm(iterable, total=total, desc=desc, leave=False, **kwargs))
