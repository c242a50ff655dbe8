"""The suite's face-attribute entry (tasks/face_attributes/pretrained.py): the packaged attribute layer and its
pinned digest, the converter's checks, loading by name from a fresh cache with the base's original from
../shared, the recorded test mean AP, the training config, and named attributes in the faces pipeline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mnet.tasks.face_attributes.celeba import CELEBA_ATTRIBUTES
from mnet.tasks.face_attributes.pretrained import BASE, ENTRY, HEAD_FILE, HEAD_SHA256, TEST_MEAN_AP, convert_head
from mnet.tasks.face_attributes.train_head import HeadRecipe
from mnet.weights import get_entry, save_weights, sha256_file
from mnet.weights.store import load_weights_file

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "face_attributes_celeba400.json"
CONFIG = REPO / "tasks" / "face_attributes" / "recipes" / "celeba400.yaml"


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch, shared):
    """An empty weights cache holding only the base backbone, converted from ../shared's original."""
    from mnet.weights import fetch_and_convert

    monkeypatch.setenv("MNET_CACHE", str(tmp_path / "cache"))
    fetch_and_convert(BASE, source=shared("weights", "tfslim"), progress=False)
    return tmp_path / "cache"


def test_entry_describes_the_packaged_layer():
    e = get_entry(ENTRY)
    assert e.task == "face_attributes" and e.base == BASE and e.preprocess.resolution == 224
    assert e.model_kwargs == {"alpha": 1.0, "resolution": 224, "num_attributes": 40, "head": "attributes"}
    labels = e.label_list()
    assert labels == list(CELEBA_ATTRIBUTES) and {"Smiling", "Eyeglasses", "Male"} <= set(labels)
    assert e.known_file_sha256 == {HEAD_SHA256} and sha256_file(HEAD_FILE) == HEAD_SHA256
    head, meta = load_weights_file(HEAD_FILE)
    assert {k: tuple(v.shape) for k, v in head.items()} == {"head.fc.weight": (40, 1024), "head.fc.bias": (40,)}
    assert meta["labels"] == labels and meta["base"] == BASE
    assert HEAD_FILE.stat().st_size < 200_000  # only the layer is committed, never a backbone
    # installed with the package: pyproject's package-data for mnet.tasks.face_attributes matches the file
    line = re.search(r'^"mnet\.tasks\.face_attributes" = \[(.*)\]', (REPO / "pyproject.toml").read_text(), re.M)
    assert line and any(HEAD_FILE.match(glob) for glob in re.findall(r'"([^"]+)"', line.group(1)))
    assert f"{TEST_MEAN_AP:.3f}" in e.description and e.published["celeba_test_mean_ap"] == TEST_MEAN_AP


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda sd, meta: meta.update(base="mobilenet_v1_0.5_160.tflite_in1k_quant"), "fitted on"),
        (lambda sd, meta: meta.update(labels=list(reversed(meta["labels"]))), "attribute names"),
        (lambda sd, meta: sd.update({"head.extra": torch.zeros(1)}), "expected the tensors"),
    ],
)
def test_converter_refuses_a_layer_that_does_not_belong(tmp_path, change, match):
    sd, meta = load_weights_file(HEAD_FILE)
    meta.pop("format")
    change(sd, meta)
    path = save_weights(tmp_path / "head.safetensors", sd, meta)
    with pytest.raises(ValueError, match=match):
        convert_head(path, get_entry(ENTRY))


def test_entry_loads_by_name_and_reproduces_the_recorded_test_map(fresh_cache, shared):
    from mnet.tasks import get_task
    from mnet.tasks.pretrained import build_pretrained
    from mnet.tasks.runtime.load import load_predictor
    from mnet.weights import cached_path

    model, w = build_pretrained(ENTRY)
    assert w.path == cached_path(ENTRY) and w.path.parent == fresh_cache / "weights"
    assert w.meta["sha256_verified"] and w.meta["original_sha256"] == HEAD_SHA256 and w.meta["base"] == BASE
    assert w.labels == list(CELEBA_ATTRIBUTES)
    head, _ = load_weights_file(HEAD_FILE)
    torch.testing.assert_close(model.head.fc.weight, head["head.fc.weight"], rtol=0, atol=0)
    recorded = json.loads(RESULTS.read_text())
    assert recorded["entry"] == ENTRY and recorded["head_sha256"] == HEAD_SHA256
    predictor = load_predictor("face_attributes", ENTRY, runtime="torch", notify=None)
    r = get_task("face_attributes").evaluate(predictor, shared("data", "celeba"), split="test", progress=False)
    assert r["n"] == recorded["test"]["n"] == 79
    assert abs(r["mean_ap"] - recorded["test"]["mean_ap"]) < 1e-3
    assert abs(recorded["test"]["mean_ap"] - TEST_MEAN_AP) < 1e-4
    assert r["mean_ap"] > r["prevalence_mean_ap"] + 0.3  # far above a constant score (0.24)


def test_committed_config_names_the_entry_and_refuses_typos(tmp_path):
    recipe = HeadRecipe.from_yaml(CONFIG)
    assert recipe.entry == ENTRY and (REPO / recipe.head_out).resolve() == HEAD_FILE.resolve()
    assert (REPO / recipe.results_out).resolve() == RESULTS.resolve()
    raw = {"entry": ENTRY, "data": {"root": "x"}, "output": {"head": "h", "results": "r"}}
    assert HeadRecipe.from_dict(raw).l2_grid == (1e-4, 1e-3, 1e-2, 3e-2)
    with pytest.raises(ValueError, match="unknown key fit.l2_gird; did you mean fit.l2_grid"):
        HeadRecipe.from_dict({**raw, "fit": {"l2_gird": [1.0]}})
    with pytest.raises(ValueError, match="unknown key outptu; did you mean output"):
        HeadRecipe.from_dict({**raw, "outptu": {}})
    with pytest.raises(ValueError, match="fit.l2_grid must be a list of non-negative numbers"):
        HeadRecipe.from_dict({**raw, "fit": {"l2_grid": ["1e-4"]}})
    with pytest.raises(ValueError, match=r"data\.root is required"):
        HeadRecipe.from_dict({**raw, "data": {}})
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        HeadRecipe.from_yaml(tmp_path / "nope.yaml")


def test_pipeline_names_attributes_by_default(fresh_cache, shared):
    from mnet.tasks.runtime.load import load_face_pipeline
    from mnet.weights import fetch_and_convert

    for name in ("faceres_mobilenet_v1_1.0_224.age_gender", "ssd_mobilenet_v1_1.0_512.faceapi_faces"):
        fetch_and_convert(name, source=shared("weights", "faces"), progress=False)
    pipeline = load_face_pipeline(top_k=40, notify=None)
    faces = pipeline.predict_file(shared("data", "samples", "face.jpg")).to_dict()["faces"]
    assert len(faces) == 4 and sum(f["gender"] == "male" for f in faces) == 3
    for f in faces:
        names = [a["label"] for a in f["attributes"]]
        assert sorted(names) == sorted(CELEBA_ATTRIBUTES)
        probs = [a["score"] for a in f["attributes"]]
        assert probs == sorted(probs, reverse=True)
    # the attribute `Male` agrees with the age/gender model on every face of this photo
    male = [next(a["score"] for a in f["attributes"] if a["label"] == "Male") for f in faces]
    assert [p > 0.5 for p in male] == [f["gender"] == "male" for f in faces]


@pytest.mark.slow
def test_training_command_reproduces_the_layer(fresh_cache, shared, tmp_path):
    from mnet.tasks.face_attributes.train_head import main

    cfg = tmp_path / "celeba400.yaml"
    cfg.write_text(
        CONFIG.read_text()
        .replace("../shared/data/celeba", str(shared("data", "celeba")))
        .replace(f"tasks/face_attributes/{HEAD_FILE.name}", str(tmp_path / "head.safetensors"))
        .replace("docs/face_attributes_celeba400.json", str(tmp_path / "results.json"))
    )
    assert main(["--config", str(cfg)]) == 0
    ours, recorded = json.loads((tmp_path / "results.json").read_text()), json.loads(RESULTS.read_text())
    assert ours["l2"] == recorded["l2"]
    assert abs(ours["test"]["mean_ap"] - recorded["test"]["mean_ap"]) < 1e-3
    new, _ = load_weights_file(tmp_path / "head.safetensors")
    old, _ = load_weights_file(HEAD_FILE)
    np.testing.assert_allclose(new["head.fc.weight"].numpy(), old["head.fc.weight"].numpy(), atol=1e-3)
