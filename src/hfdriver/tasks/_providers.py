"""The router's providers for the tasks, as one table: ``(provider, task)`` -> :class:`TaskRoute`
(how the request is built, how its answer reads, whether it becomes a queued job).

Every request goes to ``{router_url}/{provider}{path}``; the model in a payload is the mapping's
``providerId``; ``extra_body`` is merged into the payload (provider-specific parameters, as in
huggingface_hub). Answers that are links become downloads (fetched without the token); queued
jobs become :class:`~hfdriver.tasks._call.Job` values the runner polls at the pace of the
provider's own client. Payloads follow huggingface_hub's provider helpers; Black Forest Labs,
Hyperbolic and Nebius, which it no longer carries, follow its last versions that did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hfdriver.huggingface._embed import EMBED_ROUTES, EMBED_TASK
from hfdriver.tasks._call import Answer, Done, Outcome, Send, TaskCall, TaskRoute
from hfdriver.tasks._hf_inference import HF_INFERENCE_TASKS, hf_inference_read, hf_inference_send
from hfdriver.tasks._media import Media
from hfdriver.tasks._queued import BFL, FAL, REPLICATE, TOGETHER_VIDEO, WAVESPEED, ZAI_IMAGE
from hfdriver.tasks._wire import b64_media, dig, link, media_input, merge, renamed, sized

__all__ = ["ROUTES", "TaskRoute", "providers_for"]


# ---------------------------------------------------------------------------- OpenAI-style images
def _images(
    response_format: str | None,
    *,
    model_field: str = "model",
    renames: Mapping[str, str] | None = None,
    drop: tuple[str, ...] = (),
    size: bool = False,
    defaults: Mapping[str, Any] | None = None,
    path: str = "/v1/images/generations",
) -> Callable[[TaskCall], Send]:
    def send(call: TaskCall) -> Send:
        parameters = {**(defaults or {}), **renamed(call.parameters, **(renames or {}))}
        for name in drop:
            parameters.pop(name, None)
        if size:
            parameters = sized(parameters, "size")
        body: dict[str, Any] = {"prompt": call.inputs, model_field: call.provider_model, **parameters}
        if response_format:
            body["response_format"] = response_format
        return Send(path=path, json=merge(body, call), headers={"Accept": "application/json"})

    return send


def _b64_image(*path: str | int) -> Callable[[Answer, TaskCall], Outcome]:
    return lambda answer, call: Done(b64_media(dig(answer.json(), call, *path), call))


_STEPS = {"num_inference_steps": "steps"}
TOGETHER_IMAGE = TaskRoute(send=_images("base64", renames=_STEPS), read=_b64_image("data", 0, "b64_json"))
NEBIUS_IMAGE = TaskRoute(
    send=_images("b64_json", drop=("guidance_scale",)), read=_b64_image("data", 0, "b64_json")
)
NSCALE_IMAGE = TaskRoute(
    send=_images("b64_json", drop=("num_inference_steps", "cfg_scale"), size=True),
    read=_b64_image("data", 0, "b64_json"),
)
HYPERBOLIC_IMAGE = TaskRoute(
    send=_images(
        None,
        model_field="model_name",
        renames={**_STEPS, "guidance_scale": "cfg_scale"},
        defaults={"width": 512, "height": 512},  # its API requires both
    ),
    read=_b64_image("images", 0, "image"),
)


def _together_image_to_image(call: TaskCall) -> Send:
    parameters = renamed(call.parameters, **_STEPS)
    prompt = parameters.pop("prompt", None) or ""
    image = media_input(call.inputs)
    lowered = call.provider_model.lower()
    field: dict[str, Any] = (
        {"image_url": image}
        if "kontext" in lowered and "flux.1" in lowered
        else {"reference_images": [image]}
    )
    body = {
        "prompt": prompt,
        **field,
        "response_format": "base64",
        **parameters,
        "model": call.provider_model,
    }
    return Send(path="/v1/images/generations", json=merge(body, call))


TOGETHER_IMAGE_TO_IMAGE = TaskRoute(
    send=_together_image_to_image, read=_b64_image("data", 0, "b64_json"), takes_urls=True
)


def _speech(path: str) -> TaskRoute:
    def send(call: TaskCall) -> Send:
        body = {"input": call.inputs, **call.parameters, "model": call.provider_model}
        return Send(path=path, json=merge(body, call))

    return TaskRoute(send=send, read=lambda answer, call: Done(Media.of(answer.body, answer.content_type)))


# ---------------------------------------------------------------------------- completions
def _completions(path: str) -> TaskRoute:
    def send(call: TaskCall) -> Send:
        parameters = {
            k: v for k, v in renamed(call.parameters, max_new_tokens="max_tokens", stop_sequences="stop").items()
            if k not in ("details", "decoder_input_details")
        }  # fmt: skip
        return Send(
            path=path, json=merge({"prompt": call.inputs, **parameters, "model": call.provider_model}, call)
        )

    def read(answer: Answer, call: TaskCall) -> Outcome:
        choice = dig(answer.json(), call, "choices", 0)
        details = {"finish_reason": choice.get("finish_reason"), "seed": choice.get("seed")}
        return Done({"generated_text": dig(choice, call, "text"), "details": details})

    return TaskRoute(send=send, read=read)


# ---------------------------------------------------------------------------- Novita
def _novita_send(call: TaskCall) -> Send:
    return Send(
        path=f"/v3/hf/{call.provider_model}", json=merge({"prompt": call.inputs, **call.parameters}, call)
    )


NOVITA_VIDEO = TaskRoute(
    send=_novita_send, read=lambda answer, call: link(dig(answer.json(), call, "video", "video_url"), call)
)


# ---------------------------------------------------------------------------- feature-extraction
def _embed_route(provider: str) -> TaskRoute:
    route = EMBED_ROUTES[provider]

    def send(call: TaskCall) -> Send:
        texts = call.inputs if isinstance(call.inputs, list) else [call.inputs]
        body = {"input": texts, **call.parameters, "model": call.provider_model}
        return Send(path=route.path.format(model=call.provider_model), json=merge(body, call))

    def read(answer: Answer, call: TaskCall) -> Outcome:
        data = answer.json()
        items = dig(data, call, "data")
        ordered = sorted(items, key=lambda item: item.get("index", 0) if isinstance(item, Mapping) else 0)
        return Done([dig(item, call, "embedding") for item in ordered])

    return TaskRoute(send=send, read=read)


# ---------------------------------------------------------------------------- the table
HF_INFERENCE = TaskRoute(send=hf_inference_send, read=hf_inference_read)

ROUTES: dict[tuple[str, str], TaskRoute] = {
    **{("hf-inference", task): HF_INFERENCE for task in HF_INFERENCE_TASKS},
    **{(provider, EMBED_TASK): _embed_route(provider) for provider in EMBED_ROUTES if provider != "hf-inference"},
    **{
        ("fal-ai", task): FAL
        for task in (
            "text-to-image", "image-to-image", "text-to-video", "image-to-video", "image-segmentation",
            "automatic-speech-recognition", "text-to-speech",
        )
    },
    **{
        ("replicate", task): REPLICATE
        for task in ("text-to-image", "image-to-image", "text-to-speech", "text-to-video", "automatic-speech-recognition")
    },
    ("together", "text-to-image"): TOGETHER_IMAGE,
    ("together", "image-to-image"): TOGETHER_IMAGE_TO_IMAGE,
    ("together", "text-generation"): _completions("/v1/completions"),
    ("together", "text-to-speech"): _speech("/v1/audio/speech"),
    ("together", "text-to-video"): TOGETHER_VIDEO,
    ("together", "image-to-video"): TOGETHER_VIDEO,
    ("deepinfra", "text-generation"): _completions("/v1/openai/completions"),
    ("deepinfra", "text-to-speech"): _speech("/v1/openai/audio/speech"),
    ("featherless-ai", "text-generation"): _completions("/v1/completions"),
    ("scaleway", "text-generation"): _completions("/v1/completions"),
    ("novita", "text-generation"): _completions("/v3/openai/completions"),
    ("novita", "text-to-video"): NOVITA_VIDEO,
    ("nebius", "text-to-image"): NEBIUS_IMAGE,
    ("nscale", "text-to-image"): NSCALE_IMAGE,
    ("hyperbolic", "text-to-image"): HYPERBOLIC_IMAGE,
    ("black-forest-labs", "text-to-image"): BFL,
    ("zai-org", "text-to-image"): ZAI_IMAGE,
    **{("wavespeed", task): WAVESPEED for task in ("text-to-image", "image-to-image", "text-to-video", "image-to-video")},
}  # fmt: skip
"""``(provider, task)`` -> :class:`TaskRoute`: every pair hfdriver sends through the router."""


_BY_TASK: dict[str, tuple[str, ...]] = {}
for _provider, _task in ROUTES:
    _BY_TASK[_task] = (*_BY_TASK.get(_task, ()), _provider)


def providers_for(task: str) -> tuple[str, ...]:
    """The providers hfdriver knows for ``task``, hf-inference first."""
    return _BY_TASK.get(task, ())
