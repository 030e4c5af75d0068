"""Errors that services raise and the API turns into 4xx answers.

Services know what went wrong; the API layer only maps the kind to a status.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ServiceError(Exception):
    status: int = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    def as_dict(self) -> dict[str, Any]:
        return {"detail": self.message, **self.details}


class NotFound(ServiceError):
    status = HTTPStatus.NOT_FOUND


class Conflict(ServiceError):
    status = HTTPStatus.CONFLICT


class Invalid(ServiceError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class TooLarge(ServiceError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class StorageFull(ServiceError):
    status = HTTPStatus.INSUFFICIENT_STORAGE
