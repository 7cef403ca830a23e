"""The ``huggingface-local`` provider of the configuration registry.

``pyproject.toml`` declares it in the ``hfdriver.drivers`` entry-point group, as a plugin would.
``model`` is a ``.gguf`` path or a Hub repository id; unset (or ``"default"``) is the embedded model.
"""

from __future__ import annotations

from hfdriver.auth import NoToken, Token
from hfdriver.config import LLMConfig, Provider, unknown_key_error
from hfdriver.local._driver import LocalDriver

__all__ = ["LOCAL", "LOCAL_OPTIONS"]

LOCAL_OPTIONS = ("file", "quantization", "device", "context_size", "threads", "chat_format", "chat_template")
"""The keys ``[llm.options]`` may hold for a local driver."""


def _local(config: LLMConfig, token: Token | NoToken | None) -> LocalDriver:
    for key in config.options:
        if key not in LOCAL_OPTIONS:
            raise unknown_key_error(None, "llm.options", key, LOCAL_OPTIONS)
    options = dict(config.options)
    if not config.model or config.model == "default":
        return LocalDriver.default(**options)
    return LocalDriver(config.model, **options)


LOCAL = Provider(create=_local, requires_model=False, description="a GGUF model in-process (llama.cpp)")
