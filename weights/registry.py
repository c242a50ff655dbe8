"""The weights registry: named :class:`~weights.entry.WeightsEntry` objects.

Entries live in ``weights/entries/<family>.py`` (pure data, imported by ``weights/entries/__init__.py``),
so ``mnet weights list`` sees every entry without importing task code; a task's converter and labels
are dotted strings (``"package.module:fn"``) imported only when a file is converted.
"""

from __future__ import annotations

import difflib

from .entry import WeightsEntry

_ENTRIES: dict[str, WeightsEntry] = {}


def register_weights(entry: WeightsEntry) -> WeightsEntry:
    """Add an entry; names are unique."""
    if entry.name in _ENTRIES:
        raise KeyError(f"weights entry {entry.name!r} is registered twice")
    _ENTRIES[entry.name] = entry
    return entry


def get_entry(name: str) -> WeightsEntry:
    """The entry called ``name``; a ValueError suggesting close names when there is none."""
    try:
        return _ENTRIES[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_ENTRIES), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `mnet weights list`"
        raise ValueError(f"unknown weights {name!r}{hint}") from None


def list_entries(task: str | None = None) -> list[WeightsEntry]:
    """All entries (of one task when given), sorted by name."""
    return sorted((e for e in _ENTRIES.values() if task is None or e.task == task), key=lambda e: e.name)


def find_entry_for_file(filename: str) -> WeightsEntry | None:
    """The entry whose original goes by this file name, if exactly one does."""
    hits = [e for e in _ENTRIES.values() if filename in e.filenames]
    return hits[0] if len(hits) == 1 else None
