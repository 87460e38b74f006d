"""The hospitals' submission API, served by the stream worker's web server (`/v1/...`).

    POST /v1/settlements, POST /v1/reversals      an event as events.md writes it
    GET  /v1/settlements/{id}, /v1/reversals/{id} its result (pricing.md)
    GET  /v1/openapi.json                         the OpenAPI 3.1 document (no token)

Each hospital holds one bearer token (`clearing credentials add --kind hospital H123`); only
its SHA-256 is stored (`clearing.auth`). A new id is published to the events topic and answered
with its result once the stream has stored it (201), or 202 after a short wait; the same id and
content again gets the original answer, other content 409. A hospital sees only its own events
(403 on submit, 404 on read).

`install(app)` mounts it on a faust app; `create_app(config)` builds the aiohttp sub-application
on its own (tests, or serving it without the worker).
"""

from __future__ import annotations

from clearing.api.app import create_app, install
from clearing.api.config import ApiConfig

__all__ = ["ApiConfig", "create_app", "install"]
