"""The ``huggingface`` and ``huggingface-endpoint`` providers of the configuration registry.

``pyproject.toml`` declares them in the ``hfdriver.drivers`` entry-point group, as a plugin would.
"""

from __future__ import annotations

import logging

from hfdriver.auth import NoToken, Token
from hfdriver.config import LLMConfig, Provider
from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind
from hfdriver.huggingface._driver import HuggingFaceDriver

__all__ = ["ENDPOINT", "ROUTER"]

logger = logging.getLogger("hfdriver")


def _driver(
    config: LLMConfig, token: Token | NoToken | None, base_url: str | None, routing: str | None
) -> HuggingFaceDriver:
    return HuggingFaceDriver(
        token,
        model=config.model,
        embedding_model=config.embedding_model,
        base_url=base_url,
        routing=routing,
        bill_to=config.bill_to,
        timeouts=config.timeouts,
        retry=config.retry,
        costs=config.costs,
    )


def _router(config: LLMConfig, token: Token | NoToken | None) -> HuggingFaceDriver:
    return _driver(config, token, config.base_url, config.routing)  # None: $HF_ROUTER_URL or the router


def _endpoint(config: LLMConfig, token: Token | NoToken | None) -> HuggingFaceDriver:
    if config.routing:
        # Routing suffixes (:fastest, :<provider>) mean something to the router only; a vLLM or TGI
        # server answers `model:fastest` with a 404. An [llm] routing inherited by an endpoint
        # profile is therefore not applied.
        logger.info(
            "hfdriver: routing %r is not applied to huggingface-endpoint %s", config.routing, config.base_url
        )
    if not config.base_url:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG,
            "provider 'huggingface-endpoint' needs base_url, e.g. 'http://127.0.0.1:8000/v1' (vLLM), "
            "'http://127.0.0.1:8080/v1' (TGI, llama.cpp) or 'http://127.0.0.1:11434/v1' (Ollama)",
        )
    return _driver(config, token, config.base_url, None)


ROUTER = Provider(
    create=_router, requires_model=True, description="the Hugging Face Inference Providers router"
)
ENDPOINT = Provider(
    create=_endpoint,
    requires_model=True,
    description="any OpenAI-compatible /v1: Inference Endpoints, TGI, vLLM, llama.cpp, Ollama",
)
