"""Per-run metrics: one JSON object per line in ``metrics.jsonl``; TensorBoard too when importable."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class RunLogger:
    def __init__(self, run_dir: str | Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.tb = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the optional tensorboard package

                self.tb = SummaryWriter(str(Path(run_dir) / "tb"))
            except ImportError:
                self.tb = None

    def log(self, kind: str, step: int, values: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        rec = {"type": kind, "step": step, "time": round(time.time(), 3), **values}
        with self.path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
