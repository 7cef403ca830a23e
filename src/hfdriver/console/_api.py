"""The console: ``GET /`` (one page, its script and style, shipped in the package) and the JSON API
behind it under ``/api/``: local models (list, pull with progress, remove), Hub search, the
router's catalogue, and the system report.

Every route passes the server's guards (Host, Origin, API key on ``/api/``); every state-changing
one is a POST that must declare ``Content-Type: application/json``, which no other site can send
from a user's browser without a CORS preflight this server never grants.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import attrs
from aiohttp import web

from hfdriver.console._pulls import Pull, PullManager
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, invalid_request
from hfdriver.server import Route
from hfdriver.server._guard import Guard
from hfdriver.server._wire import SSE_HEADERS, dumps, read_json

__all__ = ["Console", "PAGE_HEADERS"]

K = HuggingFaceErrorKind
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC = {
    "/": ("index.html", "text/html"),
    "/console/app.js": ("app.js", "text/javascript"),
    "/console/app.css": ("app.css", "text/css"),
}


def _asset(name: str) -> bytes:
    return resources.files("hfdriver.console").joinpath("static").joinpath(name).read_bytes()


@attrs.define
class Console:
    """The console's routes for ``create_app(..., routes=console.routes())``.

    ``config`` is what the System view shows of the active configuration (secrets already
    masked); ``token`` reaches the Hub and the router's catalogue; ``store`` is a
    ``ModelStore`` factory (the local extra); ``hub`` a ``HubClient`` factory.
    """

    config: Mapping[str, Any]
    store: Callable[[], Any]
    hub: Callable[[], Any]
    system: Callable[[Mapping[str, Any]], dict[str, Any]]
    token_configured: bool = False
    pulls: PullManager = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.pulls = PullManager(self._pull)

    def routes(self) -> tuple[Route, ...]:
        static = tuple(Route("GET", path, None, self._static, public=True) for path in _STATIC)
        return (
            *static,
            Route("GET", "/api/local/models", None, self.local_models),
            Route("POST", "/api/local/remove", None, self.local_remove),
            Route("POST", "/api/local/pull", None, self.local_pull),
            Route("GET", "/api/local/pulls", None, self.local_pulls),
            Route("GET", "/api/local/pulls/{id}/events", None, self.pull_events),
            Route("POST", "/api/local/pulls/{id}/cancel", None, self.pull_cancel),
            Route("GET", "/api/hub/search", None, self.hub_search),
            Route("GET", "/api/hub/gguf", None, self.hub_gguf),
            Route("GET", "/api/router/models", None, self.router_models),
            Route("GET", "/api/system", None, self.system_report),
        )

    # ------------------------------------------------------------------ the page
    async def _static(self, request: web.Request) -> web.Response:
        name, content_type = _STATIC[request.path]
        body = await asyncio.to_thread(_asset, name)
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=PAGE_HEADERS)

    # ------------------------------------------------------------------ local models
    async def local_models(self, _request: web.Request) -> web.Response:
        def listing() -> dict[str, Any]:
            store = self.store()
            return {"models": [_installed(m) for m in store.list()], "embedded": _embedded()}

        return web.json_response(await asyncio.to_thread(listing))

    async def local_remove(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        key = body.get("key")
        if not isinstance(key, str) or not key:
            raise invalid_request("key", "give the key of an installed model (from /api/local/models)")
        removed = await asyncio.to_thread(lambda: self.store().remove(key))
        return web.json_response({"removed": removed.key})

    async def local_pull(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        repo, quantization, file = body.get("repo"), body.get("quantization"), body.get("file")
        device = body.get("device") or "auto"
        if not isinstance(repo, str) or repo.count("/") != 1:
            raise invalid_request(
                "repo", "give a Hub repository id such as 'bartowski/Llama-3.2-1B-Instruct-GGUF'"
            )
        if (quantization is None) == (file is None) or not isinstance(quantization or file, str):
            raise invalid_request("quantization", "give exactly one of quantization (e.g. 'Q4_K_M') or file")
        if device not in ("auto", "cpu", "gpu"):
            raise invalid_request("device", "use 'auto', 'cpu' or 'gpu'")
        from hfdriver.local import manifest_key  # the local extra's own naming of an entry

        spec = str(file) if file is not None else str(quantization).upper()
        pull = self.pulls.start(manifest_key(repo, spec, device), repo, spec, device)
        return web.json_response(pull.snapshot(), status=202)

    async def local_pulls(self, _request: web.Request) -> web.Response:
        return web.json_response({"pulls": self.pulls.list()})

    async def pull_events(self, request: web.Request) -> web.StreamResponse:
        """The pull's progress as Server-Sent Events, from now until it has finished."""
        pull = self.pulls.get(request.match_info["id"])
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        try:
            async for event in pull.follow():
                await response.write(b"data: " + dumps(event).encode() + b"\n\n")
            await response.write_eof()
        except ConnectionResetError:
            pass  # the page went away (a reload re-attaches); the pull goes on
        return response

    async def pull_cancel(self, request: web.Request) -> web.Response:
        await _json_body(request)
        return web.json_response(self.pulls.cancel(request.match_info["id"]).snapshot())

    async def _pull(self, pull: Pull, progress: Callable[[str, int, int], None]) -> dict[str, Any]:
        def on_progress(event: Any) -> None:
            progress(event.filename, event.downloaded, event.total)

        quantization = None if pull.spec.endswith(".gguf") else pull.spec
        file = pull.spec if quantization is None else None
        model = await self.store().pull(
            pull.repo, quantization=quantization, file=file, device=pull.device, on_progress=on_progress,
            stop=pull.stop,
        )  # fmt: skip
        return _installed(model)

    # ------------------------------------------------------------------ Hub and router
    async def hub_search(self, request: web.Request) -> web.Response:
        query = request.query.get("q", "").strip()
        try:
            limit = max(1, min(50, int(request.query.get("limit", "20"))))
        except ValueError:
            raise invalid_request("limit", "must be a whole number") from None
        async with self.hub() as hub:
            found = [
                {"id": m.id, "downloads": m.downloads, "likes": m.likes, "pipeline_tag": m.pipeline_tag}
                async for m in hub.search_models(query or None, gguf=True, pipeline_tag=None, limit=limit)
            ]
        return web.json_response({"models": found})

    async def hub_gguf(self, request: web.Request) -> web.Response:
        repo = request.query.get("repo", "")
        if repo.count("/") != 1:
            raise invalid_request("repo", "give a Hub repository id such as 'org/name-GGUF'")
        async with self.hub() as hub:
            files = await hub.list_gguf_files(repo)
        quantizations: dict[str, dict[str, Any]] = {}
        for f in files:
            if f.name.lower().startswith("mmproj"):
                continue
            key = (f.quantization or f.path).upper() if f.quantization else f.path
            entry = quantizations.setdefault(key, {"quantization": f.quantization, "file": f.path, "size": 0})
            entry["size"] += f.size
        return web.json_response(
            {"repo": repo, "quantizations": sorted(quantizations.values(), key=lambda q: q["size"])}
        )

    async def router_models(self, _request: web.Request) -> web.Response:
        if not self.token_configured:
            raise HuggingFaceError(
                K.AUTHENTICATION,
                "no Hugging Face token is configured: set HF_TOKEN or run `hfdriver login`, then restart serve",
            )
        async with self.hub() as hub:
            models = await hub.router_models()
        return web.json_response({"models": [_router_model(m) for m in models]})

    async def system_report(self, _request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(self.system, self.config))


async def _json_body(request: web.Request) -> dict[str, Any]:
    refused = Guard.check_content_type(request.headers.get("Content-Type"))
    if refused:
        raise HuggingFaceError(K.INVALID_REQUEST, f"body: {refused}")
    body = await read_json(request, 30.0)
    if not isinstance(body, dict):
        raise invalid_request("body", "must be a JSON object")
    return body


def _router_model(model: Any) -> dict[str, Any]:
    offers = [
        {
            "provider": p.provider,
            "status": p.status,
            "context_length": p.context_length,
            "input": p.pricing.input if p.pricing else None,
            "output": p.pricing.output if p.pricing else None,
        }
        for p in model.providers
    ]
    return {"id": model.id, "context_window": model.context_window, "providers": offers}


def _installed(model: Any) -> dict[str, Any]:
    return {
        "key": model.key,
        "repo_id": model.repo_id,
        "filename": model.filename,
        "quantization": model.quantization,
        "device": model.device,
        "size": model.size,
        "path": model.path,
        "installed_at": model.installed_at,
    }


def _embedded() -> dict[str, Any] | None:
    try:
        from hfdriver.local import DEFAULT_MODEL_DESCRIPTION, embedded_model_path
    except ImportError:  # pragma: no cover - the console is built only with the local package
        return None
    path = embedded_model_path()
    if path is None:
        return None
    return {"path": path, "size": os.path.getsize(path), "description": DEFAULT_MODEL_DESCRIPTION}
