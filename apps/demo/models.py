"""Which weights the demo offers: the registry's entries per task, by backbone size ``"α-ρ"``."""

from __future__ import annotations

#: tasks whose runner reads another task's weights (the dogs head is the ImageNet classifier's dog rows)
WEIGHTS_TASK = {"dogs": "classification"}
#: detection entries that find faces, not COCO objects
FACE_DETECTOR_SUFFIX = "_faces"


def size_label(entry) -> str:
    return f"{entry.alpha}-{entry.resolution}"


class WeightsChooser:
    """Maps (task, size) to an available weights entry; an entry is available when it is cached or
    its original file lies under ``source``. Falls back to the nearest available size."""

    def __init__(self, source: str | None = None) -> None:
        from mnet.weights import list_entries
        from mnet.weights.loader import is_available

        self.available: dict[str, list] = {}
        for entry in list_entries():
            if entry.name.endswith(FACE_DETECTOR_SUFFIX):  # face detectors serve the face pipeline only
                continue
            if is_available(entry, source):
                self.available.setdefault(entry.task, []).append(entry)

    def entries(self, task: str) -> list:
        return self.available.get(WEIGHTS_TASK.get(task, task), [])

    def sizes(self, task: str = "classification") -> list[str]:
        return sorted({size_label(e) for e in self.entries(task)}, key=lambda s: [-float(v) for v in s.split("-")])

    def __call__(self, task: str, size: str) -> str:
        entries = self.entries(task)
        if not entries:
            raise ValueError(
                f"no weights available for task {task!r}: fetch them first "
                f"(`mnet weights list`, `mnet weights fetch NAME --source PATH`)"
            )
        alpha, res = (float(v) for v in size.split("-"))
        best = min(entries, key=lambda e: (abs(e.alpha - alpha), abs(e.resolution - res), e.name))
        return best.name
