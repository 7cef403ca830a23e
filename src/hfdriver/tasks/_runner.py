"""How a task call runs: send it (retried), read the answer, download what it links to, and poll
a queued job until it is done — with ``asyncio.sleep`` only, under a deadline, reporting progress,
and cancelling the job on the provider when the caller gives up.

Links and job URLs outside the router (fal's media hosts, Replicate's delivery host, Black Forest
Labs' polling host...) are fetched through the same transport and size limits, but never with
the Hugging Face token: only the router's own host gets ``Authorization``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.tasks._call import Answer, Done, Download, Job, Outcome, Pending, Send, TaskCall
from hfdriver.tasks._media import Media, decode_data_url
from hfdriver.transport import HttpClient, RequestTimeout, RetryPolicy, call_with_retries

__all__ = ["ProgressCallback", "Runner"]

logger = logging.getLogger("hfdriver")

Events = Callable[[str, Mapping[str, Any]], Any]
ProgressCallback = Callable[[str, float], Any]
"""``on_progress(status, elapsed_seconds)``: called at each poll of a queued job."""

_MAX_WAIT = 10.0  # the longest pause between two polls, whatever a provider asks (Retry-After)


class Runner:
    """Sends, downloads and polls for a :class:`~hfdriver.tasks.TaskClient`."""

    def __init__(
        self,
        http: HttpClient,
        *,
        router_url: str,
        retry: RetryPolicy,
        timeout: RequestTimeout,
        max_body_bytes: int,
        poll_interval: float | None,
        job_timeout: float,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.http = http
        self.router_url = router_url
        self.retry = retry
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.on_progress = on_progress
        self._router_host = urlsplit(router_url).netloc

    # ------------------------------------------------------------------ requests
    def url_of(self, send: Send, provider: str) -> str:
        if send.path.startswith(("http://", "https://")):
            return send.path
        return f"{self.router_url}/{provider}{send.path}"

    def _headers(self, send: Send, url: str) -> dict[str, str]:
        own = (
            send.auth
            if send.auth is not None
            else (send.path.startswith("/") or urlsplit(url).netloc == self._router_host)
        )
        base = self.http.headers if own else {"User-Agent": self.http.headers.get("User-Agent", "hfdriver")}
        headers = {k: v for k, v in base.items() if own or k.lower() != "authorization"}
        if send.content_type is not None:
            headers["Content-Type"] = send.content_type
        elif send.json is not None:
            headers["Content-Type"] = "application/json"
        else:
            headers.pop("Content-Type", None)
        headers.update(send.headers)
        return headers

    async def fetch(self, send: Send, provider: str, task: str, what: str = "task") -> Answer:
        """``send``, retried per the policy; a 2xx :class:`Answer` (an error status raises its kind)."""
        url = self.url_of(send, provider)
        headers = self._headers(send, url)
        data = send.data

        async def once() -> Answer:
            reply = await self.http.fetch(
                send.method,
                url,
                data=data,
                json=send.json,
                headers=headers,
                timeout=self.timeout,
                max_bytes=self.max_body_bytes,
            )
            lowered = {k.lower(): v for k, v in reply.headers.items()}
            return Answer(reply.status, lowered, reply.body, task, url)

        return await call_with_retries(self.retry, f"{task} {what}", once)

    async def download(self, link: Download, task: str) -> Any:
        if link.url.startswith("data:"):
            media = decode_data_url(link.url)
        else:
            answer = await self.fetch(Send(path=link.url, method="GET"), "", task, "download")
            media = Media.of(answer.body, link.declared or answer.content_type, url=link.url)
        return link.then(media) if link.then is not None else media

    # ------------------------------------------------------------------ the whole call
    async def run(self, call: TaskCall, outcome: Outcome, events: Events | None = None) -> Any:
        """Follow ``outcome`` (download, poll) to the answer, read as the task reads it;
        ``events(name, attributes)`` hears of each poll (a span's events)."""
        if isinstance(outcome, Job):
            outcome = await self.wait(outcome, call, events)
        if isinstance(outcome, Download):
            return call.task.read(await self.download(outcome, call.name), call.name)
        assert isinstance(outcome, Done)
        return call.task.read(outcome.value, call.name)

    async def wait(self, job: Job, call: TaskCall, events: Events | None = None) -> Done | Download:
        """Poll ``job`` until it is done (see the module docstring)."""
        event = events or _ignore
        started = time.monotonic()
        deadline = started + self.job_timeout
        interval = self.poll_interval if self.poll_interval is not None else job.interval
        polls = 0
        try:
            while True:
                answer = await self.fetch(job.poll, call.provider, call.name, "poll")
                state = job.read(answer)
                polls += 1
                elapsed = time.monotonic() - started
                if not isinstance(state, Pending):
                    event("hfdriver.job.done", {"hfdriver.job.id": job.id, "hfdriver.job.polls": polls})
                    if isinstance(state, Job):  # a provider that hands over to another queue
                        job = state
                        continue
                    return state
                event(
                    "hfdriver.job.poll",
                    {
                        "hfdriver.job.id": job.id,
                        "hfdriver.job.status": state.status[:64],
                        "hfdriver.job.polls": polls,
                    },
                )
                if self.on_progress is not None:
                    try:
                        self.on_progress(state.status, elapsed)
                    except Exception:  # a progress callback never breaks the job
                        logger.exception("hfdriver: on_progress failed")
                pause = min(_MAX_WAIT, state.wait if state.wait is not None else interval)
                if time.monotonic() + pause > deadline:
                    raise HuggingFaceError(
                        HuggingFaceErrorKind.TIMEOUT,
                        f"{call.name} job {job.id} on {call.provider} did not finish within "
                        f"{self.job_timeout:g} s (last status {state.status!r}); it was cancelled where the "
                        "provider allows it. Raise job_timeout= for long jobs (video)",
                    )
                await asyncio.sleep(pause)
        except BaseException:
            if await self._cancel(job, call):
                event("hfdriver.job.cancelled", {"hfdriver.job.id": job.id})
            raise

    async def _cancel(self, job: Job, call: TaskCall) -> bool:
        """Ask the provider to stop ``job`` (where it can); whether it said yes."""
        if job.cancel is None:
            return False
        # Shielded and short: the caller is leaving (cancelled, timed out), the job must not go on.
        task = asyncio.ensure_future(self._send_cancel(job, call))
        with contextlib.suppress(BaseException):
            return await asyncio.wait_for(asyncio.shield(task), 5.0)
        return False

    async def _send_cancel(self, job: Job, call: TaskCall) -> bool:
        assert job.cancel is not None
        url = self.url_of(job.cancel, call.provider)
        try:
            await self.http.fetch(
                job.cancel.method,
                url,
                json=job.cancel.json,
                headers=self._headers(job.cancel, url),
                timeout=self.timeout,
            )
        except Exception:
            logger.warning(
                "hfdriver: could not cancel %s job %s on %s", call.name, job.id, call.provider, exc_info=True
            )
            return False
        return True


def _ignore(name: str, attributes: Mapping[str, Any]) -> None:
    del name, attributes
