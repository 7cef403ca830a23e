"""A small built-in catalogue of well-known chat models, merged with the router's live list.

Live data wins for availability (a model the router does not list is not offered); the
catalogue fills gaps (context window, max output tokens). When the router cannot be reached,
the catalogue alone is returned, marked ``source="catalogue"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from hfdriver.hub._models import RouterModel

__all__ = ["BUILTIN_CATALOGUE", "CatalogueEntry", "merge_catalogue"]


@attrs.frozen(slots=True)
class CatalogueEntry:
    id: str
    context_window: int
    max_output_tokens: int


# Context windows as the model authors publish them; max output tokens are typical provider
# limits. Indicative only: live router data replaces both where it has them.
BUILTIN_CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry("meta-llama/Llama-3.2-1B-Instruct", 131072, 8192),
    CatalogueEntry("meta-llama/Llama-3.2-3B-Instruct", 131072, 8192),
    CatalogueEntry("meta-llama/Llama-3.1-8B-Instruct", 131072, 8192),
    CatalogueEntry("meta-llama/Llama-3.3-70B-Instruct", 131072, 8192),
    CatalogueEntry("Qwen/Qwen2.5-7B-Instruct", 32768, 8192),
    CatalogueEntry("Qwen/Qwen2.5-72B-Instruct", 32768, 8192),
    CatalogueEntry("Qwen/Qwen2.5-Coder-32B-Instruct", 32768, 8192),
    CatalogueEntry("Qwen/Qwen3-8B", 32768, 8192),
    CatalogueEntry("Qwen/Qwen3-32B", 32768, 8192),
    CatalogueEntry("deepseek-ai/DeepSeek-R1", 131072, 32768),
    CatalogueEntry("deepseek-ai/DeepSeek-V3-0324", 131072, 8192),
    CatalogueEntry("mistralai/Mistral-7B-Instruct-v0.3", 32768, 8192),
    CatalogueEntry("google/gemma-3-27b-it", 131072, 8192),
    CatalogueEntry("openai/gpt-oss-20b", 131072, 32768),
    CatalogueEntry("openai/gpt-oss-120b", 131072, 32768),
)


def merge_catalogue(
    live: Sequence[RouterModel] | None, catalogue: Iterable[CatalogueEntry] = BUILTIN_CATALOGUE
) -> list[RouterModel]:
    """``live`` models with gaps filled from ``catalogue``; the catalogue alone if ``live`` is None."""
    entries = {e.id: e for e in catalogue}
    if live is None:
        return [
            RouterModel(
                id=e.id,
                owned_by=e.id.split("/", 1)[0],
                context_window=e.context_window,
                max_output_tokens=e.max_output_tokens,
                source="catalogue",
            )
            for e in entries.values()
        ]
    merged = []
    for model in live:
        entry = entries.get(model.id)
        if entry is not None:
            model = attrs.evolve(
                model,
                context_window=model.context_window or entry.context_window,
                max_output_tokens=model.max_output_tokens or entry.max_output_tokens,
                source="live+catalogue",
            )
        merged.append(model)
    return merged
