"""`mnet eval TASK` runs each task through the same command (small slices of the real data)."""

from __future__ import annotations

import json

from mnet.apps.cli import main


def test_eval_detection_onnxruntime_matches_torch(shared, capsys):
    """SSD's network in ONNX Runtime, NMS after it: the same COCO AP as the PyTorch model."""
    reports = {}
    for runtime in ("torch", "onnxruntime"):
        code = main(
            [
                "eval",
                "detection",
                "--weights",
                "ssd_mobilenet_v1_0.75_300.tflite_coco_quant",
                "--data",
                str(shared("data", "coco")),
                "--split",
                "val2017",
                "--limit",
                "8",
                "--runtime",
                runtime,
                "--source",
                str(shared("weights", "tf_od_api")),
                "--format",
                "json",
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        reports[runtime] = json.loads(out)
    torch_r, ort_r = reports["torch"], reports["onnxruntime"]
    assert torch_r["runtime"].startswith("torch") and ort_r["runtime"].startswith("onnxruntime")
    assert torch_r["n"] == ort_r["n"] == 8 and 0 < torch_r["AP"] <= 1
    assert abs(torch_r["AP"] - ort_r["AP"]) < 0.005 and abs(torch_r["AP50"] - ort_r["AP50"]) < 0.005
    assert abs(torch_r["detections"] - ort_r["detections"]) <= 2
