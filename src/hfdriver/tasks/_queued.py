"""The providers whose answers are queued jobs or links: fal-ai (direct and its queue),
Replicate (``Prefer: wait``, then its predictions), Black Forest Labs, WaveSpeed, Z.ai and
together's videos. Each becomes a :class:`~hfdriver.tasks._call.Job` the runner polls at the pace
of the provider's own client, with a cancel request where the provider offers one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from hfdriver.tasks._call import Answer, Done, Job, Outcome, Pending, Send, TaskCall, TaskRoute
from hfdriver.tasks._wire import dig, fail, link, media_input, merge, renamed, sized

__all__ = ["BFL", "FAL", "REPLICATE", "TOGETHER_VIDEO", "WAVESPEED", "ZAI_IMAGE"]

_STEPS = {"num_inference_steps": "steps"}


def route_path(url: Any, provider_prefix: str = "") -> str | None:
    """The path of an absolute URL a provider answered with (its own host), to ask through the router."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    parts = urlsplit(url)
    return provider_prefix + parts.path + (f"?{parts.query}" if parts.query else "")


# ---------------------------------------------------------------------------- fal-ai
_FAL_QUEUED = frozenset({"text-to-video", "image-to-video", "image-to-image", "image-segmentation"})
_FAL_QUEUE = "?_subdomain=queue"


def _fal_send(call: TaskCall) -> Send:
    parameters = renamed(call.parameters, target_size="image_size")
    if call.name == "text-to-image":
        parameters = sized(parameters, "image_size", as_mapping=True)
    if call.name == "automatic-speech-recognition":
        body: dict[str, Any] = {"audio_url": media_input(call.inputs, "audio/mpeg")}
    elif call.name == "text-to-speech":
        body = {"text": call.inputs}
    elif call.name == "image-to-image":
        image = media_input(call.inputs)
        body = {"image_url": image, "image_urls": [image]}
    elif call.name == "image-segmentation":
        body = {"image_url": media_input(call.inputs), "sync_mode": True}
    elif call.task.media_input:
        body = {"image_url": media_input(call.inputs)}
    else:
        body = {"prompt": call.inputs}
    suffix = _FAL_QUEUE if call.name in _FAL_QUEUED else ""
    return Send(path=f"/{call.provider_model}{suffix}", json=merge({**body, **parameters}, call))


def _fal_result(data: Any, call: TaskCall) -> Outcome:
    if call.name == "automatic-speech-recognition":
        return Done(data)
    if call.name == "text-to-speech":
        return link(dig(data, call, "audio", "url"), call)
    if call.name in ("text-to-video", "image-to-video"):
        return link(dig(data, call, "video", "url"), call)
    if call.name == "image-segmentation":
        url = dig(data, call, "image", "url")
        return link(url, call, then=lambda mask: [{"label": "mask", "score": 1.0, "mask": mask}])
    return link(dig(data, call, "images", 0, "url"), call)


def _fal_read(answer: Answer, call: TaskCall) -> Outcome:
    data = answer.json()
    if call.name not in _FAL_QUEUED or (isinstance(data, Mapping) and "request_id" not in data):
        return _fal_result(data, call)  # answered at once (fal.run's synchronous form)
    request_id = str(dig(data, call, "request_id"))
    # The app's queue path comes from response_url (it can be shorter than the submit path).
    path = urlsplit(data.get("response_url") or "").path or f"/{call.provider_model}/requests/{request_id}"

    def poll(polled: Answer) -> Outcome | Pending:
        status = str(dig(polled.json(), call, "status"))
        if status == "COMPLETED":
            result = Send(path=f"{path}{_FAL_QUEUE}", method="GET")
            return Job(
                id=request_id, poll=result, read=lambda got: _fal_result(got.json(), call), interval=0.0
            )
        if status in ("IN_QUEUE", "IN_PROGRESS"):
            return Pending(status)
        raise fail(call, f"job {request_id} ended as {status}")

    return Job(
        id=request_id,
        poll=Send(path=f"{path}/status{_FAL_QUEUE}", method="GET"),
        read=poll,
        cancel=Send(path=f"{path}/cancel{_FAL_QUEUE}", method="PUT"),
        interval=0.5,
    )


FAL = TaskRoute(send=_fal_send, read=_fal_read, takes_urls=True)


# ---------------------------------------------------------------------------- replicate
def _replicate_send(call: TaskCall) -> Send:
    model, _, version = call.provider_model.partition(":")
    inputs: dict[str, Any]
    if call.name == "text-to-speech":
        inputs = {"text": call.inputs}
    elif call.name == "automatic-speech-recognition":
        inputs = {"audio": media_input(call.inputs, "audio/wav")}
    elif call.task.media_input:
        image = media_input(call.inputs, "image/jpeg")  # models name it differently: all four
        inputs = {"image": image, "images": [image], "input_image": image, "input_images": [image]}
    else:
        inputs = {"prompt": call.inputs}
    body: dict[str, Any] = {"input": merge({**inputs, **call.parameters}, call)}
    headers = {"Prefer": "wait"}
    if version:
        return Send(path="/v1/predictions", json={**body, "version": version}, headers=headers)
    return Send(path=f"/v1/models/{model}/predictions", json=body, headers=headers)


def _replicate_output(output: Any, call: TaskCall) -> Outcome:
    if call.name == "automatic-speech-recognition":
        if isinstance(output, list):
            output = output[0] if output else None
        if isinstance(output, str):
            return Done({"text": output})
        if isinstance(output, Mapping):
            text = output.get("transcription") or output.get("translation")
            if isinstance(text, str):
                return Done({"text": text})
            return link(
                output.get("txt_file"), call, then=lambda got: {"text": got.data.decode("utf-8", "replace")}
            )
        raise fail(call, "answered no transcription")
    if isinstance(output, list):
        output = output[0] if output else None
    return link(output, call)


def _replicate_state(data: Any, call: TaskCall) -> Outcome | Pending:
    status = str(data.get("status") or "") if isinstance(data, Mapping) else ""
    output = data.get("output") if isinstance(data, Mapping) else None
    if status in ("failed", "canceled"):
        raise fail(call, f"prediction {data.get('id')} {status}: {str(data.get('error') or '')[:300]}")
    if output:  # what `Prefer: wait` waited for (its status may still say "processing")
        return _replicate_output(output, call)
    if status == "succeeded":
        raise fail(call, f"prediction {data.get('id')} succeeded with no output")
    return Pending(status or "starting")


def _replicate_read(answer: Answer, call: TaskCall) -> Outcome:
    data = answer.json()
    state = _replicate_state(data, call)
    if not isinstance(state, Pending):
        return state
    # `Prefer: wait` ended before the prediction did: poll it (through the router) until it ends.
    prediction = str(dig(data, call, "id"))
    path = f"/v1/predictions/{prediction}"
    return Job(
        id=prediction,
        poll=Send(path=path, method="GET"),
        read=lambda polled: _replicate_state(polled.json(), call),
        cancel=Send(path=f"{path}/cancel", method="POST"),
        interval=1.0,
    )


REPLICATE = TaskRoute(send=_replicate_send, read=_replicate_read, takes_urls=True)


# ---------------------------------------------------------------------------- queued elsewhere
def _bfl_send(call: TaskCall) -> Send:
    parameters = renamed(call.parameters, **_STEPS, guidance_scale="guidance")
    return Send(path=f"/v1/{call.provider_model}", json=merge({"prompt": call.inputs, **parameters}, call))


def _bfl_state(data: Any, call: TaskCall) -> Outcome | Pending:
    status = str(dig(data, call, "status"))
    if status == "Ready":
        return link(dig(data, call, "result", "sample"), call)
    if status in ("Pending", "Queued", "Processing"):
        progress = data.get("progress")
        return Pending(status, float(progress) if isinstance(progress, (int, float)) else None)
    raise fail(call, f"job {data.get('id')} ended as {status!r}")


def _bfl_read(answer: Answer, call: TaskCall) -> Outcome:
    data = answer.json()
    polling = dig(data, call, "polling_url")
    if not isinstance(polling, str) or not polling.startswith(("https://", "http://")):
        raise fail(call, "answered no polling_url")
    # Black Forest Labs' own host: polled without the Hugging Face token.
    return Job(
        id=str(data.get("id")),
        poll=Send(path=polling, method="GET"),
        read=lambda p: _bfl_state(p.json(), call),
    )


BFL = TaskRoute(send=_bfl_send, read=_bfl_read)


def _wavespeed_send(call: TaskCall) -> Send:
    body: dict[str, Any] = (
        {"image": media_input(call.inputs, "image/jpeg")}
        if call.task.media_input
        else {"prompt": call.inputs}
    )
    return Send(path=f"/api/v3/{call.provider_model}", json=merge({**body, **call.parameters}, call))


def _wavespeed_state(data: Any, call: TaskCall) -> Outcome | Pending:
    inner = dig(data, call, "data")
    status = str(dig(inner, call, "status"))
    if status == "completed":
        return link(dig(inner, call, "outputs", 0), call)
    if status in ("created", "processing"):
        return Pending(status)
    raise fail(call, f"task {inner.get('id')} {status}: {str(inner.get('error') or '')[:300]}")


def _wavespeed_read(answer: Answer, call: TaskCall) -> Outcome:
    inner = dig(answer.json(), call, "data")
    task_id = str(dig(inner, call, "id"))
    urls = inner.get("urls") if isinstance(inner, Mapping) else None
    path = (
        route_path(urls.get("get") if isinstance(urls, Mapping) else None)
        or f"/api/v3/predictions/{task_id}/result"
    )
    return Job(
        id=task_id,
        poll=Send(path=path, method="GET"),
        read=lambda polled: _wavespeed_state(polled.json(), call),
        interval=0.5,
    )


WAVESPEED = TaskRoute(send=_wavespeed_send, read=_wavespeed_read, takes_urls=True)

_ZAI_HEADERS = {"Accept-Language": "en-US,en", "x-source-channel": "hugging_face"}


def _zai_send(call: TaskCall) -> Send:
    body = {"model": call.provider_model, "prompt": call.inputs, **sized(dict(call.parameters), "size")}
    return Send(path="/api/paas/v4/async/images/generations", json=merge(body, call), headers=_ZAI_HEADERS)


def _zai_state(data: Any, call: TaskCall) -> Outcome | Pending:
    status = str(dig(data, call, "task_status"))
    if status == "SUCCESS":
        return link(dig(data, call, "image_result", 0, "url"), call)
    if status == "FAIL":
        raise fail(call, f"task {data.get('id')} failed")
    return Pending(status)


def _zai_read(answer: Answer, call: TaskCall) -> Outcome:
    data = answer.json()
    state = _zai_state(data, call)
    if not isinstance(state, Pending):
        return state
    task_id = str(dig(data, call, "id"))
    poll = Send(path=f"/api/paas/v4/async-result/{task_id}", method="GET", headers=_ZAI_HEADERS)
    return Job(id=task_id, poll=poll, read=lambda polled: _zai_state(polled.json(), call), interval=5.0)


ZAI_IMAGE = TaskRoute(send=_zai_send, read=_zai_read)


def _together_video_send(call: TaskCall) -> Send:
    parameters = renamed(call.parameters, **_STEPS)
    target = parameters.pop("target_size", None)
    if isinstance(target, Mapping):
        parameters.update({k: target[k] for k in ("width", "height") if k in target})
    if call.task.media_input:
        prompt = parameters.pop("prompt", None)
        body: dict[str, Any] = {
            "model": call.provider_model,
            "frame_images": [{"input_image": media_input(call.inputs), "frame": "first"}],
        }
        if prompt is not None:
            body["prompt"] = prompt
    else:
        body = {"prompt": call.inputs, "model": call.provider_model}
    return Send(path="/v2/videos", json=merge({**body, **parameters}, call))


def _together_video_state(data: Any, call: TaskCall) -> Outcome | Pending:
    status = str(data.get("status") or "queued") if isinstance(data, Mapping) else "queued"
    if status == "completed":
        return link(dig(data, call, "outputs", "video_url"), call)
    if status in ("queued", "in_progress"):
        return Pending(status)
    error = data.get("error") if isinstance(data, Mapping) else None
    message = error.get("message") if isinstance(error, Mapping) else error
    raise fail(call, f"video {data.get('id')} {status}: {str(message or '')[:300]}")


def _together_video_read(answer: Answer, call: TaskCall) -> Outcome:
    video = str(dig(answer.json(), call, "id"))
    return Job(
        id=video,
        poll=Send(path=f"/v2/videos/{video}", method="GET"),
        read=lambda p: _together_video_state(p.json(), call),
        interval=2.0,
    )


TOGETHER_VIDEO = TaskRoute(send=_together_video_send, read=_together_video_read, takes_urls=True)
