"""Exception classes. The names follow Chroma's error names so that the server can
report them in Chroma's JSON error shape and clients can raise the same classes."""

from __future__ import annotations


class HaimaError(Exception):
    """Base class of every error Haima raises on purpose."""

    #: HTTP status the server answers with for this error.
    status_code: int = 500

    @property
    def name(self) -> str:
        return type(self).__name__


class InvalidArgumentError(HaimaError, ValueError):
    """Bad input: the message names the field and the problem."""

    status_code = 400


class InvalidFilterError(InvalidArgumentError):
    """A `where` or `where_document` filter that does not parse."""


class DimensionMismatchError(InvalidArgumentError):
    """An embedding whose length differs from the collection's dimension."""


class DuplicateIDError(InvalidArgumentError):
    """The same id appears twice in one call."""


class NotFoundError(HaimaError, LookupError):
    """A collection, tenant or database that does not exist."""

    status_code = 404


class UniqueConstraintError(HaimaError):
    """A collection with that name exists already."""

    status_code = 409


class AuthorizationError(HaimaError):
    """Missing or wrong API key."""

    status_code = 401


class PayloadTooLargeError(HaimaError):
    status_code = 413


class ResetNotAllowedError(HaimaError, PermissionError):
    """`reset()` called on a client whose settings do not allow it."""

    status_code = 403


class EmbeddingFunctionError(HaimaError):
    """An embedding function failed or returned unusable output."""

    status_code = 500


class ServerUnavailableError(HaimaError):
    """An HttpClient could not reach its server, or the server did not answer in time."""

    status_code = 503


class RequestTimeoutError(HaimaError):
    """The server stopped a request that ran past its deadline (`haima run
    --request-timeout`); a write it carried was committed whole or not at all."""

    status_code = 504


class MissingDependencyError(HaimaError):
    """An optional package a feature needs is not installed (an embedding provider's, a
    loader's such as pypdf, the evaluation's matplotlib); the message gives the
    `pip install` line."""

    def __init__(self, message: str, *, package: str, extra: str | None) -> None:
        super().__init__(message)
        self.package = package
        self.extra = extra
