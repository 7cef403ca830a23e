"""TaskClient beyond the recordings: queued jobs (polling that never blocks, deadlines,
cancellation on the provider), the provider choice's edge cases, media in and out, the token's
reach, validation, and the span of a task call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hfdriver import HuggingFaceError, HuggingFaceErrorKind, RetryPolicy
from hfdriver.tasks import Media, TaskClient, providers_for, sniff
from hfdriver.testing import FakeHub, FakeResponse, FakeRouter

K = HuggingFaceErrorKind
TOKEN = "hf_tasktests_abcdefghijklmnop"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x02" * 32
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x03" * 32
WAN = "Wan-AI/Wan2.1-T2V-14B"


@pytest.fixture
async def hosts(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeRouter, FakeRouter, FakeHub]]:
    async with FakeRouter(token=TOKEN) as router, FakeRouter() as media, FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.provider_mappings[WAN] = [
            {
                "provider": "fal-ai",
                "providerId": "fal-ai/wan/v2.1/t2v",
                "status": "live",
                "task": "text-to-video",
            }
        ]
        yield router, media, hub


def client(router: FakeRouter, **options: Any) -> TaskClient:
    options.setdefault("retry", RetryPolicy.disabled())
    return TaskClient(token=TOKEN, router_url=router.url, **options)


# ---------------------------------------------------------------------------- queued jobs
async def test_a_queued_job_of_20_polls_never_blocks_the_loop(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub],
) -> None:
    router, media, _ = hosts
    router.fal_queue_job("fal-ai/wan/v2.1/t2v", {"video": {"url": f"{media.url}/v.mp4"}}, pending=20)
    media.script("/v.mp4", FakeResponse(body=VIDEO, content_type="application/octet-stream"))
    ticks: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            ticks.append(now - last)
            last = now

    seen: list[tuple[str, float]] = []
    tick = asyncio.create_task(ticker())
    try:
        async with client(router, poll_interval=0.02, on_progress=lambda s, e: seen.append((s, e))) as hf:
            video = await hf.text_to_video("a dog running", model=WAN)
    finally:
        tick.cancel()
    assert video.data == VIDEO and video.content_type == "video/mp4"  # its bytes say mp4
    assert len(seen) == 20 and {s for s, _ in seen} == {"IN_QUEUE", "IN_PROGRESS"}
    assert [e for _, e in seen] == sorted(e for _, e in seen)
    assert len(ticks) >= 20 and max(ticks) < 0.05, max(ticks)
    statuses = [r for r in router.requests if r.path.endswith("/status")]
    assert len(statuses) == 21 and all(r.query == "_subdomain=queue" for r in statuses)
    submit = next(r for r in router.requests if r.path == "/fal-ai/fal-ai/wan/v2.1/t2v")
    assert submit.query == "_subdomain=queue" and submit.json == {"prompt": "a dog running"}
    assert not [r for r in media.requests if "Authorization" in r.headers]


async def test_a_job_past_its_deadline_is_a_timeout_and_is_cancelled(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub],
) -> None:
    router, media, _ = hosts
    request_id = router.fal_queue_job(
        "fal-ai/wan/v2.1/t2v", {"video": {"url": f"{media.url}/v.mp4"}}, pending=500
    )
    async with client(router, poll_interval=0.01, job_timeout=0.2) as hf:
        with pytest.raises(HuggingFaceError) as caught:
            await hf.text_to_video("slow", model=WAN)
    assert (
        caught.value.kind is K.TIMEOUT
        and request_id in caught.value.message
        and "job_timeout" in caught.value.message
    )
    cancels = [r for r in router.requests if r.path.endswith("/cancel")]
    assert len(cancels) == 1 and cancels[0].method == "PUT"


async def test_cancelling_the_caller_cancels_the_job(hosts: tuple[FakeRouter, FakeRouter, FakeHub]) -> None:
    router, media, _ = hosts
    router.fal_queue_job("fal-ai/wan/v2.1/t2v", {"video": {"url": f"{media.url}/v.mp4"}}, pending=500)
    async with client(router, poll_interval=0.01) as hf:
        task = asyncio.create_task(hf.text_to_video("stop me", model=WAN))
        while len([r for r in router.requests if r.path.endswith("/status")]) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [r.method for r in router.requests if r.path.endswith("/cancel")] == ["PUT"]


async def test_a_replicate_prediction_that_outlives_prefer_wait_is_polled(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub],
) -> None:
    router, media, hub = hosts
    model = "black-forest-labs/FLUX.1-dev"
    hub.provider_mappings[model] = [
        {
            "provider": "replicate",
            "providerId": "black-forest-labs/flux-dev",
            "status": "live",
            "task": "text-to-image",
        }
    ]
    prediction = router.replicate_prediction(
        "black-forest-labs/flux-dev", [f"{media.url}/out.webp"], pending=3
    )
    media.script(
        "/out.webp",
        FakeResponse(body=b"RIFF\x00\x00\x00\x00WEBPVP8 ", content_type="application/octet-stream"),
    )
    async with client(router, poll_interval=0.001) as hf:
        image = await hf.text_to_image("a lab in the forest", model=model, width=512, height=512)
    assert image.content_type == "image/webp" and image.url == f"{media.url}/out.webp"
    submit = next(r for r in router.requests if r.method == "POST")
    assert submit.headers["Prefer"] == "wait" and submit.json == {
        "input": {"prompt": "a lab in the forest", "width": 512, "height": 512}
    }
    assert len([r for r in router.requests if r.path == f"/replicate/v1/predictions/{prediction}"]) == 4


async def test_a_failed_job_is_a_server_error_naming_it(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub],
) -> None:
    router, _, _ = hosts
    router.script(
        "/fal-ai/fal-ai/wan/v2.1/t2v",
        FakeResponse(
            json={"request_id": "r-9", "response_url": "https://queue.fal.run/fal-ai/wan/requests/r-9"}
        ),
    )
    router.script("/fal-ai/fal-ai/wan/requests/r-9/status", FakeResponse(json={"status": "FAILED"}))
    async with client(router, poll_interval=0.001) as hf:
        with pytest.raises(HuggingFaceError) as caught:
            await hf.text_to_video("x", model=WAN)
    assert (
        caught.value.kind is K.SERVER and "r-9" in caught.value.message and "FAILED" in caught.value.message
    )


# ---------------------------------------------------------------------------- provider choice
@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        (
            [{"provider": "fal-ai", "providerId": "x", "status": "staging", "task": "text-to-image"}],
            "fal-ai (staging",
        ),
        (
            [
                {
                    "provider": "brand-new-provider",
                    "providerId": "x",
                    "status": "live",
                    "task": "text-to-image",
                }
            ],
            "brand-new-provider (live",
        ),
        (
            [{"provider": "fal-ai", "providerId": "x", "status": "live", "task": "text-to-video"}],
            "fal-ai (live, text-to-video)",
        ),
        ([], "lists no provider"),
    ],
    ids=["not-live", "unknown-provider", "task-mismatch", "no-mapping"],
)
async def test_no_usable_provider_names_model_task_and_what_was_tried(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub], mapping: list[dict[str, Any]], words: str
) -> None:
    router, _, hub = hosts
    hub.provider_mappings["org/painter"] = mapping
    async with client(router) as hf:
        with pytest.raises(HuggingFaceError) as caught:
            await hf.text_to_image("a cat", model="org/painter")
    message = caught.value.message
    assert caught.value.kind is K.MODEL_NOT_SUPPORTED
    assert "org/painter" in message and "text-to-image" in message and words in message
    assert all(p in message for p in ("fal-ai", "replicate", "hf-inference"))  # the providers it could use
    assert not [r for r in router.requests if r.method != "GET"]


async def test_the_first_live_known_provider_wins_and_the_mapping_is_fetched_once(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub], caplog: pytest.LogCaptureFixture
) -> None:
    router, media, hub = hosts
    hub.provider_mappings["org/painter"] = [
        {"provider": "newcomer", "providerId": "p", "status": "live", "task": "text-to-image"},
        {
            "provider": "replicate",
            "providerId": "org/painter-rep",
            "status": "staging",
            "task": "text-to-image",
        },
        {"provider": "nebius", "providerId": "painter-nb", "status": "live", "task": "text-to-image"},
    ]
    router.script(
        "/nebius/v1/images/generations", *[FakeResponse(json={"data": [{"b64_json": "iVBORw0KGgo="}]})] * 2
    )
    import logging

    with caplog.at_level(logging.DEBUG, logger="hfdriver"):
        async with client(router) as hf:
            first = await hf.text_to_image(
                "a", model="org/painter", width=64, height=64, num_inference_steps=4
            )
            await hf.text_to_image("b", model="org/painter")
    assert first.content_type == "image/png"
    sent = [r for r in router.requests if r.method == "POST"]
    assert sent[0].json == {
        "prompt": "a",
        "model": "painter-nb",
        "width": 64,
        "height": 64,
        "num_inference_steps": 4,
        "response_format": "b64_json",
    }
    assert len(hub.requests_to("/api/models/org/painter")) == 1
    assert any("skipping provider newcomer" in r.getMessage() for r in caplog.records)
    del media


async def test_provider_argument_and_suffix(hosts: tuple[FakeRouter, FakeRouter, FakeHub]) -> None:
    router, _, hub = hosts
    router.script(
        "/hf-inference/models/org/clf", *[FakeResponse(json=[[{"label": "POSITIVE", "score": 0.9}]])] * 2
    )
    async with client(router, provider="hf-inference") as hf:
        labels = await hf.text_classification("great", model="org/clf")
    async with client(router) as hf:
        again = await hf.text_classification("great", model="org/clf:hf-inference")
        with pytest.raises(HuggingFaceError) as caught:
            await hf.text_classification("great", model="org/clf:fal-ai")
    assert labels == again and labels[0].label == "POSITIVE"
    assert (
        caught.value.kind is K.MODEL_NOT_SUPPORTED
        and "'fal-ai' is not one hfdriver knows for text-classification" in caught.value.message
    )
    assert hub.requests == []  # hf-inference needs no look-up


# ---------------------------------------------------------------------------- media, token, validation
def test_media_types_come_from_the_bytes() -> None:
    assert sniff(PNG, "image/jpeg") == "image/png"  # fal's labels lie
    assert sniff(JPEG) == "image/jpeg" and sniff(VIDEO) == "video/mp4"
    assert sniff(b"RIFF1234WAVEfmt ") == "audio/wav" and sniff(b"fLaC\x00") == "audio/flac"
    assert sniff(b"unknown bytes", "audio/x-custom; rate=1") == "audio/x-custom"
    assert sniff(b"?") == "application/octet-stream"


def test_media_saves_to_a_file_or_a_folder(tmp_path: Path) -> None:
    image = Media.of(PNG, "image/jpeg")
    assert image.save(tmp_path / "cat.png").read_bytes() == PNG
    assert image.save(tmp_path).name == "output.png"
    assert "bytes" in repr(image) and str(PNG[:8]) not in repr(image)


async def test_media_inputs_bytes_paths_and_urls(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub], tmp_path: Path
) -> None:
    router, media, _ = hosts
    media.script("/cat.png", FakeResponse(body=PNG, content_type="image/png"))
    path = "/hf-inference/models/google/vit-base-patch16-224"
    router.script(path, *[FakeResponse(json=[{"label": "cat", "score": 0.9}])] * 3)
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)
    async with client(router) as hf:
        for given in (PNG, picture, f"{media.url}/cat.png"):
            result = await hf.image_classification(given, model="google/vit-base-patch16-224:hf-inference")
            assert result[0].label == "cat"
        with pytest.raises(HuggingFaceError) as caught:
            await hf.image_classification(
                tmp_path / "missing.png", model="google/vit-base-patch16-224:hf-inference"
            )
    sent = [r for r in router.requests if r.path == path]
    assert [r.body for r in sent] == [PNG] * 3 and all(r.headers["Content-Type"] == "image/png" for r in sent)
    assert caught.value.kind is K.INVALID_REQUEST and "missing.png" in caught.value.message
    assert [r.headers.get("Authorization") for r in media.requests] == [
        None
    ]  # the image's host never sees the token


async def test_fal_takes_image_urls_as_they_are(hosts: tuple[FakeRouter, FakeRouter, FakeHub]) -> None:
    router, media, hub = hosts
    hub.provider_mappings["org/i2v"] = [
        {"provider": "fal-ai", "providerId": "fal-ai/i2v", "status": "live", "task": "image-to-video"}
    ]
    router.fal_queue_job("fal-ai/i2v", {"video": {"url": f"{media.url}/v.mp4"}}, pending=1)
    media.script("/v.mp4", FakeResponse(body=VIDEO))
    async with client(router, poll_interval=0.001) as hf:
        await hf.image_to_video("https://example.com/cat.png", model="org/i2v", prompt="jump")
        await hf.aclose()
    submit = next(r for r in router.requests if r.path == "/fal-ai/fal-ai/i2v")
    assert submit.json == {"image_url": "https://example.com/cat.png", "prompt": "jump"}


async def test_bad_inputs_and_missing_things_are_clear(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub], monkeypatch: pytest.MonkeyPatch
) -> None:
    router, _, _ = hosts
    async with client(router) as hf:
        for call, field in (
            (hf.text_classification("x"), "model"),
            (hf.translation("x", model="a/b:hf-inference", src_lang="en"), "src_lang"),
            (hf.zero_shot_image_classification(PNG, ["one"], model="a/b:hf-inference"), "candidate_labels"),
            (hf.image_classification(12, model="a/b:hf-inference"), "inputs"),  # type: ignore[arg-type]
            (hf.text_to_image("x", model="not a model"), "model"),
        ):
            with pytest.raises(HuggingFaceError) as caught:
                await call
            assert caught.value.kind is K.INVALID_REQUEST and caught.value.message.startswith(field), (
                caught.value.message
            )
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_API_TOKEN", "HF_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", "/nonexistent")
    async with TaskClient(router_url=router.url) as anonymous:
        with pytest.raises(HuggingFaceError) as caught:
            await anonymous.text_to_image("x", model="a/b")
    assert caught.value.kind is K.CONFIG
    assert not [r for r in router.requests if r.method == "POST"]


async def test_wrong_answers_are_decode_errors(hosts: tuple[FakeRouter, FakeRouter, FakeHub]) -> None:
    router, _, _ = hosts
    path = "/hf-inference/models/org/clf"
    router.script(
        path,
        FakeResponse(json=[{"label": 3, "score": "high"}]),
        FakeResponse(body=b"<html>oops</html>"),
        FakeResponse(json={"nothing": 1}),
    )
    async with client(router) as hf:
        for _ in range(3):
            with pytest.raises(HuggingFaceError) as caught:
                await hf.text_classification("x", model="org/clf:hf-inference")
            assert caught.value.kind is K.DECODE and "text-classification" in caught.value.message


async def test_a_dedicated_endpoint_url_as_model_gets_the_token(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub],
) -> None:
    router, media, hub = hosts
    media.script("/endpoint", FakeResponse(json=[{"summary_text": "short"}]))
    async with client(router) as hf:
        summary = await hf.summarization("long text", model=f"{media.url}/endpoint")
    assert summary.summary_text == "short"
    assert media.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert media.requests[0].json == {"inputs": "long text", "parameters": {}}
    assert hub.requests == []


async def test_the_client_never_shows_its_token_or_url_credentials() -> None:
    async with TaskClient(token=TOKEN, router_url="http://user:s3cret@127.0.0.1:9") as hf:
        shown = repr(hf)
    assert TOKEN not in shown and "s3cret" not in shown
    assert "hf_" in shown and "127.0.0.1:9" in shown


def test_every_task_has_hf_inference_or_another_provider() -> None:
    from hfdriver.tasks import TASKS

    for name in TASKS:
        assert providers_for(name), name
    assert providers_for("text-to-image")[0] == "hf-inference"
    assert set(providers_for("text-to-video")) >= {"fal-ai", "replicate", "novita", "together", "wavespeed"}


# ---------------------------------------------------------------------------- the CLI
async def _task_cli(
    tmp_path: Path, router: FakeRouter, hub: FakeHub, *args: str
) -> tuple[int | None, str, str]:
    import os
    import sys

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    environ.update(
        HF_HOME=str(tmp_path / "hf_home"), HF_TOKEN=TOKEN, HF_ROUTER_URL=router.url, HF_ENDPOINT=hub.url,
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hfdriver.cli", "task", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=environ, cwd=str(tmp_path),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode, out.decode(), err.decode()


async def test_cli_task_media_to_a_file_and_text_out(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub], tmp_path: Path
) -> None:
    import json

    router, _, hub = hosts
    router.script("/hf-inference/models/org/sd", FakeResponse(body=JPEG, content_type="image/png"))
    code, _, err = await _task_cli(
        tmp_path,
        router,
        hub,
        "text-to-image",
        "a cat",
        "--model",
        "org/sd:hf-inference",
        "-o",
        "cat.jpg",
        "--param",
        "num_inference_steps=4",
    )
    assert code == 0, err
    assert (tmp_path / "cat.jpg").read_bytes() == JPEG and "image/jpeg" in err
    sent = next(r for r in router.requests if r.path == "/hf-inference/models/org/sd")
    assert sent.json == {"inputs": "a cat", "parameters": {"num_inference_steps": 4}}
    router.script(
        "/hf-inference/models/org/zs",
        FakeResponse(json={"sequence": "x", "labels": ["b", "a"], "scores": [0.7, 0.3]}),
    )
    code, out, err = await _task_cli(
        tmp_path,
        router,
        hub,
        "zero-shot-classification",
        "I love it",
        "a,b",
        "--model",
        "org/zs:hf-inference",
    )
    assert code == 0, err
    assert out.splitlines() == ["0.7000  b", "0.3000  a"]
    router.script(
        "/hf-inference/models/org/qa", FakeResponse(json={"answer": "42", "score": 0.5, "start": 0, "end": 2})
    )
    code, out, err = await _task_cli(
        tmp_path,
        router,
        hub,
        "question_answering",
        "what?",
        "it is 42",
        "--model",
        "org/qa:hf-inference",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out) == {"answer": "42", "score": 0.5, "start": 0, "end": 2}


async def test_cli_task_errors_are_one_line(
    hosts: tuple[FakeRouter, FakeRouter, FakeHub], tmp_path: Path
) -> None:
    router, _, hub = hosts
    code, _, err = await _task_cli(tmp_path, router, hub, "painting", "x", "--model", "a/b")
    assert code == 2 and "unknown task" in err
    code, _, err = await _task_cli(
        tmp_path, router, hub, "question-answering", "only a question", "--model", "a/b:hf-inference"
    )
    assert code == 2 and "context" in err
    code, _, err = await _task_cli(tmp_path, router, hub, "text-to-image", "x", "--model", "org/nothing")
    assert code == 1 and "Traceback" not in err and "org/nothing" in err
