"""Run the benchmarks: `make bench` (all) or `make bench BENCH="postgres_backup redis_rdb_backup"`.

Each bench/<name>.py measures Lifeboat against the native tool in the same run and writes one
bench/results/<pair>.json per measured pair ({"name", "kind": backup|restore|throughput|catalog,
"ratio", "runs", "goal", "ok", ...}; not in git). At the end this prints ONE table of every ratio
written in this run, the machine's load average before and after, and draws bench/results/ratios.png
(the ratios against their goals, and the size curves of the restore benchmarks).

Exit code: non-zero when a benchmark failed or a ratio misses its goal.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NOT_BENCHES = ("run", "common")


# These start (parts of) the bench stack (.stack-bench/), which keeps running after them: the Elasticsearch
# JVM, and for PostgreSQL the whole stack -- two kube-apiservers, etcd, and a standby replaying the
# gigabyte pgbench load. Measured: the Redis benches ran at load 3.4-4.2 behind them (1.31x) instead of
# on a quiet machine. So they run last, and the stack is stopped before the benches on private servers.
STACK_BENCHES = ("elasticsearch_restore", "elasticsearch_snapshot", "postgres_backup", "postgres_restore")
STACK_DIR = HERE.parent / ".stack-bench"


def names() -> list[str]:
    found = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in NOT_BENCHES and not p.stem.startswith("_"))
    return [n for n in found if n not in STACK_BENCHES] + [n for n in STACK_BENCHES if n in found]


def quiet_machine(wanted: list[str]) -> None:
    """Stop a bench stack left running (by an earlier run) before benches that use private servers."""
    if STACK_DIR.exists() and any(n not in STACK_BENCHES for n in wanted):
        sys.path.insert(0, str(HERE.parent))
        from devstack import stack

        print(f"stopping the bench stack {STACK_DIR} first (the stack benches start it again)", flush=True)
        stack.down(state_dir=STACK_DIR, quiet=True)


def results_since(t0: float) -> list[dict]:
    out = []
    for p in sorted(RESULTS.glob("*.json")):
        try:
            r = json.loads(p.read_text())
        except ValueError:
            continue
        if isinstance(r, dict) and {"name", "kind", "ratio", "runs"} <= r.keys() and r.get("measured_at", 0) >= t0:
            out.append(r)
    order = {"backup": 0, "throughput": 1, "restore": 2, "catalog": 3}
    return sorted(out, key=lambda r: (order.get(r["kind"], 9), r["name"]))


def table(results: list[dict], failed: list[str]) -> str:
    lines = [f"{'pair':<44} {'kind':<10} {'ratio':>7}  {'goal':<7} {'runs':>4}  verdict",
             "-" * 84]
    for r in results:
        lines.append(f"{r['name']:<44} {r['kind']:<10} {r['ratio']:>6.3f}x  {r.get('goal', ''):<7} {r['runs']:>4}  "
                     f"{'ok' if r.get('ok') else 'MISSED'}")
    for name in failed:
        lines.append(f"{name:<44} {'-':<10} {'-':>7}  {'':<7} {'':>4}  BENCH FAILED")
    return "\n".join(lines)


def _seconds(v) -> float:
    return float(statistics.median(v)) if isinstance(v, list) else float(v)


def size_curves(results: list[dict]) -> list[tuple[str, list[tuple[float, float, float]]]]:
    """(label, [(MB, native seconds, Lifeboat seconds), ...] by size) of the restore benchmarks: a result
    with a "sizes" list is one curve; results that each hold one size ("series", "size_mb",
    "seconds_native", "seconds_lifeboat": medians of lists) are one curve per series."""
    curves = [(r["name"], [(s["bytes"] / 1e6, s["native_s"], s["ours_s"]) for s in r["sizes"]])
              for r in results if r.get("sizes")]
    series: dict[str, list[tuple[float, float, float]]] = {}
    for r in results:
        if r.get("series") and r.get("size_mb") is not None and "seconds_native" in r and "seconds_lifeboat" in r:
            series.setdefault(r["series"], []).append(
                (float(r["size_mb"]), _seconds(r["seconds_native"]), _seconds(r["seconds_lifeboat"])))
    curves += [(name, sorted(points)) for name, points in sorted(series.items())]
    return curves


def chart(results: list[dict], path: Path) -> Path | None:
    """Ratios against their goals (left) and the restore benchmarks' seconds over data size (right)."""
    if not results:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = size_curves(results)
    fig, axes = plt.subplots(1, 2 if curves else 1, figsize=(15 if curves else 9, 6), squeeze=False)
    ax = axes[0][0]
    labels = [r["name"] for r in results]
    colors = {"backup": "#4477aa", "restore": "#cc6677", "throughput": "#228833", "catalog": "#aa7733"}
    ax.barh(labels, [r["ratio"] for r in results], color=[colors.get(r["kind"], "grey") for r in results])
    for i, r in enumerate(results):
        goal = float(str(r.get("goal", "= 1")).split()[-1])
        ax.plot([goal, goal], [i - 0.4, i + 0.4], color="black", linewidth=2)
        ax.text(r["ratio"], i, f" {r['ratio']:.2f}x", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio (black tick: the goal; backup/restore/catalog <= goal, throughput >= goal)")
    ax.set_title("Lifeboat vs the native tools, one run")
    ax.tick_params(axis="y", labelsize=8)
    if curves:
        ax2 = axes[0][1]
        for label, points in curves:
            xs = [p[0] for p in points]
            line = ax2.plot(xs, [p[2] for p in points], marker="o", label=f"{label} (Lifeboat)")[0]
            ax2.plot(xs, [p[1] for p in points], marker="x", linestyle="--", color=line.get_color(),
                     label=f"{label} (native)")
        ax2.set_xlabel("data size (MB)")
        ax2.set_ylabel("seconds (median)")
        ax2.set_title("restore time over data size")
        ax2.legend(fontsize=7)
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str]) -> int:
    wanted = [n for a in argv for n in a.split()] or names()
    quiet_machine(wanted)
    t0 = time.time()
    print(f"load average (1, 5, 15 min) before: {load()}", flush=True)
    failed = []
    for name in wanted:
        print(f"\n=== bench {name} (load {load()}) ===", flush=True)
        if subprocess.run([sys.executable, str(HERE / f"{name}.py")], check=False).returncode != 0:
            failed.append(name)
    results = results_since(t0)
    print(f"\nload average (1, 5, 15 min) after: {load()}")
    print(f"\n=== every ratio of this run ({time.time() - t0:.0f}s) ===")
    print(table(results, failed))
    png = chart(results, RESULTS / "ratios.png")
    if png:
        print(f"\nchart: {png}")
    return 1 if failed or not all(r.get("ok") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
