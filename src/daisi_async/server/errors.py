"""The runtime's HTTP errors: one exception, rendered as a JSON error reply."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A client error with a precise status, a machine code and a message.

    Example:
        >>> raise ApiError(404, "not_found", "no Daisi named 'x'")  # doctest: +SKIP
    """

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param

    def to_json(self) -> dict[str, Any]:
        """The ``{"status", "code", "message", "param"?}`` body of the reply."""
        body: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.param is not None:
            body["param"] = self.param
        return body


def not_found(what: str) -> ApiError:
    """A 404 for something unknown or invisible to the caller."""
    return ApiError(404, "not_found", what)


def forbidden(message: str) -> ApiError:
    """A 403: the caller is known and may see the thing, but may not do this to it."""
    return ApiError(403, "forbidden", message)


def bad_request(message: str, *, param: str | None = None) -> ApiError:
    """A 400 for a malformed request."""
    return ApiError(400, "bad_request", message, param=param)


def invalid_arguments(message: str, *, param: str | None = None) -> ApiError:
    """A 422 for arguments that do not fit the endpoint."""
    return ApiError(422, "invalid_arguments", message, param=param)
