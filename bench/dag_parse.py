"""DAG parse time per file (Airflow's own import excluded), against the 2 s the scheduler's
dag-processor should never need per Lifeboat file. Run: .venv/bin/python bench/dag_parse.py"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))


def main() -> int:
    from airflow.dag_processing.dagbag import DagBag

    files = sorted((ROOT / "dags").glob("lifeboat_*.py"))
    DagBag(dag_folder=str(files[0]))  # warm: Airflow's import is not the DAG's cost
    worst = 0.0
    print(f"{'dag file':40} {'median s':>9} {'target s':>9}")
    for path in files:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            DagBag(dag_folder=str(path))
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        worst = max(worst, med)
        print(f"{path.name:40} {med:9.3f} {2.0:9.1f}")
    print(f"worst {worst:.3f} s, ratio to target {worst / 2.0:.2f}")
    return 0 if worst < 2.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
