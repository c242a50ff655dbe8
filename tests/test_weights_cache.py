"""Where weights live (issue 12) and when the cache is written (issue 14, class 1): the cache folder from the
environment, folders of originals named once and searched before the network, the error when nothing is found,
and a cache written only when its content changes. No network (``weights_sandbox``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import weights_helpers
from weights_helpers import GENERATED, generated_entry

from mnet import weights
from mnet.apps.cli import main
from mnet.weights import locations, registry, sources
from mnet.weights.entry import Source

REPO = Path(__file__).resolve().parents[1]
ORIGINAL = b"an original file " * 50
URL = "https://example.org/testnet.bin"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stamp(path: Path) -> tuple[int, int, bytes]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, path.read_bytes()


@pytest.fixture
def entry(weights_sandbox, monkeypatch):
    """The generated entry, registered, its original pinned and declared at a URL nobody serves."""
    e = generated_entry(sources=(Source("url", URL, sha256=sha(ORIGINAL)),))
    monkeypatch.setitem(registry._ENTRIES, GENERATED, e)
    return e


@pytest.fixture
def network_forbidden(monkeypatch):
    """Any download or pip call fails the test (the folders of originals must be searched first)."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"the network was used: {args[:1]}")

    monkeypatch.setattr(sources, "download_url", forbidden)
    monkeypatch.setattr(sources, "pip_download", forbidden)


def _folder(root: Path, *parts: str, data: bytes = ORIGINAL) -> Path:
    """A folder of originals holding ``testnet.bin`` in the sub-folders ``parts``; returns the folder."""
    (root.joinpath(*parts)).mkdir(parents=True, exist_ok=True)
    root.joinpath(*parts, "testnet.bin").write_bytes(data)
    return root


# --- the cache folder ---------------------------------------------------------------------------------


def test_cache_dir_from_mnet_cache_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MNET_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("MNET_CACHE")
    assert weights.cache_dir() == tmp_path / "xdg" / "mnet"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: relative values are ignored
    assert weights.cache_dir() == tmp_path / "home" / ".cache" / "mnet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert weights.cache_dir() == tmp_path / "home" / ".cache" / "mnet"
    assert not weights.cache_dir().is_relative_to(REPO)  # never in the source tree
    assert (
        weights.cached_path("x_1.0_1.y") == tmp_path / "home" / ".cache" / "mnet" / "weights" / "x_1.0_1.y.safetensors"
    )
    exports = weights.cache_subdir("exports")
    assert exports == tmp_path / "home" / ".cache" / "mnet" / "exports" and exports.is_dir()
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError, match="one plain folder name"):
            weights.cache_subdir(bad)


def test_weights_list_says_which_cache_and_folders_are_used(weights_sandbox, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MNET_WEIGHTS_DIR", os.pathsep.join([str(tmp_path), str(tmp_path / "absent")]))
    assert main(["weights", "list"]) == 0
    head = capsys.readouterr().out.splitlines()[:2]
    assert head[0] == f"cache: {weights_sandbox.cache / 'weights'}"
    assert head[1] == f"originals: {tmp_path} ($MNET_WEIGHTS_DIR), {tmp_path / 'absent'} ($MNET_WEIGHTS_DIR, missing)"


# --- folders of originals -----------------------------------------------------------------------------


def test_mnet_weights_dir_is_searched_recursively_before_the_network(entry, network_forbidden, tmp_path, monkeypatch):
    assert not weights.is_available(entry)
    folder = _folder(tmp_path / "originals", "deep", "er")
    monkeypatch.setenv("MNET_WEIGHTS_DIR", os.pathsep.join([str(tmp_path / "absent"), str(folder)]))
    assert weights.is_available(entry)  # no source argument needed
    got = weights.update_cache(GENERATED)
    meta = weights.read_meta(got.path)
    assert got.written and meta["source"] == str(folder / "deep" / "er" / "testnet.bin")
    assert meta["sha256_verified"] is True and got.verification.startswith("verified")


def test_the_config_file_names_folders_too_relative_to_itself(entry, network_forbidden, weights_sandbox, tmp_path):
    config = weights_sandbox.config / "mnet" / "config.toml"
    config.parent.mkdir(parents=True)
    _folder(config.parent / "mine", "x")
    config.write_text('# my settings\nweights_dir = "mine"  # beside this file\n[other]\nweights_dir = 3\n')
    assert weights.originals_dirs() == [config.parent / "mine"]
    assert weights.update_cache(GENERATED).verification.startswith("verified")
    config.write_text(f"weights_dir = [\n  '{tmp_path / 'absent'}',\n  \"mine\",\n]\n")
    assert weights.originals_dirs() == [config.parent / "mine"]
    named = locations.originals_dirs_named()
    assert [d.origin for d in named] == [f"weights_dir in {config}"] * 2
    config.write_text("weights_dir = 3\n")
    with pytest.raises(ValueError, match=r"config.toml: weights_dir must be a folder path or a list"):
        weights.originals_dirs()


def test_search_order_source_dir_then_env_then_config(weights_sandbox, tmp_path, monkeypatch):
    config = weights_sandbox.config / "mnet" / "config.toml"
    config.parent.mkdir(parents=True)
    for name in ("added", "env", "conf"):
        (tmp_path / name).mkdir()
    config.write_text(f'weights_dir = "{tmp_path / "conf"}"\n')
    monkeypatch.setenv("MNET_WEIGHTS_DIR", str(tmp_path / "env"))
    assert weights.add_originals_dir(tmp_path / "added") == tmp_path / "added"
    assert weights.originals_dirs() == [tmp_path / "added", tmp_path / "env", tmp_path / "conf"]
    with pytest.raises(FileNotFoundError, match="nowhere: no such folder"):
        weights.add_originals_dir(tmp_path / "nowhere")
    (tmp_path / "f.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="f.pb: not a folder"):
        weights.add_originals_dir(tmp_path / "f.pb")


@pytest.mark.parametrize(
    "text",
    [
        'weights_dir = "/a/b"\n',
        "weights_dir = '/literal\\path'  # comment\n",
        'a = 1\nweights_dir = ["/x", \'/y\',  # first two\n   "/z\\"q",\n]\nflag = true\n[table]\nweights_dir = "/no"\n',
        '# only a comment\n\n"weights_dir" = []\n',
        'weights_dir = "caf\\u00e9"\n',
    ],
)
def test_the_python_310_config_reader_agrees_with_tomllib(text):
    import tomllib

    want = {k: v for k, v in tomllib.loads(text).items() if isinstance(v, (str, list))}
    assert locations.parse_toml_strings(text) == want


def test_the_python_310_config_reader_names_the_bad_line():
    with pytest.raises(ValueError, match=r"c.toml:2: expected `key = value`"):
        locations.parse_toml_strings('weights_dir = "/a"\nnot toml\n', "c.toml")
    with pytest.raises(ValueError, match=r"c.toml:1: expected `,` or `\]`"):
        locations.parse_toml_strings('weights_dir = ["/a" "/b"]\n', "c.toml")


def test_nothing_found_offline_says_exactly_what_to_do(entry, weights_sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("MNET_WEIGHTS_DIR", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError) as err:
        weights.update_cache(GENERATED)
    msg = str(err.value)
    assert msg.startswith(f"no original file for {GENERATED} (testnet.bin): searched {tmp_path / 'absent'}")
    assert f"{URL}: no network in tests" in msg  # what was tried
    assert "`export MNET_WEIGHTS_DIR=/path/to/folder`" in msg
    assert f'`weights_dir = "/path/to/folder"` in {weights_sandbox.config / "mnet" / "config.toml"}' in msg
    assert "pass `--source DIR` to the command" in msg
    assert "--weights-from" not in msg and "--source PATH" not in msg
    assert not list(weights_sandbox.cache.rglob("*.safetensors"))


# --- the cache is written only when its content changes -----------------------------------------------


def test_fetching_again_from_the_same_original_does_not_rewrite_the_cache(
    entry, network_forbidden, tmp_path, monkeypatch
):
    folder = _folder(tmp_path / "originals", "sub")
    first = weights.update_cache(GENERATED, source=str(folder))
    assert first.written
    before, conversions = stamp(first.path), len(weights_helpers.CONVERSIONS)
    for source in (str(folder), str(folder / "sub" / "testnet.bin"), None):
        again = weights.update_cache(GENERATED, source=source)
        assert not again.written and stamp(again.path) == before, source
    monkeypatch.setenv("MNET_WEIGHTS_DIR", str(folder))
    assert not weights.update_cache(GENERATED).written
    assert not weights.convert_local(folder / "sub" / "testnet.bin", GENERATED).written
    assert len(weights_helpers.CONVERSIONS) == conversions  # not even converted again
    assert stamp(first.path) == before
    forced = weights.update_cache(GENERATED, source=str(folder), force=True)
    assert forced.written and len(weights_helpers.CONVERSIONS) == conversions + 1
    assert stamp(forced.path)[:2] != before[:2]


def test_the_cache_is_rewritten_when_the_original_or_its_shard_changes(weights_sandbox, tmp_path, monkeypatch):
    e = generated_entry(companions={"testnet.shard": None})  # nothing pinned: any bytes are accepted
    monkeypatch.setitem(registry._ENTRIES, GENERATED, e)
    folder = _folder(tmp_path / "a")
    (folder / "testnet.shard").write_bytes(b"shard 1")
    first = weights.update_cache(GENERATED, source=str(folder))
    before = stamp(first.path)
    assert first.verification == "NOT verified: no sha256 is pinned for this entry"
    (folder / "testnet.shard").write_bytes(b"shard 2")
    second = weights.update_cache(GENERATED, source=str(folder))
    assert second.written and stamp(second.path)[2] != before[2]
    assert weights.read_meta(second.path)["companion_sha256"] == {"testnet.shard": sha(b"shard 2")}
    (folder / "testnet.bin").write_bytes(ORIGINAL + b"!")
    third = weights.update_cache(GENERATED, source=str(folder))
    assert third.written and weights.read_meta(third.path)["original_sha256"] == sha(ORIGINAL + b"!")


def test_downloading_again_leaves_the_cached_original_and_conversion_alone(entry, weights_sandbox):
    weights_sandbox.web[URL] = ORIGINAL
    first = weights.update_cache(GENERATED, source="url")
    original = weights_sandbox.cache / "weights" / "originals" / GENERATED / "testnet.bin"
    before = stamp(original), stamp(first.path)
    again = weights.update_cache(GENERATED, source=URL)
    assert not again.written and (stamp(original), stamp(first.path)) == before
    weights_sandbox.web.clear()  # offline now: the cache's own original is found first, without the network
    assert weights.update_cache(GENERATED, force=True).written
    assert not list(weights_sandbox.cache.rglob("*.part")) and not list(
        (weights_sandbox.cache / "weights" / ".tmp").iterdir()
    )


def test_the_cli_reports_written_or_unchanged(entry, network_forbidden, tmp_path, capsys):
    folder = _folder(tmp_path / "originals")
    assert main(["weights", "fetch", GENERATED, "--source", str(folder)]) == 0
    assert "(written)" in capsys.readouterr().out
    assert main(["weights", "fetch", GENERATED, "--source", str(folder)]) == 0
    assert "(unchanged: it already holds this conversion)" in capsys.readouterr().out
    assert main(["weights", "fetch", GENERATED, "--source", str(folder), "--force"]) == 0
    assert "(written)" in capsys.readouterr().out
