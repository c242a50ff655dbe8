"""Runs are never destroyed without a word: a folder holding a run is refused unless resumed or overwritten;
a resume checks the config it is given against the checkpoint's; resumed metrics repeat no step; more
epochs on resume train on a schedule over the new length (all through ``mnet train``, in-process)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from _train_fixtures import TINY_ARGS, Interrupted, TinyTask, metrics

from mnet.apps.cli import main
from mnet.tasks.base import TASKS
from mnet.tasks.engine.optim import WarmupSchedule
from mnet.tasks.engine.rundir import RUN_FILES


@pytest.fixture
def tiny(monkeypatch) -> TinyTask:
    task = TinyTask()
    monkeypatch.setitem(TASKS, "tiny", task)
    return task


@pytest.fixture
def mnet(tiny, capsys):
    """``mnet train tiny`` with the tiny run's arguments, then ``args``: (exit code, stdout, stderr)."""

    def call(*args: str) -> tuple[int, str, str]:
        tiny.calls = 0
        rc = main(["train", "tiny", *TINY_ARGS, *args])
        out, err = capsys.readouterr()
        return rc, out, err

    return call


def snapshot(run) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mnet train: error: "), err
    assert "Traceback" not in err
    return lines[0]


def weights(run) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", weights_only=True)["model"]


# -- an existing run is never overwritten without being asked ------------------------------------------
@pytest.mark.parametrize(
    "present", [c for n in range(1, len(RUN_FILES) + 1) for c in itertools.combinations(RUN_FILES, n)]
)
def test_a_folder_holding_any_run_file_is_refused(present, mnet, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in present:
        (run / name).write_text(f"the old run's {name}")
    before = snapshot(run)
    rc, _, err = mnet(f"output.dir={run}")
    line = one_error_line(err)
    assert rc == 2 and str(run) in line and all(name in line for name in present)
    assert "--resume" in line and "--overwrite" in line and "output.dir=NEW" in line
    assert snapshot(run) == before  # nothing written, not even config.yaml


def test_a_finished_run_is_kept_and_other_files_do_not_block(mnet, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    (run / "config.yaml").write_text("a config alone is not a run")
    assert mnet(f"output.dir={run}")[0] == 0
    before = snapshot(run)
    rc, _, err = mnet(f"output.dir={run}", "optim.lr=0.5")  # the user forgot --resume / a new folder
    assert rc == 2 and "already holds a run" in one_error_line(err)
    assert snapshot(run) == before and (run / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_only_the_engine_files(mnet, tmp_path):
    run = tmp_path / "run"
    assert mnet(f"output.dir={run}")[0] == 0
    (run / "notes.txt").write_text("mine")
    old = weights(run)
    rc, _, _ = mnet(f"output.dir={run}", "--overwrite", "train.epochs=1", "seed=3")
    assert rc == 0 and (run / "notes.txt").read_text() == "mine"
    steps = [(r["type"], r["step"]) for r in metrics(run)]
    assert steps == [("train", 1), ("train", 2), ("train", 3), ("epoch", 3)]  # only the new run's records
    assert torch.load(run / "last.pt", weights_only=True)["global_step"] == 3
    assert not torch.equal(old["head.fc.weight"], weights(run)["head.fc.weight"])
    assert "seed: 3" in (run / "config.yaml").read_text()


def test_resume_and_overwrite_exclude_each_other(mnet, tmp_path):
    run = tmp_path / "run"
    assert mnet(f"output.dir={run}")[0] == 0
    before = snapshot(run)
    rc, _, err = mnet(f"output.dir={run}", "--resume", "--overwrite")
    assert rc == 2 and "give one" in one_error_line(err) and snapshot(run) == before


# -- a resume checks the config against the checkpoint's -----------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {"optim.momentum": ("0.9", "0.5")},
        {"optim.name": ('"sgd"', '"adamw"')},
        {"optim.lr": ("0.05", "0.1")},
        {"optim.no_decay": ('["depthwise", "norm"]', '["bias"]')},
        {"schedule.name": ('"cosine"', '"constant"')},
        {"seed": ("0", "1")},
        {"model.resolution": ("32", "40")},
        {"model.alpha": ("null", "0.5")},
        {"data.noise": ("1.0", "2.0")},
        {"data.batch_size": ("4", "3")},
        {"train.accum_steps": ("1", "2")},
        {"train.ema.decay": ("null", "0.9")},
        {"optim.momentum": ("0.9", "0.8"), "optim.weight_decay": ("4e-05", "0.001"), "seed": ("0", "7")},
    ],
    ids=lambda c: "+".join(c),
)
def test_resume_refuses_each_changed_training_key_naming_both_values(changes, mnet, tmp_path):
    run = tmp_path / "run"
    assert mnet(f"output.dir={run}", "train.epochs=1")[0] == 0
    before = snapshot(run)
    rc, _, err = mnet(
        f"output.dir={run}", "train.epochs=1", "--resume", *(f"{k}={new}" for k, (_, new) in changes.items())
    )
    line = one_error_line(err)
    assert rc == 2 and f"cannot resume {run / 'last.pt'}" in line
    for key, (old, new) in changes.items():
        assert f"{key}: {old} in the run, {new} now" in line, line
    assert str(run / "config.yaml") in line and "--overwrite" in line
    assert snapshot(run) == before  # config.yaml, checkpoint, metrics untouched


def _checkpointed(interrupt_at: int, every: int | None) -> int:
    """The step of the newest checkpoint when loss call ``interrupt_at`` fails (3 steps per epoch)."""
    done = interrupt_at - 1
    return max([s for s in range(1, done + 1) if s % 3 == 0 or (every and s % every == 0)], default=0)


INTERRUPTIONS = [(k, every) for every in (1, None) for k in range(2, 7) if _checkpointed(k, every)]


@pytest.mark.parametrize(("interrupt_at", "every"), INTERRUPTIONS)
def test_interrupted_then_resumed_repeats_no_metrics_step_and_matches_the_full_run(
    interrupt_at, every, tiny, mnet, tmp_path
):
    """6 batches (2 epochs × 3), a checkpoint every ``every`` steps and at epoch ends; interrupted at each
    batch, then resumed: the records logged after the checkpoint are dropped, not repeated."""
    ckpt_every = f"train.checkpoint_every_steps={'null' if every is None else every}"
    assert mnet(f"output.dir={tmp_path / 'full'}", ckpt_every)[0] == 0
    full = metrics(tmp_path / "full")
    cut = tmp_path / "cut"
    tiny.interrupt_at = interrupt_at
    with pytest.raises(Interrupted):
        mnet(f"output.dir={cut}", ckpt_every)
    tiny.interrupt_at = None
    assert torch.load(cut / "last.pt", weights_only=True)["global_step"] == _checkpointed(interrupt_at, every)
    assert max(r["step"] for r in metrics(cut)) == interrupt_at - 1  # logged beyond the checkpoint
    # settings that do not change the training may differ on resume
    rc, _, err = mnet(f"output.dir={cut}", "--resume", "train.progress=true", "train.checkpoint_every_steps=2")
    assert rc == 0, err
    resumed = metrics(cut)
    key = lambda r: (r["type"], r["step"], r["epoch"])  # noqa: E731
    assert [key(r) for r in resumed] == [key(r) for r in full]  # every step once, none missing
    for a, b in zip(full, resumed):
        for name in ("loss", "lr", "acc"):
            if name in a:
                assert b[name] == pytest.approx(a[name], abs=1e-6), (key(a), name)
    a, b = weights(tmp_path / "full"), weights(cut)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6, rtol=0) for k in a)


def test_resume_without_a_checkpoint_says_so(tiny, mnet, tmp_path):
    tiny.interrupt_at = 1  # stopped before the first checkpoint
    with pytest.raises(Interrupted):
        mnet(f"output.dir={tmp_path / 'run'}")
    tiny.interrupt_at = None
    rc, _, err = mnet(f"output.dir={tmp_path / 'run'}", "--resume")
    assert rc == 2 and "last.pt does not exist (nothing to resume)" in one_error_line(err)


def test_resume_refuses_a_training_set_that_changed(tiny, mnet, tmp_path, monkeypatch):
    run = tmp_path / "run"
    tiny.interrupt_at = 3
    with pytest.raises(Interrupted):
        mnet(f"output.dir={run}")
    tiny.interrupt_at = None
    before = snapshot(run)
    original = TinyTask.train_parts

    def more_samples(self, cfg):  # the same config, a dataset that grew
        parts = original(self, cfg)
        parts.train_set = torch.utils.data.ConcatDataset([parts.train_set, parts.train_set])
        return parts

    monkeypatch.setattr(TinyTask, "train_parts", more_samples)
    rc, _, err = mnet(f"output.dir={run}", "--resume")
    assert rc == 2 and "the run had 12 training samples, the data gives 24 now" in one_error_line(err)
    assert snapshot(run) == before


# -- more epochs on resume: a schedule over the new length ----------------------------------------------
@pytest.mark.parametrize(("first", "then", "warmup"), [(1, 2, 0.0), (1, 3, 0.5), (2, 4, 0.0)])
def test_resume_with_more_epochs_trains_on_a_schedule_over_the_new_length(first, then, warmup, mnet, tmp_path):
    run = tmp_path / "run"
    common = (f"output.dir={run}", f"schedule.warmup_epochs={warmup}")
    assert mnet(*common, f"train.epochs={first}")[0] == 0
    done = weights(run)
    rc, _, err = mnet(*common, f"train.epochs={then}", "--resume")
    assert rc == 0, err
    assert f"train.epochs {first} → {then}: the learning-rate schedule now spans {then} epochs" in err
    sched = WarmupSchedule("cosine", then * 3, 3, warmup_epochs=warmup)
    later = [r for r in metrics(run) if r["type"] == "train" and r["step"] > first * 3]
    assert [r["step"] for r in later] == list(range(first * 3 + 1, then * 3 + 1))
    for r in later:  # the LR each step left for the next: the new schedule's, above 0 until the end
        assert r["lr"] == pytest.approx(0.05 * sched(r["step"]), abs=1e-9)
    assert later[0]["lr"] > 0.01 and math.isclose(later[-1]["lr"], 0.0, abs_tol=1e-9)
    assert not torch.equal(done["layers.3.pw.conv.weight"], weights(run)["layers.3.pw.conv.weight"])
    assert "epochs: " + str(then) in (run / "config.yaml").read_text()


def test_resume_with_fewer_epochs_than_done_is_refused_and_a_finished_run_trains_nothing(mnet, tmp_path):
    run = tmp_path / "run"
    assert mnet(f"output.dir={run}")[0] == 0
    before = snapshot(run)
    rc, _, err = mnet(f"output.dir={run}", "--resume", "train.epochs=1")
    assert rc == 2 and "already trained 2 epoch(s); ask for at least 2" in one_error_line(err)
    rc, _, err = mnet(f"output.dir={run}", "--resume")
    assert rc == 0 and "nothing to train" in err
    assert {k: v for k, v in snapshot(run).items() if k != "config.yaml"} == {
        k: v for k, v in before.items() if k != "config.yaml"
    }


# -- what --resume reads from the command line ----------------------------------------------------------
@pytest.mark.parametrize(
    "order",
    [
        ("--resume", "output.dir={run}"),
        ("output.dir={run}", "--resume"),
        ("--resume", "output.dir={run}", "train.progress=false"),
        ("train.progress=false", "--resume", "output.dir={run}", "train.threads=1"),
    ],
)
def test_resume_followed_by_output_dir_takes_it_as_an_override(order, tiny, mnet, tmp_path):
    run = tmp_path / "run"
    tiny.interrupt_at = 4
    with pytest.raises(Interrupted):
        mnet(f"output.dir={run}")
    tiny.interrupt_at = None
    rc, out, err = mnet(*(a.format(run=run) for a in order))
    assert rc == 0, err
    assert f"resumed from {run / 'last.pt'} at epoch 1 batch 0 (step 3)" in err
    assert '"global_step": 6' in out


def test_resume_from_a_checkpoint_into_another_folder(tiny, mnet, tmp_path):
    src, dst, busy = tmp_path / "src", tmp_path / "dst", tmp_path / "busy"
    tiny.interrupt_at = 5
    with pytest.raises(Interrupted):
        mnet(f"output.dir={src}")
    tiny.interrupt_at = None
    kept = snapshot(src)
    rc, _, err = mnet("--resume-from", str(src / "last.pt"), f"output.dir={dst}")
    assert rc == 0, err
    assert snapshot(src) == kept and torch.load(dst / "last.pt", weights_only=True)["global_step"] == 6
    assert [r["step"] for r in metrics(dst)] == [5, 6, 6]  # the continuation's own records
    assert mnet(f"output.dir={busy}", "train.epochs=1")[0] == 0
    rc, _, err = mnet("--resume-from", str(src / "last.pt"), f"output.dir={busy}")
    assert rc == 2 and "already holds a run" in one_error_line(err)
    rc, _, err = mnet(f"output.dir={dst}", str(src / "last.pt"))  # the old `--resume CKPT` spelling
    assert rc == 2 and "--resume-from" in one_error_line(err)
