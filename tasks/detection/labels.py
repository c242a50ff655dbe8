"""Class names for the detection weights (loaded lazily by the registry's dotted references)."""
from __future__ import annotations

#: COCO's category ids 1..90 in order (the TF OD API label map; "???" marks the 10 ids COCO never used)
COCO90: tuple[str, ...] = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck',
    'boat', 'traffic light', 'fire hydrant', '???', 'stop sign', 'parking meter', 'bench', 'bird',
    'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra',
    'giraffe', '???', 'backpack', 'umbrella', '???', '???', 'handbag', 'tie',
    'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove',
    'skateboard', 'surfboard', 'tennis racket', 'bottle', '???', 'wine glass', 'cup', 'fork',
    'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli',
    'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', '???', 'dining table', '???', '???', 'toilet', '???', 'tv',
    'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster',
    'sink', 'refrigerator', '???', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush',
)
#: face-api.js's detector: class 1 is a face (its third output is unused)
FACES: tuple[str, ...] = ("face", "unused")


def coco90() -> list[str]:
    """Names of classes 1..90 (= COCO category ids) as the official SSD models predict them."""
    return list(COCO90)


def faces() -> list[str]:
    return list(FACES)
