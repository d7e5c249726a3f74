"""Helpers of the integration modules that run a stack of their own (test_failover.py, test_recover.py,
test_region_loss.py, test_chaos_region.py): the components it runs, Lifeboat code run in the test process
against it, HTTP probes of its services, the loss of its primary region."""

from __future__ import annotations

import contextlib
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def components_env(components: str) -> Iterator[None]:
    """LIFEBOAT_STACK_COMPONENTS=components while devstack starts or stops the stack (restored after)."""
    old = os.environ.get("LIFEBOAT_STACK_COMPONENTS")
    os.environ["LIFEBOAT_STACK_COMPONENTS"] = components
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LIFEBOAT_STACK_COMPONENTS", None)
        else:
            os.environ["LIFEBOAT_STACK_COMPONENTS"] = old


@contextlib.contextmanager
def lifeboat_env(env: dict[str, str]) -> Iterator[None]:
    """Run Lifeboat code in this process against the stack of `env` (restores os.environ after)."""
    from lifeboat import inventory

    saved = dict(os.environ)
    os.environ.update(env)
    inventory._CACHE.clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        inventory._CACHE.clear()


_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only: never a proxy


def http_status(url: str) -> int:
    """The HTTP status of a GET of url (0: nothing answers)."""
    try:
        with _HTTP.open(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def kill_primary_region(state: Path, pg_data: Path, region: str) -> None:
    """Region loss: SIGKILL the primary PostgreSQL of `pg_data` (postmaster and every child at once), the
    primary Redis, the region's platform API and its whole Kubernetes cluster (etcd, control plane, kwok
    nodes), found by the pid files under the stack's state dir `state`."""
    pid = int((pg_data / "postmaster.pid").read_text().split()[0])
    victims = [pid]
    for d in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if d.name.isdigit() and int((d / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                victims.append(int(d.name))
    victims.append(int((state / "redis" / "primary" / "redis.pid").read_text().split()[0]))
    victims.append(int((state / "platform_api" / f"{region}.pid").read_text().split()[0]))
    victims += [int(p.read_text().split()[0]) for p in (state / "kubernetes" / region).glob("*.pid")]
    for v in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(v, signal.SIGKILL)
