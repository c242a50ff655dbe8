"""Classification fine-tuning on an ImageFolder: any class count, head re-initialised, bad images skipped."""

from __future__ import annotations

import json

import torch
from _train_fixtures import imagefolder

from mnet.apps.cli import main

CONFIG = "tasks/classification/configs/finetune_imagefolder.yaml"


def test_imagefolder_training_any_class_count_skips_bad_images(tmp_path, capsys):
    data = imagefolder(tmp_path / "data", classes=("cat", "dog", "fox"), size=48)
    (data / "train" / "dog" / "9.png").write_bytes(b"\x89PNG truncated")
    run = tmp_path / "run"
    rc = main(
        [
            "train",
            "classification",
            "--config",
            CONFIG,
            f"data.root={data}",
            f"output.dir={run}",
            "model.weights=null",
            "model.alpha=0.25",
            "model.resolution=64",
            "data.batch_size=4",
            "train.epochs=1",
            "train.threads=1",
            "train.progress=false",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["skipped_images"] == 1 and "top1" in out["last"]
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["model"]["head.fc.weight"].shape == (3, 256)
    rc = main(
        [
            "train",
            "classification",
            "--config",
            CONFIG,
            f"data.root={data}",
            f"output.dir={run}2",
            "model.weights=null",
            "model.alpha=0.25",
            "model.resolution=64",
            "data.batch_size=4",
            "train.epochs=1",
            "train.threads=1",
            "train.progress=false",
            "data.on_bad_image=error",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "dog/9.png: not a recognised image file" in err


def test_pretrained_backbone_with_new_head(shared):
    from mnet.tasks.classification.finetune import pretrained_classifier
    from mnet.weights import load_weights

    src = shared("weights", "tflite")
    w = load_weights("mobilenet_v1_0.25_128.tflite_in1k_quant", source=src)
    model, _, old = pretrained_classifier(w, num_classes=3, resolution=96)
    assert model.head.fc.weight.shape == (3, 256) and old[0].shape == (1000, 256)  # re-initialised
    assert torch.equal(model.state_dict()["layers.13.pw.conv.weight"], w.state_dict["layers.13.pw.conv.weight"])
    same, _, _ = pretrained_classifier(w, num_classes=1000)
    assert torch.equal(same.head.fc.weight, old[0])  # same class count: the head is kept
