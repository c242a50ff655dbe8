"""Which weights the demo offers: per task, the registry entries at hand, by backbone size ``"α-ρ"``."""

from __future__ import annotations

from mnet.tasks.face_attributes.pipeline import AGE_GENDER_WEIGHTS, ATTRIBUTE_WEIGHTS, FACE_DETECTORS
from mnet.tasks.registry import task_names

#: tasks whose weights are another task's (the dogs head is the ImageNet classifier's 120 dog rows)
WEIGHTS_TASK = {"dogs": "classification"}
#: tasks that run the faces-in-the-wild pipeline (its networks do not change with the size picked)
FACE_TASKS = ("face_attributes",)


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

    @property
    def tasks(self) -> list[str]:
        return list(self.available)

    def entries(self, task: str) -> list:
        return self.available.get(task, [])

    def sizes(self, task: str = "classification") -> list[str]:
        return sorted({size_label(e) for e in self.entries(task)}, key=lambda s: [-float(v) for v in s.split("-")])

    def __call__(self, task: str, size: str) -> str:
        entries = self.entries(task)
        if not entries:
            raise ValueError(
                f"no weights at hand for task {task!r}: name a folder of original weight files with "
                "--source DIR (or $MNET_WEIGHTS_DIR), or fetch them with `mnet weights fetch NAME`"
            )
        alpha, res = (float(v) for v in size.split("-"))
        best = min(entries, key=lambda e: (abs(e.alpha - alpha), abs(e.resolution - res), e.name))
        return best.name
