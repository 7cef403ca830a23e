"""One chat completion: the real router when HF_TOKEN is set, else the embedded local model
(offline, when the local extra is installed), else (or with --fake) the local FakeRouter.

python examples/chat.py "What is the capital of France?"
"""

from __future__ import annotations

import asyncio
import sys

from _common import open_driver, parser

from hfdriver import GenerateRequest, HuggingFaceError


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("prompt", nargs="?", default="What is the capital of France? Answer in one sentence.")
    p.add_argument("--max-tokens", type=int, default=64)
    args = p.parse_args()
    request = (
        GenerateRequest.builder()
        .system("You are concise.")
        .user(args.prompt)
        .max_tokens(args.max_tokens)
        .build()
    )
    try:
        async with open_driver(args) as driver:
            response = await driver.generate(request)
    except HuggingFaceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(response.text)
    usage = response.usage
    print(
        f"[model {response.model} via {response.provider or 'unknown provider'}, finish {response.finish_reason}"
        + (f", {usage.prompt_tokens}+{usage.completion_tokens} tokens" if usage else "")
        + "]",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
