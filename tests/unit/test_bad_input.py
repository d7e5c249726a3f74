"""Bad input, tried as a user would: each mistake is refused with a message naming the file and field,
the trigger parameter, the CLI option or the connection at fault, and nothing is written or started.

Inventory cases edit the shipped include/inventory.yaml one line at a time (so each test starts from a
file that is valid, see test_inventory.py) and parse it; the CLI, the failover guard and the devstack run
for real against a file:// repository and a state folder under tmp_path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lifeboat.errors import ConnectionConfigError, InventoryError, Refused
from lifeboat.inventory import parse_duration, parse_inventory

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "include" / "inventory.yaml"
TEXT = SHIPPED.read_text()
SRC = "include/inventory.yaml"

STANDBY_REPO = "${LIFEBOAT_REPO_STANDBY:-s3://community-platform-dr-us-east-1/lifeboat}"
PRIMARY_REPO = "${LIFEBOAT_REPO_PRIMARY:-s3://community-platform-dr-us-west-2/lifeboat}"
REDIS_BACKUPS = ('      rdb: {schedule: "15 * * * *"}      # hourly: `redis-cli --rdb` over the replication '
                 'protocol\n      aof: {schedule: "45 */6 * * *"}    # every 6 h: the multi-part appendonlydir, '
                 'copied consistently\n')


def _edit(old: str, new: str, text: str = TEXT) -> str:
    assert old in text, old  # the shipped file changed: update the case
    return text.replace(old, new, 1)


def _load(text: str) -> None:
    from lifeboat.failover import check_inventory  # what the failover DAGs add at parse time

    check_inventory(parse_inventory(text, source=SRC))


def _refused(text: str) -> str:
    with pytest.raises(InventoryError) as err:
        _load(text)
    msg = str(err.value)
    assert msg.startswith(SRC), msg
    return msg


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch):
    for var in ("LIFEBOAT_REPO_PRIMARY", "LIFEBOAT_REPO_STANDBY", "LIFEBOAT_NOT_SET", "LIFEBOAT_REGION"):
        monkeypatch.delenv(var, raising=False)


# =========================================================================== the file itself

@pytest.mark.parametrize(("content", "expected"), [(None, "Is a directory"), (b"version: 1\n\xff\xfe", "utf-8")])
def test_bad_input_inventory_that_cannot_be_read_is_named(tmp_path, content, expected):
    from lifeboat.inventory import load_inventory

    path = tmp_path / "inventory.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(InventoryError, match=re.escape(f"{path}: cannot read the inventory: ")) as err:
        load_inventory(path)
    assert expected in str(err.value)


# =========================================================================== durations

@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("  rto: 4h\n  rpo: 1h", "  rto: 4h\n  rpo: -5", "objectives.rpo"),  # the case from the issue
        ("  rto: 4h\n", "  rto: 0s\n", "objectives.rto"),
        ("  rto: 4h\n  rpo: 1h", "  rto: 4h\n  rpo: 0", "objectives.rpo"),
        ("objectives: {rpo: 15m}", "objectives: {rpo: 0m}", "datastores.postgres.objectives.rpo"),
        ("objectives: {rpo: 30m}", "objectives: {rto: -2, rpo: 30m}", "datastores.mongodb.objectives.rto"),
        ("keep_within: 2d", "keep_within: -1", "datastores.postgres.retention.keep_within"),
        ("approval_timeout: 1h", "approval_timeout: 0s", "failover.approval_timeout"),
        ("ready_timeout: 5m", "ready_timeout: 0", "failover.services.0.ready_timeout"),
        ("busy_wait: 2m", "busy_wait: 0s", "datastores.redis.options.busy_wait"),  # an engine DurationStr
        ("snapshot_timeout: 2h", "snapshot_timeout: 0m", "datastores.elasticsearch.options.snapshot_timeout"),
        ("expire_after: 7d", "expire_after: 0d", "datastores.elasticsearch.options.slm_retention.expire_after"),
        ("oplog_alert_margin: 6h", "oplog_alert_margin: 0h", "datastores.mongodb.options.oplog_alert_margin"),
        ("catchup_timeout: 60s", "catchup_timeout: 0s", "failover.datastores.postgres.catchup_timeout"),
        ("fence_pause: 24h", "fence_pause: 0s", "failover.datastores.redis.fence_pause"),
    ],
)
def test_bad_input_zero_or_negative_duration_is_refused_naming_the_field(old, new, field):
    msg = _refused(_edit(old, new))
    assert f"{SRC}: {field}: not a positive duration" in msg, msg
    assert "Value error" not in msg, msg  # pydantic's prefix is noise


@pytest.mark.parametrize("value", [".inf", ".nan", "99999999999999w", "true", "-5m", "4 hours"])
def test_bad_input_duration_that_is_no_duration_is_refused(value):
    msg = _refused(_edit("  rto: 4h\n", f"  rto: {value}\n"))
    assert f"{SRC}: objectives.rto: not a duration" in msg, msg


def test_bad_input_parse_duration_refuses_zero_unless_a_rule_is_switched_off():
    with pytest.raises(ValueError, match="not a positive duration"):
        parse_duration(0)
    with pytest.raises(ValueError, match="not a positive duration"):
        parse_duration(-1, allow_zero=True)  # negative: never
    assert parse_duration("0s", allow_zero=True).total_seconds() == 0
    # keep_within: 0 switches the time rule off (as keep_daily: 0 does); it stays accepted
    inv = parse_inventory(_edit("keep_within: 2d", "keep_within: 0s"), source=SRC)
    assert inv.datastore("postgres").retention.keep_within.total_seconds() == 0


# =========================================================================== regions, repository, connections

@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("      us-east-1: lifeboat_pg_us_east_1\n",
         "      us-east-1: lifeboat_pg_us_east_1\n      eu-west-1: lifeboat_pg_eu\n",
         "datastores.postgres.connections.eu-west-1: not an inventory region (regions: us-west-2, us-east-1)"),
        ("      us-west-2: lifeboat_pg_us_west_2\n", "      us-west-2: ' '\n",
         "datastores.postgres.connections.us-west-2: empty Airflow connection id"),
        ("  us-east-1:\n    url: ${LIFEBOAT_REPO_STANDBY",
         "  eu-west-1:\n    url: s3://x/y\n  us-east-1:\n    url: ${LIFEBOAT_REPO_STANDBY",
         "repository.eu-west-1: not an inventory region"),
        (STANDBY_REPO, "s3://community-platform-dr-us-west-2/lifeboat",
         "repository.us-east-1.url: the same place as us-west-2's"),
        (STANDBY_REPO, "s3://community-platform-dr-us-west-2/lifeboat/", "repository.us-east-1.url: the same place"),
        (STANDBY_REPO, "s3://community-platform-dr-us-west-2/standby",  # one bucket lives in one region
         "repository.us-east-1.url: the same place"),
        (PRIMARY_REPO, "file://relative/path", "repository.us-west-2.url: file:// url must name an absolute path"),
        (PRIMARY_REPO, "file://./repo", "repository.us-west-2.url: file:// url must name an absolute path"),
        (PRIMARY_REPO, "file://", "repository.us-west-2.url: file:// url must name an absolute path"),
        (PRIMARY_REPO, "file:///", "repository.us-west-2.url: file:// url must name an absolute path"),
        (PRIMARY_REPO, "s3://", "repository.us-west-2.url: s3:// url needs a bucket"),
    ],
)
def test_bad_input_regions_repository_and_connection_ids(old, new, expected):
    msg = _refused(_edit(old, new))
    assert f"{SRC}: {expected}" in msg, msg


@pytest.mark.parametrize(("west", "east"), [("/srv/dr", "/srv/dr"), ("/srv/dr", "/srv/dr/"), ("/srv/dr", "/srv/./dr"),
                                            ("/srv/dr", "/srv/dr/standby"), ("/srv/dr/primary", "/srv/dr")])
def test_bad_input_file_repository_in_one_place_is_refused(monkeypatch, west, east):
    monkeypatch.setenv("LIFEBOAT_REPO_PRIMARY", f"file://{west}")
    monkeypatch.setenv("LIFEBOAT_REPO_STANDBY", f"file://{east}")
    msg = _refused(TEXT)
    assert "repository.us-east-1.url: the same place as us-west-2's" in msg and "two places" in msg, msg


def test_bad_input_file_repositories_side_by_side_are_accepted(monkeypatch):
    monkeypatch.setenv("LIFEBOAT_REPO_PRIMARY", "file:///srv/dr/us-west-2")
    monkeypatch.setenv("LIFEBOAT_REPO_STANDBY", "file:///srv/dr/us-east-1")
    inv = parse_inventory(TEXT, source=SRC)
    assert inv.repository["us-east-1"].url == "file:///srv/dr/us-east-1"


# =========================================================================== datastores, backups, schedules

@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('      rdb: {schedule: "15 * * * *"}', '      rbd: {schedule: "15 * * * *"}',
         "datastores.redis.backups.rbd: redis has no backup kind 'rbd' (supported: rdb, aof)"),
        (REDIS_BACKUPS, "      {}\n", "datastores.redis.backups: at least one backup kind"),
        ('"0 3 * * 0"', '"0 0 31 2 *"', "datastores.postgres.backups.full.schedule: cron expression '0 0 31 2 *' "
                                        "never fires"),
        ('verify: "0 6 * * 1"', 'verify: "0 6 31 4 *"', "schedules.verify: cron expression '0 6 31 4 *' never fires"),
        ('"0 3 * * 0"', '"0 0 3 * * 0"', "datastores.postgres.backups.full.schedule: not a valid cron expression: "
                                         "'0 0 3 * * 0' (5 fields"),
        ("  redis:\n    engine: redis\n", "  redis:\n    name: cache\n    engine: redis\n",
         "datastores.redis.name: 'cache' differs from its key 'redis'"),
        ("keep_last: 24", "keep_last: 0", "datastores.postgres.retention.keep_last: Input should be greater than"),
    ],
)
def test_bad_input_datastores_and_schedules(old, new, expected):
    msg = _refused(_edit(old, new))
    assert f"{SRC}: {expected}" in msg, msg


def test_bad_input_a_datastore_given_twice_is_refused_not_silently_dropped():
    # YAML keeps the last of two equal keys: the first datastore would vanish without a word
    text = _edit("\n  mongodb:\n    engine: mongodb", "\n  redis:\n    engine: mongodb")
    msg = _refused(text)
    line = text[: text.index("\n  redis:\n    engine: mongodb")].count("\n") + 2
    assert f"{SRC}: line {line} column 3: not valid YAML: key 'redis' given twice (first on line" in msg, msg


@pytest.mark.parametrize(("tail", "expected"), [("datastores: {}\n", "datastores: none listed"),
                                                ("datastores: [postgres, redis]\n", "datastores: Input should be a "
                                                                                    "valid dictionary")])
def test_bad_input_datastores_missing_or_of_the_wrong_type(tail, expected):
    head = TEXT[: TEXT.index("\ndatastores:")]
    msg = _refused(head.split("\nfailover:")[0] + "\n" + tail)
    assert f"{SRC}: {expected}" in msg, msg


# =========================================================================== alerts, environment, workdir

@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("critical: [pagerduty, sms]", "critical: []", "alerts.routes.critical: no channel for critical alerts"),
        ("    low: [email]\n", "", "alerts.routes.low: no channel for low alerts"),
        ("pagerduty: {type: pagerduty, connection: lifeboat_pagerduty}", "pagerduty: {type: pagerduty}",
         "alerts.channels.pagerduty.connection: required for a channel of type pagerduty"),
        ("target: [team@community.example.com]", "target: []",
         "alerts.channels.email.target: required for a channel of type email"),
        ('target: "#alerts"', 'target: ""', "alerts.channels.slack.target: required for a channel of type slack"),
        ("${LIFEBOAT_WORKDIR:-/tmp/lifeboat}", "${LIFEBOAT_NOT_SET}",
         "workdir: environment variable ${LIFEBOAT_NOT_SET} is not set and has no default"),
        ("${LIFEBOAT_WORKDIR:-/tmp/lifeboat}", "${LIFEBOAT WORKDIR}",
         "workdir: '${LIFEBOAT WORKDIR}' is not a valid environment reference"),
        ("${LIFEBOAT_WORKDIR:-/tmp/lifeboat}", "tmp/lifeboat", "workdir: must be an absolute path, got 'tmp/lifeboat'"),
        ("${LIFEBOAT_WORKDIR:-/tmp/lifeboat}", "${LIFEBOAT_NOT_SET:-}", "workdir: must be an absolute path, got ''"),
    ],
)
def test_bad_input_alerts_environment_and_workdir(old, new, expected):
    msg = _refused(_edit(old, new))
    assert f"{SRC}: {expected}" in msg, msg


# =========================================================================== the failover section

@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("          us-east-1: api.us-east-1.community.example.com",
         "          us-east-1: api.us-east-1.community.example.com\n          eu-west-1: api.eu",
         "failover.traffic.records[0].targets: unknown region(s) eu-west-1"),
        ("${LIFEBOAT_API_US_WEST_2_URL:-https://api.us-west-2.community.example.com}/health", "api-us-west-2/health",
         "failover.services[1].health.us-west-2: not an http(s) URL: 'api-us-west-2/health'"),
        ("order: [postgres, redis, mongodb, elasticsearch]", "order: [postgres, redis, mongodb, elasticsearch, pg]",
         "failover.order[4]: unknown datastore 'pg'"),
    ],
)
def test_bad_input_failover_section(old, new, expected):
    msg = _refused(_edit(old, new))
    assert f"{SRC}: {expected}" in msg, msg


# =========================================================================== the manual DAGs' parameters

@pytest.fixture
def shipped_inventory(monkeypatch, tmp_path):
    """The shipped inventory on a file:// repository under tmp_path (guard writes a timeline there)."""
    from lifeboat import inventory

    monkeypatch.setenv("LIFEBOAT_INVENTORY", str(SHIPPED))
    monkeypatch.setenv("LIFEBOAT_REPO_PRIMARY", f"file://{tmp_path}/repo-w2")
    monkeypatch.setenv("LIFEBOAT_REPO_STANDBY", f"file://{tmp_path}/repo-e1")
    inventory._CACHE.clear()
    yield tmp_path
    inventory._CACHE.clear()


def _written(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


GOOD = {"failover": {"target_region": "us-east-1", "scope": ["region"], "dry_run": False, "reason": "region down",
                     "confirm": "us-east-1"},
        "failback": {"target_region": "us-west-2", "scope": ["region"], "dry_run": False, "reason": "region back",
                     "confirm": "us-west-2", "switch_back": True}}


@pytest.mark.parametrize("kind", ["failover", "failback"])
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"target_region": "eu-west-1", "confirm": "eu-west-1"}, "target_region 'eu-west-1': not an inventory region"),
        ({"target_region": ""}, "target_region '': not an inventory region"),
        ({"confirm": "us-east-2"}, "confirm: a real"),
        ({"confirm": ""}, "the confirmation is missing"),
        ({"reason": "  "}, "reason: required"),
        ({"reason": None}, "reason: required"),
        ({"scope": ["postgress"]}, "scope: unknown 'postgress'"),
        ({"scope": []}, "scope: empty"),
        ({"scope": " , "}, "scope: empty"),
        ({"dry_run": "false"}, "dry_run: must be true or false"),
        ({"switch_back": "false"}, "switch_back: must be true or false, got 'false'"),
    ],
)
def test_bad_input_failover_params_are_refused_before_anything_is_written(shipped_inventory, kind, change, expected):
    from lifeboat.failover.jobs import guard

    run = {"dag_id": f"lifeboat_{kind}", "run_id": "manual__bad", "run_started_at": ""}
    with pytest.raises(Refused, match=re.escape(expected)) as err:
        guard(kind, {**GOOD[kind], **change}, run)
    assert "Nothing was changed" in str(err.value)
    assert _written(shipped_inventory) == []


@pytest.mark.parametrize("kind", ["failover", "failback"])
def test_bad_input_good_failover_params_open_a_timeline(shipped_inventory, kind):
    """The counterpart of the refusals above: the same guard with good params writes its timeline."""
    from lifeboat.failover.jobs import guard

    out = guard(kind, GOOD[kind], {"dag_id": f"lifeboat_{kind}", "run_id": "manual__good", "run_started_at": ""})
    assert out["dry_run"] is False and not out["resumed"]
    assert any(out["timeline_id"] in p for p in _written(shipped_inventory)), _written(shipped_inventory)


# =========================================================================== the CLI

def _cli(capsys, *argv: str) -> tuple[int, str]:
    from lifeboat.__main__ import main

    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse refusals exit 2
        rc = int(exc.code or 0)
    out = capsys.readouterr()
    return rc, out.out + out.err


@pytest.mark.parametrize(
    ("argv", "rc", "expected"),
    [
        (("catalog", "nope"), 1, "include/inventory.yaml: datastores.nope: not in the inventory (has: "),
        (("restore-test", "nope"), 1, "datastores.nope: not in the inventory"),
        (("--region", "eu-west-1", "catalog", "postgres"), 1,
         "--region 'eu-west-1': not an inventory region (include/inventory.yaml: regions us-west-2, us-east-1)"),
        (("--region", "us-east-1", "backup", "postgres", "--kind", "full"), 1,
         "backup of postgres: us-east-1 is not the active region -- us-west-2 is (the inventory's regions.primary)"),
        (("--region", "us-east-1", "heartbeat", "redis"), 1, "heartbeat of redis: us-east-1 is not the active region"),
        (("restore-test", "postgres", "--target", "yesterday"), 2, "argument --target: 'yesterday' is not an ISO-8601"),
        (("restore-test", "postgres", "--target", "2026-11-27T03:00:00"), 2,
         "argument --target: '2026-11-27T03:00:00' has no time zone"),
        (("backup", "postgres", "--kind", "full", "--at", "tomorrow"), 2, "argument --at: 'tomorrow' is not an ISO"),
        (("backup", "postgres", "--kind", "full", "--at", "2030-01-01T00:00:00"), 2,
         "argument --at: '2030-01-01T00:00:00' has no time"),
        (("backup", "postgres", "--kind", "fulll"), 1,
         "datastores.postgres.backups.fulll: postgres has no backup kind"),
        (("heartbeat", "postgres", "--every", "-1"), 2, "argument --every: '-1' is not a number of seconds >= 0"),
        (("heartbeat", "postgres", "--every", "1", "--duration", "nan"), 2, "argument --duration: 'nan'"),
    ],
)
def test_bad_input_cli_refuses_before_anything_runs(shipped_inventory, capsys, argv, rc, expected):
    got, out = _cli(capsys, *argv)
    assert got == rc, out
    assert expected in out, out
    assert _written(shipped_inventory) == []  # in particular no failed drill record for a typo


def test_bad_input_cli_good_names_still_work(shipped_inventory, capsys):
    rc, out = _cli(capsys, "--region", "us-east-1", "catalog", "postgres")
    assert rc == 0 and out.startswith("backup id"), out


def test_bad_input_lifeboat_region_names_the_variable(shipped_inventory, capsys, monkeypatch):
    monkeypatch.setenv("LIFEBOAT_REGION", "eu-west-1")
    rc, out = _cli(capsys, "catalog", "postgres")
    assert rc == 1 and "environment variable LIFEBOAT_REGION 'eu-west-1': not an inventory region" in out, out
    assert _written(shipped_inventory) == []


# =========================================================================== Airflow connections

PASSWORD = "Zq7vK#Wm3pT/Rk9sX?Lf2dH"  # every character that breaks an unencoded URI


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"postgres://lifeboat:{PASSWORD}@127.0.0.1:5432/community", "not a valid connection URI"),
        ("postgres://lifeboat:pw@127.0.0.1:fivefour/community", "not a valid connection URI"),
        ("127.0.0.1:5432", "not a connection URI"),
        ('["postgres", "127.0.0.1"]', "the JSON form must be an object"),
        (f'{{"conn_type": "postgres", "password": "{PASSWORD}", "extra": 5}}', "extra must be a JSON object"),
        (f'{{"conn_type": "postgres", "password": "{PASSWORD}"', "cannot parse connection"),
    ],
)
def test_bad_input_malformed_connection_names_the_id_and_never_the_password(monkeypatch, value, expected):
    from lifeboat.connections import resolve

    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_PG_BROKEN", value)
    with pytest.raises(ConnectionConfigError) as err:
        resolve("lifeboat_pg_broken")
    msg = str(err.value)
    assert "'lifeboat_pg_broken' (AIRFLOW_CONN_LIFEBOAT_PG_BROKEN)" in msg and expected in msg, msg
    for part in re.split(r"[#/?]", PASSWORD):
        assert part not in msg, msg


def test_bad_input_missing_connection_names_the_id(monkeypatch):
    from lifeboat.connections import resolve

    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_PG_NOWHERE", "  ")  # blank: as unset
    with pytest.raises(ConnectionConfigError, match=re.escape("Airflow connection 'lifeboat_pg_nowhere' is not "
                                                              "defined")) as err:
        resolve("lifeboat_pg_nowhere")
    assert "AIRFLOW_CONN_LIFEBOAT_PG_NOWHERE" in str(err.value)


def test_bad_input_encoded_password_still_parses(monkeypatch):
    from urllib.parse import quote

    from lifeboat.connections import resolve

    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_PG_OK",
                       f"postgres://lifeboat:{quote(PASSWORD, safe='')}@127.0.0.1:5432/c")
    ep = resolve("lifeboat_pg_ok")
    assert (ep.password, ep.port, ep.host) == (PASSWORD, 5432, "127.0.0.1")
    assert PASSWORD not in repr(ep) and PASSWORD not in ep.describe()


# =========================================================================== the devstack

@pytest.mark.parametrize("cmd", ["up", "down"])
def test_bad_input_devstack_unknown_component_is_refused_before_anything_starts(tmp_path, cmd):
    state = tmp_path / "stack"
    if cmd == "down":
        (state).mkdir()
        (state / ".ready").write_text("x\n")
    env = {**os.environ, "LIFEBOAT_STACK_DIR": str(state), "LIFEBOAT_STACK_COMPONENTS": "redis,elastisearch"}
    stack_py = str(ROOT / "devstack" / "stack.py")
    try:
        p = subprocess.run([sys.executable, stack_py, cmd], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=120, check=False)
        left = sorted(x.name for x in state.iterdir())
    finally:  # should it ever start something, stop it again (down ignores what never started)
        if (state / "stack.json").exists():
            subprocess.run([sys.executable, stack_py, "down", "--wipe"], env={**env, "LIFEBOAT_STACK_COMPONENTS": ""},
                           cwd=ROOT, capture_output=True, timeout=300, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    m = re.search(r"LIFEBOAT_STACK_COMPONENTS: unknown component\(s\) elastisearch \(known: ([a-z_, ]+)\)", p.stderr)
    assert m and "elasticsearch" in m.group(1).split(", "), p.stderr
    assert left == ([".lock"] if cmd == "up" else [".lock", ".ready"]), left  # nothing started, nothing stopped
