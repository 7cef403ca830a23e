"""A full function-calling round trip: the model asks for a tool, we run it, it answers.

python examples/tools.py "What's the weather in Paris?"
"""

from __future__ import annotations

import asyncio
import json
import sys

from _common import open_driver, parser

from hfdriver import GenerateRequest, HuggingFaceError, Message, ToolSpec
from hfdriver.testing import FakeResponse

WEATHER = (
    ToolSpec.builder("get_weather")
    .description("Current weather for a city")
    .param("city", "string", "City name", required=True)
    .build()
)


def get_weather(city: str) -> dict[str, object]:
    return {"city": city, "temperature_c": 18, "sky": "clear"}  # a stand-in for a real API


def fake_script() -> list[FakeResponse]:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    return [
        FakeResponse.completion("", tool_calls=[call], finish_reason="tool_calls"),
        FakeResponse.completion("It is 18°C and clear in Paris."),
    ]


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("prompt", nargs="?", default="What's the weather in Paris?")
    args = p.parse_args()
    messages = [Message.user(args.prompt)]
    try:
        async with open_driver(args, fake_script) as driver:
            first = await driver.generate(
                GenerateRequest(
                    messages=tuple(messages), tools=(WEATHER,), tool_choice="auto", max_tokens=200
                )
            )
            if not first.tool_calls:
                print(first.text)
                return 0
            messages.append(first.message)
            for call in first.tool_calls:
                result = get_weather(**call.parsed_arguments())
                print(f"[tool] {call.name}({call.arguments}) -> {result}", file=sys.stderr)
                messages.append(Message.tool(call.id, json.dumps(result)))
            final = await driver.generate(
                GenerateRequest(messages=tuple(messages), tools=(WEATHER,), max_tokens=200)
            )
    except HuggingFaceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(final.text)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
