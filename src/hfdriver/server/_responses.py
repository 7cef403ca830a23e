"""The Responses API routes of ``serve``: ``POST /v1/responses`` translated onto any driver's chat,
streamed as Responses events, and the stored responses (``GET``, ``DELETE``, ``input_items``,
``previous_response_id``). The translation itself is :mod:`hfdriver.openai.responses`."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from hfdriver.driver import Driver
from hfdriver.dto.response import GenerateResponse
from hfdriver.dto.stream import StreamChunk
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, invalid_request
from hfdriver.openai.responses import ResponseEvents, ResponsesCall, ResponseShell, new_id, read_responses
from hfdriver.server._store import ResponseStore, StoredResponse
from hfdriver.server._wire import ANSWER, CALL, MODEL, ServerState, dumps, pump
from hfdriver.telemetry import Call

__all__ = ["ResponsesRoutes"]

logger = logging.getLogger("hfdriver")
K = HuggingFaceErrorKind


class ResponsesRoutes:
    """The Responses handlers, mixed into the server's handlers (which provide these attributes)."""

    driver: Driver
    served: str
    state: ServerState
    store: ResponseStore
    warned: set[str]

    async def read_body(self, request: web.Request) -> Any:  # pragma: no cover - the server's
        raise NotImplementedError

    async def responses(self, request: web.Request) -> web.StreamResponse:
        call = read_responses(await self.read_body(request))
        self._tell(call)
        history: Sequence[Mapping[str, Any]] = ()
        if call.previous_response_id is not None:
            history = (await self._stored(call.previous_response_id, "previous_response_id")).conversation
        generate_request = call.generate_request(history, model=call.model)
        model = request[MODEL] = call.model or self.served
        server_call: Call | None = request.get(CALL)
        if server_call is not None:
            server_call.describe_request("chat", generate_request, model)
        shell = ResponseShell(new_id("resp"), model, call.echo, int(time.time()))
        if not call.stream:
            response = await self.driver.generate(generate_request)
            request[ANSWER] = response
            body = shell.completed(response)
            await self._keep(call, body, history)
            return web.Response(body=dumps(body).encode(), content_type="application/json")
        stream = self.driver.generate_stream(generate_request)
        await stream.__aenter__()  # opened first: an upstream error is an ordinary HTTP error
        encoder = _ResponsesEncoder(ResponseEvents(shell))

        async def keep() -> None:  # before the last event goes out: a client may fetch it at once
            if encoder.final is not None:
                await self._keep(call, encoder.final, history)

        return await pump(request, stream, encoder, self.state, before_end=keep)

    async def get_response(self, request: web.Request) -> web.Response:
        stored = await self._stored(request.match_info["response_id"])
        return web.Response(body=dumps(stored.response).encode(), content_type="application/json")

    async def delete_response(self, request: web.Request) -> web.Response:
        response_id = request.match_info["response_id"]
        if not await self.store.delete(response_id):
            raise _not_found(response_id)
        return web.json_response({"id": response_id, "object": "response.deleted", "deleted": True})

    async def response_input_items(self, request: web.Request) -> web.Response:
        stored = await self._stored(request.match_info["response_id"])
        query = request.query
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise invalid_request("order", "use 'asc' or 'desc'")
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise invalid_request("limit", "must be a whole number from 1 to 100")
        items = list(stored.input_items if order == "asc" else reversed(stored.input_items))
        after = query.get("after")
        if after:
            ids = [item.get("id") for item in items]
            if after not in ids:
                raise invalid_request("after", f"{after!r} is not an input item of this response")
            items = items[ids.index(after) + 1 :]
        page = items[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0].get("id") if page else None,
                "last_id": page[-1].get("id") if page else None,
                "has_more": len(items) > limit,
            }
        )

    # ------------------------------------------------------------------ helpers
    async def _stored(self, response_id: str, field: str | None = None) -> StoredResponse:
        stored = await self.store.get(response_id)
        if stored is None:
            raise _not_found(response_id, field)
        return stored

    async def _keep(
        self, call: ResponsesCall, body: Mapping[str, Any], history: Sequence[Mapping[str, Any]]
    ) -> None:
        if not call.store:
            return
        conversation = (*history, *call.input_items, *body["output"])
        await self.store.put(StoredResponse(body["id"], body, call.input_items, conversation))

    def _tell(self, call: ResponsesCall) -> None:
        """One log line per hosted tool type left out, and per unknown field ignored, per server."""
        for kind in call.dropped_tools:
            if f"tool:{kind}" not in self.warned:
                self.warned.add(f"tool:{kind}")
                logger.warning(
                    "hfdriver serve: %r tools are hosted tools that serve does not run; "
                    "they are left out of what the model sees (function tools are kept)",
                    kind,
                )
        for name in call.ignored_fields:
            if f"field:{name}" not in self.warned:
                self.warned.add(f"field:{name}")
                logger.info("hfdriver serve: the Responses field %r is not supported and was ignored", name)


def _not_found(response_id: str, field: str | None = None) -> HuggingFaceError:
    where = f"{field}: " if field else ""
    return HuggingFaceError(
        K.NOT_FOUND,
        f"{where}no stored response {response_id!r} (never stored, stored with store=false, deleted, "
        "or past the store's limits)",
    )


class _ResponsesEncoder:
    """:class:`ResponseEvents` as an encoder for :func:`pump`; ``final`` is the last response object."""

    __slots__ = ("events", "final")

    def __init__(self, events: ResponseEvents) -> None:
        self.events = events
        self.final: dict[str, Any] | None = None

    def start(self) -> bytes:
        return self.events.start()

    def chunk(self, chunk: StreamChunk) -> bytes:
        return self.events.chunk(chunk)

    def end(self, delivered: GenerateResponse) -> bytes:
        output = delivered.outputs[0] if delivered.outputs else None
        finish = output.finish_reason if output is not None else None
        out = self.events.finish(finish, delivered.usage, delivered.model)
        self.final = self.events.shell.snapshot()
        return out

    def fail(self, kind: HuggingFaceErrorKind, message: str) -> bytes:
        out = self.events.fail(kind.value, message)
        self.final = self.events.shell.snapshot()
        return out
