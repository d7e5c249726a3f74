"""Shared fixtures.

The integration tests run against real servers: the same devstack as `make stack-up`, in its own
state folder (`.stack-test/` by default, `LIFEBOAT_TEST_STACK_DIR` to move it) so the tests never
delete the demo's backups. It is started once per session and reused by later sessions.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def stack_env():
    from devstack import stack

    state = Path(os.environ.get("LIFEBOAT_TEST_STACK_DIR") or ROOT / ".stack-test")
    env = stack.up(state_dir=state)
    os.environ.update(env)
    workdir = state / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["LIFEBOAT_WORKDIR"] = str(workdir)
    os.environ["LIFEBOAT_INVENTORY"] = str(ROOT / "include" / "inventory.yaml")
    return env


@pytest.fixture(scope="session")
def pg_dsn(stack_env) -> str:
    return stack_env["AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2"]


@pytest.fixture(scope="session")
def seeded(pg_dsn):
    import subprocess
    import sys

    subprocess.run([sys.executable, str(ROOT / "scripts" / "seed_community.py"), "--users", "500", "--posts", "2000",
                    "--comments", "5000"], check=True, env=os.environ.copy())
    return pg_dsn


@pytest.fixture
def pg(seeded):
    import psycopg

    with psycopg.connect(seeded, autocommit=True) as conn:
        yield conn


@pytest.fixture
def engine(seeded):
    from lifeboat.datastores import open_engine
    from lifeboat.inventory import load_inventory

    return open_engine("postgres", inventory=load_inventory(), run={"dag_id": "pytest", "run_id": "pytest"})


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def scratch_dir(stack_env):
    p = Path(stack_env["LIFEBOAT_STACK_DIR"]) / "work" / f"plain-{uuid.uuid4().hex[:6]}"
    yield p
    shutil.rmtree(p, ignore_errors=True)


# -- redis ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_url(stack_env) -> str:
    # An inventory parsed before stack_env exported the stack's variables (DAG imports at collection
    # time) is cached with the production defaults (s3:// repositories): parse it again.
    from lifeboat import inventory

    inventory._CACHE.clear()
    return stack_env["AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2"]


@pytest.fixture
def rds(redis_url):
    """A client on the live test primary (db 0). The test stack's Redis belongs to the Redis tests."""
    import redis

    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def redis_engine(redis_url):
    from lifeboat.datastores import open_engine
    from lifeboat.inventory import load_inventory

    return open_engine("redis", inventory=load_inventory(), run={"dag_id": "pytest", "run_id": "pytest"})
