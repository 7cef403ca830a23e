"""The machinery of :class:`~hfdriver.tasks.TaskClient`: the transport (token, bill-to, timeouts,
retries, limits, redaction: those of ``HuggingFaceDriver``), the choice of provider, and one call
of a task from its inputs to its result, with its span."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from hfdriver._closing import Closing
from hfdriver.auth import NO_TOKEN, NoToken, Token, missing_token_message, resolve_token
from hfdriver.dto.request import validate_model
from hfdriver.errors import (
    HuggingFaceError,
    HuggingFaceErrorKind,
    error_from_stream_event,
    invalid_request,
    strip_url_credentials,
)
from hfdriver.hub import ProviderMapping, router_root
from hfdriver.huggingface._mapping import ProviderResolver, split_model
from hfdriver.openai import SseDecoder
from hfdriver.tasks._call import Download, TaskCall
from hfdriver.tasks._media import Media, read_media
from hfdriver.tasks._providers import ROUTES, TaskRoute, providers_for
from hfdriver.tasks._runner import ProgressCallback, Runner
from hfdriver.tasks._spec import TASKS, Task
from hfdriver.telemetry import start_call, traced
from hfdriver.transport import (
    DEFAULT_MAX_BODY_BYTES,
    ClientSession,
    HttpClient,
    RetryPolicy,
    Timeouts,
    stream_timeout,
    unary_timeout,
)

__all__ = ["TaskClientBase"]

logger = logging.getLogger("hfdriver")


class TaskClientBase(Closing):
    """See :class:`~hfdriver.tasks.TaskClient`."""

    def __init__(
        self,
        model: str | None = None,
        *,
        token: str | Token | NoToken | None = None,
        provider: str | None = None,
        router_url: str | None = None,
        bill_to: str | None = None,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen value
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen value
        session: ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        max_body_bytes: int = 4 * DEFAULT_MAX_BODY_BYTES,
        poll_interval: float | None = None,
        job_timeout: float = 600.0,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if model is not None:
            validate_model(model)
        if provider is not None and (not isinstance(provider, str) or not provider):
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG, f"provider {provider!r}: name a provider, or 'auto'"
            )
        if (poll_interval is not None and not poll_interval > 0) or not job_timeout > 0:
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG, "poll_interval and job_timeout must be seconds > 0"
            )
        self.model = model
        self.provider = None if provider == "auto" else provider
        self.router_url = router_root(router_url)
        self.timeouts = timeouts
        self._token = resolve_token(token)
        base = {"Accept": "*/*"}
        if bill_to:
            base["X-HF-Bill-To"] = bill_to
        if headers:
            base.update(headers)
        if self._token is not None:
            base["Authorization"] = f"Bearer {self._token.reveal()}"
        self._http = HttpClient(session=session, headers=base, secret=self._token, owner="TaskClient")
        self._runner = Runner(
            self._http,
            router_url=self.router_url,
            retry=retry,
            timeout=unary_timeout(timeouts),
            max_body_bytes=max_body_bytes,
            poll_interval=poll_interval,
            job_timeout=job_timeout,
            on_progress=on_progress,
        )
        self._providers = ProviderResolver(self._mapping)
        self._stream_timeout = stream_timeout(timeouts)

    def __repr__(self) -> str:
        token = self._token.masked if self._token else None
        router_url = strip_url_credentials(self.router_url)
        return f"TaskClient(model={self.model!r}, provider={self.provider!r}, router_url={router_url!r}, token={token!r})"

    async def aclose(self) -> None:
        """Close the client's own session (never a caller's). Safe to call twice."""
        await self._http.aclose()

    # ------------------------------------------------------------------ provider choice
    async def _mapping(self, model: str) -> tuple[ProviderMapping, ...]:
        from hfdriver.hub import HubClient

        return await HubClient(self._token or NO_TOKEN, session=self._http.session).provider_mapping(model)

    async def _route(self, task: Task, model: str | None) -> tuple[str, str, str, TaskRoute]:
        """``(model, provider, provider_model, route)`` for a call of ``task``."""
        named = model or self.model
        if named is None:
            raise invalid_request(
                "model", f"no model for {task.name}: pass model='org/name' (or TaskClient(model=...))"
            )
        if named.startswith(("http://", "https://")):  # a dedicated endpoint, spoken to as hf-inference
            return named, "hf-inference", named, ROUTES[("hf-inference", task.name)]
        validate_model(named)
        bare, suffix = split_model(named)
        if self._token is None:
            raise HuggingFaceError(HuggingFaceErrorKind.CONFIG, missing_token_message())
        known = providers_for(task.name)
        chosen = await self._providers.resolve(bare, suffix or self.provider, task.name, known)
        return bare, chosen.provider, chosen.provider_model, ROUTES[(chosen.provider, task.name)]

    async def _prepare(
        self,
        task: Task,
        inputs: Any,
        model: str | None,
        parameters: Mapping[str, Any],
        extra_body: Mapping[str, Any] | None,
        stream: bool = False,
    ) -> tuple[TaskCall, TaskRoute]:
        bare, provider, provider_model, route = await self._route(task, model)
        call = TaskCall(
            task=task,
            inputs=await self._inputs(task, inputs, route),
            parameters={k: v for k, v in parameters.items() if v is not None},
            model=bare,
            provider=provider,
            provider_model=provider_model,
            extra_body=dict(extra_body or {}),
            stream=stream,
        )
        return call, route

    async def _inputs(self, task: Task, inputs: Any, route: TaskRoute) -> Any:
        """Media inputs as bytes (a URL is downloaded, without the token, unless the route passes
        URLs on as they are)."""
        if not task.media_input:
            return inputs
        if isinstance(inputs, tuple):  # (question, image)
            question, image = inputs
            return question, await self._media(image, route)
        return await self._media(inputs, route)

    async def _media(self, value: Any, route: TaskRoute) -> bytes | str:
        if isinstance(value, (str, os.PathLike)) and not str(value).startswith(
            ("http://", "https://", "data:")
        ):
            media = await asyncio.to_thread(read_media, value)  # a file: read off the event loop
        else:
            media = read_media(value)
        if isinstance(media, str) and not route.takes_urls:
            fetched: Media = await self._runner.download(Download(media), "input")
            return fetched.data
        return media

    # ------------------------------------------------------------------ calls
    async def _call(
        self,
        name: str,
        inputs: Any,
        *,
        model: str | None,
        parameters: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Any:
        task = TASKS[name]
        call, route = await self._prepare(task, inputs, model, parameters or {}, extra_body)
        span = start_call(name, None, model=call.model, base_url=self.router_url, provider="huggingface")
        events = None
        if span is not None:
            span.span.set_attribute("hfdriver.inference_provider", call.provider)
            events = span.span.add_event

        async def run() -> Any:
            answer = await self._runner.fetch(route.send(call), call.provider, name)
            return await self._runner.run(call, route.read(answer, call), events)

        return await traced(span, run)

    async def _stream(
        self, name: str, inputs: Any, *, model: str | None, parameters: Mapping[str, Any]
    ) -> AsyncIterator[Any]:
        """The events of a streamed answer (text-generation), as JSON values; an error event
        inside the 200 stream raises its kind."""
        task = TASKS[name]
        call, route = await self._prepare(task, inputs, model, parameters, None, stream=True)
        send = route.send(call)
        url = self._runner.url_of(send, call.provider)
        resp = await self._http.open(
            "POST",
            url,
            json=send.json,
            headers={**self._http.headers, "Content-Type": "application/json", "Accept": "text/event-stream"},
            timeout=self._stream_timeout,
        )
        decoder = SseDecoder()
        done = False
        try:
            while True:
                chunk = await self._http.read_chunk(resp, phase="stream")
                # At the end, a last event without its blank line still counts (old TGI servers).
                events = decoder.feed(chunk if chunk else b"\n\n")
                for event in events:
                    if event.data.strip() == "[DONE]":
                        continue
                    try:
                        data = json.loads(event.data)
                    except ValueError:
                        raise HuggingFaceError(
                            HuggingFaceErrorKind.STREAM, f"the {name} stream sent an event that is not JSON"
                        ) from None
                    if isinstance(data, dict) and data.get("error"):
                        raise error_from_stream_event(data, token=self._token)
                    yield data
                if not chunk:
                    done = True
                    return
        finally:
            if done:
                resp.release()
            else:
                resp.close()
