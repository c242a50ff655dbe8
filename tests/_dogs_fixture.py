"""A tiny synthetic Stanford Dogs tree in the official layout (random images, real breed folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from mnet.tasks.dogs.data import breeds


def write_list(root: Path, split: str, files: list[str], labels: list[int]) -> None:
    cells = np.empty((len(files), 1), dtype=object)
    annos = np.empty((len(files), 1), dtype=object)
    for i, f in enumerate(files):
        cells[i, 0] = f
        annos[i, 0] = f.rsplit(".", 1)[0]
    (root / "lists").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
        str(root / "lists" / f"{split}_list.mat"),
        {"file_list": cells, "annotation_list": annos, "labels": np.asarray(labels, dtype=np.uint8)[:, None]},
    )


def make_fake_dogs(
    root: Path, *, n_breeds: int = 4, per_breed: dict[str, int] | None = None, size: int = 72, seed: int = 0
) -> Path:
    """``per_breed`` = images per breed for each split (default train 6, test 2)."""
    per_breed = per_breed or {"train": 6, "test": 2}
    rng = np.random.default_rng(seed)
    table = breeds()
    for split, n in per_breed.items():
        files, labels = [], []
        for b in range(n_breeds):
            folder = f"{table[b].wnid}-{table[b].name}"
            (root / "Images" / folder).mkdir(parents=True, exist_ok=True)
            for j in range(n):
                name = f"{folder}/{table[b].wnid}_{split}{j}.jpg"
                # a class-dependent colour so a model can learn something
                base = np.array([40 + 50 * b, 200 - 40 * b, 90], dtype=np.float64)
                arr = np.clip(base + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(root / "Images" / name, quality=90)
                files.append(name)
                labels.append(b + 1)
        write_list(root, split, files, labels)
    return root
