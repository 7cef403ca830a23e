"""Stream a chat completion token by token (SSE): the real router when HF_TOKEN is set, else the
embedded local model (offline, when the local extra is installed), else (or with --fake) FakeRouter.

python examples/stream.py "Write a haiku about rivers."
"""

from __future__ import annotations

import asyncio
import sys

from _common import open_driver, parser

from hfdriver import GenerateRequest, HuggingFaceError


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("prompt", nargs="?", default="Write a haiku about rivers.")
    args = p.parse_args()
    request = GenerateRequest.builder().user(args.prompt).max_tokens(80).build()
    try:
        async with open_driver(args) as driver, driver.generate_stream(request) as stream:
            async for chunk in stream:
                print(chunk.text, end="", flush=True)
                if chunk.usage:
                    print(f"\n[{chunk.finish_reason}; {chunk.usage.total_tokens} tokens]", file=sys.stderr)
    except HuggingFaceError as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    print()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
