"""Create a driver from a TOML configuration file (examples/hfdriver.toml by default).

python examples/from_config.py --profile cheap "Name three rivers."
python examples/from_config.py --fake "hello"     # the same config, pointed at a local FakeRouter

Without a token (HF_TOKEN, `hfdriver login`) it uses the FakeRouter too, and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import attrs

from hfdriver import GenerateRequest, HuggingFaceError
from hfdriver.config import LLMConfig, create_driver, load_config, token_for
from hfdriver.testing import FakeRouter

HERE = Path(__file__).resolve().parent


def has_token(llm: LLMConfig, path: Path | None) -> bool:
    try:
        return token_for(llm, path) is not None
    except HuggingFaceError:  # [llm.auth] names a variable that is not set
        return False


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompt", nargs="?", default="Name three rivers.")
    p.add_argument("--config", default=str(HERE / "hfdriver.toml"))
    p.add_argument("--profile")
    p.add_argument("--fake", action="store_true", help="send to a local FakeRouter (no token needed)")
    args = p.parse_args()
    try:
        config = load_config(args.config)
        llm = config.profile(args.profile)
        print(
            f"[{config.path} profile={args.profile or '[llm]'}: {llm.provider} {llm.model} routing={llm.routing} max_tokens={llm.max_tokens}]",
            file=sys.stderr,
        )
        request = GenerateRequest.builder().user(args.prompt).build()  # max_tokens etc. come from the config
        fake = args.fake
        if not fake and llm.provider == "huggingface" and not has_token(llm, config.path):
            print("[no HF_TOKEN set: sending the same configuration to a local FakeRouter]", file=sys.stderr)
            fake = True
        if fake:
            async with FakeRouter() as router:
                fake = attrs.evolve(
                    llm,
                    provider="huggingface-endpoint",
                    base_url=router.base_url,
                    auth=attrs.evolve(llm.auth, api_key_env=None, token_file=None),
                )
                async with create_driver(fake) as driver:
                    response = await driver.generate(request)
                print(
                    f"[FakeRouter received max_tokens={router.requests[0].json.get('max_tokens')}]",
                    file=sys.stderr,
                )
        else:
            async with create_driver(config, args.profile) as driver:
                response = await driver.generate(request)
    except HuggingFaceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(response.text)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
