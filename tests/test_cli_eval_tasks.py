"""`mnet eval TASK` runs each task through the same command (small slices of the real data)."""
from __future__ import annotations

import json

from apps.cli import main


def test_eval_detection_through_the_cli(shared, capsys):
    code = main(["eval", "detection", "--weights", "ssd_mobilenet_v1_0.75_300.tflite_coco_quant",
                 "--data", str(shared("data", "coco")), "--split", "val2017", "--limit", "8",
                 "--source", str(shared("weights", "tf_od_api")), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)
    assert report["n"] == 8 and 0 < report["AP"] <= 1 and report["runtime"] == "torch"


def test_eval_detection_refuses_onnxruntime(shared, capsys):
    code = main(["eval", "detection", "--weights", "ssd_mobilenet_v1_0.75_300.tflite_coco_quant",
                 "--data", str(shared("data", "coco")), "--runtime", "onnxruntime",
                 "--source", str(shared("weights", "tf_od_api"))])
    assert code == 2 and "PyTorch only" in capsys.readouterr().err
