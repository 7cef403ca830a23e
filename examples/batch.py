"""Run many prompts through hfdriver.batch.run_batch; write one JSON line per prompt.

    python examples/batch.py prompts.txt --concurrency 8 --output results.jsonl
    python examples/batch.py --fake          # 40 built-in prompts against a local FakeRouter

Input: a text file with one prompt per line, or JSON lines with {"id": ..., "prompt": ...}.
A failed prompt is reported in its own line ({"ok": false, "error": {...}}) and the batch
goes on. A progress line on stderr shows done / failed / total; the exit code is 3 when any failed
(so `--fake` exits 3 on purpose: every tenth fake answer is a scripted 422).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from hfdriver import Driver, GenerateRequest, HuggingFaceDriver, RetryPolicy, resolve_token
from hfdriver.batch import BatchSummary, run_batch
from hfdriver.testing import FakeResponse, FakeRouter

DEFAULT_MODEL = "meta-llama/Llama-3.2-1B-Instruct"


def read_prompts(path: Path) -> list[tuple[str, str]]:
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            item = json.loads(line)
            prompts.append((str(item.get("id", number)), str(item["prompt"])))
        else:
            prompts.append((str(number), line.strip()))
    return prompts


async def run_prompts(
    driver: Driver, prompts: list[tuple[str, str]], concurrency: int, max_tokens: int, out: Any
) -> tuple[int, int]:
    """hfdriver.batch.run_batch does the work: bounded, rate-limit-aware concurrency, results
    as rows finish. (For files in the OpenAI Batch format, `hfdriver batch IN -o OUT` also
    resumes a killed run.)"""
    rows = (
        (prompt_id, GenerateRequest.builder().user(prompt).max_tokens(max_tokens).build())
        for prompt_id, prompt in prompts
    )
    text_of = dict(prompts)
    summary = BatchSummary()
    async for result in run_batch(driver, rows, concurrency=concurrency):
        summary.add(result)
        record: dict[str, Any] = {"id": result.custom_id, "prompt": text_of[result.custom_id]}
        if result.response is not None:
            usage = result.response.usage
            record.update(
                ok=True,
                text=result.response.text,
                finish_reason=str(result.response.finish_reason),
                provider=result.response.provider,
                tokens=usage.total_tokens if usage else None,
                attempts=result.attempts,
            )
        else:
            error = result.error
            assert error is not None
            record.update(
                ok=False, error={"kind": error.kind.name, "message": error.message, "status": error.status}
            )
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        rate = summary.rows / max(summary.wall, 1e-9)
        print(
            f"\r{summary.rows}/{len(prompts)} done, {summary.failed} failed, {rate:.1f}/s",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    return summary.succeeded, summary.failed


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="?", type=Path, help="prompts file (text lines or JSON lines)")
    p.add_argument("--output", type=Path, help="JSON lines output (default: stdout)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument(
        "--fake", action="store_true", help="use a local FakeRouter; some prompts are scripted to fail"
    )
    args = p.parse_args()
    prompts = (
        read_prompts(args.input)
        if args.input
        else [(str(i), f"Write a one-line fact about the number {i}.") for i in range(1, 41)]
    )
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.fake or resolve_token() is None:
            print(
                "[no token or --fake: using the local FakeRouter; every 10th answer is a scripted 422]",
                file=sys.stderr,
            )
            async with FakeRouter() as router:
                for i in range(len(prompts)):
                    router.enqueue(
                        FakeResponse.error(422, "Input validation error: scripted failure")
                        if i % 10 == 9
                        else FakeResponse.completion(f"answer {i + 1}")
                    )
                async with HuggingFaceDriver(
                    base_url=router.base_url, model=args.model, retry=RetryPolicy.disabled()
                ) as driver:
                    done, failed = await run_prompts(driver, prompts, args.concurrency, args.max_tokens, out)
        else:
            async with HuggingFaceDriver(model=args.model) as driver:
                done, failed = await run_prompts(driver, prompts, args.concurrency, args.max_tokens, out)
    finally:
        if args.output:
            out.close()
    print(f"{done} succeeded, {failed} failed", file=sys.stderr)
    return 0 if failed == 0 else 3


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
