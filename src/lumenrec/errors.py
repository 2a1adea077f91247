"""The LumenRec exception and warning tree; every error the library raises comes from here.

::

    LumenError(Exception)
    ├── NotFittedError(LumenError, ValueError, AttributeError)
    ├── DataError(LumenError, ValueError)
    │   └── UnknownIdError(DataError, KeyError)
    ├── ConfigError(LumenError, ValueError)
    ├── FitError(LumenError, RuntimeError)
    ├── ArtifactError(LumenError, OSError)
    └── MissingDependencyError(LumenError, ImportError)

    LumenWarning(UserWarning) ⊃ DataWarning, ConvergenceWarning, EfficiencyWarning,
                                ArtifactVersionWarning
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ArtifactVersionWarning",
    "ConfigError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "EfficiencyWarning",
    "FitError",
    "LumenError",
    "LumenWarning",
    "MissingDependencyError",
    "NotFittedError",
    "UnknownIdError",
]


class LumenError(Exception):
    """Base class of every error LumenRec raises on purpose."""


class NotFittedError(LumenError, ValueError, AttributeError):
    """A model was used before ``fit`` (or ``load``)."""


class DataError(LumenError, ValueError):
    """Input data has the wrong shape, type, columns or values."""


class UnknownIdError(DataError, KeyError):
    """An external id is not in the vocabulary."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(LumenError, ValueError):
    """An invalid hyperparameter, setting or option."""


class FitError(LumenError, RuntimeError):
    """Training diverged or produced non-finite parameters."""


class ArtifactError(LumenError, OSError):
    """A saved artifact is missing, corrupt or incompatible."""


class MissingDependencyError(LumenError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class LumenWarning(UserWarning):
    """Base class of LumenRec warnings."""


class DataWarning(LumenWarning):
    """Data is usable but suspicious (e.g. duplicates were merged)."""


class ConvergenceWarning(LumenWarning):
    """An iterative fit stopped before converging."""


class EfficiencyWarning(LumenWarning):
    """Something works but slowly (e.g. BLAS oversubscription)."""


class ArtifactVersionWarning(LumenWarning):
    """An artifact was written by a different LumenRec version."""


def missing_dependency(package: str, extra: str) -> MissingDependencyError:
    """Build the standard error for an absent optional dependency."""
    msg = (
        f"{package} is required for this feature; install it with: pip install 'lumenrec[{extra}]'"
    )
    return MissingDependencyError(msg)
