from __future__ import annotations

import subprocess
import sys


def test_import_hfdriver_is_light() -> None:
    code = (
        "import sys, hfdriver\n"
        "heavy = [m for m in ('llama_cpp', 'huggingface_hub', 'aiohttp', 'tenacity', 'cattrs') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"import hfdriver imported {out}"


def test_lazy_names_resolve() -> None:
    import hfdriver

    assert hfdriver.HuggingFaceDriver.__name__ == "HuggingFaceDriver"
    assert hfdriver.RetryPolicy().attempts >= 1 and hfdriver.Timeouts().read > 0
    assert set(hfdriver.__all__) <= set(dir(hfdriver)) | {
        "HuggingFaceDriver",
        "RetryPolicy",
        "Timeouts",
        "HubClient",
    }
