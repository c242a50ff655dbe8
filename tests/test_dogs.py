"""Stanford Dogs: official-layout reader, bad input, labels, Table 10 cost, zero-shot head, real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _dogs_fixture import make_fake_dogs, write_list
from PIL import Image

from mnet.tasks import get_task
from mnet.tasks.data import ImageDecodeError
from mnet.tasks.dogs.data import NUM_BREEDS, StanfordDogs, breeds, read_box
from mnet.tasks.dogs.pretrained import dog_rows_head, imagenet_rows
from mnet.tasks.pretrained import model_predictor
from mnet.weights import Preprocess


def test_breed_table_is_the_official_order():
    b = breeds()
    assert len(b) == NUM_BREEDS == 120 and [x.wnid for x in b] == sorted(x.wnid for x in b)
    assert b[0].name == "Chihuahua" and b[0].imagenet_index == 151
    assert len(set(imagenet_rows())) == 120 and all(151 <= i <= 275 for i in imagenet_rows())


@pytest.mark.parametrize("alpha, params_m", [(1.0, 3.3), (0.75, 1.9)])
def test_cost_matches_table_10(alpha, params_m):
    """Paper Table 10: backbone + 120-way FC, no ImageNet classifier."""
    task = get_task("dogs")
    cost = task.cost(task.build_model(alpha=alpha, resolution=224), 224)
    assert round(cost.params / 1e6, 1) == params_m


def test_reads_official_layout_with_labels(tmp_path):
    root = make_fake_dogs(tmp_path, n_breeds=3, per_breed={"train": 2, "test": 1})
    ds = StanfordDogs(root, "train")
    assert len(ds) == 6 and ds.labels == [0, 0, 1, 1, 2, 2]
    img, label = ds[3]
    assert isinstance(img, Image.Image) and label == 1


def test_zero_shot_head_takes_the_dog_rows():
    w, b = torch.randn(1000, 16), torch.randn(1000)
    hw, hb = dog_rows_head(w, b)
    assert torch.equal(hw[0], w[151]) and torch.equal(hb[-1], b[breeds()[-1].imagenet_index])
    with pytest.raises(ValueError, match="1000-way"):
        dog_rows_head(w[:120], b[:120])


def test_mismatched_label_fails_naming_the_file(tmp_path):
    root = make_fake_dogs(tmp_path, n_breeds=2, per_breed={"train": 1})
    folder = f"{breeds()[0].wnid}-{breeds()[0].name}"
    write_list(root, "train", [f"{folder}/{breeds()[0].wnid}_train0.jpg"], [2])  # label 2 = the second breed
    with pytest.raises(ValueError, match=rf"{breeds()[0].wnid}_train0.jpg has label 2"):
        StanfordDogs(root, "train")


def test_missing_list_file_and_missing_images(tmp_path):
    root = make_fake_dogs(tmp_path, n_breeds=2, per_breed={"train": 2})
    with pytest.raises(FileNotFoundError, match="test_list.mat"):
        StanfordDogs(root, "test")
    gone = next((root / "Images").rglob("*_train1.jpg"))
    gone.unlink()
    with pytest.raises(FileNotFoundError, match=gone.name):
        StanfordDogs(root, "train", on_bad_image="error")
    ds = StanfordDogs(root, "train", on_bad_image="skip")
    assert len(ds) == 3 and ds.skipped == [(str(gone), "listed but missing")]


def test_bad_and_odd_images(tmp_path):
    """Grayscale, CMYK, RGBA and 16-bit decode to RGB; a truncated file errors or is skipped."""
    root = make_fake_dogs(tmp_path, n_breeds=1, per_breed={"train": 5})
    files = sorted((root / "Images").rglob("*.jpg"))
    arr = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(arr).convert("L").save(files[0], format="JPEG")
    Image.fromarray(arr).convert("CMYK").save(files[1], format="JPEG")
    Image.fromarray(arr).convert("RGBA").save(files[2], format="PNG")  # PNG bytes behind a .jpg name
    Image.fromarray(arr[..., 0].astype(np.uint16) * 257).save(files[3], format="PNG")
    files[4].write_bytes(files[4].read_bytes()[:200])  # truncated JPEG
    ds = StanfordDogs(root, "train")
    names = [s.path.name for s in ds.samples]
    for i in range(4):
        img, _ = ds[names.index(files[i].name)]
        assert img.mode == "RGB" and img.size == (50, 40)
    bad = names.index(files[4].name)
    with pytest.raises(ImageDecodeError, match=files[4].name):
        ds[bad]
    skipping = StanfordDogs(root, "train", on_bad_image="skip")
    assert skipping[bad] is None and skipping.skipped[-1][0] == str(files[4])


def test_evaluate_counts_skipped_and_empty_class_folder(tmp_path):
    root = make_fake_dogs(tmp_path, n_breeds=2, per_breed={"test": 3})
    (root / "Images" / f"{breeds()[5].wnid}-{breeds()[5].name}").mkdir()  # an empty class folder is harmless
    victim = next((root / "Images").rglob("*_test0.jpg"))
    victim.write_bytes(b"not an image")
    task = get_task("dogs")
    model = task.build_model(alpha=0.25, resolution=64)
    predictor = model_predictor(task, model, Preprocess(64, crop_fraction=0.875))
    out = task.evaluate(predictor, root, split="test", on_bad_image="skip", progress=False)
    assert out["n"] == 5 and out["skipped_images"] == 1 and 0 <= out["top1"] <= out["top5"] <= 100
    with pytest.raises(ImageDecodeError, match=victim.name):
        task.evaluate(predictor, root, split="test", progress=False)


def test_box_annotation_crop(tmp_path):
    xml = tmp_path / "a"
    xml.write_text(
        "<annotation><object><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>20</xmax><ymax>30</ymax>"
        "</bndbox></object><object><bndbox><xmin>2</xmin><ymin>9</ymin><xmax>15</xmax><ymax>31</ymax>"
        "</bndbox></object></annotation>"
    )
    assert read_box(xml) == (2, 6, 20, 31)


def test_real_lists_are_consistent(shared):
    root = shared("data", "stanford_dogs")
    train, test = StanfordDogs(root, "train"), StanfordDogs(root, "test")
    assert (len(train), len(test)) == (120, 150)
    assert sorted(set(train.labels)) == list(range(120)) and len(set(test.labels)) == 84


@pytest.mark.slow
def test_real_zero_shot_accuracy(shared):
    """The ImageNet classifier's dog rows on the 150 ILSVRC-val photos of the test list (docs/dogs.md: 78.0)."""
    root = shared("data", "stanford_dogs")
    src = shared("weights", "tfslim")
    task = get_task("dogs")
    model = task.load_model("mobilenet_v1_1.0_224.tfslim_in1k", resolution=224, source=src)
    out = task.evaluate(model, root, split="test", progress=False)
    assert out["n"] == 150 and out["top1"] > 70.0 and out["top5"] > 90.0


def test_train_then_mnet_eval_on_the_export(tmp_path, capsys):
    """`mnet train dogs` exports the suite's weights format; `mnet eval dogs --weights` reads it back."""
    import json

    from mnet.apps.cli import main

    data = make_fake_dogs(tmp_path / "dogs", n_breeds=2, per_breed={"train": 4, "test": 2})
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "dogs",
                "--config",
                "tasks/dogs/configs/smoke.yaml",
                f"data.root={data}",
                f"output.dir={run}",
                "train.epochs=1",
                "train.accum_steps=1",
            ]
        )
        == 0
    )
    trained = json.loads(capsys.readouterr().out)
    assert (
        main(["eval", "dogs", "--weights", str(run / "last.safetensors"), "--data", str(data), "--format", "json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 4 and report["top1"] == pytest.approx(trained["last"]["top1"])
    assert (run / "config.yaml").is_file() and (run / "metrics.jsonl").is_file()


@pytest.mark.slow
def test_real_zero_shot_through_mnet_eval(shared, capsys):
    import json

    from mnet.apps.cli import main

    root, src = shared("data", "stanford_dogs"), shared("weights", "tflite")
    assert (
        main(
            [
                "eval",
                "dogs",
                "--weights",
                "mobilenet_v1_0.25_128.tflite_in1k_quant",
                "--source",
                str(src),
                "--data",
                str(root),
                "--format",
                "json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 150 and report["top1"] > 30.0
