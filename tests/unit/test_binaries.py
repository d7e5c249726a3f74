"""devstack/binaries.py: Go binaries are built from our wrapper modules only after the main module's zip
matched its pin; a wrong or missing pin is refused before `go build` starts.

The build tests use a tiny module served by a file:// module proxy in tmp_path (no network), built by
the real `go` command with the same code path as the Kubernetes binaries."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from devstack import binaries, pins

ROOT = Path(__file__).resolve().parents[2]
MOD, VER = "example.com/hello", "v1.0.0"
# No imports beyond the runtime (and embed): the build compiles little of the standard library.
MAIN_GO = 'package main\n\nfunc main() { println("hello from the pinned module 1.0.0") }\n'
# embeds a file its module's own build would generate (like FerretDB's version.txt): not in the zip
STAMPED_GO = ('package main\n\nimport _ "embed"\n\n//go:embed stamp.txt\nvar stamp string\n\n'
              'func main() { print("stamp: " + stamp) }\n')


def _one_digit_off(digest: str) -> str:
    return ("1" if digest[0] != "1" else "2") + digest[1:]


def _go_env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "GOMODCACHE": str(tmp / "gomodcache"), "GOCACHE": str(tmp / "gocache-setup"),
            "GOPROXY": f"file://{tmp / 'proxy'}", "GOSUMDB": "off", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A module proxy holding example.com/hello v1.0.0, a wrapper module requiring it (go.sum written by
    go itself), the project's environment pointed at tmp_path, and TOOLS holding only `hello`."""
    go = binaries.go_command()
    vdir = tmp_path / "proxy" / MOD / "@v"
    vdir.mkdir(parents=True)
    (vdir / "list").write_text(VER + "\n")
    (vdir / f"{VER}.info").write_text(json.dumps({"Version": VER, "Time": "2026-01-01T00:00:00Z"}))
    gomod = f"module {MOD}\n\ngo 1.22\n"
    (vdir / f"{VER}.mod").write_text(gomod)
    with zipfile.ZipFile(vdir / f"{VER}.zip", "w") as z:
        z.writestr(f"{MOD}@{VER}/go.mod", gomod)
        z.writestr(f"{MOD}@{VER}/cmd/hello/main.go", MAIN_GO)
        z.writestr(f"{MOD}@{VER}/cmd/stamped/main.go", STAMPED_GO)
    zip_sha = hashlib.sha256((vdir / f"{VER}.zip").read_bytes()).hexdigest()

    wrapper = tmp_path / "wrapper"
    wrapper.mkdir()
    (wrapper / "go.mod").write_text(f"module lifeboat.test/wrapper\n\ngo 1.22\n\nrequire {MOD} {VER}\n")
    (wrapper / "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{MOD}/cmd/hello"\n')
    p = subprocess.run([go, "mod", "tidy"], cwd=wrapper, env=_go_env(tmp_path), capture_output=True, text=True,
                       check=False)
    assert p.returncode == 0, p.stderr
    assert f"{MOD} {VER} h1:" in (wrapper / "go.sum").read_text()

    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LIFEBOAT_GOPROXY", f"file://{tmp_path / 'proxy'}")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomodcache"))
    stamped_wrapper = tmp_path / "wrapper-stamped"
    stamped_wrapper.mkdir()
    for name in ("go.mod", "go.sum"):
        (stamped_wrapper / name).write_text((wrapper / name).read_text())
    monkeypatch.setattr(binaries, "TOOLS", {
        "hello": binaries.Tool("hello", str(wrapper), f"{MOD}/cmd/hello", MOD, VER, smoke=(),
                               expect="hello from the pinned module"),
        "stamped": binaries.Tool("stamped", str(stamped_wrapper), f"{MOD}/cmd/stamped", MOD, VER, smoke=(),
                                 expect="stamp: v1.0.0-generated",
                                 generated=(("cmd/stamped/stamp.txt", "v1.0.0-generated\n"),)),
    })

    def pin_file(sha256: str | None) -> Path:
        f = tmp_path / "pins.toml"
        body = '[artifacts.other]\nversion = "1"\nsource = "x"\nsha256 = "' + "0" * 64 + '"\n'
        if sha256:
            for name in ("hello", "stamped"):
                body += (f'\n[artifacts.{name}]\nversion = "{VER}"\nsource = "file proxy"\nmodule = "{MOD}"\n'
                         f'sha256 = "{sha256}"\n')
        f.write_text(body)
        monkeypatch.setenv("LIFEBOAT_PINS", str(f))
        return f

    yield {"sha256": zip_sha, "pin_file": pin_file, "cache": tmp_path / "cache", "go": go,
           "module_dir": tmp_path / "gomodcache" / f"{MOD}@{VER}"}
    subprocess.run([go, "clean", "-modcache"], env=_go_env(tmp_path), capture_output=True, check=False)  # read-only


def _build_lines(cache: Path) -> list[str]:
    log = cache / "bin" / f"hello-{VER}.build.log"
    return [ln for ln in log.read_text().splitlines() if " build -trimpath" in ln] if log.exists() else []


@pytest.mark.slow
def test_builds_once_with_the_right_pin_runs_and_drops_the_go_build_cache(tiny):
    """Two callers at once (the file lock): one `go build`, both get the same binary; then cached."""
    tiny["pin_file"](tiny["sha256"])
    lines: list[str] = []
    results, errors = [], []

    def call():
        try:
            results.append(binaries.ensure("hello", say=lines.append))
        except Exception as exc:
            errors.append(exc)
    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors and len(results) == 2 and results[0] == results[1], errors
    exe = results[0]
    assert exe == tiny["cache"] / "bin" / f"hello-{VER}"
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stderr  # println
    assert out.strip() == "hello from the pinned module 1.0.0"
    assert len(_build_lines(tiny["cache"])) == 1
    assert f"zip sha256 {tiny['sha256']} matches" in (tiny["cache"] / "bin" / f"hello-{VER}.build.log").read_text()
    assert list((tiny["cache"] / "go-build-tmp").iterdir()) == []  # the GOCACHE of the build is gone
    assert sum(ln.startswith("[go] building hello") for ln in lines) == 1, lines
    # cached: no second build, same path, nothing said
    lines.clear()
    assert binaries.ensure("hello", say=lines.append) == exe and lines == []
    assert len(_build_lines(tiny["cache"])) == 1


@pytest.mark.slow
def test_a_generated_file_is_supplied_at_build_time_without_touching_the_module(tiny):
    """The FerretDB case: the module embeds a file its own build generates and its zip lacks."""
    tiny["pin_file"](tiny["sha256"])
    exe = binaries.ensure("stamped", say=lambda m: None)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stderr  # print
    assert out == "stamp: v1.0.0-generated\n"
    assert (tiny["module_dir"] / "cmd" / "stamped" / "main.go").is_file()
    assert not (tiny["module_dir"] / "cmd" / "stamped" / "stamp.txt").exists()  # module cache untouched
    log = (tiny["cache"] / "bin" / f"stamped-{VER}.build.log").read_text()
    assert "-overlay" in log and "-modfile=" in log
    assert list((tiny["cache"] / "go-build-tmp").iterdir()) == []


def test_one_wrong_hex_digit_is_refused_before_any_build(tiny):
    bad = _one_digit_off(tiny["sha256"])
    tiny["pin_file"](bad)
    with pytest.raises(pins.PinError) as err:
        binaries.ensure("hello", say=lambda m: None)
    msg = str(err.value)
    assert "artifact 'hello'" in msg and f"expected {bad}" in msg and f"actual {tiny['sha256']}" in msg, msg
    assert not (tiny["cache"] / "bin" / f"hello-{VER}").exists()
    log = (tiny["cache"] / "bin" / f"hello-{VER}.build.log").read_text()
    assert "mod download" in log and _build_lines(tiny["cache"]) == []  # downloaded, checked, never built
    assert list((tiny["cache"] / "go-build-tmp").iterdir()) == []


def test_missing_pin_is_refused_before_any_build(tiny):
    tiny["pin_file"](None)
    with pytest.raises(pins.PinError, match="no pin for artifact 'hello'"):
        binaries.ensure("hello", say=lambda m: None)
    assert not (tiny["cache"] / "bin" / f"hello-{VER}").exists() and _build_lines(tiny["cache"]) == []


def test_ensure_all_reports_failure_naming_the_tool(tiny):
    tiny["pin_file"](_one_digit_off(tiny["sha256"]))
    lines: list[str] = []
    with pytest.raises(binaries.BuildError, match=r"artifact 'hello'.*SHA-256 mismatch"):
        binaries.ensure_all(["hello"], say=lines.append)
    assert any("FAILED" in ln and "'hello'" in ln for ln in lines), lines
    assert list((tiny["cache"] / "go-build-tmp").iterdir()) == []  # the shared GOCACHE is gone too


def test_a_real_tools_wrong_pin_is_refused_before_building(tmp_path, monkeypatch):
    """The project's own pin file with toxiproxy's hash one digit off: the real wrapper's module is
    downloaded (from the module cache when present) and refused; go build never runs."""
    good = pins.load(pins.PIN_FILE)["toxiproxy-server"].sha256
    bad = _one_digit_off(good)
    text = pins.PIN_FILE.read_text()
    assert text.count(good) == 2  # server and CLI come from one module
    (tmp_path / "pins.toml").write_text(text.replace(good, bad))
    monkeypatch.setenv("LIFEBOAT_PINS", str(tmp_path / "pins.toml"))
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(pins.PinError) as err:
        binaries.ensure("toxiproxy-server", say=lambda m: None)
    msg = str(err.value)
    assert "artifact 'toxiproxy-server'" in msg and f"expected {bad}" in msg and f"actual {good}" in msg, msg
    assert not list((tmp_path / "cache" / "bin").glob("toxiproxy-*-v2.5.0"))
    log = (tmp_path / "cache" / "bin" / "toxiproxy-server-v2.5.0.build.log").read_text()
    assert " build -trimpath" not in log


def test_tools_pins_and_wrappers_agree():
    """Every tool has a pin with its version and module, and its wrapper's go.mod/go.sum require exactly
    that version (no network: reads the committed files)."""
    loaded = pins.load(pins.PIN_FILE)
    public = {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "velero",
              "velero-plugin-for-aws", "weed", "toxiproxy-server", "ferretdb"}
    assert public <= set(binaries.TOOLS)
    for t in binaries.TOOLS.values():
        p = loaded.get(t.name)
        assert p is not None, f"no pin for {t.name}"
        assert p.version == t.version and p.get("module") == t.module, t.name
        assert p.source == f"https://proxy.golang.org/{_escape(t.module)}/@v/{t.version}.zip", t.name
        gomod = (t.wrapper_dir / "go.mod").read_text()
        assert re.search(rf"^(?:require\s+|\s+){re.escape(t.module)} {re.escape(t.version)}$", gomod, re.MULTILINE), \
            f"{t.wrapper_dir}/go.mod does not require {t.module} {t.version}"
        gosum = (t.wrapper_dir / "go.sum").read_text()
        assert f"{t.module} {t.version} h1:" in gosum, t.name
        tools_go = (t.wrapper_dir / "tools.go").read_text()
        assert f'"{t.package}"' in tools_go, t.name
    assert binaries.path("kube-apiserver").name == "kube-apiserver-v1.37.2"


def _escape(module: str) -> str:
    return "".join("!" + c.lower() if c.isupper() else c for c in module)


def test_cli_list_names_every_tool(tmp_path):
    env = {**os.environ, "LIFEBOAT_CACHE_DIR": str(tmp_path)}
    p = subprocess.run([sys.executable, str(ROOT / "devstack" / "binaries.py"), "list"], env=env,
                       capture_output=True, text=True, check=True)
    for name in binaries.TOOLS:
        assert re.search(rf"^{re.escape(name)}\s+\S+\s+missing\s", p.stdout, re.MULTILINE), p.stdout
