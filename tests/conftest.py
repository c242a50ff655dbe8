"""Shared fixtures. Real data and weights live in ../shared (or $MNET_SHARED); tests needing them skip without."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mnet.tasks  # noqa: F401  (registers every entry, the task packages' too, as the CLI does)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MNET_SHARED", REPO.parent / "shared")).resolve()


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data/weights not available: {path} is missing (set MNET_SHARED to the shared/ folder)")
    return path


@pytest.fixture
def shared():
    """Callable fixture: ``shared('data', 'imagenet')`` returns the path or skips."""
    return shared_path


@pytest.fixture(scope="session", autouse=True)
def _tests_own_their_cache(tmp_path_factory):
    """The session's weights cache is a fresh temporary folder, filled only from ``<shared>/weights`` (named as the
    folder of originals when present) and never from the user's cache, config file or the network."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MNET_CACHE", str(tmp_path_factory.mktemp("mnet_cache")))
        mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))  # no user config file
        if (SHARED / "weights").is_dir():
            mp.setenv("MNET_WEIGHTS_DIR", str(SHARED / "weights"))
        else:
            mp.delenv("MNET_WEIGHTS_DIR", raising=False)
        yield


@pytest.fixture(autouse=True)
def _no_originals_dirs_from_other_tests(monkeypatch):
    """Folders named in-process with ``add_originals_dir`` (a command's ``--source DIR``) last for one test."""
    import sys

    locations = sys.modules.get("mnet.weights.locations")
    if locations is not None:
        monkeypatch.setattr(locations, "_ADDED", [])


@pytest.fixture
def weights_sandbox(tmp_path, monkeypatch):
    """An empty weights cache, no folder of originals, no user config file and no network. ``sandbox.web[url] =
    bytes`` serves a URL through the real download code (read back as a ``file://`` URL); other URLs and
    ``pip download`` fail with OSError, as offline."""
    import types
    import urllib.request

    from mnet.weights import sources

    box = types.SimpleNamespace(cache=tmp_path / "cache", config=tmp_path / "config", web={}, root=tmp_path)
    monkeypatch.setenv("MNET_CACHE", str(box.cache))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(box.config))
    monkeypatch.delenv("MNET_WEIGHTS_DIR", raising=False)
    real_urlopen = urllib.request.urlopen
    served = tmp_path / "web"

    def urlopen(url, *args, **kwargs):
        if url in box.web:
            served.mkdir(exist_ok=True)
            page = served / f"{len(list(served.iterdir()))}.bin"
            page.write_bytes(box.web[url])
            url = page.as_uri()
        if not str(url).startswith("file://"):
            raise OSError(f"no network in tests: {url}")
        return real_urlopen(url, *args, **kwargs)

    def no_pip(requirement, dest_dir):
        raise OSError(f"no network in tests: pip download {requirement}")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(sources, "pip_download", no_pip)
    return box
