"""Pinned downloads for the local stack (stdlib only).

`fetch(name, say)` returns the local path of the artifact pinned as `[artifacts.<name>]` in
devstack/pins.toml, downloading it into the cache the first time. The SHA-256 is checked after every
download and again (cheaply, by a stamp of size + mtime) before a cached copy is handed out, so a
truncated or swapped file never reaches a component. Errors name the artifact, the pin file, the
expected and the actual hash.

    $LIFEBOAT_PINS        another pin file (tests use it to plant a wrong hash)
    $LIFEBOAT_CACHE_DIR   cache root (default ~/.cache/lifeboat); downloads go to <cache>/downloads/
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PIN_FILE = Path(__file__).resolve().with_name("pins.toml")
_REQUIRED = ("version", "source", "sha256")


class PinError(RuntimeError):
    """A missing, malformed or violated pin; the message names the artifact and the pin file."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    source: str
    sha256: str
    url: str = ""
    file: str = ""
    size: int | None = None
    extra: tuple[tuple[str, object], ...] = ()

    def get(self, key: str, default=None):
        return dict(self.extra).get(key, default)


def pin_file() -> Path:
    return Path(os.environ.get("LIFEBOAT_PINS") or PIN_FILE)


def cache_dir() -> Path:
    return Path(os.environ.get("LIFEBOAT_CACHE_DIR") or Path.home() / ".cache" / "lifeboat")


def load(path: Path | None = None) -> dict[str, Pin]:
    path = path or pin_file()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PinError(f"{path}: pin file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise PinError(f"{path}: not valid TOML: {exc}") from None
    pins: dict[str, Pin] = {}
    for name, entry in (raw.get("artifacts") or {}).items():
        where = f"{path}: artifacts.{name}"
        if not isinstance(entry, dict):
            raise PinError(f"{where}: expected a table")
        for key in _REQUIRED:
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise PinError(f"{where}.{key}: missing (every pinned artifact needs {', '.join(_REQUIRED)})")
        digest = entry["sha256"].lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise PinError(f"{where}.sha256: not a SHA-256 hex digest: {entry['sha256']!r}")
        known = {"version", "source", "sha256", "url", "file", "size"}
        pins[name] = Pin(name=name, version=entry["version"], source=entry["source"], sha256=digest,
                         url=entry.get("url", ""), file=entry.get("file", ""), size=entry.get("size"),
                         extra=tuple(sorted((k, v) for k, v in entry.items() if k not in known)))
    return pins


def pin(name: str) -> Pin:
    pins = load()
    try:
        return pins[name]
    except KeyError:
        raise PinError(f"{pin_file()}: no pin for artifact {name!r}: refusing to use an unpinned download "
                       f"(pinned: {', '.join(sorted(pins)) or 'none'})") from None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check(p: Pin, path: Path) -> None:
    """Raise PinError unless `path` has the pinned SHA-256 (and size, when pinned)."""
    actual = sha256_of(path)
    if actual != p.sha256:
        raise PinError(f"artifact {p.name!r} {p.version} ({path}): SHA-256 mismatch: expected {p.sha256} "
                       f"(pin in {pin_file()}), actual {actual}; the file was not used")


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_value(p: Pin, path: Path) -> str:
    st = path.stat()
    return f"{p.sha256} {st.st_size} {st.st_mtime_ns}\n"


def verified(p: Pin, path: Path) -> bool:
    """A cached file counts only when its stamp says it passed `check` with this very pin."""
    try:
        return _stamp(path).read_text() == _stamp_value(p, path)
    except OSError:
        return False


def mark_verified(p: Pin, path: Path) -> None:
    check(p, path)
    _stamp(path).write_text(_stamp_value(p, path))


def fetch(name: str, say=print) -> Path:
    """The pinned artifact's path in the cache, downloaded and verified when needed."""
    p = pin(name)
    if not p.url:
        raise PinError(f"{pin_file()}: artifacts.{name}.url: missing (a downloadable artifact needs a url)")
    dest = cache_dir() / "downloads" / (p.file or p.url.rsplit("/", 1)[-1])
    if dest.is_file() and verified(p, dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.with_name(dest.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if dest.is_file():
            if verified(p, dest):
                return dest
            try:  # a copy from before the stamp existed, or a changed pin: check it once
                mark_verified(p, dest)
            except PinError as exc:  # kept: it may be the pin that is wrong, not the file
                raise PinError(f"{exc} (cached copy; if the file is damaged, delete {dest} to download it again)") \
                    from None
            return dest
        tmp = dest.with_name(dest.name + f".part{os.getpid()}")
        t0 = time.monotonic()
        say(f"[pins] downloading {name} {p.version} from {p.source} ...")
        try:
            opener = urllib.request.build_opener()
            with opener.open(p.url, timeout=120) as resp, open(tmp, "wb") as out:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise PinError(f"artifact {name!r} {p.version}: download from {p.url} failed: {exc}") from None
        try:
            if p.size is not None and tmp.stat().st_size != p.size:
                raise PinError(f"artifact {name!r} {p.version}: downloaded {tmp.stat().st_size} bytes, pin says "
                               f"{p.size} (pin in {pin_file()}); the file was not used")
            check(p, tmp)
        except PinError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, dest)
        _stamp(dest).write_text(_stamp_value(p, dest))
        say(f"[pins] {name}: {dest.stat().st_size / 1e6:.0f} MB in {time.monotonic() - t0:.0f}s, sha256 ok -> {dest}")
        return dest


if __name__ == "__main__":  # python devstack/pins.py fetch <name> | list
    if len(sys.argv) >= 2 and sys.argv[1] == "list":
        for n, pn in sorted(load().items()):
            print(f"{n:<24} {pn.version:<14} {pn.sha256}  {pn.source}")
    elif len(sys.argv) == 3 and sys.argv[1] == "fetch":
        try:
            print(fetch(sys.argv[2]))
        except PinError as exc:
            sys.exit(f"[pins] {exc}")
    else:
        sys.exit("usage: pins.py list | fetch <name>")
