"""What :class:`~hfdriver.local.ModelStore` records and where it may delete: the values of the
manifest, and the store's own folders."""

from __future__ import annotations

import builtins
import contextlib
import os
import re
from collections.abc import Callable
from typing import Any

import attrs

from hfdriver.hub import GgufFile

__all__ = [
    "DEVICES",
    "DownloadProgress",
    "InstalledModel",
    "entry_files",
    "hub_cache_dirs",
    "inside",
    "installed_from",
    "manifest_key",
    "progress_class",
]

DEVICES = ("auto", "cpu", "gpu")
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def manifest_key(repo_id: str, file_or_quant: str, device: str) -> str:
    """``<repo>::<file or quantization>::<device>``."""
    return f"{repo_id}::{file_or_quant}::{device}"


@attrs.frozen(slots=True, kw_only=True)
class DownloadProgress:
    """A progress event: bytes of ``filename`` done so far, out of ``total`` when known."""

    filename: str
    downloaded: int
    total: int | None
    done: bool = False

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.downloaded / self.total) if self.total else None


@attrs.frozen(slots=True, kw_only=True)
class InstalledModel:
    """A verified, installed GGUF model."""

    key: str
    repo_id: str
    filename: str
    quantization: str | None
    device: str
    path: str
    size: int
    sha256: str | None
    revision: str
    installed_at: float
    shards: tuple[str, ...] = ()
    """Every file of a split model (the first is ``path``)."""


_FIELDS = tuple(f.name for f in attrs.fields(InstalledModel) if f.name != "key")


def installed_from(key: str, entry: dict[str, Any]) -> InstalledModel:
    """A manifest entry as a value; unknown fields (a newer hfdriver, a hand edit) are ignored."""
    fields: dict[str, Any] = {k: v for k, v in entry.items() if k in _FIELDS}
    fields["shards"] = tuple(fields.get("shards") or ())
    return InstalledModel(key=key, **fields)


def entry_files(entry: dict[str, Any]) -> list[str]:
    shards = entry.get("shards")
    if isinstance(shards, list) and shards:
        return [str(s) for s in shards]
    path = entry.get("path")
    return [path] if isinstance(path, str) else []


def hub_cache_dirs() -> list[str]:
    """Where huggingface-hub puts downloads when no ``cache_dir`` is given: its own setting (read
    when it was imported) and the environment's now (``HF_HUB_CACHE``, ``HF_HOME``...)."""
    env = os.environ
    found = [
        env.get("HF_HUB_CACHE", "").strip()
        or env.get("HUGGINGFACE_HUB_CACHE", "").strip()
        or os.path.join(
            env.get("HF_HOME", "").strip()
            or os.path.join(
                env.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache"), "huggingface"
            ),
            "hub",
        )
    ]
    with contextlib.suppress(ImportError, AttributeError):
        from huggingface_hub import constants

        found.append(str(constants.HF_HUB_CACHE))
    return [os.path.realpath(os.path.expanduser(d)) for d in found]


def inside(path: str, roots: builtins.list[str], *, follow: bool) -> bool:
    """Whether ``path`` lies inside one of ``roots`` (real paths). ``follow``: where a symbolic link
    at ``path`` points (a blob); otherwise where the link itself is."""
    if follow:
        real = os.path.realpath(path)
    else:
        absolute = os.path.abspath(path)
        real = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    return any(real != root and os.path.commonpath((real, root)) == root for root in roots)


def progress_class(target: GgufFile, emit: Callable[[DownloadProgress], None]) -> Any:
    """A tqdm subclass that reports to ``emit`` instead of drawing a bar."""
    from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]

    class _Progress(tqdm):  # type: ignore[misc,unused-ignore]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self._hf_done = int(kwargs.get("initial") or 0)
            self._hf_total = kwargs.get("total") or target.size or None

        def update(self, n: float | None = 1) -> bool | None:
            self._hf_done += int(n or 0)
            emit(DownloadProgress(filename=target.path, downloaded=self._hf_done, total=self._hf_total))
            return None

    return _Progress
