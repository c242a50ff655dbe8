"""Which weights the demo offers: per task, the registry entries at hand, by backbone size ``"α-ρ"``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnet.tasks.face_attributes.pipeline import AGE_GENDER_WEIGHTS, ATTRIBUTE_WEIGHTS, FACE_DETECTORS
from mnet.tasks.registry import task_names
from mnet.tasks.runtime.load import FACE_TASKS  # (its networks do not change with the size picked)

#: tasks whose weights are another task's (the dogs head is the ImageNet classifier's 120 dog rows)
WEIGHTS_TASK = {"dogs": "classification"}


def size_label(entry) -> str:
    return f"{entry.alpha}-{entry.resolution}"


class WeightsChooser:
    """Maps (task, size) to an available weights entry; an entry is available when it is cached or its
    original file lies in a folder of originals (``$MNET_WEIGHTS_DIR``, ``--source``) — or, with
    ``fetch=True``, always (downloaded on first use). Falls back to the nearest available size."""

    def __init__(self, *, fetch: bool = False) -> None:
        from mnet.weights import get_entry, list_entries
        from mnet.weights.loader import is_available

        def ok(entry) -> bool:
            return fetch or is_available(entry)

        def ok_name(name: str) -> bool:
            try:
                return ok(get_entry(name))
            except (KeyError, ValueError):  # not registered here
                return False

        self.available: dict[str, list] = {}
        for task in task_names():
            if task in FACE_TASKS:
                names = (FACE_DETECTORS["ssd"], AGE_GENDER_WEIGHTS, ATTRIBUTE_WEIGHTS)
                if all(ok_name(n) for n in names):
                    self.available[task] = [get_entry(ATTRIBUTE_WEIGHTS)]
                continue
            wtask = WEIGHTS_TASK.get(task, task)
            entries = [e for e in list_entries(wtask) if e.task == wtask and ok(e) and not e.name.endswith("_faces")]
            if entries:
                self.available[task] = entries

        self.own: dict[str, OwnModel] = {}

    def add(self, model: OwnModel) -> str:
        """Offer ``model`` in the picker (whatever size is chosen); returns its picker name."""
        self.own[model.choice] = model
        return model.choice

    def task_of(self, choice: str) -> str:
        """The task a picker entry runs (an own model's task, else the entry itself)."""
        return self.own[choice].task if choice in self.own else choice

    @property
    def tasks(self) -> list[str]:
        return list(self.available) + list(self.own)

    def entries(self, task: str) -> list:
        return self.available.get(task, [])

    def sizes(self, task: str = "classification") -> list[str]:
        return sorted({size_label(e) for e in self.entries(task)}, key=lambda s: [-float(v) for v in s.split("-")])

    def __call__(self, task: str, size: str) -> str:
        if task in self.own:
            return self.own[task].weights
        entries = self.entries(task)
        if not entries:
            raise ValueError(
                f"no weights at hand for task {task!r}: name a folder of original weight files with "
                "--source DIR (or $MNET_WEIGHTS_DIR), or fetch them with `mnet weights fetch NAME`"
            )
        alpha, res = (float(v) for v in size.split("-"))
        best = min(entries, key=lambda e: (abs(e.alpha - alpha), abs(e.resolution - res), e.name))
        return best.name


@dataclass(frozen=True)
class OwnModel:
    """A model the user brings (``mnet demo --model PATH``): shown in the task picker as :attr:`choice`."""

    task: str
    weights: str  # a suite .safetensors file or an exported .onnx
    alpha: float | None
    resolution: int
    labels: int | None

    @property
    def choice(self) -> str:
        """The picker's name for it: task, file and α-ρ (``classification: best (0.25-128)``)."""
        size = f"{self.alpha:g}-{self.resolution}" if self.alpha is not None else str(self.resolution)
        return f"{self.task}: {Path(self.weights).parent.name}/{Path(self.weights).stem} ({size})"


#: a training run folder's weights files, preferred first
RUN_WEIGHTS = ("best.safetensors", "last.safetensors")


def own_model(path: str | Path) -> OwnModel:
    """A training run folder (its best, else last ``.safetensors``), a suite weights file or an exported
    ``.onnx`` → its task, α, ρ and label count, read from the file's own metadata."""
    from mnet.tasks.runtime.load import weights_task

    p = Path(path)
    if p.is_dir():
        file = next((p / n for n in RUN_WEIGHTS if (p / n).is_file()), None)
        if file is None:
            raise FileNotFoundError(f"{p}: a run folder without {' or '.join(RUN_WEIGHTS)}")
        p = file
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such model file or run folder")
    if p.suffix == ".onnx":
        from mnet.tasks.runtime.onnx import OrtSession, read_export_metadata

        m = read_export_metadata(OrtSession(p).metadata, str(p))
        kwargs, pre, labels = m.model_kwargs, m.preprocess, m.labels
    elif p.suffix == ".safetensors":
        from mnet.weights.store import read_meta

        meta = read_meta(p)
        kwargs, pre, labels = meta.get("model_kwargs") or {}, meta.get("preprocess") or {}, meta.get("labels")
    else:
        raise ValueError(f"{p}: give a training run folder, a .safetensors weights file or an exported .onnx")
    task = weights_task(str(p))
    res = int(pre.get("resolution") or kwargs.get("resolution") or 0)
    alpha = kwargs.get("alpha")
    return OwnModel(task, str(p), None if alpha is None else float(alpha), res, len(labels) if labels else None)
