"""Three Hugging Face tasks with TaskClient: an image, a transcription, a classification.

With HF_TOKEN set, through the router (the providers come from the Hub's mapping of each model).
Without one, or with --fake, against hfdriver's local fakes (scripted answers: the same calls,
offline).

    python examples/tasks.py            # the router (HF_TOKEN), else the fakes
    python examples/tasks.py --fake
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from hfdriver import TaskClient, resolve_token
from hfdriver.testing import FakeHub, FakeResponse, FakeRouter

IMAGE_MODEL = "black-forest-labs/FLUX.1-schnell"
SPEECH_MODEL = "openai/whisper-large-v3"
SENTIMENT_MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
FLAC = b"fLaC\x00\x00\x00\x22" + b"\x00" * 64


@contextlib.asynccontextmanager
async def open_client(fake: bool) -> AsyncIterator[TaskClient]:
    token = None if fake else resolve_token()
    if token is not None:
        print("[the Hugging Face router]", file=sys.stderr)
        async with TaskClient(token=token) as client:
            yield client
        return
    print("[no HF_TOKEN set or --fake: hfdriver's local fakes, scripted answers]", file=sys.stderr)
    async with FakeRouter() as router, FakeRouter() as media, FakeHub() as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        hub.provider_mappings.update(
            {
                IMAGE_MODEL: [{"provider": "fal-ai", "providerId": "fal-ai/flux/schnell", "status": "live", "task": "text-to-image"}],
                SPEECH_MODEL: [{"provider": "hf-inference", "providerId": SPEECH_MODEL, "status": "live", "task": "automatic-speech-recognition"}],
                SENTIMENT_MODEL: [{"provider": "hf-inference", "providerId": SENTIMENT_MODEL, "status": "live", "task": "text-classification"}],
            }
        )  # fmt: skip
        router.script(
            "/fal-ai/fal-ai/flux/schnell",
            FakeResponse(json={"images": [{"url": f"{media.url}/cat.png", "content_type": "image/jpeg"}]}),
        )
        media.script("/cat.png", FakeResponse(body=PNG, content_type="image/jpeg"))
        router.script(
            f"/hf-inference/models/{SPEECH_MODEL}",
            FakeResponse(json={"text": "A man said to the universe, Sir, I exist."}),
        )
        router.script(
            f"/hf-inference/models/{SENTIMENT_MODEL}",
            FakeResponse(
                json=[[{"label": "POSITIVE", "score": 0.9998}, {"label": "NEGATIVE", "score": 0.0002}]]
            ),
        )
        async with TaskClient(token="hf_fake_token_for_the_example", router_url=router.url) as client:
            yield client


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fake", action="store_true", help="use the local fakes even if a token is set")
    parser.add_argument("--audio", help="a sound file to transcribe (default: a tiny placeholder)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hfdriver-tasks-"))
    async with open_client(args.fake) as hf:
        image = await hf.text_to_image("An astronaut riding a horse on the moon", model=IMAGE_MODEL)
        path = image.save(folder / f"astronaut{image.extension}")
        print(f"text-to-image: {len(image.data):,} bytes of {image.content_type}, saved to {path}")
        audio = args.audio or FLAC  # a path is read by TaskClient (in a thread)
        words = await hf.automatic_speech_recognition(audio, model=SPEECH_MODEL)
        print(f"automatic-speech-recognition: {words.text!r}")
        labels = await hf.text_classification("I love this new library!", model=SENTIMENT_MODEL)
        print("text-classification: " + ", ".join(f"{r.label} {r.score:.4f}" for r in labels))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
