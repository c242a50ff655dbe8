"""COCO bbox mAP with pycocotools' COCOeval: AP, AP50, AP75, APs/m/l, AR100, and the results JSON."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..results import Box

#: names of COCOeval's 12 summary numbers, in its order
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def to_coco_results(image_id: int, boxes: Sequence[Box], category_ids: Sequence[int]) -> list[dict[str, Any]]:
    """One image's :class:`~mnet.tasks.results.Box` es (xyxy pixels of the original image, 1-based class
    ``index``) → COCO results rows."""
    rows = []
    for b in boxes:
        x1, y1, x2, y2 = b.box
        rows.append(
            {
                "image_id": int(image_id),
                "category_id": int(category_ids[b.index - 1]),
                "bbox": [round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2), round(float(y2 - y1), 2)],
                "score": round(float(b.score), 5),
            }
        )
    return rows


def coco_eval(
    coco_gt, results: list[dict[str, Any]], image_ids: Iterable[int] | None = None, verbose: bool = False
) -> dict[str, float]:
    """Run COCOeval (bbox) on ``results`` against the ground truth; returns the summary numbers and ``n``
    (images evaluated). With no detections at all every AP is 0."""
    from pycocotools.cocoeval import COCOeval

    ids = sorted(image_ids) if image_ids is not None else sorted(coco_gt.getImgIds())
    if not results:
        out = {k: 0.0 for k in STAT_NAMES}
    else:
        sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
        with sink:
            dt = coco_gt.loadRes(results)
            ev = COCOeval(coco_gt, dt, "bbox")
            ev.params.imgIds = ids
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out = {k: float(v) for k, v in zip(STAT_NAMES, ev.stats)}
    out["n"] = len(ids)
    return out


def write_results(results: list[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))
    return path
