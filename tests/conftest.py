"""Test session set-up. Airflow reads its configuration at import time, so the environment is set
here, before any test module imports airflow."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(os.environ.get("LIFEBOAT_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="lifeboat-airflow-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
for p in (ROOT / "plugins", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

pytest_plugins = ["tests.fixtures"]
