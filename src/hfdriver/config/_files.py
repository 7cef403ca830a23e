"""Where the configuration file is found, and reading it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hfdriver.config._schema import Config, config_error, parse_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

__all__ = ["config_search_paths", "load_config"]


def config_search_paths(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where :func:`load_config` looks, in order."""
    paths = []
    if explicit is not None:
        paths.append(Path(explicit).expanduser())
    env = os.environ.get("HFDRIVER_CONFIG", "").strip()
    if env:
        paths.append(Path(env).expanduser())
    paths.append(Path.cwd() / "hfdriver.toml")
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    paths.append((Path(xdg) if xdg else Path.home() / ".config") / "hfdriver" / "config.toml")
    return paths


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the first configuration found: ``path``, ``$HFDRIVER_CONFIG``, ``./hfdriver.toml``,
    ``~/.config/hfdriver/config.toml``. No file at all gives the defaults; an explicit ``path``
    (or ``$HFDRIVER_CONFIG``) that does not exist is a ``CONFIG`` error."""
    candidates = config_search_paths(path)
    explicit_count = (path is not None) + bool(os.environ.get("HFDRIVER_CONFIG", "").strip())
    for index, candidate in enumerate(candidates):
        if not candidate.is_file():
            if index < explicit_count:
                raise config_error(candidate, "no such file")
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise config_error(candidate, f"not valid TOML: {exc}") from None
        except RecursionError:
            raise config_error(candidate, "not valid TOML: tables or arrays nested too deeply") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise config_error(candidate, f"cannot be read: {exc}") from None
        return parse_config(data, candidate)
    return Config()
