"""The worker's web server, hardened: every answer JSON, nothing of a request echoed or logged,
and read timeouts on headers and bodies.

aiohttp answers what its parser refuses (a request line or header over 8,190 bytes, a malformed
header, a bad method) itself, before any application or middleware runs: a text/plain 400 that
quotes the offending bytes, logged at ERROR with them. Those bytes may be a bearer token. Here
the protocol's `handle_error` answers `{"error": ...}` from a fixed text per kind of failure
and logs only that kind. `json_errors` does the same for what the routing raises (404, 405,
413) and for any failure inside a handler that no sub-application caught.

Headers: a connection that has not sent a whole request within `read_timeout` seconds of
connecting (or of its previous answer) is closed, through aiohttp's keep-alive timer, which
closes a connection still waiting for its next request. Bodies: `read_body` answers 408 when a
body has not arrived within `read_timeout`, and the connection is closed after at most as long
again (aiohttp's lingering read of an unread body).
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from clearing.api.errors import ApiError, Handler, json_response
from clearing.config import DEFAULT_WEB_READ_TIMEOUT

if TYPE_CHECKING:
    import faust
    from faust.web.drivers.aiohttp import Web

log = logging.getLogger(__name__)

# What the parser's refusals are called in an answer; never the refused bytes themselves.
_PARSER_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (http_exceptions.LineTooLong, "a request line or header is too long"),
    (http_exceptions.BadHttpMethod, "not an HTTP method"),
    (http_exceptions.BadStatusLine, "malformed request line"),
    (http_exceptions.InvalidHeader, "malformed header"),
    (http_exceptions.ContentLengthError, "malformed body"),
    (http_exceptions.TransferEncodingError, "malformed body"),
)


def error_text(status: int, exc: BaseException | None = None) -> str:
    """A fixed description of a failure: by the exception's kind, else by the status."""
    for kind, text in _PARSER_ERRORS:
        if isinstance(exc, kind):
            return text
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


class JsonRequestHandler(RequestHandler):
    """aiohttp's protocol with JSON error answers that quote nothing of the request."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # The exception's text and traceback quote the refused bytes: only its kind is logged.
        kind = type(exc).__name__ if exc is not None else "none"
        if status >= 500:
            log.error("web server: %s answering a request (%s)", status, kind)
        else:
            log.info("web server: refused a request with %s (%s)", status, kind)
        if request.writer.output_size > 0:  # an answer was started: nothing more can be sent
            raise ConnectionError("an answer was already started")
        response = json_response(status, {"error": error_text(status, exc)})
        response.force_close()
        return response


class JsonServer(web.Server):
    """aiohttp's connection factory, making `JsonRequestHandler`s."""

    def __call__(self) -> RequestHandler:
        return JsonRequestHandler(self, loop=self._loop, **self._kwargs)


class HardenedRunner(web.AppRunner):
    """The runner faust serves its aiohttp app with, with `JsonServer` connections."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return JsonServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )


def runner_options(read_timeout: float) -> dict[str, Any]:
    """The request handlers' settings: the header and lingering-body timeouts, no access log
    (it would hold every query string)."""
    return {"access_log": None, "keepalive_timeout": read_timeout, "lingering_time": read_timeout}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The root app's errors as JSON: routing's 404 and 405, aiohttp's 413, any failure."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return json_response(exc.status, {"error": error_text(exc.status)}, headers)
    except ApiError as exc:
        return exc.response()
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception as exc:
        log.error("unhandled %s answering %s", type(exc).__name__, request.method, exc_info=exc)
        return json_response(500, {"error": "internal error"})


async def read_body(request: web.BaseRequest, limit: int, timeout: float) -> bytes:
    """The body, refused with 413 as soon as it is known to pass `limit` bytes, and with 408
    (closing the connection) when it has not all arrived within `timeout` seconds."""
    too_large = ApiError(413, f"the body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise too_large
    except TimeoutError:
        raise ApiError(408, f"the body did not arrive within {timeout:g} s", close=True) from None
    return bytes(body)


def harden(app: faust.App, read_timeout: float = DEFAULT_WEB_READ_TIMEOUT) -> bool:
    """Serves a faust app's web server with `HardenedRunner` and `json_errors`; before the
    worker starts it. False when the web server is off or already hardened."""
    if not app.conf.web_enabled:
        return False
    web_driver = cast("Web", app.web)  # faust types `app.web` as the driver-agnostic base
    if isinstance(web_driver._runner, HardenedRunner):
        return False
    web_driver._runner = HardenedRunner(web_driver.web_app, **runner_options(read_timeout))
    web_driver.web_app.middlewares.insert(0, json_errors)
    return True
