"""Training through the engine (``mnet train detection``) and the slow full-size checks."""

from __future__ import annotations

import pytest
from _train_fixtures import coco

from mnet.tasks import get_task
from mnet.tasks.engine import load_config, train


def test_engine_trains_a_custom_dataset_and_exports(tmp_path):
    root = coco(tmp_path / "data")
    cfg = load_config(
        "tasks/detection/configs/custom_dataset.yaml",
        [
            f"data.root={root}",
            "data.val_split=null",
            "data.batch_size=2",
            "model.alpha=0.25",
            "model.resolution=96",
            "model.backbone_weights=null",
            "train.epochs=1",
            "train.progress=false",
            f"output.dir={tmp_path / 'run'}",
        ],
    )
    summary = train(get_task("detection"), cfg)
    assert summary["global_step"] == 2 and summary["last"]["train_loss"] > 0
    from mnet.weights import load_weights

    w = load_weights(tmp_path / "run" / "last.safetensors")  # the suite's weights format, as `mnet eval` reads it
    model = get_task("detection").build_model(**w.model_kwargs)
    model.load_state_dict(w.state_dict)
    assert model.config.num_classes == 2 and model.config.category_ids == (5, 6)
    assert model.config.loss.classification == "focal" and w.preprocess.resolution == 96
    assert w.labels == ["a", "b"]


@pytest.mark.slow
def test_official_tflite_ssd_ap_matches_tflite(shared, tmp_path, monkeypatch):
    """`mnet eval detection --weights ssd_mobilenet_v1_0.75_300.tflite_coco_quant` on the 206 val2017 photos,
    with the file's own post-process (10 detections, class-agnostic NMS): AP within 1 point of TFLite's 0.182."""
    from mnet.tasks.pretrained import build_pretrained

    monkeypatch.setenv("MNET_CACHE", str(tmp_path / "cache"))
    model, w = build_pretrained("ssd_mobilenet_v1_0.75_300.tflite_coco_quant", source=shared("weights", "tf_od_api"))
    r = get_task("detection").evaluate(
        model,
        shared("data", "coco"),
        split="val2017",
        progress=False,
        preprocess=w.preprocess,
        results_json=tmp_path / "res.json",
    )
    assert r["n"] == 206 and r["detections"] == 2060
    assert abs(r["AP"] - 0.182) < 0.01
