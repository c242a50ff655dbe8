"""Issue 14, class 3 — wrong answers presented as right: malformed annotations and dataset files are refused
(or dropped with a warning) as the readers' docstrings say, and an evaluation whose model outputs NaN or
inf raises an error naming the weights instead of printing ``nan%`` or a quiet 0.

Every input is generated here; each test tries several inputs of its kind.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _dogs_fixture import make_fake_dogs, write_list
from PIL import Image
from test_face_attributes import write_celeba

from mnet.backbone import mobilenet_v1
from mnet.tasks import get_task
from mnet.tasks.classification.data import ImageFolderDataset
from mnet.tasks.classification.evaluate import evaluate_classification
from mnet.tasks.decode import NonFiniteOutputError
from mnet.tasks.detection.data import CocoDetection, load_coco
from mnet.tasks.detection.metrics import coco_eval
from mnet.tasks.dogs.data import StanfordDogs, breeds
from mnet.tasks.face_attributes.celeba import CelebA, read_attributes
from mnet.tasks.face_attributes.transforms import face_eval_transform
from mnet.tasks.pretrained import model_predictor
from mnet.weights import Preprocess

# -- COCO annotations ---------------------------------------------------------------------------------

GOOD = {
    "images": [
        {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
        {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
    ],
    "annotations": [
        {"id": 10, "image_id": 1, "category_id": 7, "bbox": [4, 4, 20, 20], "iscrowd": 0, "area": 400.0},
        {"id": 11, "image_id": 2, "category_id": 3, "bbox": [30, 10, 16, 30], "iscrowd": 0, "area": 480.0},
    ],
    "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}],
}


def coco_root(tmp_path: Path, doc) -> Path:
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "train").mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (64, 48), (120, 60, 30)).save(root / "train" / name)
    text = doc if isinstance(doc, str) else json.dumps(doc)
    (root / "annotations" / "instances_train.json").write_text(text)
    return root


def edited(edit) -> dict:
    doc = copy.deepcopy(GOOD)
    edit(doc)
    return doc


def ann(doc: dict) -> dict:
    return doc["annotations"][1]


REFUSED = {
    "negative width": (
        lambda d: ann(d).update(bbox=[30, 10, -16, 30]),
        r"annotation id 11: bbox width -16 is negative",
    ),
    "negative height": (lambda d: ann(d).update(bbox=[30, 10, 16, -0.5]), r"annotation id 11: bbox height -0.5 is neg"),
    "bbox missing": (lambda d: ann(d).pop("bbox"), r"annotation id 11: bbox must be \[x, y, width, height\], got None"),
    "bbox 3 numbers": (lambda d: ann(d).update(bbox=[1, 2, 3]), r"annotation id 11: bbox must be"),
    "bbox a string": (lambda d: ann(d).update(bbox="1,2,3,4"), r"annotation id 11: bbox must be"),
    "bbox strings": (lambda d: ann(d).update(bbox=[1, "2", 3, 4]), r"annotation id 11: bbox has non-numeric"),
    "bbox booleans": (lambda d: ann(d).update(bbox=[1, 2, True, 4]), r"annotation id 11: bbox has non-numeric"),
    "bbox infinite": (lambda d: ann(d).update(bbox=[1, 2, 1e999, 4]), r"annotation id 11: bbox has non-finite"),
    "unknown category": (lambda d: ann(d).update(category_id=99), r"annotation id 11: unknown category_id 99"),
    "category as text": (lambda d: ann(d).update(category_id="3"), r"annotation id 11: unknown category_id '3'"),
    "category missing": (lambda d: ann(d).pop("category_id"), r"annotation id 11: unknown category_id None"),
    "unknown image": (lambda d: ann(d).update(image_id=5), r"annotation id 11: field 'image_id' 5 is not an image id"),
    "iscrowd 2": (lambda d: ann(d).update(iscrowd=2), r"annotation id 11: field 'iscrowd' must be 0 or 1"),
    "negative area": (lambda d: ann(d).update(area=-1), r"annotation id 11: field 'area' must be a finite number"),
    "annotation id missing": (lambda d: ann(d).pop("id"), r"annotation\[1\]: field 'id' must be an integer"),
    "duplicate annotation id": (lambda d: ann(d).update(id=10), r"annotation id 10 appears twice"),
    "image width missing": (lambda d: d["images"][0].pop("width"), r"image id 1: field 'width' must be a positive"),
    "image height zero": (lambda d: d["images"][0].update(height=0), r"image id 1: field 'height' must be a positive"),
    "image width text": (lambda d: d["images"][0].update(width="64"), r"image id 1: field 'width' must be a positive"),
    "file name escapes": (lambda d: d["images"][0].update(file_name="../a.jpg"), r"image id 1: field 'file_name'"),
    "category without name": (lambda d: d["categories"][0].pop("name"), r"category id 7: field 'name' must be"),
    "no annotations list": (lambda d: d.pop("annotations"), r"field 'annotations' must be a list"),
    "annotation not an object": (lambda d: d["annotations"].append(3), r"annotations\[2\] must be an object"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_malformed_coco_annotations_are_refused_naming_file_id_and_field(tmp_path, case):
    edit, message = REFUSED[case]
    root = coco_root(tmp_path, edited(edit))
    with pytest.raises(ValueError, match=message) as info:
        CocoDetection(root, "train")
    assert str(info.value).startswith(str(root / "annotations" / "instances_train.json"))


@pytest.mark.parametrize("text", ["", "{not json", "[1, 2]", '"a string"'])
def test_annotation_file_that_is_not_a_coco_object(tmp_path, text):
    root = coco_root(tmp_path, text)
    with pytest.raises(ValueError, match=r"instances_train\.json: (not a valid COCO annotation file|a COCO annot)"):
        CocoDetection(root, "train")


DROPPED = {
    "zero width": [30, 10, 0, 30],
    "zero height": [30, 10, 16, 0],
    "right of the image": [64, 10, 16, 30],
    "left of the image": [-40, 10, 16, 30],
    "below the image": [30, 60, 16, 30],
}


@pytest.mark.parametrize("case", sorted(DROPPED))
def test_boxes_without_area_are_dropped_with_a_warning_everywhere(tmp_path, case):
    """Dropped from the training targets and from the index COCOeval scores against: a perfect detector
    still scores AP 1 on what is left."""
    root = coco_root(tmp_path, edited(lambda d: ann(d).update(bbox=DROPPED[case])))
    with pytest.warns(UserWarning, match=r"instances_train\.json: dropped 1 annotation.*annotation id 11 \(image id 2"):
        ds = CocoDetection(root, "train")
    assert ds.stats["invalid_dropped"] == 1 and 11 not in ds.coco.anns and ds.stats["empty_images"] == 1
    _, target = ds[1]
    assert target["boxes"].shape == (0, 4)
    perfect = [{"image_id": 1, "category_id": 7, "bbox": [4, 4, 20, 20], "score": 1.0}]
    assert coco_eval(ds.coco, perfect, ds.ids)["AP"] == pytest.approx(1.0)


def test_partly_outside_boxes_are_clipped_and_a_missing_area_computed(tmp_path):
    root = coco_root(tmp_path, edited(lambda d: [ann(d).update(bbox=[50, 30, 30, 30]), ann(d).pop("area")]))
    ds = CocoDetection(root, "train")
    _, target = ds[1]
    assert target["boxes"].tolist() == [[50.0, 30.0, 64.0, 48.0]] and ds.stats["clipped"] == 1
    assert ds.coco.anns[11]["area"] == 900.0  # width × height, as pycocotools does for results


def test_images_listed_but_missing_name_the_file_and_image_id(tmp_path):
    root = coco_root(tmp_path, GOOD)
    (root / "train" / "b.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"instances_train\.json are missing .*b\.jpg \(image id 2\)"):
        CocoDetection(root, "train")
    with pytest.warns(UserWarning, match=r"skipping 1 image"):
        assert len(CocoDetection(root, "train", skip_missing=True)) == 1


def test_label_space_without_a_files_category_is_refused(tmp_path):
    root = coco_root(tmp_path, GOOD)
    with pytest.raises(ValueError, match=r"instances_train\.json: annotation id 11: unknown category_id 3 for this"):
        CocoDetection(root, "train", category_ids=[7])
    assert sorted(load_coco(root / "annotations" / "instances_train.json").getCatIds()) == [3, 7]


# -- the other readers --------------------------------------------------------------------------------


def test_imagefolder_without_classes_or_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        ImageFolderDataset(tmp_path / "empty")
    (tmp_path / "only_files").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "only_files" / "x.png")
    with pytest.raises(ValueError, match="no class folders"):
        ImageFolderDataset(tmp_path / "only_files")
    (tmp_path / "no_images" / "cat").mkdir(parents=True)
    (tmp_path / "no_images" / "cat" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no_images: no images"):
        ImageFolderDataset(tmp_path / "no_images")
    with pytest.raises(FileNotFoundError, match=r"x\.png: not a folder"):
        ImageFolderDataset(tmp_path / "only_files" / "x.png")
    with pytest.raises(FileNotFoundError, match="no such data folder"):
        ImageFolderDataset(tmp_path / "nowhere")


def test_stanford_dogs_lists_that_do_not_match_the_files(tmp_path):
    root = make_fake_dogs(tmp_path / "dogs", n_breeds=2, per_breed={"train": 2, "test": 1})
    folder = f"{breeds()[0].wnid}-{breeds()[0].name}"
    write_list(root, "test", [f"{folder}/nowhere.jpg"], [1])
    with pytest.raises(FileNotFoundError, match=r"nowhere\.jpg: listed in lists/test_list\.mat but missing"):
        StanfordDogs(root, "test")
    write_list(root, "test", [f"{folder}/x.jpg"], [121])
    with pytest.raises(ValueError, match=r"label 121 of .*x\.jpg is outside 1\.\.120"):
        StanfordDogs(root, "test")
    (root / "lists" / "test_list.mat").write_bytes(b"not a MATLAB file at all")
    with pytest.raises(ValueError, match=r"test_list\.mat: not a readable MATLAB list file"):
        StanfordDogs(root, "test")


def set_value(row: str, column: int, value: str) -> str:
    parts = row.split()
    parts[column] = value
    return " ".join(parts)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda rows: set_value(rows[2], 1, "0"), r"line 3: values must be -1 or 1, got 5_o_Clock_Shadow='0'$"),
        (lambda rows: set_value(rows[2], 5, "2"), r"line 3: values must be -1 or 1, got Bald='2'$"),
        (lambda rows: set_value(rows[2], 40, "1.0"), r"line 3: values must be -1 or 1, got Young='1\.0'$"),
        (lambda rows: set_value(rows[2], 3, "yes"), r"line 3: values must be -1 or 1, got Attractive='yes'$"),
        (lambda rows: rows[2] + " 1", r"line 3 has 41 values, line 2 names 40"),
        (lambda rows: rows[2].rsplit(" ", 1)[0], r"line 3 has 39 values, line 2 names 40"),
        (lambda rows: set_value(rows[2], 0, "000002.jpg"), r"line 4: 000002\.jpg is listed twice"),
    ],
)
def test_celeba_attribute_files_with_wrong_columns_or_values(tmp_path, edit, message):
    root = write_celeba(tmp_path / "celeba")
    rows = (root / "list_attr_celeba.txt").read_text().splitlines()
    rows[2] = edit(rows)
    (root / "list_attr_celeba.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=message):
        read_attributes(root / "list_attr_celeba.txt")
    with pytest.raises(ValueError, match=message):
        CelebA(root, "test", face_eval_transform(32))


# -- non-finite model outputs -------------------------------------------------------------------------


def broken(model: torch.nn.Module, how: str) -> torch.nn.Module:
    """A model whose outputs are NaN or inf in one of the ways weights break."""
    with torch.no_grad():
        if how == "all NaN":
            for p in model.parameters():
                p.fill_(float("nan"))
        elif how == "one NaN weight":
            next(model.parameters()).view(-1)[0] = float("nan")
        elif how == "infinite bias":
            [b for n, b in model.named_parameters() if n.endswith("bias")][-1].fill_(float("inf"))
        elif how == "negative BN variance":  # sqrt of a negative running variance: NaN at eval
            next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_var.fill_(-1.0)
    return model.eval()


BREAKS = ["all NaN", "one NaN weight", "infinite bias", "negative BN variance"]
META = {"entry": "broken_test_weights"}


def image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


NAME = "broken_test_weights"


@pytest.mark.parametrize("how", BREAKS)
@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_classification_eval_of_broken_weights_is_an_error(tmp_path, how, runtime):
    data = image_folder(tmp_path / "data")
    model = broken(mobilenet_v1(alpha=0.25, resolution=32, num_classes=2), how)
    with pytest.raises(NonFiniteOutputError, match=rf"{NAME}: its logits hold NaN/inf"):
        evaluate_classification(on(runtime, "classification", model), data, progress=False)
    healthy = mobilenet_v1(alpha=0.25, resolution=32, num_classes=2).eval()
    assert evaluate_classification(on(runtime, "classification", healthy), data, progress=False)["n"] == 6


def on(runtime: str, task: str, model: torch.nn.Module, res: int = 32):
    """A predictor for ``model`` named ``NAME``, in PyTorch or in ONNX Runtime (an in-memory export)."""
    from mnet.tasks.inference import Predictor
    from mnet.tasks.runtime.load import model_session

    t = get_task(task)
    if runtime == "torch":
        return model_predictor(t, model, Preprocess(res), name=NAME)
    session = model_session(t, model, "onnxruntime", resolution=res)
    return Predictor(task, t.output_kind(model), session, Preprocess(res), None, NAME)


@pytest.mark.parametrize("how", ["all NaN", "infinite bias"])
def test_dogs_and_face_attributes_eval_of_broken_weights_is_an_error(tmp_path, how):
    dogs = make_fake_dogs(tmp_path / "dogs", n_breeds=2, per_breed={"test": 2})
    model = broken(mobilenet_v1(alpha=0.25, resolution=32, num_classes=120), how)
    with pytest.raises(NonFiniteOutputError, match=NAME):
        get_task("dogs").evaluate(on("torch", "dogs", model), dogs, progress=False)
    celeba = write_celeba(tmp_path / "celeba", n=6)
    model = broken(get_task("face_attributes").build_model(alpha=0.25, resolution=32, num_attributes=40), how)
    with pytest.raises(NonFiniteOutputError, match=rf"{NAME}: its logits hold NaN/inf"):
        get_task("face_attributes").evaluate(on("torch", "face_attributes", model), celeba, progress=False)


@pytest.mark.parametrize("how", ["all NaN", "negative BN variance", "infinite bias"])
@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_detection_eval_of_broken_weights_is_an_error_not_ap_zero(tmp_path, how, runtime):
    """NaN scores never pass NMS's score threshold: without the check, the AP would be a quiet 0.0."""
    task = get_task("detection")
    root = coco_root(tmp_path, GOOD)
    model = broken(task.build_model(alpha=0.25, resolution=128, num_classes=2, category_ids=[3, 7]), how)
    with pytest.raises(NonFiniteOutputError, match=rf"{NAME}: its box and score outputs hold NaN"):
        task.evaluate(on(runtime, "detection", model, 128), root, split="train", progress=False)


def test_cli_eval_of_all_nan_weights_exits_2_with_one_line(tmp_path, capsys):
    from mnet.apps.cli import main
    from mnet.weights.store import save_weights

    data = image_folder(tmp_path / "data")
    model = broken(mobilenet_v1(alpha=0.25, resolution=32, num_classes=2), "all NaN")
    weights = save_weights(
        tmp_path / "nan.safetensors",
        model.state_dict(),
        {
            "task": "classification",
            "arch": "mobilenet_v1",
            "model_kwargs": {"alpha": 0.25, "resolution": 32, "num_classes": 2},
            "preprocess": {"resolution": 32},
            "labels": ["a", "b"],
        },
    )
    code = main(["eval", "classification", "--weights", str(weights), "--data", str(data), "--runtime", "torch"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("mnet eval: error: ") and "nan.safetensors" in err[-1]
    assert "NaN/inf" in err[-1] and "Traceback" not in "\n".join(err)
