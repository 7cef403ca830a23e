"""What this machine offers local inference: CPU, memory, accelerators, how llama.cpp was built,
and where models and caches live (with their size on disk and the free space).

One report, two readers: ``hfdriver local info`` (text or ``--json``) and the console's System view
(``GET /api/system``). Everything here is read-only and cheap except the directory sizes, which
walk the trees: call :func:`system_info` from a worker thread in a server.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hfdriver._version import __version__

__all__ = ["format_info", "system_info"]

# The GPU backends llama.cpp ships as their own library (libggml-<name>) or names in its report.
_BACKENDS = {"cuda": "CUDA", "metal": "Metal", "vulkan": "Vulkan", "blas": "BLAS", "hip": "ROCm/HIP",
             "sycl": "SYCL", "opencl": "OpenCL", "musa": "MUSA", "cann": "CANN"}  # fmt: skip


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    if sys.platform == "darwin":
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=2
            )
            if out.stdout.strip():
                return out.stdout.strip()
    return platform.processor() or platform.machine() or "unknown"


def _memory() -> dict[str, int | None]:
    total: int | None = None
    available: int | None = None
    with contextlib.suppress(OSError, ValueError):
        fields = dict(
            line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line
        )
        total = int(fields["MemTotal"].split()[0]) * 1024
        available = int(fields.get("MemAvailable", "0 kB").split()[0]) * 1024 or None
    if total is None:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"total_bytes": total, "available_bytes": available}


def _accelerators() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=5,
            )  # fmt: skip
            for line in out.stdout.splitlines():
                name, _, memory = line.partition(",")
                mib = memory.strip()
                found.append(
                    {"kind": "NVIDIA GPU", "name": name.strip(),
                     "memory_bytes": int(mib) * 1024 * 1024 if mib.isdigit() else None}
                )  # fmt: skip
    if sys.platform == "darwin" and platform.machine() == "arm64":
        found.append({"kind": "Apple GPU (Metal)", "name": _cpu_model(), "memory_bytes": None})
    return found


def _llama_cpp() -> dict[str, Any]:
    try:
        import llama_cpp  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return {"installed": False, "note": "pip install 'hfdriver[local]' to run local models"}
    except Exception as exc:  # a broken build (e.g. a missing shared library) is worth reporting
        return {"installed": False, "note": f"llama-cpp-python failed to load: {exc}"}
    report = ""
    with contextlib.suppress(Exception):
        raw = llama_cpp.llama_print_system_info()
        report = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    libs: set[str] = set()
    with contextlib.suppress(OSError):
        lib_dir = Path(llama_cpp.__file__).parent / "lib"
        libs = {p.name.lower() for p in lib_dir.iterdir()} if lib_dir.is_dir() else set()
    lowered = report.lower()
    backends = [
        label
        for key, label in _BACKENDS.items()
        if any(name.startswith(f"libggml-{key}") or name.startswith(f"ggml-{key}") for name in libs)
        or f"{key} :" in lowered
        or f"{key} = 1" in lowered
    ]
    gpu = False
    with contextlib.suppress(Exception):
        gpu = bool(llama_cpp.llama_supports_gpu_offload())
    features = [  # "CPU : SSE3 = 1 | AVX = 1 | ..." -> SSE3, AVX, ...
        part.split("=")[0].rpartition(":")[2].strip()
        for part in report.split("|")
        if part.strip().endswith("= 1")
    ]
    return {
        "installed": True,
        "version": getattr(llama_cpp, "__version__", None),
        "backends": backends or ["CPU only"],
        "gpu_offload": gpu,
        "cpu_features": features,
        "report": report.strip(),
    }


def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size  # links count once, as blobs
    return total


def _place(name: str, path: Path, *, is_file: bool = False) -> dict[str, Any]:
    exists = path.exists()
    size: int | None = None
    if exists:
        size = path.stat().st_size if is_file or path.is_file() else _tree_size(path)
    free: int | None = None
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(probe).free
    return {"name": name, "path": str(path), "exists": exists, "bytes": size, "free_bytes": free}


def _places() -> list[dict[str, Any]]:
    from hfdriver.cache import default_cache_path
    from hfdriver.local._default import embedded_model_path
    from hfdriver.local._models import hub_cache_dirs

    hub = Path(hub_cache_dirs()[0])
    places = [
        _place("models (Hugging Face hub cache)", hub),
        _place("hfdriver cache and response store", default_cache_path().parent),
    ]
    embedded = embedded_model_path()
    if embedded is not None:
        places.append(_place("embedded model", Path(embedded), is_file=True))
    return places


def system_info(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The whole report as JSON-ready values; ``config`` is the active configuration, masked."""
    cores = os.cpu_count()
    usable = cores
    with contextlib.suppress(AttributeError, OSError):
        usable = len(os.sched_getaffinity(0))
    return {
        "hfdriver": {"version": __version__, "python": platform.python_version()},
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "cpu": {"model": _cpu_model(), "cores": cores, "usable_cores": usable},
        "memory": _memory(),
        "accelerators": _accelerators(),
        "llama_cpp": _llama_cpp(),
        "storage": _places(),
        "config": dict(config) if config is not None else None,
    }


def _size(value: int | None) -> str:
    if value is None:
        return "unknown"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:,.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1000
    return f"{size:,.1f} TB"  # pragma: no cover


def format_info(info: Mapping[str, Any]) -> str:
    """The report as the lines ``hfdriver local info`` prints."""
    cpu, memory, llama = info["cpu"], info["memory"], info["llama_cpp"]
    lines = [
        f"hfdriver {info['hfdriver']['version']} (Python {info['hfdriver']['python']}), {info['os']}",
        f"CPU: {cpu['model']}, {cpu['cores']} cores ({cpu['usable_cores']} usable)",
        f"RAM: {_size(memory['total_bytes'])} total, {_size(memory['available_bytes'])} available",
    ]
    accelerators = info["accelerators"]
    if accelerators:
        for acc in accelerators:
            memory_text = f", {_size(acc['memory_bytes'])}" if acc.get("memory_bytes") else ""
            lines.append(f"accelerator: {acc['kind']}: {acc['name']}{memory_text}")
    else:
        lines.append("accelerator: none detected")
    if llama["installed"]:
        offload = "GPU offload" if llama["gpu_offload"] else "no GPU offload"
        lines.append(
            f"llama.cpp: llama-cpp-python {llama['version']}, built with {', '.join(llama['backends'])} ({offload})"
        )
        if llama["cpu_features"]:
            lines.append(f"llama.cpp CPU features: {', '.join(llama['cpu_features'])}")
    else:
        lines.append(f"llama.cpp: not available ({llama['note']})")
    for place in info["storage"]:
        state = f"{_size(place['bytes'])} on disk" if place["exists"] else "not created yet"
        lines.append(f"{place['name']}: {place['path']} ({state}, {_size(place['free_bytes'])} free)")
    config = info.get("config")
    if config:
        lines.append("configuration: " + ", ".join(f"{k}={v}" for k, v in config.items()))
    return "\n".join(lines)
