"""``ModelStore``: GGUF files from the Hub, downloaded through huggingface-hub and verified.

Files live in the standard Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``, or ``cache_dir``);
a manifest JSON records what was installed, keyed ``<repo>::<file or quantization>::<device>``.
An entry is written only after the file's size (and sha256, when the Hub lists one) check out,
so an interrupted or corrupt download never shows as installed.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from hfdriver.auth import NoToken, Token, resolve_token
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.hub import GgufFile, HubClient, hub_offline
from hfdriver.local._models import (
    _SHARD,
    DEVICES,
    DownloadProgress,
    InstalledModel,
    entry_files,
    hub_cache_dirs,
    inside,
    installed_from,
    manifest_key,
    progress_class,
)
from hfdriver.transport import map_download_error

__all__ = ["DEVICES", "DownloadProgress", "InstalledModel", "ModelStore", "manifest_key"]

logger = logging.getLogger("hfdriver")


def _hub_module() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG,
            "downloading models needs huggingface-hub: pip install 'hfdriver[local]'",
        ) from None
    return huggingface_hub


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class ModelStore:
    """Download, verify, list and remove GGUF models.

    >>> async def main():  # doctest: +SKIP
    ...     store = ModelStore()
    ...     model = await store.pull("bartowski/Llama-3.2-1B-Instruct-GGUF", quantization="Q4_K_M",
    ...                              on_progress=lambda p: print(p.fraction))
    ...     print(model.path, [m.key for m in store.list()])
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        token: str | Token | NoToken | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self._token = resolve_token(token)
        self.endpoint = endpoint

    @property
    def manifest_path(self) -> Path:
        """Where the manifest lives: ``<cache_dir>/hfdriver-manifest.json`` or ``$HF_HOME/hfdriver/manifest.json``."""
        if self.cache_dir is not None:
            return self.cache_dir / "hfdriver-manifest.json"
        hf_home = os.environ.get("HF_HOME", "").strip()
        base = Path(hf_home).expanduser() if hf_home else Path.home() / ".cache" / "huggingface"
        return base / "hfdriver" / "manifest.json"

    # ------------------------------------------------------------------ manifest
    def _read(self) -> dict[str, dict[str, Any]]:
        """The manifest's entries; an entry that is not an object is skipped with a WARNING."""
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as exc:
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                f"{self.manifest_path}: the model manifest cannot be read ({exc}); remove it to start afresh",
            ) from None
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict):
            return {}
        entries = {}
        for key, entry in models.items():
            if isinstance(entry, dict):
                entries[str(key)] = entry
            else:
                logger.warning(
                    "hfdriver: %s: skipping the entry %r, which is not an object", self.manifest_path, key
                )
        return entries

    def _entries(self) -> builtins.list[InstalledModel]:
        """Every readable entry; one with missing or wrong fields is skipped with a WARNING."""
        out = []
        for key, entry in sorted(self._read().items()):
            try:
                out.append(installed_from(key, entry))
            except (TypeError, ValueError) as exc:  # noqa: PERF203 - one bad entry must not hide the rest
                logger.warning("hfdriver: %s: skipping the entry %r (%s)", self.manifest_path, key, exc)
        return out

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the manifest's file lock: pulls and removals in other processes wait their turn."""
        try:
            from filelock import FileLock
        except ImportError:  # pragma: no cover - huggingface-hub (the local extra) depends on it
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG,
                "managing local models needs filelock: pip install 'hfdriver[local]'",
            ) from None
        path = self.manifest_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=600):
            yield

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        path = self.manifest_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(
            json.dumps({"version": 1, "models": entries}, indent=2, sort_keys=True), encoding="utf-8"
        )
        os.replace(tmp, path)

    def list(self) -> list[InstalledModel]:
        """Installed models whose files are still present, by key."""
        return [m for m in self._entries() if Path(m.path).is_file()]

    def _record(self, model: InstalledModel) -> None:
        """Add ``model`` to the manifest. Read-modify-write under the file lock, so concurrent pulls
        (other processes too) never lose each other's entries."""
        with self._locked():
            entries = self._read()
            entries[model.key] = {k: v for k, v in attrs.asdict(model).items() if k != "key"}
            self._write(entries)

    def get(self, repo_id: str, file_or_quant: str, device: str = "auto") -> InstalledModel | None:
        """The installed entry for that key, if present and its file exists."""
        key = manifest_key(repo_id, file_or_quant, device)
        return next((m for m in self.list() if m.key == key), None)

    def resolve_key(self, spec: str) -> str:
        """The manifest key ``spec`` names: a key itself, or ``REPO:QUANT`` / ``REPO:FILE`` as
        ``hfdriver local pull`` takes it (the ``auto`` device, else the only device installed)."""
        entries = self._read()
        if spec in entries or "::" in spec:
            return spec
        repo, _, which = spec.partition(":")
        if not which:
            return spec
        matches = [key for key in entries if key.split("::")[:2] in ([repo, which.upper()], [repo, which])]
        auto = [k for k in matches if k.endswith("::auto")]
        if len(auto) == 1 or len(matches) == 1:
            return (auto or matches)[0]
        if matches:
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                f"{spec} is installed for several devices: remove one of {', '.join(sorted(matches))}",
            )
        return spec

    def remove(self, key: str) -> InstalledModel:
        """Forget the entry ``key`` (or ``REPO:QUANT``) and delete its files from the cache (if no
        other entry uses them)."""
        key = self.resolve_key(key)
        with self._locked():
            entries = self._read()
            if key not in entries:
                known = ", ".join(sorted(entries)) or "none installed"
                raise HuggingFaceError(
                    HuggingFaceErrorKind.NOT_FOUND, f"no installed model {key!r} (installed: {known})"
                )
            entry = entries.pop(key)
            # A file, and the cache blob behind its symlink, go only when no other entry uses them
            # (the same file pulled at another revision, or for another device, shares the blob),
            # and only inside the store's own folders: a hand-edited or shared manifest, or a
            # symlink to the user's own GGUF, never makes `rm` delete anything else.
            used_paths = {p for e in entries.values() for p in entry_files(e)}
            used_blobs = {os.path.realpath(p) for p in used_paths}
            roots = self._store_dirs()
            for file in entry_files(entry):
                if file not in used_paths:
                    self._delete(file, roots, used_blobs)
            self._write(entries)
        try:
            return installed_from(key, entry)
        except (TypeError, ValueError):
            return InstalledModel(
                key=key, repo_id=key.split("::")[0], filename="", quantization=None, device="auto",
                path=str(entry.get("path", "")), size=0, sha256=None, revision="", installed_at=0.0,
            )  # fmt: skip

    def _store_dirs(self) -> builtins.list[str]:
        if self.cache_dir is not None:
            return [os.path.realpath(self.cache_dir)]
        return hub_cache_dirs()

    def _delete(self, file: str, roots: builtins.list[str], used_blobs: set[str]) -> None:
        """Delete one listed file (a symlink into the cache, or a file) and the blob behind it."""
        if not inside(file, roots, follow=False):
            logger.warning("hfdriver: left %s in place: it is outside the model store (%s)", file, roots[0])
            return
        try:
            info = os.lstat(file)
        except (FileNotFoundError, ValueError):
            return
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
            logger.warning("hfdriver: left %s in place: it is not a file", file)
            return
        blob = os.path.realpath(file) if stat.S_ISLNK(info.st_mode) else None
        os.unlink(file)
        if blob is None or blob in used_blobs or not os.path.isfile(blob):
            return
        if inside(blob, roots, follow=True):
            os.unlink(blob)
        else:
            logger.warning("hfdriver: kept %s, which %s points to: it is outside the model store", blob, file)

    # ------------------------------------------------------------------ download
    def _endpoint(self) -> str | None:
        return self.endpoint or os.environ.get("HF_ENDPOINT") or None

    async def _list_files(self, repo_id: str, revision: str) -> builtins.list[GgufFile]:
        async with HubClient(self._token, endpoint=self._endpoint()) as hub:
            return await hub.list_gguf_files(repo_id, revision)

    async def choose_file(
        self, repo_id: str, quantization: str, revision: str = "main"
    ) -> builtins.list[GgufFile]:
        """The file(s) holding ``quantization`` in ``repo_id`` (several for a split model)."""
        files = await self._list_files(repo_id, revision)
        wanted = quantization.upper()
        matching = [
            f
            for f in files
            if (f.quantization or "").upper() == wanted and not f.name.lower().startswith("mmproj")
        ]
        if not matching:
            available = sorted({f.quantization for f in files if f.quantization})
            raise HuggingFaceError(
                HuggingFaceErrorKind.NOT_FOUND,
                f"{repo_id} has no {wanted} GGUF file; available: {', '.join(available) or 'none'}",
            )
        single = [f for f in matching if not _SHARD.search(f.path)]
        if single:
            return [min(single, key=lambda f: (f.path.count("/"), len(f.path)))]
        return sorted(matching, key=lambda f: f.path)

    async def pull(
        self,
        repo_id: str,
        *,
        file: str | None = None,
        quantization: str | None = None,
        device: str = "auto",
        revision: str = "main",
        on_progress: Callable[[DownloadProgress], None] | None = None,
        stop: threading.Event | None = None,
    ) -> InstalledModel:
        """Download (or reuse) a GGUF file, verify it, and record it in the manifest.

        ``stop``: once set (from any thread), the download ends at its next chunk and the pull
        raises :class:`asyncio.CancelledError`; what was downloaded stays in the Hub cache, so a
        later pull resumes it."""
        if device not in DEVICES:
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST, f"device: {device!r}; use one of {', '.join(DEVICES)}"
            )
        if (file is None) == (quantization is None):
            raise HuggingFaceError(
                HuggingFaceErrorKind.INVALID_REQUEST,
                "give exactly one of file= or quantization= (e.g. 'Q4_K_M')",
            )
        spec = file if file is not None else str(quantization).upper()
        key = manifest_key(repo_id, spec, device)
        existing = self.get(repo_id, spec, device)
        if existing is not None:
            return existing
        if hub_offline():
            raise HuggingFaceError(
                HuggingFaceErrorKind.CONFIG, f"offline mode: HF_HUB_OFFLINE is set and {key} is not installed"
            )
        if quantization is not None:
            targets = await self.choose_file(repo_id, quantization, revision)
        else:
            listed = {f.path: f for f in await self._list_files(repo_id, revision)}
            if file not in listed:
                raise HuggingFaceError(
                    HuggingFaceErrorKind.NOT_FOUND,
                    f"{repo_id} has no GGUF file {file!r}; files: {', '.join(sorted(listed)) or 'none'}",
                )
            targets = [listed[str(file)]]
        loop = asyncio.get_running_loop()

        def emit(event: DownloadProgress) -> None:  # runs in the download thread
            if stop is not None and stop.is_set():
                raise asyncio.CancelledError(f"pull of {key} stopped")
            if on_progress is not None:
                loop.call_soon_threadsafe(on_progress, event)

        paths = []
        for target in targets:
            local = await asyncio.to_thread(self._download, repo_id, target, revision, emit)
            paths.append(str(local))
        first = targets[0]
        model = InstalledModel(
            key=key, repo_id=repo_id, filename=first.path, quantization=first.quantization, device=device,
            path=paths[0], size=sum(t.size for t in targets), sha256=first.sha256, revision=revision,
            installed_at=time.time(), shards=tuple(paths) if len(paths) > 1 else (),
        )  # fmt: skip
        self._record(model)
        await asyncio.sleep(0)  # let queued progress callbacks run before returning
        return model

    def _download(
        self, repo_id: str, target: GgufFile, revision: str, emit: Callable[[DownloadProgress], None]
    ) -> Path:
        hub = _hub_module()
        tqdm_class = progress_class(target, emit)
        what = f"{repo_id}/{target.path}"
        try:
            local = Path(
                hub.hf_hub_download(
                    repo_id,
                    target.path,
                    revision=revision,
                    cache_dir=str(self.cache_dir) if self.cache_dir is not None else None,
                    token=self._token.reveal() if self._token else None,
                    endpoint=self._endpoint(),
                    tqdm_class=tqdm_class,
                )
            )
        except HuggingFaceError:
            raise
        except Exception as exc:
            raise map_download_error(exc, what, secret=self._token) from exc
        size = local.stat().st_size
        if target.size and size != target.size:
            self._discard(local)
            raise HuggingFaceError(
                HuggingFaceErrorKind.STREAM,
                f"{what}: downloaded {size} bytes, the Hub lists {target.size}; the file was removed, pull again",
            )
        if target.sha256:
            digest = _sha256(local)
            if digest != target.sha256:
                self._discard(local)
                raise HuggingFaceError(
                    HuggingFaceErrorKind.STREAM,
                    f"{what}: sha256 {digest} does not match the Hub's {target.sha256}; the file was removed, pull again",
                )
        emit(DownloadProgress(filename=target.path, downloaded=size, total=target.size or size, done=True))
        return local

    @staticmethod
    def _discard(local: Path) -> None:
        with contextlib.suppress(OSError):
            real = local.resolve()
            local.unlink()
            if real != local:
                real.unlink()
