"""Scripted answers for any route of the fakes (the tasks' provider routes, media hosts), and
queued jobs with as many pending polls as a test wants."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict, deque
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from hfdriver.testing._responses import FakeResponse

__all__ = ["TaskScripts"]


class TaskScripts:
    """Mixed into :class:`FakeRouter`: :meth:`script` any path, or a whole queued job."""

    _scripts: defaultdict[str, deque[FakeResponse]]
    _job_ids: itertools.count[int]

    def _init_scripts(self) -> None:
        self._scripts = defaultdict(deque)
        self._job_ids = itertools.count(1)

    def script(self, path: str, *responses: FakeResponse) -> TaskScripts:
        """Answer the next requests to ``path`` with ``responses``, in order (any method). A path
        with a query (``/x?_subdomain=queue``) matches that query only; one without, any query."""
        self._scripts[path].extend(responses)
        return self

    def scripted_left(self, path: str) -> int:
        """Answers scripted for ``path`` and not used yet."""
        return len(self._scripts.get(path, ()))

    def _take_script(self, request: web.Request) -> FakeResponse | None:
        for key in (request.path_qs, request.path):
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft()
        return None

    # ------------------------------------------------------------------ queued jobs
    def fal_queue_job(
        self, app: str, result: Mapping[str, Any], *, pending: int = 3, host: str | None = None
    ) -> str:
        """A fal queue job on ``app`` (``fal-ai/wan/t2v``): the submit, ``pending`` polls
        ``IN_QUEUE`` / ``IN_PROGRESS``, then ``COMPLETED`` and ``result``. Returns the request id."""
        request_id = f"fal-req-{next(self._job_ids)}"
        short = "/".join(app.split("/")[:2])
        base = f"/fal-ai/{short}/requests/{request_id}"
        queue_host = host or "https://queue.fal.run"
        self.script(
            f"/fal-ai/{app}?_subdomain=queue",
            FakeResponse(
                json={
                    "request_id": request_id,
                    "status": "IN_QUEUE",
                    "response_url": f"{queue_host}/{short}/requests/{request_id}",
                    "status_url": f"{queue_host}/{short}/requests/{request_id}/status",
                    "cancel_url": f"{queue_host}/{short}/requests/{request_id}/cancel",
                }
            ),
        )
        polls = [
            FakeResponse(
                json={
                    "status": "IN_QUEUE" if i < pending // 2 else "IN_PROGRESS",
                    "queue_position": max(0, pending // 2 - i),
                }
            )
            for i in range(pending)
        ]
        self.script(f"{base}/status?_subdomain=queue", *polls, FakeResponse(json={"status": "COMPLETED"}))
        self.script(f"{base}?_subdomain=queue", FakeResponse(json=dict(result)))
        self.script(
            f"{base}/cancel?_subdomain=queue",
            FakeResponse(status=202, json={"status": "CANCELLATION_REQUESTED"}),
        )
        return request_id

    def replicate_prediction(self, model: str, output: Any, *, pending: int = 3) -> str:
        """A Replicate prediction on ``model`` (``owner/name``) that ``Prefer: wait`` did not see
        finish: ``pending`` polls ``processing``, then ``succeeded`` with ``output``."""
        prediction = f"rep-{next(self._job_ids)}"
        started = {"id": prediction, "model": model, "status": "starting", "output": None, "error": None}
        self.script(f"/replicate/v1/models/{model}/predictions", FakeResponse(status=201, json=started))
        path = f"/replicate/v1/predictions/{prediction}"
        polls = [FakeResponse(json={**started, "status": "processing"}) for _ in range(pending)]
        self.script(path, *polls, FakeResponse(json={**started, "status": "succeeded", "output": output}))
        self.script(f"{path}/cancel", FakeResponse(json={**started, "status": "canceled"}))
        return prediction

    @staticmethod
    def _body_json(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            return None
