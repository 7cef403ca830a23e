"""Local inference (extra ``local``): ``LocalDriver`` over llama.cpp, and ``ModelStore``.

``ModelStore`` needs huggingface-hub; ``LocalDriver`` needs llama-cpp-python. Both are imported
only when used, and a missing one says which ``pip install 'hfdriver[local]'`` to run.
"""

from hfdriver.local._default import DEFAULT_MODEL_DESCRIPTION, default_model_path, embedded_model_path
from hfdriver.local._driver import LocalDriver
from hfdriver.local._store import DEVICES, DownloadProgress, InstalledModel, ModelStore, manifest_key
from hfdriver.local._stream import LocalStream

__all__ = [
    "DEFAULT_MODEL_DESCRIPTION",
    "DEVICES",
    "DownloadProgress",
    "InstalledModel",
    "LocalDriver",
    "LocalStream",
    "ModelStore",
    "default_model_path",
    "embedded_model_path",
    "manifest_key",
]
