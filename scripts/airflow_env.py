"""The environment `make demo` and `make ui` run Airflow in: ./airflow_home, this project's dags/ and
plugins/, the local stack's connections (from .stack/env), API server on loopback only."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def airflow_env(base: dict[str, str], stack_env: dict[str, str]) -> dict[str, str]:
    env = {**base, **stack_env}
    env.update({
        "PATH": f"{VENV_BIN}:{base.get('PATH', '')}",
        "AIRFLOW_HOME": str(ROOT / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "LIFEBOAT_WORKDIR": str(Path(stack_env["LIFEBOAT_STACK_DIR"]) / "work"),
        "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
    })
    (ROOT / "airflow_home").mkdir(exist_ok=True)
    return env
