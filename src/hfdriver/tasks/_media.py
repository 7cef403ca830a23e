"""Media in and out of the tasks: images, audio and video as bytes with a content type.

Out: :class:`Media` (``.data``, ``.content_type``, ``.save(path)``). The content type is read from
the bytes' signature when it is one hfdriver knows, whatever the server's label says (fal labels
PNG files ``image/jpeg``; Replicate serves WEBP as ``application/octet-stream``); the label is
kept only for bytes without a known signature.

In: bytes, a path (``str`` or ``os.PathLike``) or a URL (``https://...``, or a ``data:`` URL).
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any

import attrs

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind, invalid_request

__all__ = ["Media", "MediaInput", "data_url", "decode_data_url", "is_url", "read_media", "sniff"]

MediaInput = bytes | bytearray | memoryview | str | os.PathLike[str]

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "audio/flac": ".flac",
    "audio/wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
}


def sniff(data: bytes, declared: str | None = None) -> str:
    """The content type the bytes' signature says, else ``declared``, else octet-stream."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if declared:
        return declared.split(";", 1)[0].strip().lower() or "application/octet-stream"
    return "application/octet-stream"


@attrs.frozen(slots=True)
class Media:
    """Bytes of an image, a sound or a video, with their content type."""

    data: bytes = attrs.field(repr=lambda data: f"<{len(data):,} bytes>")
    content_type: str = "application/octet-stream"
    url: str | None = None
    """Where it was downloaded from, when the server answered with a link."""

    @classmethod
    def of(cls, data: bytes, declared: str | None = None, *, url: str | None = None) -> Media:
        """``data`` with the content type its signature says (``declared`` otherwise)."""
        return cls(data=bytes(data), content_type=sniff(data, declared), url=url)

    @property
    def extension(self) -> str:
        """A file extension for the content type (``.bin`` when unknown)."""
        return _EXTENSIONS.get(self.content_type, ".bin")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the bytes to ``path`` (a folder gets ``output<ext>`` inside it); returns the path."""
        target = Path(path).expanduser()
        if target.is_dir():
            target = target / f"output{self.extension}"
        target.write_bytes(self.data)
        return target


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://", "data:"))


def data_url(data: bytes, content_type: str | None = None) -> str:
    """``data:<type>;base64,...`` for bytes (the type from their signature)."""
    kind = sniff(data, content_type)
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_url(url: str) -> Media:
    """The bytes of a ``data:`` URL (fal's ``sync_mode`` answers put whole images in one)."""
    header, _, payload = url.partition(",")
    declared = header[5:].split(";", 1)[0] or None
    try:
        data = base64.b64decode(payload, validate=False) if ";base64" in header else payload.encode()
    except (binascii.Error, ValueError):
        raise HuggingFaceError(
            HuggingFaceErrorKind.DECODE, "the answer holds a data: URL that is not base64"
        ) from None
    return Media.of(data, declared)


def read_media(value: Any, field: str = "inputs") -> bytes | str:
    """A media input as bytes (bytes, a file, a data URL) or an http(s) URL left as it is (fetched
    or passed on by the caller). ``INVALID_REQUEST`` naming ``field`` otherwise."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not value:
            raise invalid_request(field, "is empty: give the bytes of an image, a sound or a video")
        return bytes(value)
    if isinstance(value, str) and value.startswith("data:"):
        return decode_data_url(value).data
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise invalid_request(
                field,
                f"{str(value)[:200]!r} is neither a readable file nor an http(s) URL ({exc.strerror or exc})",
            ) from None
    raise invalid_request(field, f"must be bytes, a file path or a URL, got {type(value).__name__}")
