"""Small pieces the provider routes share: walking an answer, renaming parameters, media in JSON."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.tasks._call import Download, TaskCall
from hfdriver.tasks._media import Media, data_url

__all__ = ["b64_media", "dig", "fail", "link", "media_input", "merge", "renamed", "sized"]

K = HuggingFaceErrorKind


def fail(call: TaskCall, what: str) -> HuggingFaceError:
    """The provider reported a failure of the job (not a transport error)."""
    return HuggingFaceError(
        K.SERVER, f"{call.provider} {what} ({call.name} with {call.provider_model})", provider=call.provider
    )


def decode(call: TaskCall, what: str) -> HuggingFaceError:
    return HuggingFaceError(
        K.DECODE, f"the {call.provider} {call.name} answer {what}", provider=call.provider
    )


def dig(data: Any, call: TaskCall, *path: str | int) -> Any:
    """``data[path[0]][path[1]]...``; ``DECODE`` naming the path when it is not there."""
    value = data
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):  # noqa: PERF203 - the first miss ends the walk
            raise decode(call, f"has no {'.'.join(str(p) for p in path)}") from None
    return value


def b64_media(value: Any, call: TaskCall) -> Media:
    if not isinstance(value, str):
        raise decode(call, "holds no base64 media")
    try:
        return Media.of(base64.b64decode(value, validate=False))
    except (binascii.Error, ValueError):
        raise decode(call, "holds media that is not base64") from None


def link(value: Any, call: TaskCall, then: Callable[[Media], Any] | None = None) -> Download:
    """The answer is at the URL ``value`` (an http(s) or ``data:`` URL)."""
    if not isinstance(value, str) or not value.startswith(("http://", "https://", "data:")):
        raise decode(call, f"holds {type(value).__name__} where a media URL belongs")
    return Download(value, then=then)


def media_input(value: Any, default_type: str | None = None) -> str:
    """An image or a sound for a JSON payload: an http(s) URL as it is, bytes as a data URL."""
    return value if isinstance(value, str) else data_url(value, default_type)


def merge(body: dict[str, Any], call: TaskCall) -> dict[str, Any]:
    """``body`` with the caller's ``extra_body`` on top (provider-specific parameters)."""
    body.update(call.extra_body)
    return body


def renamed(parameters: Mapping[str, Any], **names: str) -> dict[str, Any]:
    """``parameters`` with some keys renamed (``num_inference_steps`` -> ``steps``)."""
    return {names.get(k, k): v for k, v in parameters.items()}


def sized(parameters: dict[str, Any], field: str, *, as_mapping: bool = False) -> dict[str, Any]:
    """``width`` and ``height`` (both given) as one ``field``: ``{"width", "height"}`` or ``"WxH"``."""
    width, height = parameters.get("width"), parameters.get("height")
    if width is None or height is None:
        return parameters
    parameters = {k: v for k, v in parameters.items() if k not in ("width", "height")}
    parameters[field] = {"width": width, "height": height} if as_mapping else f"{width}x{height}"
    return parameters
