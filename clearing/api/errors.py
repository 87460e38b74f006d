"""Every answer of the API is JSON, errors included: `{"error": "...", "fields": [...]}`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import orjson
from aiohttp import web

from clearing.api.validation import FieldError
from clearing.core.errors import ClearingError
from clearing.core.jsonish import JSONMapping, JSONObject

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    status: int, body: JSONMapping, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=headers,
    )


class ApiError(ClearingError):
    """An answer other than success; raised anywhere in a handler, rendered by the middleware."""

    def __init__(
        self,
        status: int,
        error: str,
        fields: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        extra: JSONMapping | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.fields = list(fields)
        self.headers = headers
        self.extra = extra or {}
        self.close = close  # the connection cannot serve another request (a body cut short)

    def response(self) -> web.Response:
        body: JSONObject = {"error": self.error}
        if self.fields:
            body["fields"] = [{"field": f.field, "message": f.message} for f in self.fields]
        body.update(self.extra)
        response = json_response(self.status, body, self.headers)
        if self.close:
            response.force_close()
        return response


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns every failure into a JSON answer; an unexpected one is logged without the body."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow",)}
        return json_response(exc.status, {"error": exc.reason.lower()}, headers)
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.rel_url.path)
        return json_response(500, {"error": "internal error"})
