"""Download the published FCN weights: resumable, verified, atomic; urllib only.

:data:`PUBLISHED` lists the reference Caffe models (``caffemodel-url`` files of
github.com/shelhamer/fcn.berkeleyvision.org) and pytorch-fcn's conversions of them
(``torchfcn/models/fcn*.py`` of github.com/wkentaro/pytorch-fcn, with their MD5s). The
pytorch-fcn files are on Google Drive, which may answer with a confirmation page instead of
the file; then :func:`download` tries Drive's direct-download address once and otherwise asks
for the file to be placed by hand.

Set ``FCN_STUDIO_OFFLINE=1`` to refuse every host but this machine (the tests do).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from core import __version__
from core.errors import Cancelled, DownloadError
from core.paths import cache_dir

USER_AGENT = f"fcn-studio/{__version__} (+urllib)"
CHUNK_SIZE = 1 << 20

Progress = Callable[[int, int | None], None]
"""``progress(done_bytes, total_bytes)``; the total is None while unknown."""


@dataclass(frozen=True)
class PublishedModel:
    """One published set of FCN weights.

    Attributes:
        name: registry name (``python -m core download NAME``).
        url: where to download it from.
        filename: the file's published name.
        md5: its MD5 where published, else None.
        size: its size in bytes where known, else None.
        variant: the reference net: "32s", "16s" or "8s".
        at_once: the FCN-8s at-once net (fixed skip scaling).
        num_classes: output classes (21: PASCAL VOC with background).
        origin: "caffe" (reference .caffemodel) or "pytorch-fcn" (.pth state dict).
        note: anything a user should know.
    """

    name: str
    url: str
    filename: str
    md5: str | None
    size: int | None
    variant: str
    at_once: bool = False
    num_classes: int = 21
    origin: str = "caffe"
    note: str = ""


_CAFFE_HOST = "http://dl.caffe.berkeleyvision.org/"
_DRIVE_NOTE = "Google Drive link: may need a confirmation page; if so, place the file by hand"

PUBLISHED: dict[str, PublishedModel] = {
    m.name: m
    for m in (
        PublishedModel("voc-fcn32s", _CAFFE_HOST + "fcn32s-heavy-pascal.caffemodel",
                       "fcn32s-heavy-pascal.caffemodel", None, None, "32s"),
        PublishedModel("voc-fcn16s", _CAFFE_HOST + "fcn16s-heavy-pascal.caffemodel",
                       "fcn16s-heavy-pascal.caffemodel", None, None, "16s"),
        PublishedModel("voc-fcn8s", _CAFFE_HOST + "fcn8s-heavy-pascal.caffemodel",
                       "fcn8s-heavy-pascal.caffemodel", None, None, "8s"),
        PublishedModel("voc-fcn8s-atonce", _CAFFE_HOST + "fcn8s-atonce-pascal.caffemodel",
                       "fcn8s-atonce-pascal.caffemodel", None, None, "8s", at_once=True),
        PublishedModel("voc-fcn32s-pth",
                       "https://drive.google.com/uc?id=11k2Q0bvRQgQbT6-jYWeh6nmAsWlSCY3f",
                       "fcn32s_from_caffe.pth", "d3eb467a80e7da0468a20dfcbc13e6c8", None,
                       "32s", origin="pytorch-fcn", note=_DRIVE_NOTE),
        PublishedModel("voc-fcn16s-pth",
                       "https://drive.google.com/uc?id=1bctu58B6YH9bu6lBBSBB2rUeGlGhYLoP",
                       "fcn16s_from_caffe.pth", "a2d4035f669f09483b39c9a14a0d6670", None,
                       "16s", origin="pytorch-fcn", note=_DRIVE_NOTE),
        PublishedModel("voc-fcn8s-pth",
                       "https://drive.google.com/uc?id=1ieXWyoG68xqoHJPWdyrDyaIaaWlfmUxI",
                       "fcn8s_from_caffe.pth", "de93e540ec79512f8770033849c8ae89", None,
                       "8s", origin="pytorch-fcn", note=_DRIVE_NOTE),
        PublishedModel("voc-fcn8s-atonce-pth",
                       "https://drive.google.com/uc?id=0B9P1L--7Wd2vblE1VUIxV1o2d2M",
                       "fcn8s-atonce_from_caffe.pth", "bfed4437e941fef58932891217fe6464",
                       None, "8s", at_once=True, origin="pytorch-fcn", note=_DRIVE_NOTE),
    )
}
"""The published PASCAL VOC FCN-VGG16 weights (21 classes, Caffe preprocessing)."""


def models_dir() -> Path:
    """Where downloaded weights go: ``cache_dir()/models``."""
    return cache_dir() / "models"


def published(name: str) -> PublishedModel:
    """The registry entry ``name``; an unknown name is a :class:`DownloadError`."""
    try:
        return PUBLISHED[name]
    except KeyError:
        raise DownloadError(
            f"unknown published model {name!r}; known: {', '.join(PUBLISHED)}"
        ) from None


def format_registry(folder: Path | None = None) -> str:
    """A plain-text table of the published models and whether each is downloaded."""
    folder = folder or models_dir()
    rows = [f"{'name':22} {'net':13} {'from':12} {'downloaded':10} file / url / md5"]
    for m in PUBLISHED.values():
        net = f"FCN-{m.variant}{' at-once' if m.at_once else ''}"
        have = "yes" if (folder / m.filename).is_file() else "no"
        rows.append(f"{m.name:22} {net:13} {m.origin:12} {have:10} {m.filename}")
        rows.append(f"{'':60} {m.url}")
        rows.append(f"{'':60} md5 {m.md5 or 'not published'}"
                    + (f"  ({m.note})" if m.note else ""))
    return "\n".join(rows)


def offline() -> bool:
    """Whether ``FCN_STUDIO_OFFLINE`` forbids contacting other hosts."""
    return os.environ.get("FCN_STUDIO_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _is_local(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _manual(dest: Path) -> str:
    return f"Download it by other means and place it at {dest}"


def file_md5(path: Path) -> str:
    """The MD5 hex digest of a file."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_SIZE), b""):
            h.update(block)
    return h.hexdigest()


def _problem(path: Path, md5: str | None, size: int | None) -> str | None:
    """Why ``path`` is not the expected file, or None if it matches."""
    if size is not None and path.stat().st_size != size:
        return f"size mismatch: expected {size} bytes, got {path.stat().st_size}"
    if md5 is not None:
        got = file_md5(path)
        if got != md5.lower():
            return f"MD5 mismatch: expected {md5.lower()}, got {got}"
    return None


def drive_direct_url(url: str) -> str | None:
    """Google Drive's direct-download address for a ``drive.google.com/uc?id=`` link."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname != "drive.google.com":
        return None
    ids = urllib.parse.parse_qs(parts.query).get("id")
    if not ids:
        return None
    query = urllib.parse.urlencode({"id": ids[0], "export": "download", "confirm": "t"})
    return f"https://drive.usercontent.google.com/download?{query}"


class _Interrupted(Exception):
    """The transfer stopped early; the .part file can be resumed."""


class _WebPage(Exception):
    """The server sent an HTML page instead of the file."""


def _transfer(url: str, part: Path, progress: Progress | None, cancel: Callable[[], bool] | None,
              timeout: float, chunk_size: int, dest: Path) -> None:
    """Fetch ``url`` into ``part``, resuming from its current size if the server allows."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                      timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send, or a stale .part
            total = re.fullmatch(r"bytes \*/(\d+)", exc.headers.get("Content-Range", "") or "")
            if total and int(total.group(1)) == offset:
                return
            part.unlink()
            raise _Interrupted("the server cannot resume this file; starting over") from exc
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}. {_manual(dest)}") from exc
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"Could not download {url} ({reason}). {_manual(dest)}") from exc
    with resp:
        ctype = resp.headers.get("Content-Type", "")
        if ctype.startswith("text/html"):
            raise _WebPage(ctype)
        header = resp.headers.get("Content-Length", "")
        length = int(header) if header.isdigit() else None
        if resp.status == 206:
            match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)",
                                 resp.headers.get("Content-Range", "").strip())
            if not match or int(match.group(1)) != offset:
                part.unlink()
                raise _Interrupted("the server resumed at the wrong offset; starting over")
            total = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        else:  # 200: the whole file (the server ignored or does not support Range)
            offset, mode = 0, "wb"
            total = length
        done = offset
        with open(part, mode) as fh:
            if progress:
                progress(done, total)
            while True:
                if cancel is not None and cancel():
                    raise Cancelled(f"download of {url} cancelled ({done} bytes kept in {part})")
                try:
                    chunk = resp.read(chunk_size)
                except (OSError, HTTPException) as exc:
                    raise _Interrupted(f"{type(exc).__name__}: {exc}") from exc
                if not chunk:
                    break
                fh.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
            fh.flush()
            os.fsync(fh.fileno())
        if length is not None and done - offset < length:
            raise _Interrupted(f"connection closed after {done} of {total} bytes")


def download(
    url: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    expected_md5: str | None = None,
    expected_size: int | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    timeout: float = 30,
    retries: int = 3,
    retry_delay: float = 1.0,
    chunk_size: int = CHUNK_SIZE,
) -> Path:
    """Download ``url`` to ``dest``, resuming an earlier attempt and verifying the result.

    Data goes to ``<dest>.part``; an interrupted transfer is resumed with ``Range:
    bytes=N-`` (appending when the server answers 206, starting over on 200), also on a
    later call. The finished file is checked against ``expected_size`` and ``expected_md5``
    (a mismatch deletes it) and then moved into place atomically. An existing ``dest`` that
    matches is returned as is.

    Args:
        url: what to download (http or https).
        dest: the file to write, or a folder for it (default: :func:`models_dir`).
        expected_md5: MD5 hex digest to verify, if known.
        expected_size: size in bytes to verify, if known.
        progress: called as ``progress(done_bytes, total_bytes)`` (total None if unknown).
        cancel: polled between chunks; when it returns True, :class:`Cancelled` is raised and
            the ``.part`` file is kept for a later resume.
        timeout: seconds to wait for the server to connect or send.
        retries: how many times an interrupted transfer is resumed before giving up.
        retry_delay: seconds before the first retry (doubled each time).
        chunk_size: bytes per read.

    Returns:
        The downloaded file.

    Raises:
        DownloadError: offline, a network or HTTP error, or a file that fails verification;
            the message names the URL and where to place the file by hand.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http and https downloads are supported")
    name = Path(parts.path).name or "download"
    dest = Path(dest) if dest is not None else models_dir() / name
    if dest.is_dir():
        dest = dest / name
    if dest.is_file():
        if expected_md5 is None and expected_size is None:
            return dest
        stale = _problem(dest, expected_md5, expected_size)
        if stale is None:
            return dest
        if offline() and not _is_local(url):
            raise DownloadError(f"{dest} is not the published file ({stale}). "
                                f"{_manual(dest)}")
    if offline() and not _is_local(url):
        raise DownloadError(
            f"Offline (FCN_STUDIO_OFFLINE is set): not downloading {url}. {_manual(dest)}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt, source, delay = 0, url, retry_delay
    while True:
        try:
            _transfer(source, part, progress, cancel, timeout, chunk_size, dest)
            break
        except _WebPage as exc:
            direct = drive_direct_url(source)
            if direct is None:
                via = f" (also via {source})" if source != url else ""
                raise DownloadError(
                    f"{url} answered with a web page ({exc}) instead of the file{via}; Google "
                    f"Drive does so for files it wants confirmed. {_manual(dest)}"
                ) from None
            source = direct
        except _Interrupted as exc:
            attempt += 1
            if attempt > retries:
                kept = part.stat().st_size if part.is_file() else 0
                raise DownloadError(
                    f"Download of {url} interrupted ({exc}); {kept} bytes are kept in {part} "
                    f"and the next attempt resumes from there. {_manual(dest)}"
                ) from exc
            time.sleep(delay)
            delay *= 2
    problem = _problem(part, expected_md5, expected_size)
    if problem is not None:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: {problem}; the download was deleted")
    os.replace(part, dest)
    return dest


def fetch_published(
    name: str,
    *,
    convert: bool = True,
    dest_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    timeout: float = 30,
) -> Path:
    """Download the published model ``name`` and (by default) convert it to a checkpoint.

    Returns the ``.safetensors`` checkpoint written next to the download (converted once,
    again only when the download is newer), or the downloaded file if ``convert`` is False.
    """
    model = published(name)
    folder = Path(dest_dir) if dest_dir is not None else models_dir()
    raw = download(model.url, folder / model.filename, expected_md5=model.md5,
                   expected_size=model.size, progress=progress, cancel=cancel, timeout=timeout)
    if not convert:
        return raw
    out = raw.with_suffix(".safetensors")
    if out.is_file() and out.stat().st_mtime >= raw.stat().st_mtime:
        return out
    from core.checkpoints.convert import convert as convert_file

    convert_file(raw, out, at_once=model.at_once, name=model.name)
    return out
