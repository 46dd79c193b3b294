"""The error every emulated API failure raises, rendered as a ``v1 Status`` with its code.

Its own module so that the store, the strategies and the validators can all raise it
without importing each other.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]


class ApiError(Exception):
    """A failure the API server reports as a ``Status`` object with an HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: JsonObject | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> JsonObject:
        """The ``v1 Status`` body of this error (``details`` only when there are any, as
        Go's ``omitempty`` leaves it out)."""
        status: JsonObject = {
            "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason,
        }
        if self.details:
            status["details"] = self.details
        status["code"] = self.code
        return status


__all__ = ["ApiError"]
