"""The endpoints. Order of checks: token (401), size (413), body (400), ownership (403), id
already used (409 / the original answer), then publish and wait for the stream's result.

A trial (`POST /v1/settlements/trial`) goes through the same token, size, body and ownership
checks, then is priced at once from the stored state (`clearing.api.trial`): no id is
claimed, nothing is published, nothing waits on the stream.

Reversals carry no hospital_id: a reversal is refused (403) when its settlement is known to be
another hospital's (claimed through this API, or priced with another hospital_id). A settlement
unknown here is let through, so pricing answers UNKNOWN_SETTLEMENT as the spec says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from clearing import auth
from clearing.api.config import ApiConfig
from clearing.api.errors import ApiError, json_response
from clearing.api.http import read_body
from clearing.api.publisher import Publisher
from clearing.api.store import Answer, Store
from clearing.api.trial import trial_result
from clearing.api.validation import BodyError, FieldError, validate
from clearing.core.jsonish import JSONMapping, JSONObject
from clearing.core.keys import reversal_key, settlement_key
from clearing.core.models.events import Reversal, Settlement
from clearing.core.parse import Parsed
from clearing.core.refdata import RefData
from clearing.store import db
from clearing.stream.results import spec_view

log = logging.getLogger(__name__)

T = TypeVar("T")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clearing"'}


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def conflict(what: str, ident: str, field: str) -> ApiError:
    return ApiError(
        409,
        f"{what} {ident} was already submitted with other content; "
        "submit a new event under a new id",
        [FieldError(field, "is already used by an event with other content")],
    )


class SubmissionApi:
    """The API's state: settings, database, producer, and the thread pool for blocking calls."""

    def __init__(self, config: ApiConfig) -> None:
        self.config = config
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="clearing-api")
        self.publisher = Publisher(
            config.bootstrap, config.topics.events, config.publish_timeout, config.auth
        )
        # Autocommit on SQLite: a read never waits behind a worker's batch transaction.
        self.engine = db.make_engine(config.db_url, begin_immediate=False)
        self.store = Store(self.engine)
        self._closed = False

    async def start(self, _app: web.Application) -> None:
        await self.call(db.migrate, self.engine)

    async def stop(self, _app: web.Application) -> None:
        if self._closed:
            return
        self._closed = True
        await self.call(self.publisher.close)
        await self.call(self.engine.dispose)
        self.executor.shutdown(wait=False)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs a blocking call (database, producer) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # ---- checks -----------------------------------------------------------------------------

    async def hospital(self, request: web.Request) -> auth.Principal:
        token = bearer_token(request)
        if token is None:
            raise ApiError(401, "missing bearer token", headers=CHALLENGE)
        principal = await self.call(auth.authenticate, self.engine, token, ("hospital",))
        if principal is None:
            raise ApiError(401, "invalid or revoked token", headers=CHALLENGE)
        return principal

    async def event(
        self, request: web.Request, model: type[BaseModel], event_type: str
    ) -> tuple[Parsed, bytes]:
        raw = await read_body(request, self.config.max_body_bytes, self.config.read_timeout)
        judged = validate(raw, model, event_type)
        if isinstance(judged, BodyError):
            raise ApiError(400, judged.error, judged.fields)
        return judged, raw

    # ---- endpoints --------------------------------------------------------------------------

    async def own_settlement(
        self, request: web.Request
    ) -> tuple[auth.Principal, Parsed, bytes]:
        """(hospital, parsed, raw) of a settlement body of the token's own hospital."""
        hospital = await self.hospital(request)
        parsed, raw = await self.event(request, Settlement, "settlement")
        event = parsed.event
        assert isinstance(event, Settlement)
        if event.hospital_id != hospital.id:
            raise ApiError(
                403,
                "hospital_id: a hospital submits only its own settlements",
                [FieldError("hospital_id", "is not the hospital of this token")],
            )
        return hospital, parsed, raw

    async def post_settlement(self, request: web.Request) -> web.Response:
        hospital, parsed, raw = await self.own_settlement(request)
        event = parsed.event
        assert isinstance(event, Settlement)
        sid = event.settlement_id
        return await self.submit(
            hospital,
            parsed,
            raw,
            settlement_key(sid),
            {"settlement_id": sid},
            conflict("settlement", sid, "settlement_id"),
        )

    async def post_trial(self, request: web.Request) -> web.Response:
        """The result the settlement would get now, `"trial": true`; nothing is changed."""
        _hospital, parsed, _raw = await self.own_settlement(request)
        if self.config.refdata is None:
            raise ApiError(503, "trial pricing is not available here", headers={"Retry-After": "5"})
        result = await self.call(self.trial, parsed, self.config.refdata())
        return json_response(200, result)

    def trial(self, parsed: Parsed, refdata: RefData) -> JSONObject:
        with self.engine.connect() as conn:
            return trial_result(conn, parsed, refdata)

    async def post_reversal(self, request: web.Request) -> web.Response:
        hospital = await self.hospital(request)
        parsed, raw = await self.event(request, Reversal, "reversal")
        event = parsed.event
        assert isinstance(event, Reversal)
        owner = await self.call(self.store.settlement_owner, event.settlement_id)
        if owner is not None and owner != hospital.id:
            raise ApiError(
                403,
                "settlement_id: a hospital reverses only its own settlements",
                [FieldError("settlement_id", "is another hospital's settlement")],
            )
        rid = event.reversal_id
        return await self.submit(
            hospital,
            parsed,
            raw,
            reversal_key(rid),
            {"reversal_id": rid, "settlement_id": event.settlement_id},
            conflict("reversal", rid, "reversal_id"),
        )

    async def get_settlement(self, request: web.Request) -> web.Response:
        hospital = (await self.hospital(request)).id
        sid = request.match_info["settlement_id"]
        return await self.read(hospital, settlement_key(sid), {"settlement_id": sid})

    async def get_reversal(self, request: web.Request) -> web.Response:
        hospital = (await self.hospital(request)).id
        rid = request.match_info["reversal_id"]
        return await self.read(hospital, reversal_key(rid), {"reversal_id": rid})

    # ---- submitting and reading -------------------------------------------------------------

    async def submit(
        self,
        hospital: auth.Principal,
        parsed: Parsed,
        raw: bytes,
        key: str,
        ids: Mapping[str, str],
        conflicting: ApiError,
    ) -> web.Response:
        """Accepted once: a new id is claimed, published and awaited (201, or 202 pending);
        the same content again gets the original answer (200, or 202); other content 409."""
        fp = parsed.fingerprint
        took = await self.call(self.store.taken, key)
        if took is not None:  # taken in the stream, maybe by an event that came another way
            fingerprint, result = took
            if fingerprint != fp:
                raise conflicting
            return self.reply(Answer("done", result), 200, ids)
        earlier = await self.call(self.store.claim, key, hospital.id, fp)
        if earlier is not None:
            if earlier.fingerprint != fp or earlier.hospital_id != hospital.id:
                raise conflicting
            source = earlier.source
            if source is None and earlier.age_seconds() > self.config.republish_after:
                source = await self.publish(parsed, raw, hospital, key)
            status = 200
        else:
            source = await self.publish(parsed, raw, hospital, key)
            log.info("%s accepted from hospital %s at %s", key, hospital.id, source)
            status = 201
        answer = await self.wait(key, fp, source)
        if answer.state == "conflict":  # another way in took the id first
            if answer.result is not None:
                conflicting.extra = {"result": spec_view(answer.result)}
            raise conflicting
        return self.reply(answer, status, ids)

    async def publish(
        self, parsed: Parsed, raw: bytes, hospital: auth.Principal, key: str
    ) -> str:
        try:
            source = await asyncio.wait_for(
                self.call(
                    self.publisher.publish,
                    parsed.event.person_id,
                    raw,
                    hospital.id,
                    hospital.province,
                ),
                self.config.publish_timeout + 1,
            )
        except Exception as exc:  # the broker's many errors all mean "not acknowledged"
            log.error(
                "%s from hospital %s not acknowledged: %s", key, hospital.id, type(exc).__name__
            )
            # Free the id: if the event did reach the broker after all, the stream still judges
            # a later submission of that id against it (duplicate, or DUPLICATE_CONFLICT -> 409).
            await self.call(self.store.release, key)
            raise ApiError(
                503,
                "the event could not be handed to the clearinghouse; retry with the same content",
                headers={"Retry-After": "5"},
            ) from None
        await self.call(self.store.published, key, source)
        return source

    async def wait(self, key: str, fingerprint: str, source: str | None) -> Answer:
        """Polls the state store for the result, for at most the configured wait."""
        deadline = time.monotonic() + self.config.wait_seconds
        while True:
            answer = await self.call(self.store.answer, key, fingerprint, source)
            if answer.state != "pending" or time.monotonic() >= deadline:
                return answer
            await asyncio.sleep(self.config.poll_seconds)

    def reply(self, answer: Answer, status: int, ids: Mapping[str, str]) -> web.Response:
        """The stored result (as `clearing price` prints it), or 202 while it is pending."""
        location = location_of(ids)
        if answer.result is None:
            return json_response(202, {"status": "pending", **ids}, {"Location": location})
        headers = {"Location": location} if status == 201 else None
        return json_response(status, spec_view(answer.result), headers)

    async def read(self, hospital: str, key: str, ids: Mapping[str, str]) -> web.Response:
        """The result of an id, to the hospital it belongs to; 404 to anyone else."""
        kind = "reversal" if "reversal_id" in ids else "settlement"
        not_found = ApiError(404, f"no {kind} {ids[kind + '_id']} of this hospital")
        claim = await self.call(self.store.claim_of, key)
        if claim is not None:
            if claim.hospital_id != hospital:
                raise not_found
            # A conflict here is the claim's own DUPLICATE_CONFLICT rejection (or pending).
            answer = await self.call(self.store.answer, key, claim.fingerprint, claim.source)
            return self.reply(answer, 200, ids)
        took = await self.call(self.store.taken, key)
        result = took[1] if took is not None else None
        if result is None or await self.owner(result) != hospital:
            raise not_found
        return self.reply(Answer("done", result), 200, ids)

    async def owner(self, result: JSONMapping) -> str | None:
        """The hospital of a stored result (a rejected reversal: that of its settlement)."""
        hospital = result.get("hospital_id")
        if isinstance(hospital, str):
            return hospital
        sid = result.get("settlement_id")
        if result.get("reversal_id") is not None and isinstance(sid, str):
            return await self.call(self.store.settlement_owner, sid)
        return None


def location_of(ids: Mapping[str, str]) -> str:
    if "reversal_id" in ids:
        return f"/v1/reversals/{ids['reversal_id']}"
    return f"/v1/settlements/{ids['settlement_id']}"
