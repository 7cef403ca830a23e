"""ModelStore against FakeHub: real huggingface-hub downloads of files with known size and sha256."""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

from hfdriver import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.local import DownloadProgress, ModelStore, manifest_key
from hfdriver.testing import FakeHub

pytest.importorskip(
    "huggingface_hub", reason="ModelStore downloads through huggingface-hub (the local extra)"
)

K = HuggingFaceErrorKind
REPO = "acme/tiny-GGUF"
DATA = os.urandom(257_000)


@pytest.fixture(autouse=True)
def _quiet_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with FakeHub() as fake:
        fake.add_file(REPO, "tiny-Q4_K_M.gguf", DATA)
        fake.add_file(REPO, "tiny-Q8_0.gguf", DATA + DATA)
        yield fake


@pytest.fixture
def store(hub: FakeHub, tmp_path: Path) -> ModelStore:
    return ModelStore(cache_dir=tmp_path / "cache", endpoint=hub.url)


async def test_pull_by_quantization_with_progress_and_manifest(store: ModelStore, hub: FakeHub) -> None:
    events: list[DownloadProgress] = []
    model = await store.pull(REPO, quantization="q4_k_m", on_progress=events.append)
    assert model.key == manifest_key(REPO, "Q4_K_M", "auto") == "acme/tiny-GGUF::Q4_K_M::auto"
    assert (
        Path(model.path).read_bytes() == DATA and model.size == len(DATA) and model.quantization == "Q4_K_M"
    )
    assert events and events[-1].done and events[-1].downloaded == len(DATA) and events[-1].fraction == 1.0
    assert all(a.downloaded <= b.downloaded for a, b in itertools.pairwise(events))
    manifest = json.loads(store.manifest_path.read_text())
    assert list(manifest["models"]) == ["acme/tiny-GGUF::Q4_K_M::auto"]
    # A second pull is served from the manifest: no download.
    before = len(hub.requests)
    assert (await store.pull(REPO, quantization="Q4_K_M")).path == model.path
    assert len(hub.requests) == before


async def test_manifest_round_trip_list_and_remove(store: ModelStore, tmp_path: Path) -> None:
    a = await store.pull(REPO, quantization="Q4_K_M", device="cpu")
    b = await store.pull(REPO, file="tiny-Q8_0.gguf", device="gpu")
    reopened = ModelStore(cache_dir=tmp_path / "cache")
    assert [m.key for m in reopened.list()] == [
        "acme/tiny-GGUF::Q4_K_M::cpu",
        "acme/tiny-GGUF::tiny-Q8_0.gguf::gpu",
    ]
    assert reopened.get(REPO, "tiny-Q8_0.gguf", "gpu") == b
    removed = reopened.remove(a.key)
    assert removed.key == a.key and not Path(a.path).exists()
    assert [m.key for m in reopened.list()] == [b.key]
    with pytest.raises(HuggingFaceError, match="no installed model") as info:
        reopened.remove(a.key)
    assert info.value.kind is K.NOT_FOUND


async def test_an_interrupted_download_is_never_installed_and_a_retry_completes(
    store: ModelStore, hub: FakeHub
) -> None:
    hub.cuts[(REPO, "tiny-Q4_K_M.gguf")] = 100  # every attempt drops half way
    with pytest.raises(HuggingFaceError) as info:
        await store.pull(REPO, quantization="Q4_K_M")
    assert info.value.kind in (K.CONNECTION, K.STREAM)
    assert store.list() == [] and not store.manifest_path.exists()
    hub.cuts.clear()
    model = await store.pull(REPO, quantization="Q4_K_M")
    assert Path(model.path).read_bytes() == DATA
    assert [m.key for m in store.list()] == [model.key]


async def test_a_corrupt_download_is_rejected_and_removed(store: ModelStore, hub: FakeHub) -> None:
    hub.add_file(REPO, "tiny-Q5_K_M.gguf", DATA, listed_sha256="0" * 64)
    with pytest.raises(HuggingFaceError, match="sha256") as info:
        await store.pull(REPO, quantization="Q5_K_M")
    assert info.value.kind is K.STREAM
    assert store.list() == []
    assert not any(p.name == "tiny-Q5_K_M.gguf" for p in (store.cache_dir or Path()).rglob("*.gguf"))


async def test_split_models_download_every_shard(store: ModelStore, hub: FakeHub) -> None:
    hub.add_file(REPO, "big-Q6_K-00001-of-00002.gguf", b"a" * 1000)
    hub.add_file(REPO, "big-Q6_K-00002-of-00002.gguf", b"b" * 500)
    model = await store.pull(REPO, quantization="Q6_K")
    assert [Path(p).name for p in model.shards] == [
        "big-Q6_K-00001-of-00002.gguf",
        "big-Q6_K-00002-of-00002.gguf",
    ]
    assert model.path == model.shards[0] and model.size == 1500


async def test_pull_errors(store: ModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(HuggingFaceError, match="has no IQ1_S GGUF file; available: Q4_K_M, Q8_0") as info:
        await store.pull(REPO, quantization="IQ1_S")
    assert info.value.kind is K.NOT_FOUND
    with pytest.raises(HuggingFaceError, match="Repository not found"):
        await store.pull("nobody/nothing", quantization="Q4_K_M")
    with pytest.raises(HuggingFaceError, match="exactly one of file= or quantization="):
        await store.pull(REPO)
    with pytest.raises(HuggingFaceError, match="device"):
        await store.pull(REPO, quantization="Q4_K_M", device="tpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HuggingFaceError, match="offline mode") as info:
        await store.pull(REPO, quantization="Q4_K_M")
    assert info.value.kind is K.CONFIG


async def test_removing_one_entry_keeps_a_blob_another_entry_uses(store: ModelStore, tmp_path: Path) -> None:
    cpu = await store.pull(REPO, quantization="Q4_K_M", device="cpu")
    gpu = await store.pull(REPO, quantization="Q4_K_M", device="gpu")
    blob = Path(cpu.path).resolve()
    # The same file at another revision: another snapshot symlink to the same cache blob.
    other = Path(cpu.path).parent.parent / ("f" * 40) / Path(cpu.path).name
    other.parent.mkdir(parents=True)
    other.symlink_to(blob)
    store._record(
        attrs.evolve(cpu, key=manifest_key(REPO, "Q4_K_M", "auto"), path=str(other), revision="f" * 40)
    )
    store.remove(cpu.key)
    assert Path(gpu.path).read_bytes() == DATA and blob.exists()  # the gpu entry shares the path
    store.remove(gpu.key)
    assert other.read_bytes() == DATA and blob.exists()  # the other revision shares the blob
    store.remove(manifest_key(REPO, "Q4_K_M", "auto"))
    assert not blob.exists() and store.list() == []


def test_concurrent_pulls_in_several_processes_lose_no_entry(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from hfdriver.local import ModelStore, InstalledModel
        store = ModelStore(cache_dir={str(tmp_path)!r})
        worker = sys.argv[1]
        for i in range(25):
            store._record(InstalledModel(
                key=f"w{{worker}}::{{i}}::auto", repo_id="a/b", filename="f.gguf", quantization=None,
                device="auto", path=__file__, size=1, sha256=None, revision="main", installed_at=time.time()))
        """
    )
    path = tmp_path / "worker.py"
    path.write_text(script)
    procs = [subprocess.Popen([sys.executable, str(path), str(n)]) for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    keys = {m.key for m in ModelStore(cache_dir=tmp_path).list()}
    assert len(keys) == 100


def test_a_hand_edited_manifest_skips_bad_entries_with_a_warning(
    store: ModelStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = {"repo_id": REPO, "filename": "f.gguf", "quantization": None, "device": "auto", "path": __file__,
            "size": 1, "sha256": None, "revision": "main", "installed_at": 0.0, "added_by_a_newer_version": True}  # fmt: skip
    store.manifest_path.parent.mkdir(parents=True, exist_ok=True)
    store.manifest_path.write_text(
        json.dumps(
            {
                "version": 1,
                "models": {"a::ok::auto": good, "b::missing::auto": {"path": __file__}, "c::bad::auto": 5},
            }
        )
    )
    with caplog.at_level(logging.WARNING, logger="hfdriver"):
        assert [m.key for m in store.list()] == ["a::ok::auto"]
    assert (
        str(store.manifest_path) in caplog.text
        and "'b::missing::auto'" in caplog.text
        and "'c::bad::auto'" in caplog.text
    )
    assert store.remove("b::missing::auto").key == "b::missing::auto"  # a bad entry can still be removed


async def test_rm_deletes_only_inside_the_store(store: ModelStore, tmp_path: Path) -> None:
    installed = await store.pull(REPO, quantization="Q4_K_M")
    mine = tmp_path / "my-own-model.gguf"  # the user's file, outside the store
    mine.write_bytes(b"GGUF my weights")
    link = Path(installed.path).parent / "linked-to-mine.gguf"  # a symlink in the store to it
    link.symlink_to(mine)
    escaping = tmp_path / "cache" / ".." / "my-own-model.gguf"  # a path that only seems inside
    for index, path in enumerate((mine, link, escaping)):
        store._record(attrs.evolve(installed, key=f"hand::edited::{index}", path=str(path), shards=()))
    for index in range(3):
        store.remove(f"hand::edited::{index}")
    assert mine.read_bytes() == b"GGUF my weights"  # never deleted, whatever the manifest says
    assert not link.is_symlink()  # the store's own symlink goes, not what it points to
    blob = Path(installed.path).resolve()
    store.remove(installed.key)  # a real entry: the snapshot link and the blob go
    assert not Path(installed.path).exists() and not blob.exists() and store.list() == []
