"""RFC 9457 problem details, naming the field at fault where there is one."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Raise from anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
        self.headers = headers
        self.extra = extra or {}


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if field:
        body["field"] = field
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def validation_errors(exc: RequestValidationError | Any) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors()[:20]:
        out.append(
            {"field": _loc_to_field(err.get("loc", ())), "message": str(err.get("msg", "invalid"))[:200]}
        )
    return out


async def handle_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = validation_errors(exc)
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return problem_response(
        400, "Invalid request", f"{first['field']}: {first['message']}", field=first["field"], errors=errors
    )


async def handle_problem(_: Request, exc: ProblemError) -> JSONResponse:
    return problem_response(
        exc.status, exc.title, exc.detail, field=exc.field, headers=exc.headers, extra=exc.extra
    )


async def handle_http_exception(request: Request, exc: StarletteHTTPException) -> Any:
    from supportlens.web.pages import render_error_page, wants_html

    if wants_html(request):
        return render_error_page(request, exc.status_code, str(exc.detail))
    return problem_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))
