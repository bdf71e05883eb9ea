"""Exception types. Messages name the file, key, column or row and say how to fix it.

A bad value (a config key, an input column, an argument) is a :class:`ValueError` too, so ``except ValueError``
catches :class:`ConfigError`, :class:`SchemaError` and :class:`DataError`.
"""


class DDStarsError(Exception):
    """Base class of all project errors."""


class ConfigError(DDStarsError, ValueError):
    """A configuration key (or an argument of the public API) is missing, unknown, of the wrong type or out of
    range."""


class SchemaError(DDStarsError, ValueError):
    """A table lacks a column, or a column has the wrong dtype."""


class DataError(DDStarsError, ValueError):
    """Input data are unusable (empty, non-finite where values are required, unreadable, ...)."""


class DustMapMissingError(DDStarsError):
    """A dust-map file is missing or fails its checksum."""


class ConvergenceError(DDStarsError):
    """Training ended without meeting its convergence criteria (raised only with train.require_converged)."""
