"""Structured output: response_format with a JSON schema, parsed into a dict.

python examples/json_output.py "Tell me about the Eiffel Tower."
"""

from __future__ import annotations

import asyncio
import json
import sys

from _common import open_driver, parser

from hfdriver import GenerateRequest, HuggingFaceError
from hfdriver.testing import FakeResponse

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "city": {"type": "string"}, "height_m": {"type": "number"}},
    "required": ["name", "city", "height_m"],
    "additionalProperties": False,
}


def fake_script() -> list[FakeResponse]:
    return [FakeResponse.completion(json.dumps({"name": "Eiffel Tower", "city": "Paris", "height_m": 330}))]


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("prompt", nargs="?", default="Tell me about the Eiffel Tower.")
    args = p.parse_args()
    request = (
        GenerateRequest.builder()
        .user(args.prompt)
        .json_schema(SCHEMA, name="landmark", strict=True)
        .max_tokens(120)
        .build()
    )
    try:
        async with open_driver(args, fake_script) as driver:
            response = await driver.generate(request)
    except HuggingFaceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        data = json.loads(response.text)
    except ValueError:
        print(f"the model did not return JSON: {response.text!r}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
