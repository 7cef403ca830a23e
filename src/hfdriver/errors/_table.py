"""One row per error kind: everything hfdriver knows about a kind, in one place.

The mapping (which statuses and server codes mean a kind, the advice appended to a server's
message), the retry rule, what ``hfdriver serve`` answers, the tree in
:mod:`hfdriver.errors`' docstring and the table in HUGGINGFACE.md are all read from
:data:`KINDS`. Adding a kind is: a member of :class:`HuggingFaceErrorKind` and a row here;
``tests/unit/test_error_table.py`` fails until both exist and the docs table is regenerated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from hfdriver.errors._kind import HuggingFaceErrorKind

__all__ = ["GROUPS", "KINDS", "KindInfo", "kind_info", "kinds_markdown_table", "kinds_tree"]

K = HuggingFaceErrorKind

# The four places a failure can come from, in the order the docstring tree draws them.
GROUPS: Mapping[str, str] = {
    "before": "raised before anything is sent",
    "status": "the server answered with an error status",
    "transport": "the transport failed",
    "body": "the body was not what the protocol promises",
}


class KindInfo(NamedTuple):
    """What hfdriver knows about one :class:`HuggingFaceErrorKind`."""

    group: str
    """A key of :data:`GROUPS`: where the failure comes from."""
    brief: str
    """A few words for the docstring tree."""
    cause: str
    """The typical cause, for the docs table (Markdown)."""
    remedy: str
    """What the user should do, for the docs table (Markdown)."""
    retryable: bool
    """Retried by default (SERVER still excludes 501/505; see ``default_retryable``)."""
    served_status: int
    """The HTTP status ``hfdriver serve`` answers with."""
    openai_type: str
    """The OpenAI error ``type`` ``hfdriver serve`` answers with."""
    advice: str | None = None
    """Appended to a server's message: what to do next."""
    statuses: tuple[int, ...] = ()
    """HTTP statuses that mean this kind (the other 4xx are BAD_REQUEST, 5xx SERVER)."""
    codes: tuple[str, ...] = ()
    """Server error ``type``/``code``/``error_type`` values that mean this kind, whatever the status."""
    retry_note: str = ""
    """The exception to ``retryable``, for the docs ("except 501/505")."""


KINDS: Mapping[HuggingFaceErrorKind, KindInfo] = {
    K.INVALID_REQUEST: KindInfo(
        group="before",
        brief="a request that cannot be valid (temperature 3, no messages, ...)",
        cause="a request that cannot be valid (no messages, temperature 3, 5 stop sequences, a bad tool name); nothing was sent",
        remedy="fix the named field",
        retryable=False,
        served_status=400,
        openai_type="invalid_request_error",
    ),
    K.CONFIG: KindInfo(
        group="before",
        brief="bad TOML, missing token, offline mode",
        cause="no token for the router; a closed driver; bad configuration",
        remedy="set `HF_TOKEN` / pass `token=`; create a new driver",
        retryable=False,
        served_status=500,
        openai_type="server_error",
    ),
    K.BAD_REQUEST: KindInfo(
        group="status",
        brief="400 and other 4xx without a better kind",
        cause="400 for other reasons (context too long, unsupported parameter)",
        remedy="read the server's message in `.message`",
        retryable=False,
        served_status=400,
        openai_type="invalid_request_error",
        statuses=(400,),
    ),
    K.AUTHENTICATION: KindInfo(
        group="status",
        brief="401: token missing, wrong or revoked",
        cause="401: token missing, mistyped or revoked",
        remedy="check the token; create a new one",
        retryable=False,
        served_status=401,
        openai_type="authentication_error",
        advice=(
            "check the token: set HF_TOKEN (a fine-grained token with 'Make calls to Inference "
            "Providers') or run `hfdriver login`"
        ),
        statuses=(401,),
        codes=("authentication_error",),
    ),
    K.PAYMENT_REQUIRED: KindInfo(
        group="status",
        brief="402 (or insufficient_quota): credits exhausted",
        cause="402 (or `insufficient_quota`): credits exhausted",
        remedy="add credits, PRO, or `bill_to=` an organisation",
        retryable=False,
        served_status=402,
        openai_type="insufficient_quota",
        advice=(
            "your Inference Providers credits are used up: add credits or subscribe to PRO at "
            "https://huggingface.co/settings/billing, or bill an organisation with bill_to="
        ),
        statuses=(402,),
        codes=("insufficient_quota",),
    ),
    K.PERMISSION: KindInfo(
        group="status",
        brief="403: token lacks the scope, gated model",
        cause='403: the token lacks "Make calls to Inference Providers", or a gated model\'s licence is not accepted',
        remedy="enable the permission; accept the licence on the model page",
        retryable=False,
        served_status=403,
        openai_type="permission_error",
        advice=(
            "the token lacks a permission: enable 'Make calls to Inference Providers' on the token, "
            "or accept the model's licence on its Hub page if it is gated"
        ),
        statuses=(403,),
        codes=("permission_error",),
    ),
    K.NOT_FOUND: KindInfo(
        group="status",
        brief="404: model or route does not exist",
        cause="404: no such model or route",
        remedy="check `org/name` and `base_url`",
        retryable=False,
        served_status=404,
        openai_type="not_found_error",
        advice="check the model id (org/name) and the base_url",
        statuses=(404,),
        codes=("not_found_error",),
    ),
    K.MODEL_NOT_SUPPORTED: KindInfo(
        group="status",
        brief="model not served by any provider / not chat-capable / no template",
        cause="model not served by any enabled provider, not a chat model, no chat template",
        remedy="pick an Instruct model served by a provider, or another provider suffix",
        retryable=False,
        served_status=400,
        openai_type="invalid_request_error",
        advice=(
            "this model is not served for chat by an enabled provider (or has no chat template): "
            "pick an Instruct/chat model served by Inference Providers "
            "(https://huggingface.co/models?inference_provider=all&pipeline_tag=text-generation)"
        ),
        codes=("model_not_supported", "template_error"),
    ),
    K.GONE: KindInfo(
        group="status",
        brief="410: retired API (use the router)",
        cause="410: a retired API (the old `api-inference` URLs)",
        remedy="use the router (the default `base_url`)",
        retryable=False,
        served_status=410,
        openai_type="invalid_request_error",
        advice=(
            "this API was retired: use the Inference Providers router at "
            "https://router.huggingface.co/v1 (the default base_url)"
        ),
        statuses=(410,),
    ),
    K.VALIDATION: KindInfo(
        group="status",
        brief="422: parameters the server rejected",
        cause="422: parameters rejected (TGI validation, FastAPI `detail`)",
        remedy="fix the parameter the message names",
        retryable=False,
        served_status=422,
        openai_type="invalid_request_error",
        statuses=(422,),
        codes=("validation",),
    ),
    K.RATE_LIMITED: KindInfo(
        group="status",
        brief="429",
        cause="429",
        remedy="retried automatically; slow down or wait `retry_after`",
        retryable=True,
        served_status=429,
        openai_type="rate_limit_error",
        advice=(
            "slow down, or wait retry_after seconds; hfdriver retries by itself when the wait asked "
            "for is within RetryPolicy(max_retry_after=...)"
        ),
        statuses=(429,),
        codes=("rate_limit_exceeded",),
    ),
    K.MODEL_LOADING: KindInfo(
        group="status",
        brief="503 with estimated_time",
        cause="503 with `estimated_time`",
        remedy="retried automatically up to `max_retry_after`",
        retryable=True,
        served_status=503,
        openai_type="server_error",
        advice=(
            "the model is starting; hfdriver waits and retries by itself when its estimated time "
            "is within RetryPolicy(max_retry_after=...)"
        ),
    ),
    K.OVERLOADED: KindInfo(
        group="status",
        brief='503 "overloaded", 529',
        cause='503 "overloaded", 529, an `overloaded` error event',
        remedy="retried; try another provider (`:fastest`)",
        retryable=True,
        served_status=503,
        openai_type="server_error",
        statuses=(529,),
        codes=("overloaded", "overloaded_error"),
    ),
    K.SERVER: KindInfo(
        group="status",
        brief="5xx",
        cause="other 5xx",
        remedy="retried (not 501/505); report `request_id` if it persists",
        retryable=True,
        served_status=502,
        openai_type="server_error",
        retry_note="except 501/505",
    ),
    K.TIMEOUT: KindInfo(
        group="transport",
        brief="connect (retried), read idle or total limit fired",
        cause="the connect, read (silence between streamed bytes) or total (a unary call) limit fired; the message says which",
        remedy="raise `Timeouts(...)`, or stream long answers",
        retryable=False,  # connect timeouts are marked retryable where they are mapped
        served_status=504,
        openai_type="timeout_error",
        statuses=(408,),
        retry_note="except connect timeouts",
    ),
    K.CONNECTION: KindInfo(
        group="transport",
        brief="refused, reset, DNS",
        cause="refused, reset, DNS failure",
        remedy="check `base_url` and the network; retried",
        retryable=True,
        served_status=502,
        openai_type="server_error",
    ),
    K.STREAM: KindInfo(
        group="body",
        brief="error event inside a 200 stream, or the stream broke / ended early",
        cause="an error event inside a 200 stream, or the stream broke or ended before a finish reason",
        remedy="retry the request yourself; what arrived was already yielded",
        retryable=False,
        served_status=502,
        openai_type="server_error",
    ),
    K.DECODE: KindInfo(
        group="body",
        brief="a 200 body that is not JSON or not a chat completion",
        cause="a 200 body that is not JSON or not a chat completion",
        remedy="`base_url` probably points at a non-OpenAI-compatible route",
        retryable=False,
        served_status=502,
        openai_type="server_error",
    ),
}


def kind_info(kind: HuggingFaceErrorKind) -> KindInfo:
    """The row of ``kind``."""
    return KINDS[kind]


def kinds_tree() -> str:
    """The kinds drawn as a tree, grouped by where the failure comes from (for the docstring)."""
    width = max(len(kind.name) for kind in KINDS) + 2
    lines = ["HuggingFaceError (Exception)          .kind: HuggingFaceErrorKind", "│"]
    groups = list(GROUPS)
    for g_index, group in enumerate(groups):
        last_group = g_index == len(groups) - 1
        lines.append(f"{'└' if last_group else '├'}── {GROUPS[group]}")
        members = [(kind, row) for kind, row in KINDS.items() if row.group == group]
        for m_index, (kind, row) in enumerate(members):
            branch = "└" if m_index == len(members) - 1 else "├"
            stem = " " if last_group else "│"
            retried = (
                ("  (retried" + (f", {row.retry_note})" if row.retry_note else ")")) if row.retryable else ""
            )
            lines.append(f"{stem}   {branch}── {kind.name.ljust(width)}{row.brief}{retried}")
        if not last_group:
            lines.append("│")
    return "\n".join(lines)


def kinds_markdown_table() -> str:
    """The table of HUGGINGFACE.md's "Every error kind" section."""
    lines = [
        "| kind | typical cause | what to do | retried | `serve` answers |",
        "|---|---|---|---|---|",
    ]
    for kind, row in KINDS.items():
        retried = ("yes" if row.retryable else "no") + (f", {row.retry_note}" if row.retry_note else "")
        lines.append(
            f"| `{kind.name}` | {row.cause} | {row.remedy} | {retried} | {row.served_status} `{row.openai_type}` |"
        )
    return "\n".join(lines)
