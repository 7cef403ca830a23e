"""The values that flow through one task call: what is asked (:class:`TaskCall`), what is sent
(:class:`Send`), what came back (:class:`Answer`) and what it means (:data:`Outcome`: a result, a
link to download, or a queued job to poll)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.tasks._media import Media
from hfdriver.tasks._spec import Task

__all__ = [
    "Answer",
    "Done",
    "Download",
    "Job",
    "Outcome",
    "Pending",
    "Send",
    "TaskCall",
    "TaskRoute",
    "params",
]


def params(**values: Any) -> dict[str, Any]:
    """Keyword parameters with the unset (``None``) ones left out."""
    return {k: v for k, v in values.items() if v is not None}


@attrs.frozen(slots=True, kw_only=True)
class TaskCall:
    """One call of a task, its provider chosen."""

    task: Task
    inputs: Any
    """The primary input: text, media (bytes or an http(s) URL), or the task's own structure."""
    parameters: Mapping[str, Any] = attrs.field(factory=dict)
    model: str
    """The Hub id (``org/name``), or the URL of a dedicated endpoint."""
    provider: str
    provider_model: str
    """The provider's name for the model (the mapping's ``providerId``)."""
    extra_body: Mapping[str, Any] = attrs.field(factory=dict)
    stream: bool = False

    @property
    def name(self) -> str:
        return self.task.name


@attrs.frozen(slots=True, kw_only=True)
class Send:
    """A request: ``path`` under ``{router_url}/{provider}`` (or an absolute URL), a JSON body or
    raw bytes."""

    path: str
    json: Any = None
    data: bytes | None = None
    content_type: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    method: str = "POST"
    auth: bool | None = None
    """Send the Hugging Face token: ``None`` to the router's host only (the default), ``True``
    also elsewhere (a dedicated endpoint the caller named), ``False`` never."""


@attrs.frozen(slots=True)
class Answer:
    """A 2xx answer: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    task: str
    url: str

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            snippet = self.body[:120].decode("utf-8", "replace")
            raise HuggingFaceError(
                HuggingFaceErrorKind.DECODE,
                f"the {self.task} answer is not JSON ({snippet!r}); check the model and provider",
            ) from None


@attrs.frozen(slots=True)
class Done:
    """The answer, in the task specification's shape (or :class:`Media`)."""

    value: Any


@attrs.frozen(slots=True)
class Download:
    """The answer is at ``url`` (fal, Replicate, Black Forest Labs, Novita): fetch it without the
    Hugging Face token (another host)."""

    url: str
    declared: str | None = None
    then: Callable[[Media], Any] | None = None
    """What to make of the bytes (default: the media itself)."""


@attrs.frozen(slots=True)
class Pending:
    """A queued job's state while it runs."""

    status: str
    progress: float | None = None
    wait: float | None = None
    """Seconds the provider asks to wait before the next poll."""


@attrs.frozen(slots=True, kw_only=True)
class Job:
    """A queued job: poll ``poll`` until :meth:`read` says done; ``cancel`` stops it on the
    provider (when it offers that)."""

    id: str
    poll: Send
    read: Callable[[Answer], Outcome | Pending]
    cancel: Send | None = None
    interval: float = 1.0
    """Seconds between two polls (the provider's own client's pace; ``poll_interval=`` overrides)."""


Outcome = Done | Download | Job


@attrs.frozen(slots=True)
class TaskRoute:
    """How one provider serves one task."""

    send: Callable[[TaskCall], Send]
    read: Callable[[Answer, TaskCall], Outcome]
    takes_urls: bool = False
    """Media inputs given as http(s) URLs are passed on as they are (else downloaded first)."""
