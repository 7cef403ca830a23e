"""The OpenAI Responses API, translated onto chat: requests in, response objects and events out.

Used by ``hfdriver serve`` for ``POST /v1/responses``; pure (no I/O), like the rest of this package.

- :func:`read_responses` turns a client's JSON into a :class:`ResponsesCall` (``INVALID_REQUEST``
  naming the field when it cannot): its input items, normalised so that they can be stored and
  listed, and what becomes a :class:`GenerateRequest` once the history of a
  ``previous_response_id`` is known (:meth:`ResponsesCall.generate_request`).
- :class:`ResponseShell` writes the ``response`` object: in progress, completed from a
  :class:`GenerateResponse`, incomplete (cut by the token limit) or failed.
- :class:`ResponseEvents` turns a driver's :class:`StreamChunk` values into the Server-Sent Events
  the openai SDK, the Agents SDK and Codex read (``response.created`` ... ``response.completed``),
  each with its ``sequence_number``, ``item_id``, ``output_index`` and ``content_index``.

Hosted tools (``web_search``, ``file_search``, ``code_interpreter``, Codex's ``namespace``, ...)
are not run by a chat model: they are left out of the request and named in
:attr:`ResponsesCall.dropped_tools`, for the server to log.
"""

from hfdriver.openai.responses._output import (
    ResponseEvents,
    ResponseShell,
    new_id,
    output_items,
    responses_usage,
)
from hfdriver.openai.responses._request import (
    ResponsesCall,
    items_to_messages,
    normalise_input,
    read_responses,
)

__all__ = [
    "ResponseEvents",
    "ResponseShell",
    "ResponsesCall",
    "items_to_messages",
    "new_id",
    "normalise_input",
    "output_items",
    "read_responses",
    "responses_usage",
]
