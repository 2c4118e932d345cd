"""The OCPI response envelope, OCPI errors, and reading a request body."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chargegate import json_text
from chargegate.domain.clock import ocpi_datetime, utcnow

from . import status

M = TypeVar("M", bound=BaseModel)


class OcpiError(Exception):
    """An answer with a non-1000 status code. HTTP 200 unless the spec names another status."""

    def __init__(
        self,
        status_code: int,
        message: str,
        http_status: int = 200,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status
        self.data = data
        self.headers = headers or {}


class Unauthorized(OcpiError):
    def __init__(self, message: str) -> None:
        super().__init__(status.CLIENT_ERROR, message, http_status=401)


class TooManyRequests(OcpiError):
    """A caller over its request rate (domain/request_rates.py): HTTP 429 with Retry-After."""

    def __init__(self, message: str, retry_after: str) -> None:
        super().__init__(
            status.CLIENT_ERROR, message, http_status=429, headers={"Retry-After": retry_after}
        )


class NotRegistered(OcpiError):
    """Credentials PUT/DELETE before registration, or POST after it: HTTP 405 (credentials)."""

    def __init__(self, message: str) -> None:
        super().__init__(status.CLIENT_ERROR, message, http_status=405)


def envelope(
    data: Any = None, status_code: int = status.SUCCESS, message: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if data is not None:
        body["data"] = data
    body["status_code"] = status_code
    body["status_message"] = message or ("Success" if status_code == status.SUCCESS else "Error")
    body["timestamp"] = ocpi_datetime(utcnow())
    return body


def ocpi_response(
    data: Any = None,
    status_code: int = status.SUCCESS,
    message: str | None = None,
    http_status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return OcpiJSONResponse(
        envelope(data, status_code, message), status_code=http_status, headers=headers
    )


class OcpiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json_text.dumps_bytes(content)


def error_response(error: OcpiError) -> Response:
    return ocpi_response(
        error.data, error.status_code, error.message, error.http_status, error.headers
    )


def internal_error_response() -> Response:
    """An unexpected error's answer: the details go to the log, not to the caller."""
    return error_response(
        OcpiError(status.SERVER_ERROR, "internal error; the operator has the details", 500)
    )


async def read_json(request: Request) -> Any:
    """The request body as JSON; HTTP 400 with 2001 when it is not JSON (spec: MUST)."""
    raw = await request.body()
    try:
        return json_text.loads_document(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OcpiError(
            status.INVALID_PARAMETERS,
            f"request body is not valid JSON: {exc}",
            http_status=400,
        ) from exc


async def read_model(request: Request, model: type[M], headers: dict[str, str] | None = None) -> M:
    """The request body as `model`: HTTP 400 with 2001 when it is not JSON, 2001 naming the
    fields when it does not fit. Parsed by pydantic straight from the bytes, in one pass."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors()
        if errors and errors[0]["type"] == "json_invalid":
            raise OcpiError(
                status.INVALID_PARAMETERS,
                f"request body is not valid JSON: {errors[0]['msg']}",
                http_status=400,
                headers=headers,
            ) from exc
        raise OcpiError(
            status.INVALID_PARAMETERS, validation_message(exc), headers=headers
        ) from exc


def validation_message(exc: Any) -> str:
    """`token.uid: String should have at most 36 characters` — the field first, for people."""
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{location}: {error.get('msg')}")
    return "Invalid or missing parameters: " + "; ".join(parts)
