"""Local tokens per second: LocalDriver against llama-cpp-python called directly.

Both use the very same loaded model and settings (the embedded Gemma 3 270M with llama.cpp's
``gemma`` chat format, greedy, EOS biased away so every run makes exactly --tokens tokens), in
interleaved rounds; the median is reported. (The embedded model's default rendering, a plain
transcript for a base model, stops at a blank line: too few tokens to time.)
The target is >= 0.95x: the thread and queue plumbing must not slow llama.cpp down.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from hfdriver import GenerateRequest
from hfdriver.local import LocalDriver, default_model_path

PROMPT = "Write a long story about a lighthouse keeper."


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    async with LocalDriver(default_model_path(), chat_format="gemma", threads=args.threads) as driver:
        await driver.load()
        llm = driver._llm
        no_eos = {str(llm.token_eos()): -1000.0}
        request = (
            GenerateRequest.builder()
            .user(PROMPT)
            .max_tokens(args.tokens)
            .temperature(0)
            .extra(logit_bias=no_eos)
            .build()
        )
        messages = [{"role": "user", "content": PROMPT}]

        def direct() -> int:
            n = 0
            for chunk in llm.create_chat_completion(
                messages=messages, max_tokens=args.tokens, temperature=0, logit_bias=no_eos, stream=True
            ):
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    n += 1
            return n

        async def through_driver() -> int:
            n = 0
            async with driver.generate_stream(request) as stream:
                async for chunk in stream:
                    n += bool(chunk.text)
            return n

        await through_driver()  # warm up
        rates: dict[str, list[float]] = {"llama-cpp-python direct": [], "hfdriver LocalDriver": []}
        for _ in range(args.rounds):
            start = time.perf_counter()
            n = await asyncio.to_thread(direct)
            rates["llama-cpp-python direct"].append(n / (time.perf_counter() - start))
            start = time.perf_counter()
            n = await through_driver()
            rates["hfdriver LocalDriver"].append(n / (time.perf_counter() - start))

    base = statistics.median(rates["llama-cpp-python direct"])
    print(
        f"\nlocal generation, Gemma 3 270M Q4_K_M, {args.tokens} tokens, {args.threads} threads, median of {args.rounds} interleaved rounds\n"
    )
    print("| path | tokens/s | ratio to direct |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        value = statistics.median(values)
        print(f"| {name} | {value:.1f} | {value / base:.3f}x |")


if __name__ == "__main__":
    asyncio.run(main())
