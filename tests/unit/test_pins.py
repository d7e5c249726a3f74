"""devstack/pins.py: a download is used only when its SHA-256 equals the pin."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from devstack import pins

ROOT = Path(__file__).resolve().parents[2]


def _one_digit_off(digest: str) -> str:
    return ("1" if digest[0] != "1" else "2") + digest[1:]


@pytest.fixture
def served(tmp_path):
    """A file served over HTTP on 127.0.0.1 and a pin file for it."""
    payload = os.urandom(200_000)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "thing-1.0.tar").write_bytes(payload)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "www"))  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/thing-1.0.tar"
    yield payload, url
    srv.shutdown()


def _pin_file(tmp_path: Path, url: str, sha256: str) -> Path:
    p = tmp_path / "pins.toml"
    p.write_text(f'[artifacts.thing]\nversion = "1.0"\nsource = "test server"\nurl = "{url}"\nsha256 = "{sha256}"\n')
    return p


def test_fetch_verifies_and_caches(tmp_path, served, monkeypatch):
    payload, url = served
    monkeypatch.setenv("LIFEBOAT_PINS", str(_pin_file(tmp_path, url, hashlib.sha256(payload).hexdigest())))
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path / "cache"))
    path = pins.fetch("thing", say=lambda m: None)
    assert path.read_bytes() == payload
    (tmp_path / "www" / "thing-1.0.tar").unlink()  # a second fetch must not download again
    assert pins.fetch("thing", say=lambda m: None) == path


def test_one_wrong_hex_digit_is_refused_naming_the_artifact(tmp_path, served, monkeypatch):
    payload, url = served
    good = hashlib.sha256(payload).hexdigest()
    bad = _one_digit_off(good)
    monkeypatch.setenv("LIFEBOAT_PINS", str(_pin_file(tmp_path, url, bad)))
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(pins.PinError) as err:
        pins.fetch("thing", say=lambda m: None)
    msg = str(err.value)
    assert "'thing'" in msg and f"expected {bad}" in msg and f"actual {good}" in msg
    assert not list((tmp_path / "cache" / "downloads").glob("thing-1.0.tar*[!k]"))  # nothing half-written kept


def test_missing_pin_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFEBOAT_PINS", str(_pin_file(tmp_path, "http://127.0.0.1:9/x", "0" * 64)))
    with pytest.raises(pins.PinError, match="no pin for artifact 'velero'"):
        pins.pin("velero")


def test_malformed_pin_names_the_field(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFEBOAT_PINS", str(_pin_file(tmp_path, "http://127.0.0.1:9/x", "abc")))
    with pytest.raises(pins.PinError, match=r"artifacts\.thing\.sha256: not a SHA-256"):
        pins.load()


def test_every_pin_in_the_project_file_is_well_formed():
    loaded = pins.load(pins.PIN_FILE)
    assert "elasticsearch" in loaded
    for p in loaded.values():
        assert len(p.sha256) == 64 and p.version and p.source


@pytest.mark.integration
def test_stack_start_fails_on_a_wrong_pin_naming_the_artifact(tmp_path):
    """The real stack start (devstack/stack.py up) with the Elasticsearch pin one hex digit off."""
    good = pins.load(pins.PIN_FILE)["elasticsearch"].sha256
    text = pins.PIN_FILE.read_text().replace(good, _one_digit_off(good))
    bad_pins = tmp_path / "pins.toml"
    bad_pins.write_text(text)
    env = {**os.environ, "LIFEBOAT_PINS": str(bad_pins), "LIFEBOAT_STACK_DIR": str(tmp_path / "stack"),
           "LIFEBOAT_STACK_COMPONENTS": "elasticsearch"}
    try:
        p = subprocess.run([sys.executable, str(ROOT / "devstack" / "stack.py"), "up"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=600, check=False)
    finally:
        subprocess.run([sys.executable, str(ROOT / "devstack" / "stack.py"), "down", "--wipe"], env=env, cwd=ROOT,
                       capture_output=True, timeout=300, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "artifact 'elasticsearch'" in out and f"expected {_one_digit_off(good)}" in out, out
