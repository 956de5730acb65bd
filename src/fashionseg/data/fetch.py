"""``fashionseg data fetch``: the official Fashionpedia files, downloaded resumably and verified.

Layout under ``root`` (what the ``seed`` and ``1x`` presets read)::

    instances_attributes_train2020.json   train/   (from images/train2020.zip)
    instances_attributes_val2020.json     test/    (from images/val_test2020.zip: val and test images)

A download goes to ``<name>.part`` and resumes with an HTTP Range request when interrupted; only a file of
the published size (and sha256, where one is known; Fashionpedia publishes none) is renamed to its final
name. Archives are extracted (refusing members that would land outside ``root``) and then deleted; a
``<name>.extracted`` marker records that. ``source_dir`` (``--from DIR``) uses files the user already has,
verified the same way, and downloads only what is not there.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm.auto import tqdm

from fashionseg.errors import FashionsegError

BASE_URL = "https://s3.amazonaws.com/ifashionist-dataset/"
CHUNK = 1 << 20


class FetchError(FashionsegError):
    """A download or verification failed; the message names the file, the URL and what to do."""


@dataclass(frozen=True)
class RemoteFile:
    """One official file: its path under the base URL, byte size, and (if published) sha256."""

    path: str  # e.g. "images/train2020.zip"
    size: int
    splits: tuple[str, ...]  # the splits that need it
    sha256: str | None = None  # Fashionpedia publishes no checksums; the size is the check

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def is_archive(self) -> bool:
        return self.name.endswith(".zip")


FILES: tuple[RemoteFile, ...] = (
    RemoteFile("annotations/instances_attributes_train2020.json", 542_193_045, ("train",)),
    RemoteFile("images/train2020.zip", 3_344_364_592, ("train",)),
    RemoteFile("annotations/instances_attributes_val2020.json", 14_533_475, ("val",)),
    RemoteFile("images/val_test2020.zip", 236_499_034, ("val",)),
)
SPLITS = ("train", "val")


def _verify(path: Path, remote: RemoteFile) -> str | None:
    """Why ``path`` is not the expected file, or None when its size (and sha256, if known) match."""
    size = path.stat().st_size
    if size != remote.size:
        return f"{path} has {size:,} bytes, expected {remote.size:,}"
    if remote.sha256:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                digest.update(block)
        if digest.hexdigest() != remote.sha256:
            return f"{path} has sha256 {digest.hexdigest()}, expected {remote.sha256}"
    return None


def _outage_hint(remote: RemoteFile) -> str:
    return (
        f"If you have a copy of {remote.name} (in 2025 the Fashionpedia annotation links were reported "
        f"unavailable while the images still downloaded), pass --from DIR with a folder that holds it."
    )


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _transfer(
    url: str, part: Path, start: int, remote: RemoteFile, timeout: float, show_progress: bool
) -> None:
    """Append the bytes from ``start`` on to ``part`` (or rewrite it if the server ignores the Range)."""
    headers = {"Range": f"bytes={start}-"} if start else {}
    with urlopen(Request(url, headers=headers), timeout=timeout) as response:
        if start and response.status != 206:
            start = 0
        with (
            part.open("ab" if start else "wb") as out,
            tqdm(
                total=remote.size,
                initial=start,
                unit="B",
                unit_scale=True,
                desc=remote.name,
                disable=not show_progress,
                dynamic_ncols=True,
            ) as bar,
        ):
            while block := response.read(CHUNK):
                out.write(block)
                bar.update(len(block))


def download(
    url: str,
    dest: Path,
    remote: RemoteFile,
    retries: int = 3,
    timeout: float = 60.0,
    show_progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming a partial file; verify before renaming.

    A transfer that stops short (dropped connection, timeout) is resumed with a Range request, up to
    ``retries`` times; after that the ``.part`` file stays for the next run to resume. A file that ends up
    with the wrong size or checksum is deleted and :class:`FetchError` raised, so nothing half-right ever
    carries the final name.
    """
    part = dest.with_name(dest.name + ".part")
    interrupted = ""
    for _ in range(retries + 1):
        start = _size(part)
        if start >= remote.size:
            break
        try:
            _transfer(url, part, start, remote, timeout, show_progress)
            interrupted = "the connection closed early"
        except HTTPError as exc:
            if exc.code != 416:
                raise FetchError(
                    f"could not download {remote.name} from {url}: HTTP {exc.code} {exc.reason}. "
                    + _outage_hint(remote)
                ) from None
            interrupted = ""  # nothing past `start`: the remote file is shorter than expected
            break
        except (URLError, http.client.HTTPException, OSError) as exc:
            interrupted = str(getattr(exc, "reason", exc))
    if interrupted and not _size(part):
        raise FetchError(
            f"could not download {remote.name} from {url} in {retries + 1} attempt(s) ({interrupted}). "
            + _outage_hint(remote)
        )
    if interrupted and _size(part) < remote.size:
        raise FetchError(
            f"the download of {remote.name} from {url} stopped at {_size(part):,} of {remote.size:,} bytes "
            f"after {retries + 1} attempt(s) ({interrupted}); run the command again to resume from {part}. "
            + _outage_hint(remote)
        )
    problem = _verify(part, remote) if part.exists() else f"{part} was not written"
    if problem:
        part.unlink(missing_ok=True)
        raise FetchError(
            f"{remote.name} from {url} is corrupt: {problem}; the partial file was deleted, retry"
        )
    os.replace(part, dest)
    return dest


def _safe_extract(archive: Path, root: Path, show_progress: bool) -> list[str]:
    """Extract ``archive`` under ``root``, refusing members that would escape it; return the top folders."""
    root_resolved = root.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in members:
                target = (root_resolved / member.filename).resolve()
                if not target.is_relative_to(root_resolved):
                    raise FetchError(f"{archive}: member {member.filename!r} would be written outside {root}")
            for member in tqdm(
                members, desc=f"extract {archive.name}", disable=not show_progress, dynamic_ncols=True
            ):
                zf.extract(member, root_resolved)
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{archive} is not a valid zip archive ({exc}); delete it and fetch again") from None
    return sorted({PurePosixPath(m.filename).parts[0] for m in members if m.filename})


def _find_local(source_dir: Path, remote: RemoteFile) -> Path | None:
    """``remote`` inside ``source_dir``, by name, directly or under its URL folder (images/, annotations/)."""
    for candidate in (source_dir / remote.name, source_dir / remote.path):
        if candidate.is_file():
            return candidate
    return None


def fetch(
    root: str | Path,
    splits: Sequence[str] = SPLITS,
    source_dir: str | Path | None = None,
    base_url: str = BASE_URL,
    files: Iterable[RemoteFile] = FILES,
    keep_archives: bool = False,
    retries: int = 3,
    timeout: float = 60.0,
    show_progress: bool = True,
) -> list[Path]:
    """Put the files of ``splits`` under ``root`` (layout in the module docstring); return what is there.

    Files already in place and verified are kept. ``files`` defaults to the official table; tests pass
    their own.
    """
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise FetchError(f"unknown split(s) {unknown}; choose from {', '.join(SPLITS)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    source = Path(source_dir) if source_dir is not None else None
    if source is not None and not source.is_dir():
        raise FetchError(f"--from {source} is not a folder")
    done: list[Path] = []
    for remote in (f for f in files if set(f.splits) & set(splits)):
        marker = root / (remote.name + ".extracted")
        if remote.is_archive and marker.is_file():
            folders = [root / name for name in json.loads(marker.read_text())["folders"]]
            if all(f.exists() for f in folders):
                done += folders
                continue
        path = _obtain(remote, root, source, base_url, retries, timeout, show_progress)
        if not remote.is_archive:
            done.append(path)
            continue
        folders = _safe_extract(path, root, show_progress)
        marker.write_text(json.dumps({"archive": remote.name, "size": remote.size, "folders": folders}))
        if path.parent == root and not keep_archives:
            path.unlink()
        done += [root / name for name in folders]
    return done


def _obtain(
    remote: RemoteFile,
    root: Path,
    source: Path | None,
    base_url: str,
    retries: int,
    timeout: float,
    show_progress: bool,
) -> Path:
    """A verified copy of ``remote``: already under ``root``, the user's (``source``), or downloaded.

    An archive from ``source`` is used in place (extraction reads it there); a JSON file is hard-linked or
    copied (through ``.part``, so an interrupted copy never carries the final name).
    """
    dest = root / remote.name
    if dest.is_file() and _verify(dest, remote) is None:
        return dest
    local = _find_local(source, remote) if source is not None else None
    if local is None:
        url = base_url.rstrip("/") + "/" + remote.path
        return download(url, dest, remote, retries, timeout, show_progress)
    problem = _verify(local, remote)
    if problem:
        raise FetchError(f"--from copy rejected: {problem}; replace it with the official {remote.name}")
    if remote.is_archive:
        return local
    part = dest.with_name(dest.name + ".part")
    part.unlink(missing_ok=True)
    try:
        os.link(local, part)  # a hard link costs no space; other file systems get a copy
    except OSError:
        shutil.copyfile(local, part)
    os.replace(part, dest)
    return dest
