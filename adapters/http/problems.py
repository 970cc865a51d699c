"""RFC 9457 problem details for every error, and nothing of the server's insides in any of them."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException, ProblemDetailsPlugin

from adapters.http.rate_limit import LimiterUnavailable
from commands.errors import AggregateNotFound, ConcurrencyError, SubjectErased
from domain.aggregate import DomainError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def _problem(status: int, title: str, headers: dict[str, str] | None = None) -> Any:
    def convert(error: Exception) -> ProblemDetailsException:
        extra = {name: getattr(error, name) for name in ("problems",) if hasattr(error, name)}
        return ProblemDetailsException(
            detail=str(error), status_code=status, title=title, extra=extra or None, headers=headers
        )

    return convert


def _http_problem(error: HTTPException) -> ProblemDetailsException:
    """Litestar's own errors (400 validation, 401, 403, 404, 405, 429 ...) as problems: title from the status."""
    extra = error.extra
    errors = {"errors": extra} if isinstance(extra, list) else extra if isinstance(extra, dict) else None
    return ProblemDetailsException(
        detail=error.detail,
        status_code=error.status_code,
        title=HTTPStatus(error.status_code).phrase,
        headers=error.headers,
        extra=errors or None,
    )


def _internal_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    body = {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the server failed; it was logged",
    }
    return Response(body, status_code=500, media_type=PROBLEM)


def problem_details() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            enable_for_all_http_exceptions=True,
            exception_to_problem_detail_map={
                HTTPException: _http_problem,
                DomainError: _problem(422, "The command was refused"),
                AggregateNotFound: _problem(404, "Not found"),
                ConcurrencyError: _problem(409, "Conflict: the resource changed"),
                SubjectErased: _problem(409, "Conflict: the data subject was erased"),
                LimiterUnavailable: _problem(503, "Service unavailable", {"Retry-After": "5"}),
            },
        )
    )


EXCEPTION_HANDLERS = {Exception: _internal_error}
