"""Typed training configs: every section declared, unknown keys refused with the nearest valid one, wrong
types and ranges named, ``model.alpha: null`` (α from the weights) for every trainable task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from _train_fixtures import TASK_RUNS, classifier_weights, detector_weights, task_run_args

from mnet.apps.cli import main
from mnet.tasks import get_task, task_names
from mnet.tasks.base import Task
from mnet.tasks.engine.config import ConfigError, load_config, schema_for
from mnet.tasks.schema import (
    AnyOf,
    Anything,
    Bool,
    Int,
    Key,
    ListOf,
    Num,
    OneOf,
    Section,
    Str,
    dotted_keys,
    flatten,
    lookup,
    resolve,
)

REPO = Path(__file__).resolve().parents[1]
TRAINABLE = sorted(n for n in task_names() if type(get_task(n)).train_parts is not Task.train_parts)
CONFIGS = sorted(REPO.glob("tasks/*/configs/*.yaml"))


def test_every_trainable_task_declares_its_sections():
    assert set(TRAINABLE) >= {"classification", "dogs", "detection", "face_attributes"}
    for name in TRAINABLE:
        schema = schema_for(get_task(name))
        for section in ("model", "data", "loss", "augment"):
            assert not schema.keys[section].open, f"{name}: section {section!r} is not declared"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_shipped_config_loads_with_its_task_schema(path):
    raw = yaml.safe_load(path.read_text())
    cfg = load_config(path, ["data.root=somewhere"], task=raw["task"])
    resolved = flatten(cfg)
    for key, value in flatten(raw).items():  # what the file says survives, typed; defaults fill the rest
        if value is not None and key not in ("data.root", "train.amp"):
            assert resolved[key] == value and type(resolved[key]) is type(value) or isinstance(value, int), key
    assert cfg["train"]["amp"] in ("off", "bf16", "fp16", "auto") and "batch_size" in cfg["data"]


def _typo(key: str) -> str:
    """``model.alpha`` → ``model.alppha``: the leaf's middle letter doubled."""
    parent, _, leaf = key.rpartition(".")
    i = len(leaf) // 2
    bad = leaf[:i] + leaf[i] + leaf[i:]
    return f"{parent}.{bad}" if parent else bad


@pytest.mark.parametrize("task", TRAINABLE)
def test_every_misspelled_key_is_refused_naming_the_right_one(task):
    schema = schema_for(get_task(task))
    keys = [k for k, _ in dotted_keys(schema)]
    assert len(keys) > 40
    for key in keys:
        typo = _typo(key)
        raw: dict = {"data": {"root": "x"}}
        node = raw
        *parents, leaf = typo.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = 1
        with pytest.raises(ConfigError) as e:
            resolve(raw, schema)
        assert f"unknown config key '{typo}'" in str(e.value), (key, str(e.value))
        assert f"did you mean '{key}'?" in str(e.value), (key, str(e.value))


def _wrong_value(kind) -> object:
    """A value ``kind`` must refuse."""
    table = {
        Num: "fast",
        Int: 2.5,
        Bool: "maybe",
        Str: {"a": 1},
        OneOf: "no-such-choice",
        ListOf: {"a": 1},
        AnyOf: {"a": 1},
    }
    return table[type(kind)]


@pytest.mark.parametrize("task", TRAINABLE)
def test_every_wrongly_typed_value_is_refused_naming_the_key(task):
    schema = schema_for(get_task(task))
    checked = 0
    for key, spec in dotted_keys(schema):
        if isinstance(spec.kind, Anything) or key == "task":  # task: checked against the command's task
            continue
        value = _wrong_value(spec.kind)
        with pytest.raises(ConfigError) as e:
            load_config(None, ["data.root=x", f"{key}={json.dumps(value)}"], task=task)
        msg = str(e.value)
        assert f"config key '{key}' must be" in msg and repr(value) in msg, msg
        checked += 1
    assert checked > 40


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("train.epochs=0", "integer ≥ 1"),
        ("data.batch_size=-4", "integer ≥ 1"),
        ("model.alpha=2.0", "number in (0, 1.5]"),
        ("model.alpha=0", "number in (0, 1.5]"),
        ("optim.lr=-1", "number ≥ 0"),
        ("optim.lr=.inf", "number ≥ 0"),
        ("optim.betas=[0.9]", "list of 2 items"),
        ("augment.scale=[0.5, 1.5]", "list of 2 items"),
        ("train.amp=fp32", "one of off, bf16, fp16, auto"),
        ("data.root=null", "is required"),
        ("optim=0.1", "must be a section"),
        ("seed=null", "got null"),
    ],
)
def test_out_of_range_values_are_refused(override, words):
    with pytest.raises(ConfigError, match=r"config key '[a-z_.]+'") as e:
        load_config("tasks/dogs/configs/smoke.yaml", ["data.root=x", override], task="dogs")
    assert words in str(e.value)


def test_yaml_scalars_are_read_as_their_kinds():
    cfg = load_config("tasks/dogs/configs/smoke.yaml", ["optim.lr=1e-3", "train.amp=off", "output.dir=2024"])
    assert cfg["optim"]["lr"] == 0.001 and cfg["train"]["amp"] == "off" and cfg["output"]["dir"] == "2024"
    assert isinstance(cfg["optim"]["momentum"], float)


def test_section_suggestions_across_sections_and_for_whole_sections():
    for override, guess in [
        ("optm.lr=0.1", "optim.lr"),  # a misspelled section: the full key the user meant
        ("modle.alpha=0.5", "model.alpha"),
        ("loss.classification=focal", "model.ssd.loss.classification"),  # detection's loss is under model.ssd
        ("model.ssd.postprocess.iou_treshold=0.5", "model.ssd.postprocess.iou_threshold"),
    ]:
        with pytest.raises(ConfigError, match=rf"did you mean '{guess}'\?"):
            load_config("tasks/detection/configs/custom_dataset.yaml", ["data.root=x", override])
    with pytest.raises(ConfigError, match=r"section 'augment' takes: enabled, zoom_out"):
        load_config("tasks/detection/configs/custom_dataset.yaml", ["data.root=x", "augment.scale=[0.5, 1.0]"])


def test_a_config_for_another_task_is_refused():
    with pytest.raises(ConfigError, match="is for task 'dogs', not 'detection'"):
        load_config("tasks/dogs/configs/smoke.yaml", ["data.root=x"], task="detection")


@pytest.mark.parametrize("task", TRAINABLE)
def test_mnet_train_refuses_a_typo_in_cli_and_in_yaml(task, tmp_path, capsys):
    """`model.alhpa=0.5` on the command line and `alhpa: 0.5` in a YAML: one line naming `model.alpha`."""
    config = TASK_RUNS[task][0]
    raw = yaml.safe_load((REPO / config).read_text())
    raw["model"]["alhpa"] = 0.5
    bad_yaml = tmp_path / "typo.yaml"
    bad_yaml.write_text(yaml.safe_dump(raw))
    for argv in (
        ["train", task, "--config", config, "data.root=x", "model.alhpa=0.5"],
        ["train", task, "--config", str(bad_yaml), "data.root=x"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == "mnet train: error: unknown config key 'model.alhpa'; did you mean 'model.alpha'?"
    assert not list(tmp_path.glob("**/last.pt"))  # nothing trained


# -- model.alpha: null takes α from the weights ------------------------------------------------------
@pytest.mark.parametrize("task", ["classification", "dogs", "detection", "face_attributes"])
def test_alpha_null_without_weights_is_1(task, tmp_path):
    args = task_run_args(task, tmp_path, "model.alpha=null")
    cfg = load_config(args[3], args[4:], task=task)
    assert cfg["model"]["alpha"] is None
    parts = get_task(task).train_parts(cfg)
    assert parts.model.config.alpha == 1.0


@pytest.mark.parametrize(
    ("task", "weights_key"),
    [
        ("classification", "model.weights"),
        ("dogs", "model.weights"),
        ("face_attributes", "model.weights"),
        ("detection", "model.backbone_weights"),
        ("detection", "model.weights"),
    ],
)
def test_alpha_null_takes_the_weights_alpha_through_mnet_train(task, weights_key, tmp_path, capsys):
    """Weights of α 0.25; `model.alpha=null` trains and exports an α-0.25 model, any other α is refused."""
    maker = detector_weights if weights_key == "model.weights" and task == "detection" else classifier_weights
    w = maker(tmp_path / "w.safetensors")
    run = tmp_path / "run"
    args = task_run_args(task, tmp_path, f"{weights_key}={w}", "model.alpha=null", f"output.dir={run}")
    assert main(args) == 0, capsys.readouterr().err
    from mnet.weights import load_weights

    exported = load_weights(run / "last.safetensors")
    assert exported.model_kwargs["alpha"] == 0.25
    capsys.readouterr()
    assert main([*args[:-1], "model.alpha=0.5", f"output.dir={tmp_path / 'run2'}"]) == 2
    err = capsys.readouterr().err
    assert "0.5" in err and "0.25" in err and "Traceback" not in err


def test_schema_tables_are_data():
    """Keys are declared as data: every leaf is a Key with a Kind, every section a Section."""
    schema = schema_for(get_task("detection"))
    assert isinstance(lookup(schema, "model.ssd.loss.classification"), Key)
    assert isinstance(lookup(schema, "model.ssd.anchors"), Section)
    assert lookup(schema, "model.nope") is None
