"""RFC 9457 problem details: the one error shape every Eindr component answers with.

Routes and services raise typed ``Problem`` exceptions; ``install_problem_handlers``
renders them (and validation errors, HTTP errors and unexpected exceptions) as
``application/problem+json``. Nothing else formats an error response.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://docs.eindr.app/problems/"

log = logging.getLogger("eindr.errors")


class Problem(Exception):
    status: int = 500
    code: str = "internal_error"
    title: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if title is not None:
            self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(detail or self.code)

    def body(self, instance: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.code,
            "title": self.title or HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail or HTTPStatus(self.status).description,
            "instance": instance,
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(Problem):
    status, code = 400, "bad_request"


class ValidationFailed(Problem):
    status, code, title = 400, "validation_error", "Request validation failed"


class Unauthorized(Problem):
    status, code = 401, "unauthorized"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(Problem):
    status, code = 403, "forbidden"


class NotFound(Problem):
    status, code = 404, "not_found"


class Conflict(Problem):
    status, code = 409, "conflict"


class PayloadTooLarge(Problem):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(Problem):
    status, code = 415, "unsupported_media_type"


class RateLimited(Problem):
    status, code = 429, "rate_limited"


class ServiceUnavailable(Problem):
    status, code = 503, "service_unavailable"


class GatewayTimeout(Problem):
    status, code = 504, "upstream_timeout"


def problem_response(problem: Problem, request: Request | None) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem.body(instance), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


_MAX_FIELD_PART = 64


def _safe_part(part: Any) -> str:
    # A field name can be client input (an unknown JSON key): never reflect it raw.
    text = "".join(ch if ch.isprintable() else "?" for ch in str(part))
    return text if len(text) <= _MAX_FIELD_PART else text[:_MAX_FIELD_PART] + "…"


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "timezone") -> "timezone"; ("query", "limit") -> "limit"; ("body", "items", 3, "title") -> "items[3].title"
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header", "cookie") else list(loc)
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _safe_part(part)
    return out or (str(loc[0]) if loc else "body")


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for err in exc.errors():
        message = err.get("msg", "invalid")
        # Never echo the offending input back: it may be a megabyte of junk or a NUL byte.
        errors.append({"field": _field_name(tuple(err.get("loc", ()))), "message": message})
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(ValidationFailed(f"Invalid value for: {fields}", errors=errors), request)

    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}.get(
            exc.status_code, HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
        )
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(
            Problem(detail, status=exc.status_code, code=code, headers=dict(exc.headers or {})), request
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem("An unexpected error occurred; it has been logged."), request)

    app.add_exception_handler(Problem, on_problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected)
