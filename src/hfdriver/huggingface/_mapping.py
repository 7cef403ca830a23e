"""Which provider serves a model for a task through the router, and under which name.

The Hub says it per model (``GET {HF_ENDPOINT}/api/models/{id}?expand[]=inferenceProviderMapping``):
a list of providers in the token owner's order of preference, each with a ``status`` (``live`` or
``staging``), the ``task`` it serves the model for and its ``providerId`` (the provider's own name for
the model). :class:`ProviderResolver` picks from it:

- a provider named by the model's ``:provider`` suffix (or ``routing``) is used when the Hub lists it
  for the task (a ``staging`` entry with one WARNING); ``hf-inference`` needs no look-up (its model
  ids are the Hub's);
- without one (or with a policy: ``fastest``, ``cheapest``, ``preferred``), the first ``live`` entry
  whose provider hfdriver knows for the task; unknown providers are skipped;
- nothing usable is ``MODEL_NOT_SUPPORTED`` naming the model, the task and what the Hub listed.

Look-ups are cached for the resolver's lifetime (one per model, shared by concurrent callers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

import attrs

from hfdriver.dto.request import ROUTING_POLICIES
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.hub import ProviderMapping

__all__ = ["EQUIVALENT_TASKS", "ProviderResolver", "Resolved", "split_model"]

logger = logging.getLogger("hfdriver")

EQUIVALENT_TASKS: dict[str, frozenset[str]] = {
    # hf-inference serves a sentence-transformers model on both pipelines, whichever the Hub lists.
    "feature-extraction": frozenset({"feature-extraction", "sentence-similarity"}),
    "sentence-similarity": frozenset({"feature-extraction", "sentence-similarity"}),
}

Lookup = Callable[[str], Awaitable[tuple[ProviderMapping, ...]]]


def split_model(model: str) -> tuple[str, str | None]:
    """``org/name:suffix`` as ``("org/name", "suffix")``."""
    bare, _, suffix = model.partition(":")
    return bare, suffix or None


@attrs.frozen(slots=True)
class Resolved:
    """A provider chosen for a model and a task."""

    provider: str
    provider_model: str
    """The provider's name for the model (the mapping's ``providerId``)."""


def _serves(entry: ProviderMapping, task: str) -> bool:
    if entry.task is None:
        return True
    if entry.provider == "hf-inference":
        return entry.task in EQUIVALENT_TASKS.get(task, frozenset({task}))
    return entry.task == task


def _listing(entries: tuple[ProviderMapping, ...]) -> str:
    if not entries:
        return "the Hub lists no provider for it"
    shown = ", ".join(f"{e.provider} ({e.status}, {e.task or 'any task'})" for e in entries[:12])
    return f"the Hub lists: {shown}"


class ProviderResolver:
    """Resolve ``(model, routing)`` to a provider for a task, among the providers hfdriver knows
    for it; one Hub look-up per model, whatever the task."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._mappings: dict[str, asyncio.Future[tuple[ProviderMapping, ...]]] = {}
        self._warned: set[tuple[str, str]] = set()

    async def mapping(self, model: str, task: str = "inference") -> tuple[ProviderMapping, ...]:
        """The Hub's mapping of ``model`` (looked up once; a failed look-up is tried again later)."""
        future = self._mappings.get(model)
        if future is None:
            future = self._mappings[model] = asyncio.get_running_loop().create_future()
            try:
                try:
                    found = await self._lookup(model)
                except HuggingFaceError as exc:
                    if exc.kind is not HuggingFaceErrorKind.NOT_FOUND:
                        raise
                    raise HuggingFaceError(
                        HuggingFaceErrorKind.NOT_FOUND,
                        f"the Hub has no model {model} (asked who serves it for {task}): check its "
                        "id, 'org/name' as on huggingface.co, and for a gated or private model, the token",
                        status=exc.status,
                        request_id=exc.request_id,
                    ) from None
                future.set_result(found)
            except BaseException as exc:
                del self._mappings[model]
                future.set_exception(exc)
                future.exception()  # retrieved: followers re-raise it, nobody logs it as lost
                raise
        return await asyncio.shield(future)

    @staticmethod
    def _refuse(model: str, task: str, known: Collection[str], why: str) -> HuggingFaceError:
        return HuggingFaceError(
            HuggingFaceErrorKind.MODEL_NOT_SUPPORTED,
            f"{model} cannot be used for {task} through the router: {why}. hfdriver sends {task} "
            f"to: {', '.join(known)}; name one with a ':provider' suffix, or pick another model",
        )

    async def resolve(self, model: str, routing: str | None, task: str, known: Collection[str]) -> Resolved:
        """The provider for ``model`` (bare ``org/name``) and ``task`` with ``routing`` (a provider,
        a policy or ``None``), among the providers in ``known``."""
        known = tuple(known)
        if routing is not None and routing not in ROUTING_POLICIES and routing != "auto":
            if routing not in known:
                raise self._refuse(
                    model, task, known, f"provider {routing!r} is not one hfdriver knows for {task}"
                )
            if routing == "hf-inference":
                return Resolved("hf-inference", model)
            entries = await self.mapping(model, task)
            for entry in entries:
                if entry.provider != routing:
                    continue
                if not _serves(entry, task):
                    raise self._refuse(
                        model, task, known, f"{routing} serves it for {entry.task}, not {task}"
                    )
                if entry.status != "live" and (model, routing) not in self._warned:
                    self._warned.add((model, routing))
                    logger.warning(
                        "hfdriver: %s is %s on %s (meant for tests); sending anyway",
                        model,
                        entry.status,
                        routing,
                    )
                return Resolved(routing, entry.provider_id or model)
            raise self._refuse(model, task, known, f"{routing} does not serve it ({_listing(entries)})")
        entries = await self.mapping(model, task)
        for entry in entries:
            if entry.status != "live" or not _serves(entry, task):
                continue
            if entry.provider not in known:
                logger.debug(
                    "hfdriver: skipping provider %s for %s (%s): not one hfdriver knows",
                    entry.provider,
                    model,
                    task,
                )
                continue
            return Resolved(entry.provider, entry.provider_id or model)
        raise self._refuse(model, task, known, _listing(entries))
