"""Model downloads the console starts: they run in the server, not in the page, so a reload (or a
second tab) re-attaches to a pull in progress, and a cancel stops the download itself."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["Pull", "PullManager"]

K = HuggingFaceErrorKind
_FINISHED = ("done", "failed", "cancelled")
_KEEP_FINISHED = 32


class Pull:
    """One download: its progress, its state, and the listeners following it."""

    def __init__(self, pull_id: str, repo: str, spec: str, device: str) -> None:
        self.id = pull_id
        self.repo = repo
        self.spec = spec
        self.device = device
        self.status = "running"
        self.files: dict[str, tuple[int, int]] = {}  # file -> (downloaded, total)
        self.error: str | None = None
        self.model: dict[str, Any] | None = None
        self.started = time.time()
        self.stop = threading.Event()  # read by the download thread between chunks
        self.task: asyncio.Task[None] | None = None
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()

    def snapshot(self) -> dict[str, Any]:
        downloaded = sum(d for d, _ in self.files.values())
        total = sum(t for _, t in self.files.values())
        percent = 100.0 if self.status == "done" else (100.0 * downloaded / total if total else 0.0)
        return {
            "id": self.id,
            "repo": self.repo,
            "spec": self.spec,
            "device": self.device,
            "status": self.status,
            "downloaded": downloaded,
            "total": total,
            "percent": round(min(percent, 100.0), 1),
            "error": self.error,
            "model": self.model,
        }

    def publish(self) -> None:
        event = self.snapshot()
        for queue in self._listeners:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """The current state, then each change, until the pull has finished."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1024)
        self._listeners.add(queue)
        try:
            event = self.snapshot()
            yield event
            while event["status"] not in _FINISHED:
                event = await queue.get()
                while not queue.empty():  # a slow reader gets the latest state, not the backlog
                    latest = queue.get_nowait()
                    if event["status"] not in _FINISHED:
                        event = latest
                yield event
        finally:
            self._listeners.discard(queue)


PullFunction = Callable[[Pull, Callable[[str, int, int], None]], Any]
"""``(pull, progress(file, downloaded, total))`` -> an awaitable giving the installed model (a dict)."""


class PullManager:
    """The pulls of one server; ``start`` returns the running pull when the same one is asked again."""

    def __init__(self, run: PullFunction) -> None:
        self._run = run
        self._pulls: dict[str, Pull] = {}

    def list(self) -> list[dict[str, Any]]:
        return [p.snapshot() for p in self._pulls.values()]

    def get(self, pull_id: str) -> Pull:
        pull = self._pulls.get(pull_id)
        if pull is None:
            raise HuggingFaceError(
                K.NOT_FOUND, f"id: no pull {pull_id!r} (finished pulls are forgotten after a while)"
            )
        return pull

    def start(self, pull_id: str, repo: str, spec: str, device: str) -> Pull:
        existing = self._pulls.get(pull_id)
        if existing is not None and existing.status == "running":
            return existing
        pull = Pull(pull_id, repo, spec, device)
        self._pulls[pull_id] = pull
        pull.task = asyncio.create_task(self._drive(pull), name=f"hfdriver pull {pull_id}")
        self._forget_old()
        return pull

    def cancel(self, pull_id: str) -> Pull:
        pull = self.get(pull_id)
        if pull.status == "running":
            pull.stop.set()
            if pull.task is not None:
                pull.task.cancel()
        return pull

    async def aclose(self) -> None:
        """Cancel what still runs (a server shutting down)."""
        for pull in list(self._pulls.values()):
            if pull.status == "running":
                self.cancel(pull.id)
        tasks = [p.task for p in self._pulls.values() if p.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def _drive(self, pull: Pull) -> None:
        loop = asyncio.get_running_loop()

        def progress(file: str, downloaded: int, total: int) -> None:  # called on the loop
            pull.files[file] = (downloaded, max(total, downloaded))
            pull.publish()

        try:
            pull.model = await self._run(pull, progress)
            pull.status = "done"
        except asyncio.CancelledError:
            pull.status = "cancelled"
        except HuggingFaceError as exc:
            pull.status = "cancelled" if pull.stop.is_set() else "failed"
            pull.error = None if pull.stop.is_set() else exc.message
        except Exception as exc:  # a download library's own failure: reported, never lost
            pull.status = "cancelled" if pull.stop.is_set() else "failed"
            pull.error = None if pull.stop.is_set() else f"{type(exc).__name__}: {exc}"
        finally:
            pull.stop.set()
            loop.call_soon(pull.publish)

    def _forget_old(self) -> None:
        finished = [p for p in self._pulls.values() if p.status in _FINISHED]
        for pull in sorted(finished, key=lambda p: p.started)[:-_KEEP_FINISHED]:
            del self._pulls[pull.id]
