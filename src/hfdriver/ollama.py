"""Ask a running Ollama to pull a Hugging Face GGUF model (``hf.co/REPO:QUANT``).

Inference through Ollama then needs no special code: its OpenAI-compatible API works with the
``huggingface-endpoint`` provider at ``http://127.0.0.1:11434/v1``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import attrs

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.transport import ClientSession, HttpClient, request_timeout

__all__ = ["DEFAULT_OLLAMA_URL", "PullProgress", "ollama_model_ref", "ollama_pull"]

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"


@attrs.frozen(slots=True)
class PullProgress:
    """One progress line of ``/api/pull``: a status, and bytes done of a layer when downloading."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None

    @property
    def fraction(self) -> float | None:
        if self.total and self.completed is not None:
            return min(1.0, self.completed / self.total)
        return None


def ollama_model_ref(spec: str) -> str:
    """``REPO[:QUANT]`` (or an ``hf.co/...`` reference) as Ollama's ``hf.co/REPO:QUANT`` name.

    >>> ollama_model_ref("bartowski/Llama-3.2-1B-Instruct-GGUF:q4_k_m")
    'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M'
    """
    spec = spec.strip()
    for prefix in ("hf.co/", "huggingface.co/"):
        if spec.startswith(prefix):
            spec = spec[len(prefix) :]
    repo, _, quant = spec.partition(":")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise HuggingFaceError(
            HuggingFaceErrorKind.INVALID_REQUEST,
            f"model: {spec!r} is not REPO[:QUANT], e.g. 'bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M'",
        )
    return f"hf.co/{repo}:{quant.upper()}" if quant else f"hf.co/{repo}"


async def ollama_pull(
    spec: str,
    *,
    ollama_url: str = DEFAULT_OLLAMA_URL,
    on_progress: Callable[[PullProgress], None] | None = None,
    session: ClientSession | None = None,
    timeout: float = 3600.0,
) -> str:
    """Pull ``spec`` (``REPO[:QUANT]``) into the Ollama at ``ollama_url``; returns the model name.

    Progress lines stream to ``on_progress``. Ollama not running is ``CONNECTION`` (start it with
    ``ollama serve``); a pull error reported by Ollama is ``NOT_FOUND`` or ``SERVER``.
    """
    name = ollama_model_ref(spec)
    try:
        parts = urlsplit(ollama_url)
        _ = parts.port  # raises ValueError for a port that is not a number
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise HuggingFaceError(
            HuggingFaceErrorKind.INVALID_REQUEST,
            f"ollama_url: {ollama_url!r} is not an http(s):// URL; Ollama listens on http://127.0.0.1:11434",
        )
    http = HttpClient(
        session=session,
        service=f"Ollama at {ollama_url}",
        unreachable=f"Ollama is not reachable at {ollama_url}",
        hint="start it with `ollama serve`, or pass --ollama-url",
        owner="Ollama client",
    )
    url = f"{ollama_url.rstrip('/')}/api/pull"
    try:
        resp = await http.open(
            "POST",
            url,
            json={"model": name, "stream": True},
            timeout=request_timeout(total=timeout, connect=10, read=300),
        )
        try:
            async for line in http.lines(resp):
                if not line:
                    continue
                data = _progress_line(line)
                if "error" in data:
                    message = str(data["error"])
                    kind = (
                        HuggingFaceErrorKind.NOT_FOUND
                        if "not exist" in message or "not found" in message
                        else HuggingFaceErrorKind.SERVER
                    )
                    raise HuggingFaceError(kind, f"Ollama could not pull {name}: {message}", retryable=False)
                progress = PullProgress(
                    str(data.get("status", "")),
                    _opt(data, "digest", str),
                    _opt(data, "total", int),
                    _opt(data, "completed", int),
                )
                if on_progress is not None:
                    on_progress(progress)
                if progress.status == "success":
                    return name
        finally:
            resp.close()
        raise HuggingFaceError(
            HuggingFaceErrorKind.STREAM, f"Ollama ended the pull of {name} without reporting success"
        )
    finally:
        await http.aclose()


def _progress_line(line: bytes) -> dict[str, Any]:
    """One line of ``/api/pull``: a JSON object, or ``DECODE`` saying what came instead."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        raise HuggingFaceError(
            HuggingFaceErrorKind.DECODE, f"Ollama sent a line that is not JSON: {line[:120]!r}"
        ) from None
    if not isinstance(data, dict):
        raise HuggingFaceError(
            HuggingFaceErrorKind.DECODE,
            f"Ollama sent a progress line that is not a JSON object but a {type(data).__name__}: {line[:120]!r}",
        )
    return data


def _opt(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
        if isinstance(value, int) and value < 0:
            raise HuggingFaceError(HuggingFaceErrorKind.DECODE, f"Ollama sent a negative {key}: {value!r}")
        return value
    raise HuggingFaceError(
        HuggingFaceErrorKind.DECODE,
        f"Ollama sent a progress line whose {key} is not {'a number' if kind is int else 'a string'}: {value!r}",
    )
