"""A full disk (ENOSPC, EDQUOT) while a run writes its config, checkpoint, exports or metrics ends the run
with one line naming the file and the last good checkpoint, which is intact; the run then resumes."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch
from _train_fixtures import TINY_ARGS, TinyTask, metrics

from mnet.apps.cli import main
from mnet.tasks.base import TASKS
from mnet.tasks.engine import checkpoint
from mnet.tasks.engine.logger import RunLogger
from mnet.weights import store


class Disk:
    """Writes go through as usual until the ``nth`` write of a file called ``target``, which fails with
    OSError(``code``) after part of it is written (a full disk fails mid-write)."""

    def __init__(self, monkeypatch, target: str, nth: int, code: int) -> None:
        self.target, self.nth, self.code, self.seen, self.full = target, nth, code, 0, True
        real_atomic, real_log = store.atomic_write, RunLogger.log
        disk = self

        def atomic_write(path, write):
            if disk.hit(path):
                return real_atomic(path, lambda tmp: (write(tmp), disk.fail(path)))
            return real_atomic(path, write)

        def log(self, kind, step, values):
            if self.enabled and disk.hit(self.path):
                with self.path.open("a") as f:
                    f.write(json.dumps({"type": kind, "step": step})[:9])  # a torn record
                disk.fail(self.path)
            return real_log(self, kind, step, values)

        monkeypatch.setattr(store, "atomic_write", atomic_write)  # save_weights
        monkeypatch.setattr(checkpoint, "atomic_write", atomic_write)  # checkpoints, config.yaml, metrics rewrite
        monkeypatch.setattr(RunLogger, "log", log)  # metrics.jsonl appends

    def hit(self, path) -> bool:
        if not self.full or Path(path).name != self.target:
            return False
        self.seen += 1
        return self.seen == self.nth

    def fail(self, path) -> None:
        raise OSError(self.code, os.strerror(self.code), str(path))


#: (file, which write of it fails, step of the last good checkpoint then: 0 = none yet). The tiny run:
#: 3 steps per epoch, checkpoint after each step, records logged before each checkpoint, exports at epoch end
FAILURES = [
    ("config.yaml", 1, 0),
    ("metrics.jsonl", 1, 0),
    ("last.pt", 1, 0),
    ("last.pt", 3, 2),
    ("last.pt", 5, 4),
    ("last.safetensors", 1, 2),
    ("best.safetensors", 1, 2),
    ("metrics.jsonl", 5, 3),
]


@pytest.fixture
def tiny(monkeypatch) -> TinyTask:
    task = TinyTask()
    monkeypatch.setitem(TASKS, "tiny", task)
    return task


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
@pytest.mark.parametrize(("target", "nth", "good"), FAILURES)
def test_full_disk_is_one_line_and_the_last_checkpoint_survives(
    target, nth, good, code, tiny, monkeypatch, capsys, tmp_path
):
    run = tmp_path / "run"
    disk = Disk(monkeypatch, target, nth, code)
    rc = main(["train", "tiny", *TINY_ARGS, f"output.dir={run}"])
    err = capsys.readouterr().err
    assert rc == 1 and disk.seen == nth and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("mnet train: error:")]
    assert len(errors) == 1, err
    line = errors[0]
    assert f"no space left on the device writing {run / target} ({os.strerror(code)})" in line
    assert not list(run.glob(".*.part")), "a temporary file was left behind"
    if good:
        assert f"the last good checkpoint {run / 'last.pt'} (step {good}," in line and "is intact" in line
        assert "continue with --resume" in line
        assert torch.load(run / "last.pt", weights_only=True)["global_step"] == good
    else:
        assert "no checkpoint was written yet" in line and "start again with --overwrite" in line
    disk.full = False  # space freed: the run continues (or starts again) and ends as a clean run would
    again = "--resume" if good else "--overwrite"
    assert main(["train", "tiny", *TINY_ARGS, f"output.dir={run}", again]) == 0, capsys.readouterr().err
    steps = [(r["type"], r["step"]) for r in metrics(run)]
    assert steps == [("train", s) for s in (1, 2, 3)] + [("epoch", 3)] + [("train", s) for s in (4, 5, 6)] + [
        ("epoch", 6)
    ]


def test_other_write_errors_are_one_line_too(tiny, monkeypatch, capsys, tmp_path):
    run = tmp_path / "run"
    Disk(monkeypatch, "last.pt", 2, errno.EACCES)
    assert main(["train", "tiny", *TINY_ARGS, f"output.dir={run}"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"mnet train: error: could not write {run / 'last.pt'} (Permission denied); stopping — the last good " in err
