"""The run folder: what makes it hold a run, what a resume checks, what ``--overwrite`` removes.

A folder holds a run when it has a checkpoint, exported weights or metrics (:data:`RUN_FILES`). The
engine never writes into such a folder unless asked to continue it (resume) or to replace it
(overwrite, which removes only the files the engine writes). A resume compares the requested config
with the one the checkpoint trained with, key by key, and refuses any difference in a key that
changes the training (the schema's ``changes_training``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mnet.tasks.schema import ConfigError, Key, Section, flatten, lookup, resolve

from .errors import ResumeMismatchError, RunExistsError

CHECKPOINT = "last.pt"
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"
#: files whose presence means the folder holds a run
RUN_FILES: tuple[str, ...] = (CHECKPOINT, "last.safetensors", "best.safetensors", METRICS)
#: everything the engine writes into a run folder (what ``--overwrite`` removes)
ENGINE_FILES: tuple[str, ...] = (*RUN_FILES, CONFIG)
ENGINE_DIRS: tuple[str, ...] = ("tb",)


def run_files(run_dir: Path) -> list[str]:
    """The names of :data:`RUN_FILES` present in ``run_dir``."""
    return [name for name in RUN_FILES if (run_dir / name).exists()]


def refuse_existing_run(run_dir: Path) -> None:
    """Raise :class:`RunExistsError` when ``run_dir`` holds a run, naming it and the ways on."""
    found = run_files(run_dir)
    if found:
        raise RunExistsError(
            f"{run_dir} already holds a run ({', '.join(found)}); continue it with --resume, "
            f"replace it with --overwrite, or train into another folder with output.dir=NEW"
        )


def clear_run(run_dir: Path) -> None:
    """Remove the files and folders the engine writes (and nothing else) from ``run_dir``."""
    for name in ENGINE_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in ENGINE_DIRS:
        if (run_dir / name).is_dir():
            shutil.rmtree(run_dir / name)


def metrics_up_to(path: Path, step: int) -> str | None:
    """The text of ``metrics.jsonl`` keeping only records with ``step <= step`` (what a run resumed at
    ``step`` does not log again) and dropping a torn last line; None when nothing needs dropping."""
    if not path.is_file():
        return None
    lines = path.read_text().splitlines(keepends=True)
    keep = []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and int(rec.get("step", 0)) <= step and line.endswith("\n"):
            keep.append(line)
    return None if len(keep) == len(lines) else "".join(keep)


def _show(value: Any) -> str:
    return "(unset)" if value is _MISSING else json.dumps(value, default=str)


_MISSING = object()


def _normal(value: Any) -> Any:
    return [_normal(v) for v in value] if isinstance(value, (list, tuple)) else value


def config_differences(saved: Mapping[str, Any], requested: Mapping[str, Any], schema: Section) -> list[str]:
    """``key: A in the run, B now`` for each key that changes the training and differs.

    ``saved`` is completed with today's defaults first (a key added since defaults the same on both
    sides); keys declared ``changes_training=False`` and ``train.epochs`` (checked on its own) are skipped.
    """
    try:
        saved = resolve(saved, schema)
    except ConfigError:
        pass  # written by another version: compare what is there
    a, b = flatten(saved), flatten(requested)
    out = []
    for key in sorted(set(a) | set(b)):
        spec = lookup(schema, key)
        if key == "train.epochs" or (isinstance(spec, Key) and not spec.changes_training):
            continue
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        if _normal(va) != _normal(vb):
            out.append(f"{key}: {_show(va)} in the run, {_show(vb)} now")
    return out


def check_resume_config(
    state: Mapping[str, Any], cfg: Mapping[str, Any], schema: Section, checkpoint: Path, run_dir: Path
) -> None:
    """Refuse a resume whose config differs from the checkpoint's in keys that change the training, or
    that asks for fewer epochs than the run has trained."""
    saved = state.get("config")
    if saved is not None:
        diffs = config_differences(saved, cfg, schema)
        if diffs:
            raise ResumeMismatchError(
                f"cannot resume {checkpoint}: the config differs from the one it trained with in "
                f"{'; '.join(diffs)}. Resume with the run's settings ({run_dir / CONFIG}), or start a new "
                f"run with --overwrite or output.dir=NEW"
            )
    done, partial = int(state["epoch"]), int(state["batch_in_epoch"]) > 0
    need = done + (1 if partial else 0)
    if int(cfg["train"]["epochs"]) < need:
        raise ResumeMismatchError(
            f"cannot resume {checkpoint} with train.epochs={cfg['train']['epochs']}: the run has already "
            f"trained {done} epoch(s){' and part of the next' if partial else ''}; ask for at least {need}"
        )
