"""``hfdriver task NAME INPUT...``: any Hugging Face task; media to a file, the rest as text or JSON.

Inputs by task: the text (or an image / a sound: a path or a URL) first; then what the task pairs
with it: the context of question-answering, the candidate labels of zero-shot classification
(several arguments, or one with commas), the question of visual and document question answering,
the other sentences of sentence-similarity, the query of table-question-answering (the table is
a JSON file or text). ``--param name=value`` passes any other parameter (JSON values).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import attrs

from hfdriver.cli._common import UsageError, out
from hfdriver.config import load_config, token_for
from hfdriver.tasks import TASKS, Media, TaskClient

__all__ = ["register"]

_PAIRS = {
    "question-answering": "context",
    "zero-shot-classification": "candidate_labels",
    "zero-shot-image-classification": "candidate_labels",
    "visual-question-answering": "question",
    "document-question-answering": "question",
    "sentence-similarity": "other_sentences",
    "table-question-answering": "query",
}
_TABLES = frozenset({"table-question-answering", "tabular-classification", "tabular-regression"})
_LISTS = frozenset({"candidate_labels", "other_sentences"})


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    task = sub.add_parser(
        "task",
        parents=parents,
        help="run a Hugging Face task (text-to-image, speech recognition, classification...)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    task.add_argument("name", metavar="NAME", help=f"the task: {', '.join(TASKS)}")
    task.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="the input, then what the task pairs with it"
    )
    task.add_argument("-m", "--model", help="org/name, optionally :provider (or an endpoint URL)")
    task.add_argument(
        "--provider", help="a provider (fal-ai, replicate, hf-inference...); default: the Hub's mapping"
    )
    task.add_argument(
        "-o", "--output", metavar="FILE", help="where media answers go (default: ./<task>-output.<ext>)"
    )
    task.add_argument("--json", action="store_true", help="print the result as JSON")
    task.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="another parameter (JSON value)"
    )
    task.set_defaults(func=run_task)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _params(items: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"--param {item!r}: write NAME=VALUE, e.g. --param num_inference_steps=4")
        found[name] = _value(value)
    return found


def _table(text: str) -> Any:
    path = Path(text).expanduser()
    raw = path.read_text(encoding="utf-8") if path.is_file() else text
    try:
        table = json.loads(raw)
    except ValueError:
        raise UsageError("the table must be JSON ({column: [values...]}), as text or in a file") from None
    if not isinstance(table, dict):
        raise UsageError("the table must be a JSON object: {column: [values...]}")
    return table


def _arguments(name: str, inputs: list[str]) -> list[Any]:
    first: Any = _table(inputs[0]) if name in _TABLES else inputs[0]
    pair = _PAIRS.get(name)
    if pair is None:
        if len(inputs) > 1:
            raise UsageError(f"{name} takes one INPUT; got {len(inputs)} (quote a text with spaces)")
        return [first]
    rest = inputs[1:]
    if not rest:
        raise UsageError(f"{name} needs a second argument: the {pair.replace('_', ' ')}")
    if pair in _LISTS:
        values = [part.strip() for item in rest for part in (item.split(",") if len(rest) == 1 else [item])]
        return [first, [v for v in values if v]]
    return [first, " ".join(rest)]


def _plain(value: Any) -> Any:
    if isinstance(value, Media):
        return {"content_type": value.content_type, "bytes": len(value.data), "url": value.url}
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _lines(result: Any) -> list[str]:
    if isinstance(result, str):
        return [result]
    if isinstance(result, list) and result and all(hasattr(r, "score") for r in result):
        lines = []
        for r in result:
            name = next(
                (
                    getattr(r, f)
                    for f in ("label", "answer", "entity_group", "token_str", "word")
                    if getattr(r, f, None)
                ),
                "",
            )
            lines.append(f"{r.score:.4f}  {name}" if r.score is not None else str(name))
        return lines
    for field in ("text", "generated_text", "summary_text", "translation_text", "answer"):
        if isinstance(getattr(result, field, None), str):
            return [getattr(result, field)]
    return [json.dumps(_plain(result), ensure_ascii=False)]


async def run_task(args: argparse.Namespace) -> int:
    name = args.name.replace("_", "-")
    task = TASKS.get(name)
    if task is None:
        raise UsageError(f"unknown task {args.name!r}; one of: {', '.join(TASKS)}")
    arguments = _arguments(name, args.inputs)
    params = _params(args.param)
    config = load_config(args.config)
    llm = config.profile(args.profile)
    token = token_for(llm, config.path)
    async with TaskClient(
        token=token, provider=args.provider, bill_to=llm.bill_to, timeouts=llm.timeouts, retry=llm.retry
    ) as client:
        result = await getattr(client, task.method)(*arguments, model=args.model, **params)
        if name == "text-generation" and params.get("stream"):
            result = "".join([piece async for piece in result])
    if isinstance(result, Media):
        target = Path(args.output) if args.output else Path(f"{name}-output{result.extension}")
        saved = result.save(target)
        out(f"saved {len(result.data):,} bytes ({result.content_type}) to {saved}", stream=sys.stderr)
        if args.json:
            out(json.dumps({**_plain(result), "path": str(saved)}))
        return 0
    if args.json:
        out(json.dumps(_plain(result), ensure_ascii=False, indent=2))
        return 0
    for line in _lines(result):
        out(line)
    return 0
