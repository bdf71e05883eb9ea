"""Exception types. Messages name the file, key, column or row and say how to fix it."""


class DDStarsError(Exception):
    """Base class of all project errors."""


class ConfigError(DDStarsError):
    """A configuration key is missing, unknown, of the wrong type or out of range."""


class SchemaError(DDStarsError):
    """A table lacks a column, or a column has the wrong dtype."""


class DataError(DDStarsError):
    """Input data are unusable (empty, non-finite where values are required, ...)."""


class DustMapMissingError(DDStarsError):
    """A dust-map file is missing or fails its checksum."""


class ConvergenceError(DDStarsError):
    """Training ended without meeting its convergence criteria (raised only with train.require_converged)."""
