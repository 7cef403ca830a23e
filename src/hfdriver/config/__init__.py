"""TOML configuration and the provider factory.

A file looks like this (``hfdriver config init`` writes a commented one)::

    [llm]
    provider = "huggingface"          # or "huggingface-endpoint", "huggingface-local", a plugin
    model = "meta-llama/Llama-3.2-1B-Instruct"
    routing = "fastest"               # optional: fastest | cheapest | preferred | <provider>
    max_tokens = 512                  # defaults applied to requests that leave them unset
    temperature = 0.7

    [llm.auth]
    api_key_env = "HUGGINGFACE_API_TOKEN"   # or token_file = "~/.cache/huggingface/token"

    [llm.retry]                      # RetryPolicy fields
    attempts = 4

    [llm.timeouts]                   # Timeouts fields
    read = 120

    [llm.cache]                      # a response cache (on when this table is present)
    path = "~/.cache/huggingface/hfdriver/cache.sqlite"   # backend = "memory" for this process only
    ttl = 86400                      # seconds; unset: until evicted
    max_size = "512MB"               # least recently used answers go first

    [profiles.local-vllm]            # inherits [llm], overrides what it sets
    provider = "huggingface-endpoint"
    base_url = "http://127.0.0.1:8000/v1"

:func:`load_config` finds and validates the file (``_files``, ``_schema``); :func:`create_driver`
turns it into a :class:`~hfdriver.Driver` through the registry (``_registry``), where every
provider, built-in or plugin, is found the same way.
"""

from hfdriver.config._files import config_search_paths, load_config
from hfdriver.config._registry import (
    ENTRY_POINT_GROUP,
    DriverFactory,
    Provider,
    build_cache,
    create_driver,
    driver_factories,
    get_provider,
    register_driver,
    token_for,
)
from hfdriver.config._schema import (
    AuthConfig,
    CacheConfig,
    Config,
    LLMConfig,
    config_error,
    parse_config,
    parse_size,
    unknown_key_error,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "AuthConfig",
    "CacheConfig",
    "Config",
    "DriverFactory",
    "build_cache",
    "LLMConfig",
    "Provider",
    "config_error",
    "config_search_paths",
    "create_driver",
    "driver_factories",
    "get_provider",
    "load_config",
    "parse_config",
    "parse_size",
    "register_driver",
    "token_for",
    "unknown_key_error",
]
