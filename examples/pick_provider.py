"""Pick the cheapest live provider for a model from the router's catalogue, then generate through it.

python examples/pick_provider.py meta-llama/Llama-3.2-1B-Instruct
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from hfdriver import GenerateRequest, HubClient, HuggingFaceDriver, HuggingFaceError, resolve_token
from hfdriver.hub import find_model
from hfdriver.testing import FakeHub, FakeRouter


async def run(hub: HubClient, driver: HuggingFaceDriver, model_id: str, prompt: str) -> int:
    catalogue = await hub.router_models()
    model = find_model(catalogue, model_id)
    if model is None:
        print(f"{model_id} is not in the router's catalogue", file=sys.stderr)
        return 1
    for offer in model.live_providers:
        price = (
            f"${offer.pricing.input}/${offer.pricing.output} per 1M tokens"
            if offer.pricing
            else "price unknown"
        )
        print(f"  {offer.provider:12} {price:32} context {offer.context_length or '?'}", file=sys.stderr)
    cheapest = model.cheapest()
    if cheapest is None:
        print("no live provider publishes a price; letting the router choose (:cheapest)", file=sys.stderr)
    route = cheapest.provider if cheapest else "cheapest"
    print(f"[routing {model_id} to {route}]", file=sys.stderr)
    driver.use_catalogue(catalogue)
    request = GenerateRequest.builder().model(model_id).routing(route).user(prompt).max_tokens(48).build()
    response = await driver.generate(request)
    print(response.text)
    print(f"[served by {response.provider}]", file=sys.stderr)
    return 0


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default="meta-llama/Llama-3.2-1B-Instruct")
    p.add_argument("--prompt", default="Say hello in French.")
    p.add_argument("--fake", action="store_true", help="use hfdriver's local FakeHub and FakeRouter")
    args = p.parse_args()
    try:
        if args.fake or resolve_token() is None:
            print("[no token or --fake: using the local FakeHub and FakeRouter]", file=sys.stderr)
            async with (
                FakeHub() as fake_hub,
                FakeRouter(provider="novita") as router,
                HubClient(endpoint=fake_hub.url, router_url=fake_hub.router_url) as hub,
                HuggingFaceDriver(base_url=router.base_url) as driver,
            ):
                return await run(hub, driver, args.model, args.prompt)
        async with HubClient() as hub, HuggingFaceDriver() as driver:
            return await run(hub, driver, args.model, args.prompt)
    except HuggingFaceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
