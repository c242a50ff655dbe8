"""The one training loop: every task trains through :func:`train`."""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.batches import collate_skip_bad
from ..training import TrainParts
from . import distributed as D
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, save_text, set_rng_state
from .config import dump_config, resolve_config, schema_for
from .data import ResumableSampler, SeededDataset, sample_seed, to_device
from .ema import ModelEMA
from .errors import DISK_FULL, DiskFullError, NonFiniteLossError, ResumeMismatchError, TrainingStopped
from .logger import RunLogger
from .optim import NORM_TYPES, build_optimizer, build_scheduler
from .rundir import CHECKPOINT, CONFIG, METRICS, check_resume_config, clear_run, metrics_up_to, refuse_existing_run

__all__ = ["CHECKPOINT", "NonFiniteLossError", "DiskFullError", "TrainingStopped", "train"]


#: ``train.amp`` → autocast dtype per device type (None = full precision)
AMP_DTYPES: dict[str, dict[str, torch.dtype | None]] = {
    "off": {"cpu": None, "cuda": None},
    "bf16": {"cpu": torch.bfloat16, "cuda": torch.bfloat16},
    "fp16": {"cuda": torch.float16},
    "auto": {"cpu": torch.bfloat16, "cuda": torch.float16},
}


def amp_dtype(mode: str | bool | None, device: torch.device) -> torch.dtype | None:
    mode = {None: "off", False: "off", True: "auto"}.get(mode, mode)  # type: ignore[arg-type]
    if mode not in AMP_DTYPES:
        raise ValueError(f"train.amp: unknown mode {mode!r}; choose from {', '.join(AMP_DTYPES)}")
    if device.type not in AMP_DTYPES[mode]:
        raise ValueError(f"train.amp={mode} is not supported on {device.type}; use bf16 on CPU")
    return AMP_DTYPES[mode][device.type]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_dir_for(cfg: Mapping[str, Any]) -> Path:
    return Path(cfg["output"]["dir"] or Path("runs") / str(cfg["task"]))


class _Freezer:
    """Backbone freezing / BN-statistics freezing per epoch (``train.freeze_backbone``, ``unfreeze_after``)."""

    def __init__(self, backbone: nn.Module | None, model: nn.Module, tcfg: Mapping[str, Any]) -> None:
        self.backbone, self.model = backbone, model
        self.freeze, self.until, self.freeze_bn = tcfg["freeze_backbone"], tcfg["unfreeze_after"], tcfg["freeze_bn"]
        if (self.freeze or self.freeze_bn) and backbone is None:
            raise ValueError("train.freeze_backbone / train.freeze_bn: this task names no backbone module")

    def frozen(self, epoch: int) -> bool:
        return bool(self.freeze) and (self.until is None or epoch < self.until)

    def apply(self, epoch: int) -> bool:
        """Set requires_grad for ``epoch``; True when it changed (DDP must then be rebuilt)."""
        if self.backbone is None:
            return False
        want = not self.frozen(epoch)
        changed = any(p.requires_grad != want for p in self.backbone.parameters())
        for p in self.backbone.parameters():
            p.requires_grad_(want)
        return changed

    def train_mode(self, epoch: int) -> None:
        self.model.train()
        if self.backbone is not None and (self.freeze_bn or self.frozen(epoch)):
            for m in self.backbone.modules():
                if isinstance(m, NORM_TYPES):
                    m.eval()


def train(
    task, cfg: Mapping[str, Any], *, resume: bool | str | Path = False, overwrite: bool = False
) -> dict[str, Any]:
    """Train ``task`` as ``cfg`` says (checked against :data:`tasks.engine.config.ENGINE_SCHEMA` and the
    task's ``config_schema``, defaults filled); return a summary.

    An output folder that holds a run is never written to unless ``resume`` or ``overwrite`` says so.
    ``resume=True`` continues ``<run dir>/last.pt``; a path continues from that checkpoint (into the run
    folder). A resume refuses a config that differs from the checkpoint's in keys that change the
    training. ``overwrite=True`` replaces the run in the folder (removing only the engine's files).
    Raises :class:`TrainingStopped` (NaN loss, full disk) with the last good checkpoint named.
    """
    cfg = resolve_config(cfg, task)
    threads = torch.get_num_threads()
    if cfg["train"]["threads"]:
        torch.set_num_threads(int(cfg["train"]["threads"]))
    device = D.resolve_device(cfg["device"], int(os.environ.get("LOCAL_RANK", "0")))
    info = D.init_distributed(device)
    try:
        return _Run(task, cfg, device, info, resume, overwrite).fit()
    finally:
        D.cleanup(info)
        torch.set_num_threads(threads)


class _Run:
    def __init__(
        self, task, cfg: Mapping[str, Any], device: torch.device, info: D.DistInfo, resume, overwrite: bool
    ) -> None:
        self.cfg, self.device, self.info = cfg, device, info
        self.tcfg, self.seed = cfg["train"], int(cfg["seed"])
        self.run_dir = run_dir_for(cfg)
        #: (path, completed epochs, step) of the newest checkpoint known to be whole on disk
        self.last_good: tuple[Path, int, int] | None = None
        # refusals first: nothing is built or written before the request is known to be sound
        state, in_place = None, False
        if resume:
            ckpt = self.run_dir / CHECKPOINT if resume is True else Path(resume)
            state = load_checkpoint(ckpt)
            in_place = ckpt.resolve() == (self.run_dir / CHECKPOINT).resolve()
            if in_place and overwrite:
                raise ValueError(
                    f"--resume continues the run in {self.run_dir} and --overwrite would replace it: give one"
                )
            check_resume_config(state, cfg, schema_for(task), ckpt, self.run_dir)
            self.last_good = (ckpt, int(state["epoch"]), int(state["global_step"]))
        if not in_place and not overwrite:
            refuse_existing_run(self.run_dir)
        seed_everything(self.seed)
        parts: TrainParts = task.train_parts(cfg)
        self.parts = parts
        model = parts.model.to(device)
        if self.tcfg["sync_bn"] and info.enabled:
            if device.type != "cuda":
                raise ValueError("train.sync_bn needs CUDA: PyTorch's SyncBatchNorm has no CPU kernel")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.channels_last = bool(self.tcfg["channels_last"])
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.backbone = parts.backbone
        self.freezer = _Freezer(self.backbone, model, self.tcfg)
        self.dtype = amp_dtype(self.tcfg["amp"], device)

        bs = int(cfg["data"]["batch_size"])
        self.dataset = SeededDataset(parts.train_set, self.seed)
        self.sampler = ResumableSampler(self.dataset, num_replicas=info.world_size, rank=info.rank, seed=self.seed)
        drop_last = bool(cfg["data"]["drop_last"])
        self.loader = DataLoader(
            self.dataset,
            batch_size=bs,
            sampler=self.sampler,
            drop_last=drop_last,
            num_workers=int(cfg["data"]["num_workers"]),
            collate_fn=collate_skip_bad(parts.collate_fn),
            pin_memory=device.type == "cuda",
        )
        self.batch_size = bs
        full = self.sampler.num_samples // bs if drop_last else math.ceil(self.sampler.num_samples / bs)
        if full == 0:
            raise ValueError(
                f"data.batch_size={bs} is larger than the {self.sampler.num_samples} training samples "
                f"per process (drop_last is on); lower data.batch_size"
            )
        self.accum = max(1, int(self.tcfg["accum_steps"]))
        cap = self.tcfg["max_steps_per_epoch"]
        self.batches_per_epoch = min(full, int(cap) * self.accum) if cap else full
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / self.accum)
        self.epochs = int(self.tcfg["epochs"])

        self.optimizer = build_optimizer(model, cfg["optim"], self.backbone)
        self.scheduler = build_scheduler(
            self.optimizer,
            cfg["schedule"],
            total_steps=self.epochs * self.steps_per_epoch,
            steps_per_epoch=self.steps_per_epoch,
        )
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype is torch.float16)
        ema_decay = self.tcfg["ema"]["decay"]
        self.ema = ModelEMA(model, float(ema_decay), bool(self.tcfg["ema"]["warmup"])) if ema_decay else None
        self.epoch, self.batch_in_epoch, self.global_step = 0, 0, 0
        self.best: float | None = None
        self.skipped = 0
        self.epoch_loss = (0.0, 0)  # running (sum, count) of this epoch's batch losses
        self.ddp: nn.Module = model
        if state is not None:
            self._resume(state, self.last_good[0])  # type: ignore[index]
        if info.is_main:  # the first write: replace the old run, or drop the log lines a resume repeats
            with self._writing(self.run_dir):
                if overwrite and not in_place:
                    clear_run(self.run_dir)
                self.run_dir.mkdir(parents=True, exist_ok=True)
                kept = metrics_up_to(self.run_dir / METRICS, self.global_step) if in_place else None
            if kept is not None:
                with self._writing(self.run_dir / METRICS):
                    save_text(self.run_dir / METRICS, kept)
            with self._writing(self.run_dir / CONFIG):
                dump_config(cfg, self.run_dir / CONFIG)
        self.logger = RunLogger(self.run_dir, enabled=info.is_main)

    # -- state ---------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "best": self.best,
            "skipped": self.skipped,
            "epoch_loss": list(self.epoch_loss),
            "rng": rng_state(),
            "config": dict(self.cfg),
            "steps_per_epoch": self.steps_per_epoch,
            "num_samples": len(self.dataset),
        }

    def _resume(self, state: Mapping[str, Any], path: Path) -> None:
        for key, what, now in (
            ("num_samples", "training samples", len(self.dataset)),
            ("steps_per_epoch", "steps per epoch", self.steps_per_epoch),
        ):
            then = state.get(key)
            if then is not None and int(then) != now:
                raise ResumeMismatchError(
                    f"cannot resume {path}: the run had {then} {what}, the data gives {now} now (the training "
                    f"set changed); start a new run with --overwrite or output.dir=NEW"
                )
        self.model.load_state_dict(state["model"])
        self.epoch, self.batch_in_epoch = int(state["epoch"]), int(state["batch_in_epoch"])
        # requires_grad must match the checkpointed phase before the optimizer state is loaded
        self.freezer.apply(self.epoch)
        self.optimizer.load_state_dict(state["optimizer"])
        self._load_schedule(state["scheduler"], int(state["config"]["train"]["epochs"]) if "config" in state else None)
        self.scaler.load_state_dict(state["scaler"])
        if self.ema and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        self.global_step, self.best, self.skipped = int(state["global_step"]), state["best"], int(state["skipped"])
        self.epoch_loss = (float(state["epoch_loss"][0]), int(state["epoch_loss"][1]))
        set_rng_state(state["rng"])
        print(
            f"resumed from {path} at epoch {self.epoch} batch {self.batch_in_epoch} (step {self.global_step})",
            file=sys.stderr,
        )

    def _load_schedule(self, sched_state: Mapping[str, Any], epochs_then: int | None) -> None:
        """The scheduler's position from the checkpoint, its shape from today's config: with
        ``train.epochs`` changed the schedule spans the new length from the step reached."""
        sched_state = {**sched_state, "lr_lambdas": [None] * len(self.scheduler.lr_lambdas)}
        self.scheduler.load_state_dict(sched_state)  # keeps the freshly built WarmupSchedule
        t = self.scheduler.last_epoch
        before = [g["lr"] for g in self.optimizer.param_groups]
        lrs = [base * fn(t) for base, fn in zip(self.scheduler.base_lrs, self.scheduler.lr_lambdas)]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self.scheduler._last_lr = lrs  # what get_last_lr() reports
        if epochs_then is not None and epochs_then != self.epochs and self.info.is_main:
            print(
                f"train.epochs {epochs_then} → {self.epochs}: the learning-rate schedule now spans {self.epochs} "
                f"epochs; at step {t} the learning rate goes from {before[0]:.4g} to {lrs[0]:.4g}",
                file=sys.stderr,
            )

    @contextlib.contextmanager
    def _writing(self, path: Path):
        """A failed write of ``path`` (a full disk: ENOSPC, EDQUOT; or any other OSError) stops the run with
        one message naming the file and the last good checkpoint."""
        try:
            yield
        except OSError as e:
            if e.errno in DISK_FULL:
                then = "continue with --resume" if self.last_good else "start again with --overwrite"
                raise DiskFullError(
                    f"no space left on the device writing {path} ({e.strerror or e}); stopping — {self._kept()}. "
                    f"Free some space, then {then}"
                ) from None
            raise TrainingStopped(f"could not write {path} ({e.strerror or e}); stopping — {self._kept()}") from None

    def _kept(self) -> str:
        if self.last_good is None:
            return "no checkpoint was written yet"
        path, epochs, step = self.last_good
        return f"the last good checkpoint {path} (step {step}, {epochs} epoch(s) done) is intact"

    def _save(self) -> None:
        if self.info.is_main:
            path = self.run_dir / CHECKPOINT
            with self._writing(path):
                save_checkpoint(self._state(), path)
            self.last_good = (path, self.epoch, self.global_step)
        D.barrier(self.info)

    def _log(self, kind: str, values: Mapping[str, Any]) -> None:
        with self._writing(self.logger.path):
            self.logger.log(kind, self.global_step, values)

    def _export(self, name: str, metrics: Mapping[str, Any]) -> None:
        if not (self.info.is_main and self.cfg["output"]["export"]):
            return
        from mnet.weights import save_weights  # the suite's weights format: loads with `mnet eval --weights FILE`

        src = self.ema.module if self.ema else self.model
        meta = {
            **self.parts.export_metadata,
            "task": self.cfg["task"],
            "entry": f"{self.run_dir}/{name}",
            "epoch": self.epoch,
            "metrics": dict(metrics),
        }
        sd = {k: v.detach().cpu() for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
        path = self.run_dir / f"{name}.safetensors"
        with self._writing(path):
            save_weights(path, sd, meta)

    def _wrap(self) -> None:
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DDP(self.model, device_ids=ids)

    # -- loop ----------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        try:
            return self._fit()
        finally:
            self.logger.close()

    def _fit(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if self.epoch >= self.epochs and self.info.is_main:
            print(
                f"nothing to train: the run in {self.run_dir} has finished its {self.epochs} epoch(s) "
                f"(raise train.epochs to train longer)",
                file=sys.stderr,
            )
        self.freezer.apply(self.epoch)
        self._wrap()
        while self.epoch < self.epochs:
            if self.freezer.apply(self.epoch):
                self._wrap()
            self.freezer.train_mode(self.epoch)
            train_loss = self._train_epoch()
            metrics = {"train_loss": train_loss}
            if self.parts.evaluate and (
                (self.epoch + 1) % int(self.tcfg["eval_every"]) == 0 or self.epoch + 1 == self.epochs
            ):
                if self.info.is_main:  # numbers only: they go to logs, the best-checkpoint choice and exports
                    ev = self.parts.evaluate(self.ema.module if self.ema else self.model)
                    metrics.update(
                        {k: v for k, v in ev.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                    )
                D.barrier(self.info)
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            is_best = False
            key = self.parts.metric
            if key and key in metrics and (self.best is None or metrics[key] > self.best):
                self.best, is_best = float(metrics[key]), True
            # log lines and exports first, the checkpoint last: every record of a step up to the newest
            # checkpoint is on disk before it, so a resume drops exactly the records it will write again
            self._log("epoch", {"epoch": self.epoch, **metrics, "skipped_images": self.skipped})
            self._export("last", metrics)
            if is_best:
                self._export("best", metrics)
            self._save()
            if self.info.is_main:
                shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
                print(f"epoch {self.epoch}/{self.epochs}: {shown}", file=sys.stderr)
        return {
            "rank": self.info.rank,
            "run_dir": str(self.run_dir),
            "epochs": self.epoch,
            "global_step": self.global_step,
            "best": self.best,
            "metric": self.parts.metric,
            "last": metrics,
            "skipped_images": self.skipped,
        }

    def _train_epoch(self) -> float:
        self.sampler.set_epoch(self.epoch, skip=self.batch_in_epoch * self.batch_size)
        self.dataset.set_epoch(self.epoch)
        bar = tqdm(
            total=self.batches_per_epoch,
            initial=self.batch_in_epoch,
            unit="batch",
            file=sys.stderr,
            desc=f"epoch {self.epoch + 1}/{self.epochs}",
            dynamic_ncols=True,
            disable=not (self.info.is_main and self.tcfg["progress"]),
        )
        (loss_sum, loss_n), seen, t0 = self.epoch_loss, 0, time.perf_counter()
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype else contextlib.nullcontext()
        for batch, n_bad in self.loader:
            if self.batch_in_epoch >= self.batches_per_epoch:
                break
            self.skipped += n_bad
            micro = self.batch_in_epoch % self.accum
            group = min(self.accum, self.batches_per_epoch - (self.batch_in_epoch - micro))
            last_micro = micro == group - 1
            if micro == 0:  # model randomness (dropout) depends only on the step: exact resume
                torch.manual_seed(sample_seed(self.seed, self.global_step, self.info.rank, 1))
            loss = self._forward_backward(batch, autocast, group, last_micro) if batch is not None else None
            self.batch_in_epoch += 1
            if loss is not None:
                loss_sum, loss_n = loss_sum + loss, loss_n + 1
                self.epoch_loss = (loss_sum, loss_n)
                seen += _batch_len(batch[0])
            if last_micro:
                self._step()
            dt = time.perf_counter() - t0
            ips = seen * self.info.world_size / dt if dt > 0 else 0.0
            lr = self.optimizer.param_groups[0]["lr"]
            bar.set_postfix(loss=f"{loss_sum / max(1, loss_n):.4f}", lr=f"{lr:.3g}", img_s=f"{ips:.1f}")
            bar.update(1)
            if last_micro:  # the step's log line before its checkpoint (see fit)
                if self.global_step % int(self.tcfg["log_every"]) == 0:
                    values = {"epoch": self.epoch, "loss": loss_sum / max(1, loss_n), "lr": lr, "images_per_s": ips}
                    self._log("train", values)
                self._maybe_mid_epoch_checkpoint()
                self._maybe_kill()
        bar.close()
        self.epoch_loss = (0.0, 0)
        return D.all_reduce_mean(loss_sum / max(1, loss_n), self.info, self.device)

    def _forward_backward(self, batch, autocast, group: int, last_micro: bool) -> float:
        inputs, targets = to_device(batch, self.device, self.channels_last)
        with autocast:
            loss = self.parts.loss_fn(self.ddp(inputs), targets)
        bad = not bool(torch.isfinite(loss.detach()).all())
        if D.broadcast_any(bad, self.info, self.device):
            kept = self._kept()
            raise NonFiniteLossError(
                f"loss is {loss.item()} at epoch {self.epoch + 1}, step {self.global_step} (batch {self.batch_in_epoch} "
                f"of the epoch); stopping — {kept}. Lower optim.lr, add schedule.warmup_epochs or train.grad_clip, "
                f"or turn off train.amp"
            )
        sync = contextlib.nullcontext() if (last_micro or not self.info.enabled) else self.ddp.no_sync()
        with sync:
            self.scaler.scale(loss / group).backward()
        return float(loss.detach())

    def _step(self) -> None:
        if self.tcfg["grad_clip"]:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.grad is not None], float(self.tcfg["grad_clip"])
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema:
            self.ema.update(self.model)
        self.global_step += 1

    def _maybe_mid_epoch_checkpoint(self) -> None:
        every = self.tcfg["checkpoint_every_steps"]
        if every and self.global_step % int(every) == 0 and self.batch_in_epoch < self.batches_per_epoch:
            self._save()

    def _maybe_kill(self) -> None:
        at = self.cfg["debug"]["kill_at_step"]
        if at is not None and self.global_step == int(at):
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def _batch_len(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return int(x.shape[0])
    return len(x) if hasattr(x, "__len__") else 0
