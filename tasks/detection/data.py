"""COCO-format detection data in the official layout: ``<root>/<split>/`` images and
``<root>/annotations/instances_<split>.json`` (parsed, checked, then indexed with pycocotools).

Any COCO-format dataset works with its own categories: class ``i + 1`` is the i-th category id (sorted),
so COCO's 80 categories become contiguous labels 1..80 (0 is background), and ``category_ids`` maps them
back to COCO's 90-id space.

What :func:`load_coco` does with each kind of bad input (every error is a ValueError naming the annotation
file, the annotation or image id and the field):

- refused: a file that is not JSON, a missing or ill-typed required field (annotation ``id``, ``image_id``, ``category_id``,
  ``bbox``; image ``id``, ``file_name``, ``width``, ``height``; category ``id``, ``name``), a duplicate id,
  an ``image_id`` or ``category_id`` the file does not define, a ``bbox`` that is not four finite numbers
  or has a negative width or height, an ``iscrowd`` other than 0/1, a negative or non-finite ``area``;
- dropped with a warning (as torchvision's and Detectron2's COCO readers drop them), and counted in
  :attr:`CocoDetection.stats` as ``invalid_dropped``: boxes with zero width or height and boxes with no
  area inside their image. They are removed from the index that COCOeval scores against too, so the AP
  counts the boxes training sees;
- repaired: a missing ``area`` becomes width × height (what pycocotools does for results); boxes partly
  outside their image are clipped to it in the training targets (counted as ``clipped``; COCOeval keeps
  the file's box). Crowd boxes are left out of the targets (``crowd_ignored``) and kept for COCOeval,
  which ignores detections on them.

Images listed in the file but missing on disk are refused by :class:`CocoDetection` (or dropped with
``skip_missing``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.images import load_rgb

#: boxes thinner than this (pixels) after clipping to their image have no area
MIN_BOX_SIDE = 1e-3


def annotation_file(root: str | Path, split: str) -> Path:
    return Path(root) / "annotations" / f"instances_{split}.json"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def clip_box(bbox: Sequence[float], width: float, height: float) -> tuple[float, float, float, float] | None:
    """COCO [x, y, w, h] → xyxy clipped to a ``width`` × ``height`` image; None when no area is left."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    if x2 - x1 < MIN_BOX_SIDE or y2 - y1 < MIN_BOX_SIDE:
        return None
    return x1, y1, x2, y2


def _records(doc: dict, key: str, path: Path) -> list[dict]:
    items = doc.get(key)
    if not isinstance(items, list):
        raise ValueError(f"{path}: field {key!r} must be a list, got {type(items).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: {key}[{i}] must be an object, got {type(item).__name__}")
    return items


def _unique_ids(items: list[dict], kind: str, path: Path) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for i, item in enumerate(items):
        if not _is_int(item.get("id")):
            raise ValueError(f"{path}: {kind}[{i}]: field 'id' must be an integer, got {item.get('id')!r}")
        if item["id"] in out:
            raise ValueError(f"{path}: {kind} id {item['id']} appears twice")
        out[item["id"]] = item
    return out


def _check_image(img: dict, path: Path) -> None:
    where = f"{path}: image id {img['id']}"
    name = img.get("file_name")
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"{where}: field 'file_name' must be a relative path inside the split folder, got {name!r}")
    for key in ("width", "height"):
        v = img.get(key)
        if not _is_number(v) or v <= 0 or float(v) != int(v):
            raise ValueError(f"{where}: field {key!r} must be a positive integer, got {v!r}")


def _check_annotation(ann: dict, images: dict[int, dict], cats: dict[int, dict], path: Path) -> bool:
    """Raise on a malformed annotation; False when its box has no area inside its image (to drop)."""
    aid = ann.get("id")
    where = f"{path}: annotation id {aid}"
    iid = ann.get("image_id")
    if not _is_int(iid) or iid not in images:
        raise ValueError(f"{where}: field 'image_id' {iid!r} is not an image id of the file")
    cat = ann.get("category_id")
    if not _is_int(cat) or cat not in cats:
        known = sorted(cats)
        raise ValueError(
            f"{where}: unknown category_id {cat!r} (image id {iid}; the file's categories: "
            f"{known[:10]}{'…' if len(known) > 10 else ''})"
        )
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise ValueError(f"{where}: bbox must be [x, y, width, height], got {bbox!r} (image id {iid})")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
        raise ValueError(f"{where}: bbox has non-numeric values {bbox!r} (image id {iid})")
    if not all(math.isfinite(v) for v in bbox):
        raise ValueError(f"{where}: bbox has non-finite values {bbox!r} (image id {iid})")
    for name, v in zip(("width", "height"), bbox[2:]):
        if v < 0:
            raise ValueError(f"{where}: bbox {name} {v} is negative in {bbox!r} (image id {iid})")
    crowd = ann.get("iscrowd", 0)
    if crowd not in (0, 1):
        raise ValueError(f"{where}: field 'iscrowd' must be 0 or 1, got {crowd!r} (image id {iid})")
    if "area" not in ann:
        ann["area"] = float(bbox[2]) * float(bbox[3])
    elif not _is_number(ann["area"]) or ann["area"] < 0:
        raise ValueError(f"{where}: field 'area' must be a finite number >= 0, got {ann['area']!r} (image id {iid})")
    img = images[iid]
    return clip_box(bbox, float(img["width"]), float(img["height"])) is not None


def check_coco(doc: Any, path: str | Path, stats: Counter | None = None) -> dict:
    """Validate a parsed annotation file (see the module docstring for what is refused, dropped and repaired);
    returns the document without the dropped annotations."""
    path = Path(path)
    stats = stats if stats is not None else Counter()
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a COCO annotation file is a JSON object, got {type(doc).__name__}")
    cats = _unique_ids(_records(doc, "categories", path), "category", path)
    for c in cats.values():
        if not isinstance(c.get("name"), str):
            raise ValueError(f"{path}: category id {c['id']}: field 'name' must be a string, got {c.get('name')!r}")
    images = _unique_ids(_records(doc, "images", path), "image", path)
    for img in images.values():
        _check_image(img, path)
    anns = _records(doc, "annotations", path)
    _unique_ids(anns, "annotation", path)
    kept, dropped = [], []
    for ann in anns:
        (kept if _check_annotation(ann, images, cats, path) else dropped).append(ann)
    if dropped:
        stats["invalid_dropped"] += len(dropped)
        ids = ", ".join(f"{a['id']} (image id {a['image_id']}, bbox {a['bbox']})" for a in dropped[:5])
        warnings.warn(
            f"{path}: dropped {len(dropped)} annotation(s) whose box has no area inside its image "
            f"(zero width or height, or wholly outside): annotation id {ids}{' …' if len(dropped) > 5 else ''}",
            stacklevel=3,
        )
    return {**doc, "annotations": kept}


def load_coco(path: str | Path, stats: Counter | None = None):
    """Parse and check an annotation file (:func:`check_coco`) and index it with pycocotools' ``COCO``;
    errors name the file. ``stats`` counts what was dropped."""
    from pycocotools.coco import COCO

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"COCO annotation file not found: {path} "
            f"(expected the official layout <root>/annotations/instances_<split>.json)"
        )
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a valid COCO annotation file (not JSON: {e})") from e
    coco = COCO()
    coco.dataset = check_coco(doc, path, stats)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def clean_boxes(
    anns: Sequence[dict],
    width: int,
    height: int,
    label_of: dict[int, int],
    stats: Counter,
    source: str | Path = "annotations",
) -> tuple[np.ndarray, np.ndarray]:
    """Checked COCO annotations (:func:`check_coco`) → (K, 4) xyxy boxes clipped to the image and (K,) labels
    in ``label_of``'s label space, crowd skipped. A category outside that label space (e.g. a model's) is
    refused naming ``source`` and the annotation."""
    boxes, labels = [], []
    for a in anns:
        if a.get("iscrowd", 0):
            stats["crowd_ignored"] += 1
            continue
        cat = a["category_id"]
        if cat not in label_of:
            raise ValueError(
                f"{source}: annotation id {a.get('id', '?')}: unknown category_id {cat!r} for this label space "
                f"(known: {sorted(label_of)[:10]}{'…' if len(label_of) > 10 else ''})"
            )
        box = clip_box(a["bbox"], width, height)
        if box is None:
            stats["invalid_dropped"] += 1
            continue
        x, y, w, h = (float(v) for v in a["bbox"])
        if box != (x, y, x + w, y + h):
            stats["clipped"] += 1
        boxes.append(box)
        labels.append(label_of[cat])
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(labels, dtype=np.int64))


class CocoDetection(Dataset):
    """One split of a COCO-format dataset. Items: ``(image, target)`` where ``image`` is an RGB uint8
    array (H, W, 3) — or whatever ``transform`` makes of it — and ``target`` holds ``boxes`` (K, 4)
    float32 xyxy pixels, ``labels`` (K,) int64 in 1..num_classes, ``image_id`` and ``orig_size`` (H, W).

    ``transform(image, boxes, labels) -> (image, boxes, labels)`` runs on numpy arrays.
    ``category_ids`` fixes the label space (e.g. a model's); by default the file's categories, sorted.
    Images listed in the file but missing on disk raise FileNotFoundError naming them, unless
    ``skip_missing`` (then they are dropped and counted).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "val2017",
        *,
        transform: Callable | None = None,
        category_ids: Sequence[int] | None = None,
        skip_missing: bool = False,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.image_dir = self.root / split
        self.ann_file = annotation_file(root, split)
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.image_dir} (expected <root>/{split}/)")
        self.stats: Counter = Counter()
        self.coco = load_coco(self.ann_file, self.stats)
        file_cats = sorted(self.coco.getCatIds())
        self.category_ids = list(category_ids) if category_ids is not None else file_cats
        self.label_of = {c: i + 1 for i, c in enumerate(self.category_ids)}
        cats = self.coco.cats
        self.class_names = [cats[c]["name"] if c in cats else str(c) for c in self.category_ids]
        self.transform = transform
        ids, missing = [], []
        for img_id in sorted(self.coco.getImgIds()):
            info = self.coco.imgs[img_id]
            if not (self.image_dir / info["file_name"]).is_file():
                missing.append(f"{info['file_name']} (image id {img_id})")
                continue
            ids.append(img_id)
        if missing:
            if not skip_missing:
                raise FileNotFoundError(
                    f"{len(missing)} image(s) listed in {self.ann_file} are missing from "
                    f"{self.image_dir}: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}"
                )
            self.stats["missing_images_skipped"] = len(missing)
            warnings.warn(
                f"skipping {len(missing)} image(s) listed in {self.ann_file} but missing from {self.image_dir}: "
                f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}",
                stacklevel=2,
            )
        self.ids = ids
        # validate every annotation up front, so a bad file fails before training starts
        for img_id in self.ids:
            _, labels = self._annotations(img_id, self.stats)
            self.stats["empty_images"] += int(len(labels) == 0)

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    def _annotations(self, img_id: int, stats: Counter) -> tuple[np.ndarray, np.ndarray]:
        info = self.coco.imgs[img_id]
        anns = self.coco.imgToAnns.get(img_id, [])
        return clean_boxes(anns, int(info["width"]), int(info["height"]), self.label_of, stats, self.ann_file)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        img_id = self.ids[index]
        info = self.coco.imgs[img_id]
        image = np.asarray(load_rgb(self.image_dir / info["file_name"]))
        boxes, labels = self._annotations(img_id, Counter())
        orig_size = image.shape[:2]
        if self.transform is not None:
            image, boxes, labels = self.transform(image, boxes, labels)
        target = {
            "boxes": torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)),
            "labels": torch.as_tensor(np.asarray(labels, dtype=np.int64)),
            "image_id": img_id,
            "orig_size": tuple(int(s) for s in orig_size),
        }
        return image, target


def collate(batch: Sequence[tuple[Any, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """Stack equally sized image tensors; keep targets as a list (their box counts differ)."""
    images, targets = zip(*batch)
    return torch.stack(list(images)), list(targets)


def collate_targets(batch: Sequence[tuple[Any, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """For training: images stacked, targets reduced to their tensors (``boxes``, ``labels``)."""
    images, targets = collate(batch)
    return images, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
