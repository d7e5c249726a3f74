"""Run the benchmarks: `make bench` (all) or `make bench BENCH=postgres_backup`.

Each bench/<name>.py measures Lifeboat against the native tool in the same run and prints a ratio.
Results also go to bench/results/<name>.json (not in git).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("*.py")
                           if p.stem not in ("run", "common") and not p.stem.startswith("_"))
    rc = 0
    for name in names:
        print(f"\n=== bench {name} ===", flush=True)
        rc |= subprocess.run([sys.executable, str(HERE / f"{name}.py")], check=False).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
