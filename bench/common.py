"""Shared by the benchmarks: a dedicated stack (.stack-bench/) so gigabyte-sized test data never lands
in the demo's or the tests' repositories, timing helpers and the result file."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]


# A throw-away inventory around one datastore: repositories and workdir in a temp folder, so bench runs
# never land in the demo's or the tests' catalogs. A str.format template: {tmp}, literal braces doubled.
INVENTORY_HEADER = """version: 1
platform: bench
regions: {{primary: us-west-2, standby: us-east-1}}
repository:
  us-west-2: {{url: "file://{tmp}/repo-w2"}}
  us-east-1: {{url: "file://{tmp}/repo-e1"}}
workdir: {tmp}/work
datastores:
"""


def inventory(datastore: str, backups: str, options: str) -> str:
    """INVENTORY_HEADER plus one datastore `datastore` (engine of the same name, connection
    lifeboat_bench_<datastore> in both regions); `backups` and `options` are YAML flow mappings."""
    conn = f"lifeboat_bench_{datastore}"
    return INVENTORY_HEADER + (
        f"  {datastore}:\n    engine: {datastore}\n"
        f"    connections: {{{{us-west-2: {conn}, us-east-1: {conn}}}}}\n"
        f"    backups: {backups}\n    options: {options}\n")


def print_phases(phases: dict[str, list[float]], runs: int, width: int = 40) -> None:
    """Where an operator's time went, per run."""
    for name, vals in phases.items():
        if vals:
            print(f"    {name:<{width}} {sum(vals) / runs:7.2f}s")


def drill_steps(repo, drill_id: str) -> dict[str, float]:
    """Seconds of each step of a recorded drill (empty when the drill was not found)."""
    d = repo.drill(drill_id)
    return {s.name: s.seconds or 0.0 for s in d.steps} if d else {}


def print_drill_steps(runs: list[dict[str, float]], width: int = 48, digits: int = 2) -> None:
    """The mean seconds of each drill step over the runs, in the first run's step order."""
    for step in runs[0] if runs else {}:
        print(f"    {step:<{width}} {sum(r.get(step, 0.0) for r in runs) / len(runs):7.{digits}f}s")


def print_ratio(label: str, native: list[float], ours: list[float]) -> None:
    paired = sorted(b / a for a, b in zip(native, ours, strict=False))
    print(f"  overhead ratio {label} = {statistics.median(ours) / statistics.median(native):.2f}x (medians); "
          "per run: " + ", ".join(f"{r:.2f}x" for r in paired))


def bench_stack() -> dict[str, str]:
    from devstack import stack

    state = Path(os.environ.get("LIFEBOAT_BENCH_STACK_DIR") or ROOT / ".stack-bench")
    env = stack.up(state_dir=state)
    os.environ.update(env)
    os.environ["LIFEBOAT_WORKDIR"] = str(state / "work")
    return env


def quiet_disk() -> None:
    """Flush every dirty page before a timed run (untimed), so neither side pays for the writeback of
    what ran before it (a pgbench load, the previous run's restore): one source of 1.5x run-to-run noise."""
    os.sync()


def timed(fn) -> float:
    quiet_disk()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def phase_timer(phases: dict[str, list[float]]):
    """`wrap(name, fn)` -> fn that appends its wall time to phases[name]: where an operator's time goes."""

    def wrap(name, fn):
        def wrapper(*a, **kw):
            t0 = time.monotonic()
            try:
                return fn(*a, **kw)
            finally:
                phases[name].append(time.monotonic() - t0)

        return wrapper

    return wrap


def operator_context(dag_id: str = "bench") -> dict:
    """The part of an Airflow task context the Lifeboat operators read."""
    from collections import defaultdict

    return {
        "dag_run": SimpleNamespace(dag_id=dag_id, run_id=f"bench__{time.time_ns()}", run_after=None),
        "ti": SimpleNamespace(task_id="bench"),
        "logical_date": None,
        "outlet_events": defaultdict(SimpleNamespace),
    }


def run_backup_operator(datastore: str, kind: str, when, run_id: str) -> tuple[dict, float]:
    """One BackupOperator.execute for the logical date `when`, as Airflow would call it: (result, seconds)."""
    from lifeboat.operators import BackupOperator

    ctx = {"logical_date": when, "dag_run": SimpleNamespace(dag_id="bench", run_id=run_id, run_after=when),
           "ti": SimpleNamespace(task_id="backup")}
    op = BackupOperator(task_id="backup", datastore=datastore, kind=kind)
    ctx["outlet_events"] = {a: SimpleNamespace(extra={}) for a in op.outlets}
    quiet_disk()
    t = time.monotonic()
    result = op.execute(ctx)
    return result, time.monotonic() - t


def wait_serving(what: str, proc, probe, log, timeout: float) -> None:
    """Wait until `probe()` answers while `proc` runs; SystemExit naming the log otherwise."""
    from lifeboat.waiting import WaitTimeout, wait_until

    def up() -> bool:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}; see {log}")
        try:
            return bool(probe())
        except Exception:  # not answering yet
            return False

    try:
        wait_until(what, up, timeout, 0.01)  # a timed native restore is measured to 10 ms, as Lifeboat polls
    except WaitTimeout:
        raise SystemExit(f"{what} did not start within {timeout:.0f}s; see {log}") from None


# The goals of issue 18, per kind of result: a backup's time ratio (operator / native) at most 1.10, a
# restore test's RTO ratio (restore test / plain native restore) at most 1.20, a throughput ratio
# (Lifeboat / plain client) at least 0.95, a catalog operation's seconds over its 2 s budget at most 1.
GOALS = {"backup": ("<=", 1.10), "restore": ("<=", 1.20), "throughput": (">=", 0.95), "catalog": ("<=", 1.0)}
RESULTS = ROOT / "bench" / "results"


def meets(kind: str, ratio: float) -> bool:
    op, goal = GOALS[kind]
    return ratio <= goal if op == "<=" else ratio >= goal


def record(name: str, kind: str, ratio: float, runs: int, **extra) -> dict:
    """bench/results/<name>.json: {"name", "kind", "ratio", "runs", "goal", "ok", ...extra}. One file per
    measured pair; bench/run.py prints them as one table and draws the chart."""
    if kind not in GOALS:
        raise ValueError(f"kind {kind!r}: one of {', '.join(GOALS)}")
    op, goal = GOALS[kind]
    result = {"name": name, "kind": kind, "ratio": round(ratio, 4), "runs": runs, "goal": f"{op} {goal}",
              "ok": meets(kind, ratio), "measured_at": time.time(), **extra}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def paired_ratio(native: list[float], ours: list[float]) -> float:
    """The median of ours over the median of native (both lists of seconds)."""
    return statistics.median(ours) / statistics.median(native)


def report(name: str, native_label: str, native: list[float], ours: list[float], extra: dict | None = None,
           kind: str = "backup") -> float:
    n, o = statistics.median(native), statistics.median(ours)
    ratio = o / n
    print(f"{native_label:40} median {n:8.2f}s  runs {', '.join(f'{x:.2f}' for x in native)}")
    print(f"{'through the Lifeboat operator':40} median {o:8.2f}s  runs {', '.join(f'{x:.2f}' for x in ours)}")
    print(f"overhead ratio (operator / native): {ratio:.3f}")
    record(name, kind, ratio, len(ours), native=native, ours=ours, native_label=native_label, **(extra or {}))
    return ratio


def pgbench_at(env: dict, dsn: str, scale: int) -> None:
    """The community database holds pgbench data at `scale` (pgbench -i when it does not; CHECKPOINT after)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute("SELECT to_regclass('pgbench_accounts') IS NOT NULL").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0] if have else 0
    if rows != scale * 100000:
        print(f"pgbench -i -s {scale} ...", flush=True)
        subprocess.run([f"{env['LIFEBOAT_PG_BIN']}/pgbench", "-i", "-q", "-s", str(scale), "--no-vacuum", dsn],
                       check=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
