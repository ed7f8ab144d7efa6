"""One error hierarchy, rendered once as RFC 9457 problem details."""

from __future__ import annotations

from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"


class IIoTError(Exception):
    status: int = 400
    # Every status this error may answer with (OpenAPI); most have one.
    statuses: tuple[int, ...] = ()
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://iiot.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadRequest(IIoTError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(IIoTError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(IIoTError):
    status, code, title = 403, "forbidden", "Forbidden"


class TenantSuspended(Forbidden):
    code, title = "tenant_suspended", "Tenant suspended"


class NotAMember(Forbidden):
    code, title = "not_a_member", "Not a member"


class NotFound(IIoTError):
    status, code, title = 404, "not_found", "Not found"


class NotAcceptable(IIoTError):
    status, code, title = 406, "not_acceptable", "Not acceptable"


class Conflict(IIoTError):
    status, code, title = 409, "conflict", "Conflict"


class Gone(IIoTError):
    status, code, title = 410, "gone", "Gone"


class PayloadTooLarge(IIoTError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class ValidationFailed(IIoTError):
    status, code, title = 422, "validation_error", "Validation failed"


class QuotaExceeded(IIoTError):
    """A tenant limit was reached. Seat quotas answer 403, per-day volume quotas 429."""

    code, title = "quota_exceeded", "Quota exceeded"
    statuses = (403, 429)

    def __init__(
        self,
        quota_type: str,
        limit: int,
        current: int,
        *,
        status: int = 403,
        retry_after: int | None = None,
    ) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        extra: dict[str, Any] = {"quota_type": quota_type, "limit": limit, "current": current}
        if retry_after is not None:
            extra["retry_after"] = retry_after
        super().__init__(
            f"{quota_type} quota exceeded ({current} of {limit} used)", headers=headers, **extra
        )
        self.status = status


class RateLimited(IIoTError):
    """A rate limit refused the request. The problem names the limit (`limit`), its window
    and when to retry; the headers carry the same (`Retry-After` and the IETF draft
    `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, `RateLimit-Policy`)."""

    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(
        self, limit: str, window_seconds: int, retry_after: int, *, quota: int | None = None
    ) -> None:
        headers = {"Retry-After": str(retry_after)}
        extra: dict[str, Any] = {}
        if quota is not None:
            headers |= {
                "RateLimit-Limit": str(quota),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(retry_after),
                "RateLimit-Policy": f"{quota};w={window_seconds}",
            }
            extra["quota"] = quota
        super().__init__(
            f"rate limit {limit} reached, retry in {retry_after}s",
            headers=headers,
            limit=limit,
            window=f"{window_seconds}s",
            retry_after=retry_after,
            **extra,
        )


class ServiceUnavailable(IIoTError):
    status, code, title = 503, "unavailable", "Service unavailable"


def problem_responses(*errors: type[IIoTError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems a route may answer."""
    out: dict[int | str, dict[str, Any]] = {}
    for err in errors:
        for status in err.statuses or (err.status,):
            described = out.get(status, {}).get("description")
            out[status] = {
                "description": f"{described}; {err.title}" if described else err.title,
                "content": {
                    PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            }
    return out
