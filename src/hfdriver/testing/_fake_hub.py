"""A programmable local Hub: whoami, model search, repository trees and the router catalogue."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from yarl import URL

from hfdriver.testing._fake_embeddings import DEFAULT_MAPPINGS
from hfdriver.testing._fake_router import DEFAULT_MODELS, RecordedRequest, _peer
from hfdriver.testing._responses import FakeResponse
from hfdriver.testing._server import LocalServer

__all__ = ["FakeHub", "default_hub_models", "default_repo_files", "whoami_body"]


def whoami_body(
    name: str = "alice",
    *,
    role: str = "fineGrained",
    scopes: Sequence[str] = ("inference.serverless.write",),
    orgs: Sequence[str] = ("acme",),
) -> dict[str, Any]:
    """A ``/api/whoami-v2`` answer in the Hub's shape."""
    access: dict[str, Any] = {
        "displayName": f"{name}-token",
        "role": role,
        "createdAt": "2025-01-01T00:00:00.000Z",
    }
    if role == "fineGrained":
        access["fineGrained"] = {
            "canReadGatedRepos": True,
            "global": [
                s for s in scopes if s.startswith("inference.") or s in ("discussion.write", "post.write")
            ],
            "scoped": [
                {
                    "entity": {"type": "user", "name": name},
                    "permissions": [s for s in scopes if not s.startswith("inference.")],
                }
            ],
        }
    return {
        "type": "user",
        "id": "0123456789abcdef",
        "name": name,
        "fullname": name.title(),
        "isPro": False,
        "orgs": [{"type": "org", "name": org, "fullname": org.title(), "roleInOrg": "admin"} for org in orgs],
        "auth": {"type": "access_token", "accessToken": access},
    }


def _model(
    model_id: str,
    downloads: int,
    likes: int,
    *,
    tags: Sequence[str] = (),
    pipeline: str | None = "text-generation",
    library: str | None = "transformers",
    providers: Mapping[str, str] | None = None,
    gated: bool | str = False,
) -> dict[str, Any]:
    return {
        "_id": f"id-{model_id}",
        "id": model_id,
        "author": model_id.split("/", 1)[0],
        "downloads": downloads,
        "likes": likes,
        "tags": list(tags),
        "pipeline_tag": pipeline,
        "library_name": library,
        "gated": gated,
        "createdAt": "2024-09-18T15:12:47.000Z",
        "lastModified": "2024-10-24T15:07:29.000Z",
        "inferenceProviderMapping": [
            {"provider": p, "providerId": model_id.lower(), "status": status, "task": "conversational"}
            for p, status in (providers or {}).items()
        ],
    }


def default_hub_models(filler: int = 240) -> list[dict[str, Any]]:
    """Realistic search results, plus ``filler`` generated models for pagination tests."""
    models = [
        _model(
            "meta-llama/Llama-3.2-1B-Instruct",
            2_900_000,
            1100,
            tags=["transformers", "llama", "conversational"],
            providers={"novita": "live", "together": "live"},
            gated="manual",
        ),
        _model(
            "Qwen/Qwen2.5-7B-Instruct",
            1_800_000,
            800,
            tags=["transformers", "qwen2", "conversational"],
            providers={"together": "live", "nebius": "staging"},
        ),
        _model(
            "bartowski/Llama-3.2-1B-Instruct-GGUF",
            350_000,
            120,
            tags=["gguf", "llama", "conversational"],
            library="gguf",
        ),
        _model("openai-community/gpt2", 9_000_000, 2500, tags=["transformers", "gpt2"]),
        _model("unsloth/gemma-3-270m-it-GGUF", 90_000, 60, tags=["gguf", "gemma3"], library="gguf"),
    ]
    models += [
        _model(f"fake-org/filler-model-{i:03d}", 1000 - i, i % 7, tags=["transformers"])
        for i in range(filler)
    ]
    return models


def default_repo_files() -> dict[str, list[dict[str, Any]]]:
    """Repository trees, as ``/api/models/{repo}/tree/{rev}?recursive=true`` lists them."""

    def lfs_file(path: str, size: int, sha: str) -> dict[str, Any]:
        return {
            "type": "file",
            "oid": sha[:40],
            "size": size,
            "path": path,
            "lfs": {"oid": sha, "size": size, "pointerSize": 135},
        }

    return {
        "bartowski/Llama-3.2-1B-Instruct-GGUF": [
            {"type": "file", "oid": "a" * 40, "size": 1519, "path": ".gitattributes"},
            {"type": "file", "oid": "b" * 40, "size": 8000, "path": "README.md"},
            lfs_file("Llama-3.2-1B-Instruct-Q4_K_M.gguf", 807_694_464, "1" * 64),
            lfs_file("Llama-3.2-1B-Instruct-Q8_0.gguf", 1_321_083_008, "2" * 64),
            lfs_file("Llama-3.2-1B-Instruct-f16.gguf", 2_479_595_136, "3" * 64),
            lfs_file("Llama-3.2-1B-Instruct-IQ2_XS.gguf", 581_000_000, "4" * 64),
            {"type": "directory", "oid": "c" * 40, "size": 0, "path": "split"},
            lfs_file("split/Llama-3.2-1B-Instruct-Q6_K-00001-of-00002.gguf", 600_000_000, "5" * 64),
            lfs_file("split/Llama-3.2-1B-Instruct-Q6_K-00002-of-00002.gguf", 420_000_000, "6" * 64),
        ],
    }


class FakeHub(LocalServer):
    """A real aiohttp server on 127.0.0.1 emulating the Hub API parts hfdriver uses.

    Routes: ``GET /api/whoami-v2``, ``GET /api/models`` (search, author, pipeline_tag,
    inference_provider, filter=gguf, sort, limit, cursor pagination with ``Link: rel="next"``),
    ``GET /api/models/{org}/{name}/tree/{revision}`` (paginated by ``tree_page_size``), and the
    router's ``GET /v1/models``. ``tokens`` maps accepted tokens to whoami answers.
    :meth:`enqueue` scripts the next answers of one path (errors, delays, rate limits).

    >>> async with FakeHub() as hub:  # doctest: +SKIP
    ...     client = HubClient(token="hf_alice", endpoint=hub.url, router_url=hub.router_url)
    """

    def __init__(
        self,
        *,
        tokens: Mapping[str, Mapping[str, Any]] | None = None,
        models: Sequence[Mapping[str, Any]] | None = None,
        repo_files: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        router_models: Sequence[Mapping[str, Any]] = DEFAULT_MODELS,
        provider_mappings: Mapping[str, Sequence[Mapping[str, Any]]] = DEFAULT_MAPPINGS,
        tree_page_size: int = 1000,
        host: str = "127.0.0.1",
    ) -> None:
        self.tokens = (
            dict(tokens) if tokens is not None else {"hf_alice_token_0123456789": whoami_body("alice")}
        )
        self.models = [dict(m) for m in (models if models is not None else default_hub_models())]
        self.repo_files = {
            k: list(v) for k, v in (repo_files if repo_files is not None else default_repo_files()).items()
        }
        self.router_models = [dict(m) for m in router_models]
        self.provider_mappings: dict[str, list[dict[str, Any]]] = {
            model: [dict(entry) for entry in entries] for model, entries in provider_mappings.items()
        }
        """``model -> [{"provider", "providerId", "status", "task"}, ...]``, in preference order:
        ``GET /api/models/{id}?expand[]=inferenceProviderMapping`` (404 for a model not listed)."""
        super().__init__(host, 0)
        self.tree_page_size = tree_page_size
        self.download_rate: float | None = None
        """Bytes per second for file downloads (None: as fast as possible), to watch progress."""
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[str, deque[FakeResponse]] = defaultdict(deque)
        self.files: dict[tuple[str, str], bytes] = {}
        self.cuts: dict[tuple[str, str], int] = {}
        """``(repo, path) -> n``: the next ``n`` downloads of that file stop half way (a dropped connection)."""
        self.sha_override: dict[tuple[str, str], str] = {}

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/whoami-v2", self._whoami)
        app.router.add_get("/api/models", self._search)
        app.router.add_get("/api/models/{org}/{name}/tree/{revision}", self._tree)
        app.router.add_get("/api/models/{org}/{name}", self._model)
        app.router.add_get("/api/models/{name}", self._model)  # legacy ids without an org (gpt2)
        app.router.add_get("/v1/models", self._router_models)
        app.router.add_get("/{org}/{name}/resolve/{revision}/{path:.+}", self._resolve)  # and HEAD
        return app

    @property
    def router_url(self) -> str:
        return f"{self.url}/v1"

    def enqueue(self, path: str, *responses: FakeResponse) -> FakeHub:
        """Answer the next requests to ``path`` (e.g. ``"/api/models"``) with ``responses``."""
        self._scripts[path].extend(responses)
        return self

    def add_model(
        self, model_id: str, *, downloads: int = 0, likes: int = 0, tags: Sequence[str] = ("gguf",)
    ) -> FakeHub:
        """List ``model_id`` in search results (a GGUF repository by default; files via :meth:`add_file`)."""
        library = "gguf" if "gguf" in tags else "transformers"
        self.models.append(_model(model_id, downloads, likes, tags=tags, library=library))
        return self

    def add_file(self, repo: str, path: str, data: bytes, *, listed_sha256: str | None = None) -> str:
        """Serve ``data`` as an LFS file of ``repo``; returns its sha256. ``listed_sha256`` makes
        the tree listing announce a different hash (to test corrupt downloads)."""
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        self.files[(repo, path)] = data
        entry = {
            "type": "file",
            "oid": sha[:40],
            "size": len(data),
            "path": path,
            "lfs": {"oid": listed_sha256 or sha, "size": len(data), "pointerSize": 134},
        }
        listing = self.repo_files.setdefault(repo, [])
        listing[:] = [f for f in listing if f["path"] != path] + [entry]
        return sha

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Recorded requests to ``path`` (query strings ignored; ``RecordedRequest.path`` keeps them)."""
        return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    # ------------------------------------------------------------------ handlers
    async def _scripted(self, request: web.Request) -> web.StreamResponse | None:
        self.requests.append(
            RecordedRequest(request.method, request.path_qs, dict(request.headers), None, _peer(request))
        )
        queue = self._scripts.get(request.path)
        if not queue:
            return None
        scripted = queue.popleft()
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        return web.Response(
            status=scripted.status,
            body=scripted.payload(),
            headers={**scripted.headers, "Content-Type": scripted.content_type or "application/json"},
        )

    def _bearer(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    async def _whoami(self, request: web.Request) -> web.StreamResponse:
        scripted = await self._scripted(request)
        if scripted is not None:
            return scripted
        body = self.tokens.get(self._bearer(request) or "")
        if body is None:
            return web.json_response({"error": "Invalid credentials in Authorization header"}, status=401)
        return web.json_response(body)

    async def _model(self, request: web.Request) -> web.StreamResponse:
        scripted = await self._scripted(request)
        if scripted is not None:
            return scripted
        org = request.match_info.get("org")
        model = f"{org}/{request.match_info['name']}" if org else request.match_info["name"]
        mapping = self.provider_mappings.get(model)
        if mapping is None:
            return web.json_response({"error": "Repository not found"}, status=404)
        return web.json_response({"_id": f"fake-{model}", "id": model, "inferenceProviderMapping": mapping})

    async def _search(self, request: web.Request) -> web.StreamResponse:
        scripted = await self._scripted(request)
        if scripted is not None:
            return scripted
        q = request.query
        found = self.models
        if search := q.get("search"):
            found = [m for m in found if search.lower() in m["id"].lower()]
        if author := q.get("author"):
            found = [m for m in found if m["author"] == author]
        if pipeline := q.get("pipeline_tag"):
            found = [m for m in found if m.get("pipeline_tag") == pipeline]
        if providers := q.get("inference_provider"):
            wanted = set(providers.split(","))
            found = [
                m
                for m in found
                if any(
                    p["provider"] in wanted or "all" in wanted
                    for p in m.get("inferenceProviderMapping") or []
                )
            ]
        if q.get("filter") == "gguf":
            found = [m for m in found if "gguf" in m.get("tags", [])]
        key = q.get("sort", "downloads")
        found = sorted(found, key=lambda m: m.get(key) or 0, reverse=q.get("direction") == "-1")
        limit = int(q.get("limit", "1000"))
        start = int(q.get("cursor", "0"))
        page = found[start : start + limit]
        headers = {}
        if start + limit < len(found):
            next_url = request.url.update_query(cursor=str(start + limit))
            headers["Link"] = f'<{self._absolute(next_url)}>; rel="next"'
        return web.json_response(page, headers=headers)

    def _absolute(self, url: URL) -> str:
        return str(URL(self.url).join(url.relative()))

    async def _tree(self, request: web.Request) -> web.StreamResponse:
        scripted = await self._scripted(request)
        if scripted is not None:
            return scripted
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        files = self.repo_files.get(repo)
        if files is None:
            return web.json_response(
                {"error": "Repository not found"}, status=404, headers={"X-Error-Code": "RepoNotFound"}
            )
        if request.query.get("recursive") not in ("true", "1", "True"):
            files = [f for f in files if "/" not in f["path"]]
        start = int(request.query.get("cursor", "0"))
        page = files[start : start + self.tree_page_size]
        headers = {}
        if start + self.tree_page_size < len(files):
            headers["Link"] = (
                f'<{self._absolute(request.url.update_query(cursor=str(start + self.tree_page_size)))}>; rel="next"'
            )
        return web.json_response(page, headers=headers)

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            RecordedRequest(request.method, request.path_qs, dict(request.headers), None, _peer(request))
        )
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        key = (repo, request.match_info["path"])
        data = self.files.get(key)
        if data is None:
            return web.json_response(
                {"error": "Entry not found"}, status=404, headers={"X-Error-Code": "EntryNotFound"}
            )
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        headers = {
            "X-Repo-Commit": "0123456789abcdef0123456789abcdef01234567",
            "X-Linked-Etag": f'"{sha}"',
            "ETag": f'"{sha}"',
            "X-Linked-Size": str(len(data)),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if request.method == "HEAD":
            return web.Response(status=200, headers={**headers, "Content-Length": str(len(data))})
        start = 0
        match = request.headers.get("Range", "")
        if match.startswith("bytes="):
            start = int(match[6:].split("-", 1)[0] or 0)
        body = data[start:]
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        response = web.StreamResponse(status=status, headers={**headers, "Content-Length": str(len(body))})
        await response.prepare(request)
        if self.cuts.get(key, 0) > 0:
            self.cuts[key] -= 1
            await response.write(body[: max(1, len(body) // 2)])
            if request.transport is not None:
                request.transport.close()
            return response
        if self.download_rate:
            step = 65_536
            for offset in range(0, len(body), step):
                await response.write(body[offset : offset + step])
                await asyncio.sleep(step / self.download_rate)
        else:
            await response.write(body)
        await response.write_eof()
        return response

    async def _router_models(self, request: web.Request) -> web.StreamResponse:
        scripted = await self._scripted(request)
        if scripted is not None:
            return scripted
        return web.Response(
            body=json.dumps({"object": "list", "data": self.router_models}), content_type="application/json"
        )
