from __future__ import annotations

import pytest

from hfdriver.hub import parse_quantization
from hfdriver.hub._models import parse_model_info, parse_router_model, parse_whoami


def test_provider_mapping_as_dict_or_list() -> None:
    as_dict = parse_model_info(
        {
            "id": "a/b",
            "inferenceProviderMapping": {
                "together": {"status": "live", "providerId": "x"},
                "groq": {"status": "staging"},
            },
        }
    )
    as_list = parse_model_info(
        {
            "id": "a/b",
            "inferenceProviderMapping": [
                {"provider": "together", "status": "live", "providerId": "x"},
                {"provider": "groq", "status": "staging"},
            ],
        }
    )
    assert as_dict.inference_providers == as_list.inference_providers
    assert as_dict.live_providers == ("together",) and as_dict.author == "a"


def test_model_info_tolerates_missing_fields() -> None:
    info = parse_model_info({"modelId": "gpt2"})
    assert (info.id, info.author, info.downloads, info.tags, info.created_at, info.has_gguf) == (
        "gpt2",
        None,
        0,
        (),
        None,
        False,
    )
    assert parse_model_info({"id": "x/y", "library_name": "gguf"}).has_gguf


def test_whoami_minimal_and_classic() -> None:
    who = parse_whoami({"name": "bot", "type": "org"})
    assert (who.name, who.type, who.scopes, who.token_role) == ("bot", "org", (), None)
    assert who.can_call_inference_providers  # no token details: not a fine-grained token


def test_router_model_context_window_is_the_largest_provider_context() -> None:
    model = parse_router_model(
        {
            "id": "a/b",
            "providers": [
                {"provider": "x", "context_length": 8192},
                {"provider": "y", "context_length": 32768},
            ],
        }
    )
    assert model.context_window == 32768 and model.offer("y") is not None and model.offer("z") is None


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("qwen2.5-7b-instruct-q8_0.gguf", "Q8_0"),
        ("model-f16.gguf", "F16"),
        ("x.BF16-00001-of-00002.gguf", "BF16"),
        ("Qwen3-30B-A3B-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"),
        ("x-IQ4_NL.gguf", "IQ4_NL"),
        ("model-IQ2_XS.gguf", "IQ2_XS"),
        ("gpt-oss-20b-MXFP4.gguf", "MXFP4"),
        ("tinyllama-1.1b-chat-v1.0.Q5_K_S.gguf", "Q5_K_S"),
        ("dir/Q4_0/model-Q4_0.gguf", "Q4_0"),
        ("model.gguf", None),
        ("qwen2-vl.gguf", None),
    ],
)
def test_quantization_from_file_names(name: str, quant: str | None) -> None:
    assert parse_quantization(name) == quant
