"""ModelRegistry: versioned pipeline artifacts under one root and an atomic ``current`` pointer.

Layout::

    ROOT/versions/v1/    a RecommendPipeline artifact (manifest + sha256 of every file)
    ROOT/versions/v2/
    ROOT/current         "v2\\n": the version the service loads

Publishing writes the artifact to a temporary sibling, fsyncs it and renames it into place
(:func:`~lumenrec.persistence.write_artifact`), loads it back to verify it, and only then
replaces ``current`` (temp file → fsync → ``os.replace`` → fsync of the directory). A crash at
any point leaves the previous version current; leftovers (``.*.tmp``) are removed at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from lumenrec.errors import (
    ArtifactError,
    ConfigError,
    LumenError,
    NotFittedError,
    UnknownIdError,
)
from lumenrec.pipeline import RecommendPipeline
from lumenrec.types import PathLike

__all__ = ["VERSION_PATTERN", "ModelRegistry", "check_version_name"]

log = logging.getLogger(__name__)
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_NUMBERED = re.compile(r"^v(\d+)$")


def check_version_name(version: str) -> str:
    """Validate a version name (``^[A-Za-z0-9._-]{1,64}$``, not ``.``/``..``)."""
    if not VERSION_PATTERN.match(version) or version.strip(".") == "":
        msg = f"invalid model version {version!r}: use 1-64 characters from A-Z a-z 0-9 . _ -"
        raise ConfigError(msg)
    return version


class ModelRegistry:
    """Versioned model directories with an atomically replaced ``current`` pointer.

    Parameters
    ----------
    root : path
        Registry directory (created when missing).
    """

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        self.cleanup()

    def cleanup(self) -> list[str]:
        """Remove leftovers of interrupted writes (``.*.tmp``, ``.*.old-*``); returns their names."""
        removed = []
        with self._locked():  # a concurrent publisher's temp directory is not a leftover
            for path in [*self.versions_dir.iterdir(), *self.root.iterdir()]:
                name = path.name
                if name.startswith(".") and (name.endswith(".tmp") or ".old-" in name):
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
                    removed.append(name)
        if removed:
            log.info("registry %s: removed leftovers %s", self.root, removed)
        return removed

    # -- queries ---------------------------------------------------------------------------
    def versions(self) -> list[str]:
        """Published version names, oldest first (numbered ones by number)."""
        names = [
            p.name
            for p in self.versions_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and VERSION_PATTERN.match(p.name)
        ]

        def key(name: str) -> tuple[int, str]:
            m = _NUMBERED.match(name)
            return (int(m.group(1)) if m else -1, name)

        return sorted(names, key=key)

    def current(self) -> str | None:
        """The version the ``current`` pointer names, or None when nothing is published."""
        pointer = self.root / "current"
        if pointer.is_symlink():
            msg = f"model registry {self.root}: the current pointer is a link; it must be a file"
            raise ArtifactError(msg)
        if not pointer.is_file():
            return None
        text = pointer.read_text(encoding="utf-8").strip()
        try:
            return check_version_name(text)
        except ConfigError as err:
            msg = f"model registry {self.root}: the current pointer is corrupt ({text[:80]!r})"
            raise ArtifactError(msg) from err

    def path(self, version: str) -> Path:
        """Directory of ``version``.

        Raises
        ------
        ConfigError
            Invalid version name.
        UnknownIdError
            No such version.
        ArtifactError
            The version directory is a link that leads outside ``ROOT/versions``.
        """
        path = self.versions_dir / check_version_name(version)
        if not path.is_dir():
            msg = f"model version {version!r} not found"
            raise UnknownIdError(msg)
        if not path.resolve().is_relative_to(self.versions_dir.resolve()):
            msg = (
                f"model version {version!r} resolves outside the registry "
                f"({self.root}/versions); a version must be a directory inside it, not a link"
            )
            raise ArtifactError(msg)
        return path

    def load(self, version: str | None = None) -> RecommendPipeline:
        """Load and check ``version`` (default: the current one).

        Raises
        ------
        NotFittedError
            Nothing published yet.
        UnknownIdError, ArtifactError
            Missing, corrupt or incompatible version. A reader library failing on a damaged
            file with its own exception type (e.g. safetensors' ``SafetensorError``) is
            reported as an :class:`ArtifactError` too, so a bad version is always refused
            the same way (409, old model keeps serving; exit 2 in the CLI).
        """
        if version is None:
            version = self.current()
            if version is None:
                msg = f"no model published in {self.root}; run `lumenrec train --out {self.root}`"
                raise NotFittedError(msg)
        return _load_checked(self.path(version))

    # -- changes ---------------------------------------------------------------------------
    def publish(self, pipeline: RecommendPipeline, *, activate: bool = True) -> str:
        """Write ``pipeline`` as the next version, verify it, and (by default) make it current.

        Returns
        -------
        str
            The new version name (``v1``, ``v2``, ...).

        Raises
        ------
        ArtifactError
            The written artifact did not load back; it is removed and nothing changes.
        """
        with self._locked():
            numbers = [int(m.group(1)) for v in self.versions() if (m := _NUMBERED.match(v))]
            version = f"v{max(numbers, default=0) + 1}"
            target = self.versions_dir / version
            pipeline.save(target)
            try:
                _load_checked(target)
            except ArtifactError:
                shutil.rmtree(target, ignore_errors=True)
                raise
            if activate:
                self._write_pointer(version)
        log.info("registry %s: published %s", self.root, version)
        return version

    def set_current(self, version: str) -> None:
        """Point ``current`` at an existing version (atomic)."""
        self.path(version)
        with self._locked():
            self._write_pointer(version)

    def _write_pointer(self, version: str) -> None:
        tmp = self.root / f".current.{os.getpid()}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / "current")
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive inter-process lock on the registry (flock; a no-op without fcntl)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        with (self.root / ".lock").open("a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _load_checked(path: Path) -> RecommendPipeline:
    """:meth:`RecommendPipeline.load`, with foreign reader errors turned into ArtifactError."""
    try:
        return RecommendPipeline.load(path)
    except LumenError:
        raise
    except Exception as err:  # a third-party reader choking on a damaged file
        msg = f"model at {path} is corrupt: {type(err).__name__}: {err}"
        raise ArtifactError(msg) from err
