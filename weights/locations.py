"""Where weights live on disk: the user's cache folder, and the folders of original files named once.

- :func:`cache_dir`: ``$MNET_CACHE``, else ``$XDG_CACHE_HOME/mnet``, else ``~/.cache/mnet`` (never the source tree).
  Converted weights go in ``<cache>/weights/``, other users of the cache take their own :func:`cache_subdir`.
- :func:`originals_dirs`: folders holding the original weight files (``.pb``, ``.tflite``, ...) for machines
  without internet, searched before any download: folders added with :func:`add_originals_dir` (a command's
  ``--source DIR``), then ``$MNET_WEIGHTS_DIR`` (one or more, ``os.pathsep``-separated), then ``weights_dir``
  in the user config file (``$XDG_CONFIG_HOME/mnet/config.toml`` or ``~/.config/mnet/config.toml``).

Standard library only (no torch): cheap to import from the CLI.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_ENV = "MNET_CACHE"
WEIGHTS_DIR_ENV = "MNET_WEIGHTS_DIR"
CONFIG_KEY = "weights_dir"

#: folders named by the running program (``--source DIR``), searched first; see :func:`add_originals_dir`
_ADDED: list[Path] = []


def _xdg_home(var: str, default: str) -> Path:
    """``$VAR`` when it is an absolute path (the XDG spec ignores relative ones), else ``~/<default>``."""
    value = os.environ.get(var, "")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / default


def cache_dir() -> Path:
    """The suite's cache folder: ``$MNET_CACHE``, else ``$XDG_CACHE_HOME/mnet``, else ``~/.cache/mnet``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return _xdg_home("XDG_CACHE_HOME", ".cache") / "mnet"


def cache_subdir(name: str) -> Path:
    """``<cache>/<name>`` (e.g. ``weights``, ``exports``), created when missing."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"cache sub-folder name {name!r} must be one plain folder name")
    path = cache_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_path() -> Path:
    """The user config file: ``$XDG_CONFIG_HOME/mnet/config.toml`` or ``~/.config/mnet/config.toml``."""
    return _xdg_home("XDG_CONFIG_HOME", ".config") / "mnet" / "config.toml"


def read_config(path: str | Path | None = None) -> dict[str, Any]:
    """The user config as a dict (empty when the file does not exist); ValueError naming the file when bad."""
    path = Path(path) if path is not None else config_path()
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        return parse_toml_strings(text, path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML ({e})") from None


_KEY = re.compile(r'[ \t]*([A-Za-z0-9_-]+|"[^"\n]*")[ \t]*=[ \t]*')
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'')
_GAP = re.compile(r"(?:\s|#[^\n]*)*")  # whitespace, newlines and comments


def parse_toml_strings(text: str, path: str | Path = "config.toml") -> dict[str, Any]:
    """The top-level ``key = "text"`` and ``key = ["a", 'b']`` pairs of a TOML file: the subset the config
    uses, for Python 3.10 (no ``tomllib``). Other values are skipped; parsing stops at the first ``[table]``."""
    out: dict[str, Any] = {}
    pos = 0

    def fail(at: int, what: str) -> ValueError:
        return ValueError(f"{path}:{text.count(chr(10), 0, at) + 1}: {what}")

    def string(at: int) -> tuple[str, int]:
        m = _STRING.match(text, at)
        if not m:
            raise fail(at, "expected a quoted string")
        token = m.group()
        if token.startswith("'"):
            return token[1:-1], m.end()
        try:
            return json.loads(token), m.end()
        except json.JSONDecodeError:
            raise fail(at, f"unsupported escape in {token}") from None

    while True:
        pos = _GAP.match(text, pos).end()
        if pos >= len(text) or text[pos] == "[":  # end of file, or the first table: the top level ends
            return out
        m = _KEY.match(text, pos)
        if not m:
            raise fail(pos, "expected `key = value`")
        key, pos = m.group(1).strip('"'), m.end()
        if text.startswith(("'", '"'), pos):
            out[key], pos = string(pos)
        elif text.startswith("[", pos):
            items: list[str] = []
            pos = _GAP.match(text, pos + 1).end()
            while not text.startswith("]", pos):
                item, pos = string(pos)
                items.append(item)
                pos = _GAP.match(text, pos).end()
                if text.startswith(",", pos):
                    pos = _GAP.match(text, pos + 1).end()
                elif not text.startswith("]", pos):
                    raise fail(pos, f"expected `,` or `]` in the list of {key}")
            out[key], pos = items, pos + 1
        else:  # a number, a boolean, ...: not used by the config; skip the line
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end


@dataclass(frozen=True)
class OriginalsDir:
    """A folder of original weight files and who named it (for messages)."""

    path: Path
    origin: str


def add_originals_dir(path: str | Path) -> Path:
    """Search ``path`` (a folder of original weight files, searched recursively) before every other folder
    and before the network, for the rest of this process. Returns the absolute path."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such folder (given as a folder of original weight files)")
    if not p.is_dir():
        raise ValueError(f"{p}: not a folder; give the folder that holds the original weight files")
    p = p.absolute()
    if p not in _ADDED:
        _ADDED.append(p)
    return p


def _config_dirs() -> list[OriginalsDir]:
    path = config_path()
    value = read_config(path).get(CONFIG_KEY)
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{path}: {CONFIG_KEY} must be a folder path or a list of folder paths, not {value!r}")
    return [OriginalsDir(path.parent / Path(v).expanduser(), f"{CONFIG_KEY} in {path}") for v in values if v]


def originals_dirs_named() -> list[OriginalsDir]:
    """Every named folder of originals, in search order, each with where it was named (missing ones included)."""
    named = [OriginalsDir(p, "--source") for p in _ADDED]
    named += [
        OriginalsDir(Path(v).expanduser().absolute(), f"${WEIGHTS_DIR_ENV}")
        for v in os.environ.get(WEIGHTS_DIR_ENV, "").split(os.pathsep)
        if v
    ]
    named += _config_dirs()
    seen: set[Path] = set()
    out = []
    for d in named:
        if d.path not in seen:
            seen.add(d.path)
            out.append(d)
    return out


def originals_dirs() -> list[Path]:
    """The existing folders of original weight files, in search order (see the module docstring)."""
    return [d.path for d in originals_dirs_named() if d.path.is_dir()]


OFFLINE_HINT = (
    f"name a folder of original files once: `export {WEIGHTS_DIR_ENV}=/path/to/folder` or "
    f'`{CONFIG_KEY} = "/path/to/folder"` in {{config}}, or pass `--source DIR` to the command'
)


def offline_hint() -> str:
    """What to do when no original file was found: the exact settings that name a folder of originals."""
    return OFFLINE_HINT.format(config=config_path())


__all__ = [
    "OriginalsDir",
    "add_originals_dir",
    "cache_dir",
    "cache_subdir",
    "config_path",
    "offline_hint",
    "originals_dirs",
    "originals_dirs_named",
    "parse_toml_strings",
    "read_config",
]
