"""Why a run stops or is refused. Refusals (bad request, nothing written) are ``ValueError``s: the CLI
prints them as one line and exits 2. A run that started and had to stop raises :class:`TrainingStopped`:
one line, exit 1, its last good checkpoint named in the message."""

from __future__ import annotations

import errno

#: OSError numbers that mean the disk (or the user's quota) is full
DISK_FULL = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)


class TrainingStopped(RuntimeError):
    """The run stopped before its end; the message says why and which checkpoint is intact."""


class NonFiniteLossError(TrainingStopped):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


class DiskFullError(TrainingStopped):
    """A write failed for lack of space (ENOSPC / EDQUOT); the last good checkpoint is left untouched."""


class RunExistsError(ValueError):
    """The output folder holds a run and neither resuming nor overwriting it was asked for."""


class ResumeMismatchError(ValueError):
    """A resume was asked with a config (or data) that differs from what the checkpoint trained with."""
