"""The early-stopping greedy NMS keeps exactly what torchvision's NMS keeps first."""

import pytest
import torch
from torchvision.ops import batched_nms, nms

from mnet.tasks.detection.postprocess import EARLY_STOP_MAX_KEEP, batched_greedy_nms, greedy_nms


def _boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 0.8
    wh = torch.rand(n, 2, generator=g) * 0.3 + 0.01
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g), torch.randint(0, 5, (n,), generator=g)


@pytest.mark.parametrize("n", [0, 1, 7, 500, 1917])
@pytest.mark.parametrize("max_keep", [1, 10, EARLY_STOP_MAX_KEEP, 100])
@pytest.mark.parametrize("iou", [0.0, 0.45, 0.6, 1.0])
def test_greedy_nms_is_the_prefix_of_full_nms(n, max_keep, iou):
    boxes, scores, labels = _boxes(n, seed=n + max_keep)
    assert greedy_nms(boxes, scores, iou, max_keep).tolist() == nms(boxes, scores, iou)[:max_keep].tolist()
    assert (
        batched_greedy_nms(boxes, scores, labels, iou, max_keep).tolist()
        == batched_nms(boxes, scores, labels, iou)[:max_keep].tolist()
    )
